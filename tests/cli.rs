//! The binary end to end: inputs of every kind, errors with file and offset, exit codes, and
//! byte-identical output.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
mod craft;
use common::*;
use serde_json::Value;
use std::io::Write;

/// A real capture with several connections (Zeek's ssh trace, Ethernet, pcap).
const SSH: &str = "testdata/zeek/ssh-basic/ssh.pcap";
/// A pcapng capture.
const PCAPNG: &str = "testdata/zeek/irc-dcc-send/irc-dcc-send.pcapng";

fn read(path: &str) -> Vec<u8> {
    std::fs::read(root().join(path)).unwrap()
}

fn stdout_json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// The connections of a document, with the input-specific parts removed.
fn connections(doc: &Value) -> &Value {
    &doc["connections"]
}

#[test]
fn the_same_capture_gives_byte_identical_json() {
    let a = tcplife(&["analyze", "--format", "json", SSH]);
    let b = tcplife(&["analyze", "--format", "json", SSH]);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    let a = tcplife(&["analyze", "--format", "jsonl", PCAPNG]);
    let b = tcplife(&["analyze", "--format", "jsonl", PCAPNG]);
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn json_lines_stream_connections_then_the_summary() {
    let out = tcplife(&["analyze", "--format", "jsonl", SSH]);
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (summary, conns) = lines.split_last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(
        summary["summary"]["connections"].as_u64().unwrap(),
        conns.len() as u64
    );
    for line in &lines {
        assert_schema_valid(line, "a JSON line");
    }
    assert!(conns.iter().all(|c| c["type"] == "connection"));
    let doc = analyze_json(SSH);
    let mut by_id: Vec<Value> = conns.to_vec();
    by_id.sort_by_key(|c| c["id"].as_u64());
    for (line, record) in by_id.iter_mut().zip(connections(&doc).as_array().unwrap()) {
        line.as_object_mut().unwrap().remove("type");
        assert_eq!(line, record);
    }
}

#[test]
fn the_text_summary_names_outcomes_and_captures() {
    let out = tcplife(&["analyze", SSH]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("tcplife: 23 connections"), "{text}");
    assert!(text.contains("Outcomes"));
    assert!(text.contains(SSH));
}

#[test]
fn standard_input_reads_like_a_file() {
    let from_file = analyze_json(SSH);
    let out = tcplife_with_stdin(&["analyze", "--format", "json", "-"], &read(SSH));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_stdin = stdout_json(&out);
    assert_eq!(from_stdin["inputs"][0]["file"], "-");
    assert_eq!(connections(&from_stdin), connections(&from_file));
}

#[test]
fn gzip_and_zstd_are_recognised_by_their_magic_not_their_name() {
    let raw = read(PCAPNG);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    let dir = TempDir::new("cli-compressed");
    let gz = dir.write("capture-gzip.bin", &gz.finish().unwrap());
    let zst =
        ruzstd::encoding::compress_to_vec(&raw[..], ruzstd::encoding::CompressionLevel::Fastest);
    let zst = dir.write("capture-zstd.pcap", &zst);
    let plain = analyze_json(PCAPNG);
    for (file, compression) in [(&gz, "gzip"), (&zst, "zstd")] {
        let doc = analyze_json(file);
        assert_eq!(doc["inputs"][0]["compression"], compression);
        assert_eq!(doc["inputs"][0]["format"], "pcapng");
        assert_eq!(connections(&doc), connections(&plain), "{compression}");
    }
}

#[test]
fn several_files_are_one_timeline_and_a_clock_going_back_is_reported() {
    let out = tcplife(&["analyze", "--format", "json", SSH, SSH]);
    assert!(out.status.success());
    let doc = stdout_json(&out);
    let inputs = doc["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 2);
    let packets = inputs[0]["packets"].as_u64().unwrap();
    assert_eq!(
        inputs[1]["first_packet_number"].as_u64().unwrap(),
        packets + 1
    );
    assert_eq!(inputs[0]["timestamps_backwards"], 0);
    assert!(inputs[1]["timestamps_backwards"].as_u64().unwrap() >= 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("timestamps go backwards"), "{stderr}");
}

#[test]
fn a_missing_file_exits_3_and_names_it() {
    let out = tcplife(&["analyze", "--format", "json", "no/such/capture.pcap"]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no/such/capture.pcap"), "{stderr}");
    let doc = stdout_json(&out);
    assert_eq!(doc["inputs"][0]["error"]["kind"], "open");
}

#[test]
fn a_file_that_is_not_a_capture_exits_4() {
    let out = tcplife(&["analyze", "Cargo.toml"]);
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Cargo.toml"), "{stderr}");
    assert!(stderr.contains("pcap"), "{stderr}");
}

#[test]
fn a_truncated_capture_exits_5_with_the_report_of_what_came_before() {
    let whole = read(SSH);
    let dir = TempDir::new("cli-cut");
    let cut = dir.write("cut.pcap", &whole[..whole.len() * 2 / 3]);
    let out = tcplife(&["analyze", "--format", "json", &cut]);
    assert_eq!(out.status.code(), Some(5));
    let doc = stdout_json(&out);
    assert_schema_valid(&doc, "truncated capture report");
    let error = &doc["inputs"][0]["error"];
    assert_eq!(error["kind"], "truncated");
    let offset = error["offset"].as_u64().unwrap();
    assert!(offset > 24 && offset < whole.len() as u64 * 2 / 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&cut) && stderr.contains(&format!("byte {offset}")),
        "{stderr}"
    );
    assert!(doc["summary"]["connections"].as_u64().unwrap() > 0);
    assert!(doc["inputs"][0]["packets"].as_u64().unwrap() > 100);
}

#[test]
fn a_damaged_file_does_not_stop_the_files_after_it() {
    let dir = TempDir::new("cli-empty");
    let bad = dir.write("empty.pcap", b"");
    let out = tcplife(&["analyze", "--format", "json", &bad, SSH]);
    assert_eq!(out.status.code(), Some(4));
    let doc = stdout_json(&out);
    assert_eq!(doc["inputs"][1]["error"], Value::Null);
    assert_eq!(doc["summary"]["connections"], 23);
}

#[test]
fn durations_on_the_command_line_are_human() {
    let out = tcplife(&["analyze", "--msl", "2m", "--idle-timeout", "500ms", SSH]);
    assert!(out.status.success());
    let out = tcplife(&["analyze", "--msl", "soon", SSH]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a duration"));
}

/// Hand-built (a kernel will not wait six minutes in a fixture): 1,000 SYNs from distinct
/// sources, then after six minutes of quiet one more, at which all 1,000 time out at one sweep
/// and leave the tracking threads in many chunks, merged back across several batches. The
/// reading thread tracks a share itself (SYNs alone are far more tracking than reading) and
/// makes its records a chunk at a time. Fewer segments than the split's probe takes: the
/// threads start at the capture's end.
#[test]
fn what_finishes_at_one_sweep_comes_out_the_same_for_any_number_of_threads() {
    let dir = TempDir::new("one-sweep");
    let path = dir.path().join("pause.pcap");
    let mut w = craft::PcapWriter::create(&path, craft::LINKTYPE_RAW);
    let t0 = 1_700_000_000_000_000_000i64;
    let syn = |i: u32| {
        let [_, _, a, b] = i.to_be_bytes();
        craft::Seg::new([10, 1, a, b], 40_000, [192, 0, 2, 1], 80).flags(craft::SYN, i, 0)
    };
    for i in 0..1_000u32 {
        let s = syn(i);
        w.record(t0 + i64::from(i) * 1_000_000, &s.bytes(), s.wire_len());
    }
    let late = syn(1_000);
    w.record(t0 + 360_000_000_000, &late.bytes(), late.wire_len());
    w.finish();
    let records = same_for_any_number_of_threads(&path);
    let timed_out = records
        .iter()
        .filter(|r| r["finished_by"] == "idle_timeout")
        .count();
    assert_eq!((records.len(), timed_out), (1_002, 1_000));
}

/// The JSON lines `--threads 1` writes for `path`, parsed, once 2, 3 and 6 threads have been
/// seen to write the same bytes.
fn same_for_any_number_of_threads(path: &std::path::Path) -> Vec<Value> {
    let path = path.to_string_lossy().into_owned();
    let output = |threads: &str| {
        let out = tcplife(&["analyze", "--format", "jsonl", "--threads", threads, &path]);
        assert_eq!(out.status.code(), Some(0), "--threads {threads}");
        out.stdout
    };
    let one = output("1");
    for threads in ["2", "3", "6"] {
        assert!(output(threads) == one, "--threads {threads} differs");
    }
    String::from_utf8_lossy(&one)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Hand-built bulk transfer (a kernel fixture of this size would weigh megabytes): two
/// connections of 3,000 full 1,400-byte segments each, every other one acknowledged. Its first
/// segments show large frames and next to no connections, so the split gives the reading
/// thread no share of the tracking, and the threads start part way through the capture, with
/// the segments held back until then dealt first. The output is the same for any number of
/// threads.
#[test]
fn a_bulk_transfer_comes_out_the_same_for_any_number_of_threads() {
    let dir = TempDir::new("bulk");
    let path = dir.path().join("bulk.pcap");
    let mut w = craft::PcapWriter::create(&path, craft::LINKTYPE_RAW);
    let mut t = 1_700_000_000_000_000_000i64;
    let mut put = |s: craft::Seg| {
        let mut bytes = s.bytes();
        bytes.resize(bytes.len() + usize::from(s.payload_len), 0x5a);
        t += 10_000;
        w.record(t, &bytes, s.wire_len());
    };
    let clients =
        [40_001u16, 40_002].map(|port| craft::Seg::new([10, 0, 0, 1], port, [10, 0, 0, 2], 5201));
    for c in clients {
        put(c.flags(craft::SYN, 0, 0));
        put(c.reply().flags(craft::SYN | craft::ACK, 0, 1));
        put(c.flags(craft::ACK, 1, 1));
    }
    let mut next = [1u32; 2];
    for i in 0..3_000 {
        for (c, seq) in clients.iter().zip(next.iter_mut()) {
            put(c.flags(craft::ACK | craft::PSH, *seq, 1).payload(1_400));
            *seq += 1_400;
            if i % 2 == 1 {
                put(c.reply().flags(craft::ACK, 1, *seq));
            }
        }
    }
    for (c, seq) in clients.iter().zip(next) {
        put(c.flags(craft::FIN | craft::ACK, seq, 1));
        put(c.reply().flags(craft::FIN | craft::ACK, 1, seq + 1));
        put(c.flags(craft::ACK, seq + 1, 2));
    }
    w.finish();
    let mut records = same_for_any_number_of_threads(&path);
    records.retain(|r| r["type"] == "connection");
    assert_eq!(records.len(), 2, "{records:?}");
    for r in &records {
        assert_eq!(r["client_sent"]["payload_bytes"], 4_200_000, "{r}");
    }
}

/// Capture files copied in on the parsing thread (one thread), read ahead on a thread of their
/// own (two), or read in place (`--mmap`) give the same bytes: every fixture read together as
/// one run (pcap and pcapng), and a capture cut short (the same error, at the same offset, the
/// same exit code) followed by a compressed one, which is never mapped.
#[test]
fn every_way_of_reading_gives_the_same_report() {
    let zeek_dirs = std::fs::read_dir(root().join("testdata/zeek")).unwrap();
    let mut dirs: Vec<std::path::PathBuf> = zeek_dirs.map(|e| e.unwrap().path()).collect();
    dirs.push(root().join("testdata/kernel"));
    let mut all: Vec<String> = dirs
        .iter()
        .flat_map(|dir| captures_in(dir))
        .map(|capture| relative(&capture))
        .collect();
    all.sort();
    assert!(all.iter().any(|c| c.ends_with(".pcapng")), "{all:?}");
    let whole = read(SSH);
    let dir = TempDir::new("cli-mapped");
    let cut = dir.write("cut.pcap", &whole[..whole.len() / 2]);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(&whole).unwrap();
    let gzipped = dir.write("ssh.pcap.gz", &gzip.finish().unwrap());
    for (captures, exit) in [(all, 0), (vec![cut, gzipped], 5)] {
        let run = |how: &[&str]| {
            let mut args = vec!["analyze", "--format", "json"];
            args.extend(captures.iter().map(String::as_str));
            args.extend(how);
            tcplife(&args)
        };
        // One thread reads into the parser's buffer; with two, a thread of its own reads ahead.
        let copied = run(&["--threads", "1"]);
        assert_eq!(copied.status.code(), Some(exit), "{captures:?}");
        for how in [
            &["--threads", "2"][..],
            &["--mmap"],
            &["--mmap", "--threads", "1"],
        ] {
            let other = run(how);
            assert_eq!(other.status.code(), Some(exit), "{captures:?} {how:?}");
            assert!(
                other.stdout == copied.stdout,
                "{captures:?}: {how:?} differs"
            );
            assert_eq!(other.stderr, copied.stderr, "{how:?}");
        }
    }
}

/// The output does not depend on how many threads track connections: every kernel fixture and
/// Zeek trace, read together as one run and each on its own, gives the same bytes with 1, 2
/// and 3 threads, as JSON lines, as a document, as text and as a Zeek log (but for the times
/// it was written).
#[test]
fn the_output_is_the_same_for_any_number_of_threads() {
    let mut runs: Vec<Vec<String>> = Vec::new();
    let zeek_dirs = std::fs::read_dir(root().join("testdata/zeek")).unwrap();
    let mut dirs: Vec<std::path::PathBuf> = zeek_dirs.map(|e| e.unwrap().path()).collect();
    dirs.push(root().join("testdata/kernel"));
    let mut all = Vec::new();
    for dir in dirs {
        for capture in captures_in(&dir) {
            runs.push(vec![relative(&capture)]);
            all.push(relative(&capture));
        }
    }
    all.sort();
    assert!(all.len() >= 58, "the fixtures are there: {}", all.len());
    runs.push(all);
    for format in ["jsonl", "json", "text", "zeek"] {
        for captures in &runs {
            let output = |threads: &str| {
                let mut args = vec!["analyze", "--format", format, "--threads", threads];
                args.extend(captures.iter().map(String::as_str));
                let out = tcplife(&args);
                assert!(out.status.code().is_some(), "{args:?} did not exit");
                (out.status.code(), without_log_times(out.stdout))
            };
            let one = output("1");
            assert!(!one.1.is_empty(), "{captures:?}: no output");
            for threads in ["2", "3"] {
                assert!(
                    output(threads) == one,
                    "{format} {captures:?}: --threads {threads} differs from --threads 1"
                );
            }
        }
    }
}

/// The output without the lines of a Zeek log that say when it was written (`#open`, `#close`).
fn without_log_times(output: Vec<u8>) -> Vec<u8> {
    let stamped = |line: &&[u8]| line.starts_with(b"#open\t") || line.starts_with(b"#close\t");
    let lines: Vec<&[u8]> = output.split(|&b| b == b'\n').collect();
    if !lines.iter().any(stamped) {
        return output;
    }
    lines
        .into_iter()
        .filter(|line| !stamped(line))
        .collect::<Vec<_>>()
        .join(&b'\n')
}

/// Past 8 MiB of failed handshakes the SYN-flood detector sorts them through temporary files
/// in TMPDIR. Where none can be made, the run stops with an error that says where and what to
/// do; where they can, the flood is found. (Hand-built: 150,000 bare SYNs from distinct
/// sources, a burst no test stack was made to send.)
#[test]
fn a_flood_sorted_through_temporary_files_needs_a_writable_tmpdir() {
    use craft::*;
    let dir = TempDir::new("flood-tmpdir");
    let path = dir.path().join("syns.pcap");
    let mut w = PcapWriter::create(&path, LINKTYPE_RAW);
    let syns: u32 = 150_000;
    for i in 0..syns {
        let [_, a, b, c] = i.to_be_bytes();
        let s = Seg::new([10, a, b, c], 40_000, [192, 0, 2, 1], 80).flags(SYN, i, 0);
        w.record(
            1_700_000_000_000_000_000 + i64::from(i) * 1_000,
            &s.bytes(),
            s.wire_len(),
        );
    }
    w.finish();
    let path = path.to_string_lossy().into_owned();
    let analyse = |tmpdir: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tcplife"))
            .args(["analyze", "--quiet", "--format", "jsonl", &path])
            .env("TMPDIR", tmpdir)
            .output()
            .unwrap()
    };

    let missing = dir.path().join("missing");
    let failed = analyse(&missing);
    assert_eq!(failed.status.code(), Some(6));
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(
        err.contains("temporary file") && err.contains(&*missing.to_string_lossy()),
        "{err}"
    );
    assert!(err.contains("set TMPDIR"), "{err}");

    let done = analyse(dir.path());
    assert!(done.status.success());
    let out = String::from_utf8(done.stdout).unwrap();
    let summary: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let episodes = summary["summary"]["episodes"].as_array().unwrap();
    let flood = episodes.iter().find(|e| e["kind"] == "syn_flood").unwrap();
    assert_eq!(flood["details"]["incomplete_handshakes"], syns);
    assert_eq!(flood["details"]["distinct_sources"], syns);
}
