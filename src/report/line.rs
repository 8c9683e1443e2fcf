//! A connection record as one line of compact JSON, written field by field.
//!
//! On a capture of many short connections, writing the JSON lines was half of all the work: a
//! record is about 4 KB, two hundred fields and a dozen and a half times. Through serde every
//! field name arrives as a string of unknown length (a call to `memcpy` each) and every time as
//! a `&str` checked for UTF-8; here a field name is a byte literal with its punctuation
//! (`,"time_ns":`), copied in a move or two, and a time goes in as the bytes it was written in.
//!
//! The derived `Serialize` impls stay the definition of the schema (the JSON document, check
//! mode and the JSON Schema follow them); `tests::every_fixture_record_is_what_serde_json_writes`
//! holds this writer to serde_json's bytes on every record of every fixture capture.

use super::compact;
use super::record::{
    Close, ConnectionRecord, DirectionStats, EndpointAddr, Fin, Handshake, Moment, Options,
    ResetRecord, StateTimeline, TransitionRecord,
};
use super::zeek::{ZeekRecord, ZeekRowRecord};
use crate::detect::Anomaly;
use crate::track::{History, State};
use std::io;
use std::net::IpAddr;

/// Appends `record` as compact JSON, byte for byte what `serde_json::to_writer` writes.
pub fn encode(record: &ConnectionRecord, out: &mut Vec<u8>) -> io::Result<()> {
    let mut line = Line { out };
    record.put(&mut line)?;
    Ok(())
}

/// The buffer a record is written into.
struct Line<'a> {
    out: &'a mut Vec<u8>,
}

impl Line<'_> {
    /// Literal JSON: punctuation and field names. The length is a constant, so the copy is a
    /// few moves rather than a call.
    fn raw<const N: usize>(&mut self, bytes: &[u8; N]) {
        self.out.extend_from_slice(bytes);
    }

    fn int<N: itoa::Integer + TryInto<u8>>(&mut self, n: N) {
        // Most counters of a record are 0 or a few: one digit, pushed without a copy call.
        match n.try_into() {
            Ok(digit @ 0..=9) => self.out.push(b'0' + digit),
            _ => self
                .out
                .extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
        }
    }

    fn bool(&mut self, b: bool) {
        self.out
            .extend_from_slice(if b { b"true" } else { b"false" });
    }

    /// A name from the program's own vocabulary (a state, an outcome, a side): never escaped.
    fn name(&mut self, s: &'static str) {
        compact::push_name(s, self.out);
    }

    /// A state's name in quotes: a copy of constant length, then the length set back (the
    /// dozens of state names in a record would otherwise be a call to `memcpy` each).
    fn state(&mut self, s: State) {
        if let Some((quoted, len)) = QUOTED_STATES.get(s as usize) {
            let keep = self.out.len() + len;
            self.out.extend_from_slice(quoted);
            self.out.truncate(keep);
        }
    }

    /// Zeek's history letters, which never need escaping (`History::push`).
    fn history(&mut self, h: &History) {
        self.out.push(b'"');
        self.out.extend_from_slice(h.as_bytes());
        self.out.push(b'"');
    }

    fn ip(&mut self, ip: IpAddr) {
        self.out.push(b'"');
        match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                self.int(a);
                for octet in [b, c, d] {
                    self.out.push(b'.');
                    self.int(octet);
                }
            }
            // Rarer, and compressed by rules best left to the standard library.
            IpAddr::V6(v6) => self.out.extend_from_slice(v6.to_string().as_bytes()),
        }
        self.out.push(b'"');
    }

    /// `null`, or what `put` writes of the value.
    fn opt<T>(&mut self, value: Option<T>, put: impl FnOnce(&mut Self, T)) {
        match value {
            Some(v) => put(self, v),
            None => self.raw(b"null"),
        }
    }

    fn opt_int<N: itoa::Integer + TryInto<u8>>(&mut self, n: Option<N>) {
        self.opt(n, Line::int);
    }

    fn opt_moment(&mut self, m: Option<Moment>) {
        self.opt(m, |line, m| m.put(line));
    }
}

/// Room for the longest state name (`"SYN-RECEIVED"`) in quotes.
const QUOTED_STATE_ROOM: usize = 16;

