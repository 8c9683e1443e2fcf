//! `tcplife report`: the HTML file is self-contained and bounded, and it works in a real
//! browser. The browser test drives Debian's chromium (headless) over the DevTools protocol,
//! with a small WebSocket client written here on the standard library: the page must load with
//! no console error, no uncaught exception and no request other than the file itself, and a
//! screenshot of it must not be blank.
//!
//! Without chromium the browser test is skipped with a message, unless the environment
//! variable CI is set: then it fails. `TCPLIFE_SCREENSHOTS=DIR` keeps screenshots of each
//! section for a person to look at.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::*;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CAPTURES: &[&str] = &[
    "testdata/kernel/many-connections.pcap",
    "testdata/kernel/syn-burst.pcap",
    "testdata/kernel/lost-final-ack.pcap",
    "testdata/kernel/rst-abort-client.pcap",
    "testdata/kernel/simultaneous-close.pcap",
];

fn temp_dir(name: &str) -> TempDir {
    TempDir::new(&format!("html-{name}"))
}

/// Writes the report of `captures` into `dir` and returns its path and text.
fn report(dir: &Path, captures: &[&str]) -> (PathBuf, String) {
    let path = dir.join("report.html");
    let mut args = vec!["report", "--quiet", "-o", path.to_str().unwrap()];
    args.extend_from_slice(captures);
    let out = tcplife(&args);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

#[test]
fn the_report_is_self_contained() {
    let dir = temp_dir("self-contained");
    let (_, html) = report(&dir, CAPTURES);
    assert!(html.starts_with("<!DOCTYPE html>"));
    for forbidden in [
        "http://",
        "https://",
        "//cdn",
        "src=\"",
        "@import",
        "rel=\"stylesheet\"",
    ] {
        let found = html
            .find(forbidden)
            .map(|i| &html[i.saturating_sub(60)..i + 40]);
        assert!(found.is_none(), "`{forbidden}` in the report: {found:?}");
    }
    // Every url() of the style sheet points into the document.
    for (i, _) in html.match_indices("url(") {
        assert!(html[i..].starts_with("url(#"), "{}", &html[i..i + 40]);
    }
    for section in [
        "summary",
        "timeline",
        "times",
        "anomalies",
        "ladders",
        "captures",
    ] {
        assert!(html.contains(&format!("id=\"{section}\"")), "no {section}");
    }
    // Anomaly tables link to ladders that are in the file.
    assert!(html.contains("<code>missing_final_ack</code>"));
    for (i, _) in html.match_indices("href=\"#c") {
        let id: String = html[i + 8..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if id.is_empty() {
            continue; // #captures
        }
        assert!(html.contains(&format!("id=\"c{id}\"")), "no ladder c{id}");
    }
    assert!(html.contains("final ACK never seen: server stuck in LAST-ACK"));
    assert!(html.matches("<svg class=\"ladder\"").count() >= 4);
}

#[test]
fn the_same_captures_give_the_same_report() {
    let a = report(&temp_dir("same-a"), CAPTURES).1;
    let b = report(&temp_dir("same-b"), CAPTURES).1;
    assert!(a == b, "two runs differ");
}

#[test]
fn standard_input_is_refused() {
    let out = tcplife(&["report", "-o", "/dev/null", "-"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("standard input"));
}

#[test]
fn a_missing_capture_exits_3() {
    let dir = temp_dir("missing");
    let path = dir.join("r.html");
    let out = tcplife(&["report", "-q", "-o", path.to_str().unwrap(), "no/such.pcap"]);
    assert_eq!(out.status.code(), Some(3));
}

// ---------------------------------------------------------------------------------------
// The browser.

/// Debian's chromium, or `None` when it is not installed.
fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// The browser, or a skip (outside CI) / a failure (in CI) when there is none.
fn browser_or_skip() -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but chromium is not installed (/usr/bin/chromium): .ci/run installs it"
        );
        eprintln!(
            "SKIPPED: the browser test needs Debian's chromium (apt-get install chromium); \
             it runs whenever CI is set"
        );
    }
    found
}

