//! Zeek's conn.log: the record's Zeek row(s) as JSON, and `--format zeek`, a Zeek ASCII log
//! (tab-separated, the header lines Zeek writes, the 22 columns of conn.log, `-` for unset
//! fields, `#close` at the end) that `zeek-cut` and Zeek's log readers accept.

use super::record::{ConnectionRecord, EndpointAddr};
use crate::analyze::{RunReport, Sink};
use crate::decimal::{push_ip, push_u64, put_digits};
use crate::splitmix64;
use crate::time::Rfc3339;
use crate::track::History;
use crate::track::zeek::ZeekRow;
use serde::Serialize;
use std::io::{self, IoSlice, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// One conn.log row, as it appears in a record's `zeek` object.
#[derive(Debug, Clone, Serialize)]
pub struct ZeekRowRecord {
    /// The row's first packet (conn.log's `ts`).
    pub start_ns: i64,
    /// Zeek's originator and responder (not necessarily tcplife's client and server).
    pub orig: EndpointAddr,
    pub resp: EndpointAddr,
    /// Ends at the last packet before both sides had closed; conn.log leaves `duration`,
    /// `orig_bytes` and `resp_bytes` unset when this is 0.
    pub duration_ns: i64,
    pub orig_bytes: u64,
    pub resp_bytes: u64,
    pub missed_bytes: u64,
    pub orig_pkts: u64,
    pub orig_ip_bytes: u64,
    pub resp_pkts: u64,
    pub resp_ip_bytes: u64,
    pub conn_state: &'static str,
    pub history: History,
}

impl From<ZeekRow> for ZeekRowRecord {
    fn from(r: ZeekRow) -> Self {
        ZeekRowRecord {
            start_ns: r.start_ns,
            orig: r.orig.into(),
            resp: r.resp.into(),
            duration_ns: r.duration_ns(),
            orig_bytes: r.orig_bytes,
            resp_bytes: r.resp_bytes,
            missed_bytes: r.missed_bytes,
            orig_pkts: r.orig_pkts,
            orig_ip_bytes: r.orig_ip_bytes,
            resp_pkts: r.resp_pkts,
            resp_ip_bytes: r.resp_ip_bytes,
            conn_state: r.conn_state,
            history: r.history,
        }
    }
}

/// A record's Zeek view: its row, and (only with `--zeek-timers`) the rows Zeek's timers or
/// reuse rule would have split off after it.
#[derive(Debug, Clone, Serialize)]
pub struct ZeekRecord {
    #[serde(flatten)]
    pub row: ZeekRowRecord,
    pub split: Vec<ZeekRowRecord>,
}

impl ZeekRecord {
    /// From the observer's rows (there is always at least one: the first packet starts it).
    pub fn new(rows: impl IntoIterator<Item = ZeekRow>) -> Self {
        let mut rows = rows.into_iter().map(ZeekRowRecord::from);
        let row = rows.next().unwrap_or_else(|| ZeekRowRecord {
            start_ns: 0,
            orig: EndpointAddr {
                ip: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                port: 0,
            },
            resp: EndpointAddr {
                ip: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                port: 0,
            },
            duration_ns: 0,
            orig_bytes: 0,
            resp_bytes: 0,
            missed_bytes: 0,
            orig_pkts: 0,
            orig_ip_bytes: 0,
            resp_pkts: 0,
            resp_ip_bytes: 0,
            conn_state: "OTH",
            history: History::default(),
        });
        ZeekRecord {
            row,
            split: rows.collect(),
        }
    }

    /// Every row, in order.
    pub fn rows(&self) -> impl Iterator<Item = &ZeekRowRecord> {
        std::iter::once(&self.row).chain(self.split.iter())
    }
}

/// conn.log's columns, in Zeek's order.
pub const FIELDS: [&str; 22] = [
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "proto",
    "service",
    "duration",
    "orig_bytes",
    "resp_bytes",
    "conn_state",
    "local_orig",
    "local_resp",
    "missed_bytes",
    "history",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
    "tunnel_parents",
    "ip_proto",
];

/// Their Zeek types, for the `#types` line.
pub const TYPES: [&str; 22] = [
    "time",
    "string",
    "addr",
    "port",
    "addr",
    "port",
    "enum",
    "string",
    "interval",
    "count",
    "count",
    "string",
    "bool",
    "bool",
    "count",
    "string",
    "count",
    "count",
    "count",
    "count",
    "set[string]",
    "count",
];

/// `--format zeek`: rows are written as connections finish (as Zeek writes them on removal),
/// made on the tracking threads.
pub struct ZeekLog<W: Write> {
    out: W,
    header_written: bool,
}

impl<W: Write> ZeekLog<W> {
    pub fn new(out: W) -> Self {
        ZeekLog {
            out,
            header_written: false,
        }
    }

    fn header(&mut self) -> io::Result<()> {
        if self.header_written {
            return Ok(());
        }
        self.header_written = true;
        let out = &mut self.out;
        writeln!(out, "#separator \\x09")?;
        writeln!(out, "#set_separator\t,")?;
        writeln!(out, "#empty_field\t(empty)")?;
        writeln!(out, "#unset_field\t-")?;
        writeln!(out, "#path\tconn")?;
        writeln!(out, "#open\t{}", log_time(now_ns()))?;
        writeln!(out, "#fields\t{}", FIELDS.join("\t"))?;
        writeln!(out, "#types\t{}", TYPES.join("\t"))
    }
}

/// A record's conn.log rows, as `--format zeek` writes them: made on the tracking threads.
fn encode_rows(record: &mut ConnectionRecord, out: &mut Vec<u8>) -> io::Result<()> {
    for (i, row) in record.zeek.rows().enumerate() {
        put_row(record.id, i as u64, row, out);
    }
    Ok(())
}

/// One conn.log row: the 22 columns, tab-separated, written straight into `out` (no
/// `core::fmt`: this runs for every connection).
fn put_row(record_id: u64, index: u64, r: &ZeekRowRecord, out: &mut Vec<u8>) {
    push_seconds(out, r.start_ns);
    out.push(b'\t');
    out.extend_from_slice(&Uid(record_id, index).text());
    for end in [&r.orig, &r.resp] {
        out.push(b'\t');
        push_ip(out, end.ip);
        out.push(b'\t');
        push_u64(out, end.port.into());
    }
    out.extend_from_slice(b"\ttcp\t-\t");
    // Zeek sets duration and the byte counts only when the duration is positive.
    if r.duration_ns > 0 {
        push_seconds(out, r.duration_ns);
        for n in [r.orig_bytes, r.resp_bytes] {
            out.push(b'\t');
            push_u64(out, n);
        }
    } else {
        out.extend_from_slice(b"-\t-\t-");
    }
    out.push(b'\t');
    out.extend_from_slice(r.conn_state.as_bytes());
    out.extend_from_slice(b"\t-\t-\t");
    push_u64(out, r.missed_bytes);
    out.push(b'\t');
    out.extend_from_slice(if r.history.is_empty() {
        b"-"
    } else {
        r.history.as_bytes()
    });
    for n in [r.orig_pkts, r.orig_ip_bytes, r.resp_pkts, r.resp_ip_bytes] {
        out.push(b'\t');
        push_u64(out, n);
    }
    out.extend_from_slice(b"\t-\t6\n");
}

impl<W: Write> Sink for ZeekLog<W> {
    fn connection(&mut self, mut record: ConnectionRecord) -> io::Result<()> {
        let mut rows = Vec::new();
        encode_rows(&mut record, &mut rows)?;
        self.header()?;
        self.out.write_all(&rows)
    }

    fn takes(&self) -> crate::analyze::Takes {
        crate::analyze::Takes::Bytes(encode_rows)
    }

    fn encoded(&mut self, pieces: &mut [IoSlice<'_>]) -> io::Result<()> {
        self.header()?;
        crate::write_all_vectored(&mut self.out, pieces)
    }

    fn finish(&mut self, _report: &RunReport) -> io::Result<()> {
        self.header()?;
        writeln!(self.out, "#close\t{}", log_time(now_ns()))?;
        self.out.flush()
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Zeek's `#open`/`#close` stamp, `%Y-%m-%d-%H-%M-%S` (in UTC here).
fn log_time(ns: i64) -> String {
    let text = Rfc3339(ns).to_string();
    text.chars()
        .take(19)
        .map(|c| if c == 'T' || c == ':' { '-' } else { c })
        .collect()
}

/// Appends `ns` as Zeek writes `time` and `interval` values: seconds with six decimals,
/// rounded to the nearest microsecond (halves away from zero).
fn push_seconds(out: &mut Vec<u8>, ns: i64) {
    let micros = if ns >= 0 {
        ns.saturating_add(500) / 1000
    } else {
        ns.saturating_sub(500) / 1000
    };
    if micros < 0 {
        out.push(b'-');
    }
    let m = micros.unsigned_abs();
    push_u64(out, m / 1_000_000);
    let mut fraction = *b".000000";
    put_digits(&mut fraction, 1, m % 1_000_000, 6);
    out.extend_from_slice(&fraction);
}

/// A stable, Zeek-shaped uid (`C` and base62) for a record's row: Zeek's are random, these are
/// reproducible from run to run.
struct Uid(u64, u64);

impl Uid {
    /// `C` and 17 base62 digits.
    fn text(&self) -> [u8; 18] {
        const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let a = splitmix64(self.0 ^ splitmix64(self.1.wrapping_add(0x5eed)));
        let b = splitmix64(a ^ 0x9e37_79b9_7f4a_7c15) >> 32;
        // 96 bits in 17 base62 digits (62^17 > 2^96), the low digit last.
        let mut v = (u128::from(a) << 32) | u128::from(b);
        let mut text = [b'C'; 18];
        for slot in text.iter_mut().skip(1).rev() {
            let digit = usize::try_from(v % 62).unwrap_or(0);
            v /= 62;
            *slot = DIGITS.get(digit).copied().unwrap_or(b'0');
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_have_six_decimals() {
        let seconds = |ns: i64| {
            let mut out = Vec::new();
            push_seconds(&mut out, ns);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(seconds(1_362_692_526_869_344_123), "1362692526.869344");
        assert_eq!(seconds(10_000), "0.000010");
        assert_eq!(seconds(0), "0.000000");
        assert_eq!(seconds(1_999_999_500), "2.000000");
        assert_eq!(seconds(-1_500), "-0.000002");
        assert_eq!(seconds(-2_000_000_000), "-2.000000");
    }

    #[test]
    fn log_times_look_like_zeeks() {
        assert_eq!(log_time(1_602_707_363_476_578_000), "2020-10-14-20-29-23");
    }

    #[test]
    fn uids_are_stable_and_distinct() {
        let a = Uid(1, 0).text();
        assert_eq!(a, Uid(1, 0).text());
        assert_ne!(a, Uid(1, 1).text());
        assert_ne!(a, Uid(2, 0).text());
        assert_eq!(a[0], b'C');
        assert!(a[1..].iter().all(u8::is_ascii_alphanumeric));
        // Connection 1's first row, pinned: a uid names the same row from release to release.
        assert_eq!(&a, b"C0itnEqliS5G18UVIh");
    }
}