/// Each state's name in quotes, at the start of a constant-length array, and its length.
// Built at compile time, where an index out of bounds stops the build: it cannot panic.
#[allow(clippy::indexing_slicing)]
const QUOTED_STATES: [([u8; QUOTED_STATE_ROOM], usize); State::ALL.len()] = {
    let mut table = [([0u8; QUOTED_STATE_ROOM], 0); State::ALL.len()];
    let mut i = 0;
    while i < State::ALL.len() {
        let name = State::ALL[i].name().as_bytes();
        let (quoted, len) = &mut table[State::ALL[i] as usize];
        quoted[0] = b'"';
        let mut j = 0;
        while j < name.len() {
            quoted[j + 1] = name[j];
            j += 1;
        }
        quoted[name.len() + 1] = b'"';
        *len = name.len() + 2;
        i += 1;
    }
    table
};

/// Writes `"name":value` pairs, separated by commas: each name with its quotes, colon and
/// comma is one constant, each value what its expression writes.
macro_rules! fields {
    ($line:ident; $first:literal => $put:expr $(, $name:literal => $rest:expr)* $(,)?) => {{
        $line.raw(constant!("\"", $first, "\":"));
        $put;
        $(
            $line.raw(constant!(",\"", $name, "\":"));
            $rest;
        )*
    }};
}

/// The concatenated text as a byte array of its own length (the type carries the length, so
/// the copy is a constant one even where the call is not inlined).
macro_rules! constant {
    ($($part:expr),*) => {{
        const TEXT: &[u8] = concat!($($part),*).as_bytes();
        const BYTES: [u8; TEXT.len()] = match TEXT.first_chunk() {
            Some(bytes) => *bytes,
            None => [0; TEXT.len()],
        };
        &BYTES
    }};
}

/// `{` the fields `}`.
macro_rules! object {
    ($line:ident; $($fields:tt)*) => {{
        $line.raw(b"{");
        fields!($line; $($fields)*);
        $line.raw(b"}");
    }};
}

/// `[` the items, each as `put` writes it, `]`.
#[inline]
fn array<T>(line: &mut Line, items: &[T], mut put: impl FnMut(&mut Line, &T)) {
    line.raw(b"[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            line.raw(b",");
        }
        put(line, item);
    }
    line.raw(b"]");
}

impl Moment {
    fn put(&self, line: &mut Line) {
        line.raw(b"{");
        self.put_fields(line);
        line.raw(b"}");
    }

    /// `"time_ns":…,"time":…` and the packet when there is one.
    #[inline]
    fn put_fields(&self, line: &mut Line) {
        // `time_ns` and `time` are one instant (`From<At>`), written from one split.
        line.raw(b"\"time_ns\":");
        self.time.push_ns_and_time(line.out);
        if let Some(p) = self.packet {
            line.raw(b",");
            fields!(line; "packet" => line.int(p));
        }
    }
}

impl EndpointAddr {
    fn put(&self, line: &mut Line) {
        object!(line;
            "ip" => line.ip(self.ip),
            "port" => line.int(self.port),
        );
    }
}

impl ConnectionRecord {
    fn put(&self, line: &mut Line) -> io::Result<()> {
        line.raw(b"{");
        if let Some(kind) = self.kind {
            fields!(line; "type" => line.name(kind));
            line.raw(b",");
        }
        fields!(line;
            "id" => line.int(self.id),
            "client" => self.client.put(line),
            "server" => self.server.put(line),
            "ip_version" => line.int(self.ip_version),
            "first" => self.first.put(line),
            "last" => self.last.put(line),
            "duration_ns" => line.int(self.duration_ns),
            "outcome" => line.name(self.outcome.name()),
            "midstream" => line.bool(self.midstream),
            "roles_from" => line.name(self.roles_from),
            "finished_by" => line.name(self.finished_by),
            "conn_state" => line.name(self.conn_state),
            "history" => line.history(&self.history),
            "zeek" => self.zeek.put(line),
            "handshake" => self.handshake.put(line),
            "client_sent" => self.client_sent.put(line),
            "server_sent" => self.server_sent.put(line),
            "close" => self.close.put(line),
            "states" => object!(line;
                "client" => self.states.client.put(line),
                "server" => self.states.server.put(line),
            ),
            "previous_incarnation" => line.opt_int(self.previous_incarnation),
            "anomalies" => put_anomalies(line, &self.anomalies)?,
        );
        line.raw(b"}");
        Ok(())
    }
}

/// `[` the anomalies `]`: the fields every anomaly has are written here, and its details,
/// which have a shape per kind (seventeen of them), through serde.
fn put_anomalies(line: &mut Line, anomalies: &[Anomaly]) -> io::Result<()> {
    line.raw(b"[");
    for (i, a) in anomalies.iter().enumerate() {
        if i > 0 {
            line.raw(b",");
        }
        line.raw(b"{");
        fields!(line;
            "kind" => line.name(a.kind.name()),
            "severity" => line.name(a.severity.name()),
        );
        if let Some(side) = a.side {
            line.raw(b",");
            fields!(line; "side" => line.name(side));
        }
        // `time_ns` and `time` are one instant (`Anomaly::new`), written from one split.
        line.raw(b",\"time_ns\":");
        a.time.push_ns_and_time(line.out);
        line.raw(b",");
        fields!(line;
            "packets" => array(line, &a.packets, |line, &p| line.int(p)),
            "details" => compact::to_vec(&a.details, line.out)?,
        );
        line.raw(b"}");
    }
    line.raw(b"]");
    Ok(())
}