/// A headless chromium, killed when dropped.
struct Browser {
    child: Child,
    port: u16,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn headless(bin: &Path, profile: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--window-size=1280,2000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

impl Browser {
    fn start(bin: &Path, profile: &Path) -> Browser {
        let mut child = headless(bin, profile)
            .args(["--remote-debugging-port=0", "about:blank"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("ws://127.0.0.1:").nth(1) {
                    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    let _ = tx.send(port.parse::<u16>().unwrap());
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("chromium did not print its DevTools address");
        Browser { child, port }
    }

    /// The WebSocket address of the open page.
    fn page(&self) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        // The answer has a Content-Length; the connection stays open.
        let mut reader = BufReader::new(s);
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if line.trim().is_empty() {
                break;
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).unwrap();
        let targets: Value = serde_json::from_slice(&body).unwrap();
        targets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .unwrap()
            .to_owned()
    }
}

/// The smallest WebSocket client the DevTools protocol needs (RFC 6455: masked text frames
/// out, unmasked frames in).
struct Ws {
    stream: TcpStream,
}

impl Ws {
    fn connect(url: &str) -> Ws {
        let rest = url.strip_prefix("ws://").unwrap();
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        let mut stream = TcpStream::connect(host).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGNwbGlmZS10ZXN0LWtleQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Ws { stream }
    }

    fn send(&mut self, text: &str) {
        let payload = text.as_bytes();
        let mut frame = vec![0x81u8];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n < 65536 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x37u8, 0xfa, 0x21, 0x3d];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).unwrap();
    }

    /// The next text message, or `None` if nothing came within the read timeout.
    fn recv(&mut self) -> Option<String> {
        let mut message = Vec::new();
        loop {
            let mut head = [0u8; 2];
            match self.stream.read_exact(&mut head) {
                Ok(()) => {}
                Err(e) if message.is_empty() && is_timeout(&e) => return None,
                Err(e) => panic!("DevTools connection: {e}"),
            }
            self.stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let len = match head[1] & 0x7f {
                126 => {
                    let mut b = [0u8; 2];
                    self.stream.read_exact(&mut b).unwrap();
                    u64::from(u16::from_be_bytes(b))
                }
                127 => {
                    let mut b = [0u8; 8];
                    self.stream.read_exact(&mut b).unwrap();
                    u64::from_be_bytes(b)
                }
                n => u64::from(n),
            };
            let mut payload = vec![0u8; len as usize];
            self.stream.read_exact(&mut payload).unwrap();
            self.stream
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            if head[0] & 0x0f >= 8 {
                continue; // ping, pong, close: not for us
            }
            message.extend_from_slice(&payload);
            if head[0] & 0x80 != 0 {
                return Some(String::from_utf8(message).unwrap());
            }
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// A DevTools session on one page: commands and the events seen so far.
struct Cdp {
    ws: Ws,
    next: u64,
    events: Vec<Value>,
}

impl Cdp {
    /// A session with the browser's page, its runtime, log, network and page events on.
    fn open(browser: &Browser) -> Self {
        let mut cdp = Cdp {
            ws: Ws::connect(&browser.page()),
            next: 0,
            events: Vec::new(),
        };
        for domain in ["Runtime", "Log", "Network", "Page"] {
            cdp.call(&format!("{domain}.enable"), json!({}));
        }
        cdp
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        self.ws
            .send(&json!({"id": id, "method": method, "params": params}).to_string());
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let Some(text) = self.ws.recv() else { continue };
            let msg: Value = serde_json::from_str(&text).unwrap();
            if msg["id"] == id {
                assert!(msg.get("error").is_none(), "{method}: {msg}");
                return msg["result"].clone();
            }
            self.events.push(msg);
        }
        panic!("{method}: no answer within a minute");
    }

    /// Collects events until `method` arrives (or the timeout).
    fn wait_for(&mut self, method: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.events.iter().any(|e| e["method"] == method) {
                return true;
            }
            if let Some(text) = self.ws.recv() {
                self.events.push(serde_json::from_str(&text).unwrap());
            }
        }
        false
    }

    fn settle(&mut self, quiet: Duration) {
        let deadline = Instant::now() + quiet;
        while Instant::now() < deadline {
            if let Some(text) = self.ws.recv() {
                self.events.push(serde_json::from_str(&text).unwrap());
            }
        }
    }

    fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    fn screenshot(&mut self, path: &Path) {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        std::fs::write(path, base64_decode(r["data"].as_str().unwrap())).unwrap();
    }
}

/// Standard base64, for screenshots taken over DevTools.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = text.bytes().filter(|&c| c != b'=' && c != b'\n').collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let v: Vec<u32> = chunk.iter().map(|&c| u32::from(value(c))).collect();
        let n = v.iter().fold(0u32, |acc, x| acc << 6 | x) << (6 * (4 - v.len()));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..v.len()]);
    }
    out
}

/// What went wrong in the page: console errors, uncaught exceptions, log errors, and every
/// request for anything but the file itself.
fn problems(events: &[Value]) -> Vec<String> {
    let mut found = Vec::new();
    for e in events {
        let p = &e["params"];
        match e["method"].as_str().unwrap_or("") {
            "Runtime.exceptionThrown" => found.push(format!("exception: {p}")),
            "Runtime.consoleAPICalled"
                if matches!(p["type"].as_str(), Some("error" | "assert")) =>
            {
                found.push(format!("console error: {p}"));
            }
            "Log.entryAdded" if p["entry"]["level"] == "error" => {
                found.push(format!("log error: {}", p["entry"]));
            }
            "Network.requestWillBeSent" => {
                let url = p["request"]["url"].as_str().unwrap_or("");
                if !(url.starts_with("file://") || url.starts_with("data:")) {
                    found.push(format!("network request: {url}"));
                }
            }
            _ => {}
        }
    }
    found
}

#[test]
fn the_report_works_in_a_headless_browser() {
    let Some(bin) = browser_or_skip() else { return };
    let dir = temp_dir("browser");
    let (path, _) = report(&dir, CAPTURES);
    let url = format!("file://{}", path.display());
    let browser = Browser::start(&bin, &dir.join("profile"));
    let mut cdp = Cdp::open(&browser);
    cdp.call("Page.navigate", json!({"url": url}));
    assert!(
        cdp.wait_for("Page.loadEventFired", Duration::from_secs(60)),
        "the page did not load"
    );
    cdp.settle(Duration::from_millis(500));
    let requests: Vec<&str> = cdp
        .events
        .iter()
        .filter(|e| e["method"] == "Network.requestWillBeSent")
        .filter_map(|e| e["params"]["request"]["url"].as_str())
        .collect();
    assert!(
        requests.iter().any(|u| u.starts_with("file://")),
        "{requests:?}"
    );
    let early = problems(&cdp.events);
    assert!(early.is_empty(), "{}", early.join("\n"));

    // The page works: tables are paged, a link opens its ladder.
    assert!(
        cdp.eval("document.querySelectorAll('svg.ladder').length")
            .as_u64()
            >= Some(4)
    );
    assert!(
        cdp.eval("document.querySelectorAll('.pager').length")
            .as_u64()
            >= Some(1)
    );
    let visible = "Array.from(document.querySelectorAll('table.paged')[0].tBodies[0].rows)\
                   .filter(r => !r.hidden).length";
    assert_eq!(cdp.eval(visible).as_u64(), Some(10));
    let link = "document.querySelector('#anomalies a[href^=\"#c\"]').getAttribute('href')";
    let target = cdp.eval(link).as_str().unwrap().to_owned();
    cdp.eval(&format!("location.hash = '{target}'"));
    cdp.settle(Duration::from_millis(200));
    let open = format!("document.getElementById('{}').open", &target[1..]);
    assert_eq!(cdp.eval(&open), Value::Bool(true));
    let late = problems(&cdp.events);
    assert!(late.is_empty(), "{}", late.join("\n"));

    if let Some(shots) = std::env::var_os("TCPLIFE_SCREENSHOTS") {
        save_sections(&mut cdp, Path::new(&shots));
    }
    drop(browser);
    let png = dir.join("screenshot.png");
    screenshot(&bin, &dir.join("profile-shot"), &url, &png);
    let colours = distinct_colours(&std::fs::read(&png).unwrap());
    assert!(
        colours > 50,
        "the screenshot looks blank: {colours} colours"
    );
}

/// One screenshot per section, for a person to review.
fn save_sections(cdp: &mut Cdp, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for id in ["summary", "timeline", "times", "anomalies", "ladders"] {
        cdp.eval(&format!("document.getElementById('{id}').scrollIntoView()"));
        cdp.settle(Duration::from_millis(200));
        cdp.screenshot(&dir.join(format!("{id}.png")));
    }
}