impl ZeekRecord {
    /// The row's fields, then `split`: the row is flattened into the object.
    fn put(&self, line: &mut Line) {
        line.raw(b"{");
        self.row.put_fields(line);
        line.raw(b",");
        fields!(line; "split" => array(line, &self.split, |line, row| {
            line.raw(b"{");
            row.put_fields(line);
            line.raw(b"}");
        }));
        line.raw(b"}");
    }
}

impl ZeekRowRecord {
    fn put_fields(&self, line: &mut Line) {
        fields!(line;
            "start_ns" => line.int(self.start_ns),
            "orig" => self.orig.put(line),
            "resp" => self.resp.put(line),
            "duration_ns" => line.int(self.duration_ns),
            "orig_bytes" => line.int(self.orig_bytes),
            "resp_bytes" => line.int(self.resp_bytes),
            "missed_bytes" => line.int(self.missed_bytes),
            "orig_pkts" => line.int(self.orig_pkts),
            "orig_ip_bytes" => line.int(self.orig_ip_bytes),
            "resp_pkts" => line.int(self.resp_pkts),
            "resp_ip_bytes" => line.int(self.resp_ip_bytes),
            "conn_state" => line.name(self.conn_state),
            "history" => line.history(&self.history),
        );
    }
}

impl Handshake {
    fn put(&self, line: &mut Line) {
        object!(line;
            "syn" => line.opt_moment(self.syn),
            "syn_ack" => line.opt_moment(self.syn_ack),
            "ack" => line.opt_moment(self.ack),
            "server_rtt_ns" => line.opt_int(self.server_rtt_ns),
            "client_rtt_ns" => line.opt_int(self.client_rtt_ns),
            "rtt_ns" => line.opt_int(self.rtt_ns),
            "client_isn" => line.opt_int(self.client_isn),
            "server_isn" => line.opt_int(self.server_isn),
            "client_options" => line.opt(self.client_options, |line, o| o.put(line)),
            "server_options" => line.opt(self.server_options, |line, o| o.put(line)),
            "syn_retransmissions" => line.int(self.syn_retransmissions),
            "syn_ack_retransmissions" => line.int(self.syn_ack_retransmissions),
            "simultaneous_open" => line.bool(self.simultaneous_open),
            "ack_mismatch" => line.opt_moment(self.ack_mismatch),
        );
    }
}

impl Options {
    fn put(&self, line: &mut Line) {
        object!(line;
            "mss" => line.opt_int(self.mss),
            "window_scale" => line.opt_int(self.window_scale),
            "sack_permitted" => line.bool(self.sack_permitted),
            "timestamps" => line.bool(self.timestamps),
        );
    }
}

impl DirectionStats {
    fn put(&self, line: &mut Line) {
        object!(line;
            "packets" => line.int(self.packets),
            "ip_bytes" => line.int(self.ip_bytes),
            "payload_bytes" => line.int(self.payload_bytes),
            "data_segments" => line.int(self.data_segments),
            "retransmitted_segments" => line.int(self.retransmitted_segments),
            "retransmitted_bytes" => line.int(self.retransmitted_bytes),
            "gap_bytes" => line.int(self.gap_bytes),
            "zero_window_advertisements" => line.int(self.zero_window_advertisements),
            "keepalive_probes" => line.int(self.keepalive_probes),
            "window_probes" => line.int(self.window_probes),
            "rst_out_of_window" => line.int(self.rst_out_of_window),
        );
    }
}

impl Close {
    fn put(&self, line: &mut Line) {
        object!(line;
            "active_closer" => line.opt(self.active_closer, Line::name),
            "client_fin" => line.opt(self.client_fin, |line, f| f.put(line)),
            "server_fin" => line.opt(self.server_fin, |line, f| f.put(line)),
            "final_ack" => line.opt_moment(self.final_ack),
            "time_wait_ends" => line.opt_moment(self.time_wait_ends),
            "reset" => line.opt(self.reset, |line, r| r.put(line)),
            "extra_rsts" => line.int(self.extra_rsts),
        );
    }
}