/// `chromium --screenshot` of the page, as the command line takes it.
fn screenshot(bin: &Path, profile: &Path, url: &str, png: &Path) {
    let status = headless(bin, profile)
        .arg(format!("--screenshot={}", png.display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run chromium --screenshot");
    assert!(status.success() && png.exists(), "no screenshot: {status}");
}

/// Distinct pixel colours of an 8-bit RGB or RGBA PNG (what chromium writes).
fn distinct_colours(png: &[u8]) -> usize {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let (mut width, mut channels, mut data) = (0usize, 0usize, Vec::new());
    let mut at = 8;
    while at + 8 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind = &png[at + 4..at + 8];
        let body = &png[at + 8..at + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(body[..4].try_into().unwrap()) as usize;
                assert_eq!(body[8], 8, "bit depth");
                assert_eq!(body[12], 0, "interlaced");
                channels = match body[9] {
                    2 => 3,
                    6 => 4,
                    other => panic!("colour type {other}"),
                };
            }
            b"IDAT" => data.extend_from_slice(body),
            _ => {}
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&data[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = width * channels;
    let mut prev = vec![0u8; stride];
    let mut colours = HashSet::new();
    for line in raw.chunks(stride + 1) {
        let mut cur = line[1..].to_vec();
        unfilter(line[0], &mut cur, &prev, channels);
        for px in cur.chunks(channels) {
            colours.insert(px.to_vec());
        }
        prev = cur;
    }
    colours.len()
}

/// Undoes a PNG scanline filter in place.
fn unfilter(filter: u8, cur: &mut [u8], prev: &[u8], bpp: usize) {
    for i in 0..cur.len() {
        let a = if i >= bpp { cur[i - bpp] } else { 0 };
        let b = prev[i];
        let c = if i >= bpp { prev[i - bpp] } else { 0 };
        let add = match filter {
            0 => 0,
            1 => a,
            2 => b,
            3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
            4 => paeth(a, b, c),
            other => panic!("PNG filter {other}"),
        };
        cur[i] = cur[i].wrapping_add(add);
    }
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

// ---------------------------------------------------------------------------------------
// A large synthetic capture: how the report holds up at 300,000 connections.

/// One synthetic TCP segment, as Ethernet + IPv4 + TCP (checksums left at zero).
#[allow(clippy::too_many_arguments)]
fn frame(
    out: &mut Vec<u8>,
    ts_us: u64,
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    seq: u32,
    ack: u32,
    flags: u8,
    payload: u16,
) {
    let ip_len = 20 + 20 + payload;
    let mut f = Vec::with_capacity(54);
    f.extend_from_slice(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00]);
    f.extend_from_slice(&[
        0x45,
        0,
        (ip_len >> 8) as u8,
        ip_len as u8,
        0,
        0,
        0x40,
        0,
        64,
        6,
        0,
        0,
    ]);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.1.to_be_bytes());
    f.extend_from_slice(&dst.1.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&ack.to_be_bytes());
    f.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    let secs = (ts_us / 1_000_000) as u32;
    let micros = (ts_us % 1_000_000) as u32;
    out.extend_from_slice(&secs.to_le_bytes());
    out.extend_from_slice(&micros.to_le_bytes());
    out.extend_from_slice(&(f.len() as u32).to_le_bytes());
    out.extend_from_slice(&(u32::from(ip_len) + 14).to_le_bytes());
    out.extend_from_slice(&f);
}

/// `n` connections, one started every 2 ms, with a realistic mix of endings: most close
/// cleanly; some reset, go unanswered, are refused, lose their final ACK, sit in CLOSE-WAIT
/// for 7 s or never complete the handshake. Timestamps are in order.
fn synthetic_capture(path: &Path, n: u64) {
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const FIN: u8 = 0x01;
    const RST: u8 = 0x04;
    const PSH: u8 = 0x08;
    let mut events = Pending::new();
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut header = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    header.extend_from_slice(&65535u32.to_le_bytes());
    header.extend_from_slice(&1u32.to_le_bytes());
    file.write_all(&header).unwrap();
    let base = 1_795_000_000_000_000u64;
    for i in 0..n {
        let t = base + i * 2_000;
        flush_until(&mut events, &mut file, t);
        let client = ([10, 1, (i / 50_000) as u8, 1], 10_000 + (i % 50_000) as u16);
        let server = ([10, 200, 0, (i % 4) as u8 + 1], 443);
        let (cs, ss) = (
            (i as u32).wrapping_mul(2_654_435_761),
            (i as u32) ^ 0x5bd1_e995,
        );
        let rtt = 200 + (i * 7919 % 5_000);
        let kind = i % 100;
        let mut seq_no = 0u8;
        let mut push = |at: u64, from_client: bool, seq: u32, ack: u32, flags: u8, len: u16| {
            let mut bytes = Vec::new();
            let (s, d) = if from_client {
                (client, server)
            } else {
                (server, client)
            };
            frame(&mut bytes, at, s, d, seq, ack, flags, len);
            seq_no += 1;
            events.insert((at, i, seq_no), bytes);
        };
        push(t, true, cs, 0, SYN, 0);
        match kind {
            0..=2 => continue, // unanswered
            3..=4 => {
                push(t + rtt, false, 0, cs + 1, RST | ACK, 0); // refused
                continue;
            }
            5..=6 => {
                push(t + rtt, false, ss, cs + 1, SYN | ACK, 0); // half open
                push(t + rtt + 1_000_000, false, ss, cs + 1, SYN | ACK, 0);
                continue;
            }
            _ => {}
        }
        push(t + rtt, false, ss, cs + 1, SYN | ACK, 0);
        push(t + rtt + 20, true, cs + 1, ss + 1, ACK, 0);
        let d = t + rtt + 100 + (i * 104_729 % 200_000);
        push(d, true, cs + 1, ss + 1, PSH | ACK, 300);
        push(d + rtt, false, ss + 1, cs + 301, PSH | ACK, 1200);
        push(d + rtt + 30, true, cs + 301, ss + 1201, ACK, 0);
        let c = d + 2 * rtt + 1_000;
        match kind {
            7..=11 => push(c, true, cs + 301, ss + 1201, RST | ACK, 0),
            12..=14 => {
                push(c, true, cs + 301, ss + 1201, FIN | ACK, 0);
                push(c + 40, false, ss + 1201, cs + 302, FIN | ACK, 0);
                for k in 1..4 {
                    push(
                        c + 40 + k * 200_000,
                        false,
                        ss + 1201,
                        cs + 302,
                        FIN | ACK,
                        0,
                    );
                }
            }
            15..=16 => {
                push(c, true, cs + 301, ss + 1201, FIN | ACK, 0);
                push(c + 30, false, ss + 1201, cs + 302, ACK, 0);
                push(c + 7_000_000, false, ss + 1201, cs + 302, FIN | ACK, 0);
                push(c + 7_000_000 + rtt, true, cs + 302, ss + 1202, ACK, 0);
            }
            _ => {
                push(c, true, cs + 301, ss + 1201, FIN | ACK, 0);
                push(c + 40, false, ss + 1201, cs + 302, FIN | ACK, 0);
                push(c + 40 + rtt, true, cs + 302, ss + 1202, ACK, 0);
            }
        }
    }
    flush_until(&mut events, &mut file, u64::MAX);
    file.flush().unwrap();
}

/// Frames not yet written, by (time, connection, order): connections overlap in time.
type Pending = std::collections::BTreeMap<(u64, u64, u8), Vec<u8>>;

/// Writes the pending frames up to time `t`, in time order.
fn flush_until(events: &mut Pending, file: &mut impl Write, t: u64) {
    while let Some(entry) = events.first_entry() {
        if entry.key().0 > t {
            break;
        }
        file.write_all(&entry.remove()).unwrap();
    }
}

/// `TCPLIFE_LARGE=300000 cargo test --release --test html_report -- --ignored --nocapture`:
/// the report of a capture with that many connections stays small, and loads in the browser.
#[test]
#[ignore = "slow: builds a capture with hundreds of thousands of connections"]
fn a_report_of_many_connections_stays_small() {
    let n: u64 = std::env::var("TCPLIFE_LARGE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let dir = temp_dir("large");
    let capture = dir.join("large.pcap");
    let started = Instant::now();
    synthetic_capture(&capture, n);
    eprintln!(
        "capture: {n} connections, {} bytes, written in {:.1?}",
        std::fs::metadata(&capture).unwrap().len(),
        started.elapsed()
    );
    let started = Instant::now();
    let (path, html) = report(&dir, &[capture.to_str().unwrap()]);
    eprintln!("report: {} bytes in {:.1?}", html.len(), started.elapsed());
    assert!(html.len() < 4_000_000, "{} bytes", html.len());
    let connections = html
        .split("<b>")
        .nth(1)
        .unwrap()
        .split("</b>")
        .next()
        .unwrap();
    assert_eq!(connections.replace(',', ""), n.to_string());
    std::fs::remove_file(&capture).unwrap();
    let Some(bin) = chromium() else { return };
    let browser = Browser::start(&bin, &dir.join("profile"));
    let mut cdp = Cdp::open(&browser);
    let started = Instant::now();
    cdp.call(
        "Page.navigate",
        json!({"url": format!("file://{}", path.display())}),
    );
    assert!(cdp.wait_for("Page.loadEventFired", Duration::from_secs(120)));
    eprintln!("browser: loaded in {:.1?}", started.elapsed());
    let problems = problems(&cdp.events);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    if let Some(shots) = std::env::var_os("TCPLIFE_SCREENSHOTS") {
        save_sections(&mut cdp, &Path::new(&shots).join("large"));
    }
    drop(browser);
}