impl Fin {
    fn put(&self, line: &mut Line) {
        object!(line;
            "first" => self.first.put(line),
            "retransmissions" => line.int(self.retransmissions),
        );
    }
}

impl ResetRecord {
    fn put(&self, line: &mut Line) {
        object!(line;
            "sender" => line.name(self.sender),
            "at" => self.at.put(line),
            "sender_state" => line.state(self.sender_state),
            "receiver_state" => line.state(self.receiver_state),
            "sender_unacked_bytes" => line.int(self.sender_unacked_bytes),
            "receiver_unacked_bytes" => line.int(self.receiver_unacked_bytes),
        );
    }
}

impl StateTimeline {
    fn put(&self, line: &mut Line) {
        object!(line;
            "initial" => line.state(self.initial),
            "final" => line.state(self.final_state),
            "transitions" => array(line, &self.transitions, |line, t| t.put(line)),
        );
    }
}

impl TransitionRecord {
    /// Flat: `{"from", "to", "time_ns", "time", "packet"}`.
    #[inline]
    fn put(&self, line: &mut Line) {
        line.raw(b"{");
        fields!(line;
            "from" => line.state(self.from),
            "to" => line.state(self.to),
        );
        line.raw(b",");
        self.at.put_fields(line);
        line.raw(b"}");
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::analyze::{self, NoProgress, RunReport, Settings, Sink};
    use std::path::{Path, PathBuf};

    /// Encodes each record both ways and compares; counts what the records had in them, so
    /// that the test can tell it saw every shape.
    #[derive(Default)]
    struct Compare {
        records: usize,
        seen: std::collections::BTreeMap<&'static str, usize>,
    }

    const SHAPES: [(&str, &str); 9] = [
        ("a reset", "\"reset\":{"),
        ("no reset", "\"reset\":null"),
        ("split zeek rows", "\"split\":[{"),
        ("an IPv6 address", "\"ip_version\":6"),
        ("a timer moment", "Z\"},\"reset\""),
        ("an unknown MSS", "\"mss\":null"),
        ("an anomaly", "\"anomalies\":[{"),
        ("a previous incarnation", "\"previous_incarnation\":1"),
        ("no handshake", "\"syn\":null"),
    ];

    impl Sink for Compare {
        fn connection(&mut self, mut record: ConnectionRecord) -> io::Result<()> {
            for kind in [None, Some("connection")] {
                record.kind = kind;
                let mut ours = Vec::new();
                encode(&record, &mut ours)?;
                let theirs = serde_json::to_vec(&record)?;
                assert_eq!(
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&theirs)
                );
                let text = String::from_utf8_lossy(&ours);
                for (shape, marker) in SHAPES {
                    if text.contains(marker) {
                        *self.seen.entry(shape).or_default() += 1;
                    }
                }
            }
            self.records += 1;
            Ok(())
        }

        fn finish(&mut self, _: &RunReport) -> io::Result<()> {
            Ok(())
        }
    }

    /// Every fixture capture of the project: the kernel's and the Zeek traces'.
    pub(in crate::report) fn fixture_captures() -> Vec<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        let mut dirs: Vec<PathBuf> = vec![root.join("kernel")];
        if let Ok(zeek) = std::fs::read_dir(root.join("zeek")) {
            dirs.extend(zeek.filter_map(|e| e.ok().map(|e| e.path())));
        }
        let mut captures = Vec::new();
        for dir in dirs {
            if let Ok(found) = crate::check::captures_in(&dir) {
                captures.extend(found.iter().map(|p| p.display().to_string()));
            }
        }
        captures
    }

    #[test]
    fn every_state_is_written_as_serde_writes_it() {
        for state in State::ALL {
            let mut out = b"[".to_vec();
            Line { out: &mut out }.state(state);
            out.push(b']');
            assert_eq!(out, serde_json::to_vec(&[state]).unwrap(), "{state}");
        }
    }

    #[test]
    fn every_fixture_record_is_what_serde_json_writes() {
        let captures = fixture_captures();
        assert!(captures.len() >= 58, "fixtures found: {}", captures.len());
        let mut compare = Compare::default();
        for timers in [false, true] {
            let mut settings = Settings::default();
            settings.track.zeek.timers = timers;
            for capture in &captures {
                // Damaged fixtures end with an error after their records: those are compared too.
                let _ = analyze::analyze(
                    std::slice::from_ref(capture),
                    settings,
                    &mut compare,
                    &mut NoProgress,
                );
            }
        }
        assert!(compare.records > 1_000, "records: {}", compare.records);
        for (shape, _) in SHAPES {
            assert!(compare.seen.contains_key(shape), "no record had {shape}");
        }
    }
}
