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
use crate::time::Rfc3339;
use std::io::{self, Write};
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

    fn int(&mut self, n: impl itoa::Integer) {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }

    fn bool(&mut self, b: bool) {
        self.out
            .extend_from_slice(if b { b"true" } else { b"false" });
    }

    /// A name from the program's own vocabulary (a state, an outcome, a side): never escaped.
    fn name(&mut self, s: &'static str) {
        self.out.push(b'"');
        self.out.extend_from_slice(s.as_bytes());
        self.out.push(b'"');
    }

    /// A string made from the capture, escaped as serde_json escapes.
    fn text(&mut self, s: &str) {
        self.out.push(b'"');
        compact::escape_into(s, self.out);
        self.out.push(b'"');
    }

    fn time(&mut self, ns: i64) {
        Rfc3339(ns).push_quoted(self.out);
    }

    fn ip(&mut self, ip: IpAddr) -> io::Result<()> {
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
            IpAddr::V6(v6) => write!(self.out, "{v6}")?,
        }
        self.out.push(b'"');
        Ok(())
    }

    /// `null`, or what `put` writes of the value.
    fn opt<T>(&mut self, value: Option<T>, put: impl FnOnce(&mut Self, T)) {
        match value {
            Some(v) => put(self, v),
            None => self.raw(b"null"),
        }
    }

    fn opt_int(&mut self, n: Option<impl itoa::Integer>) {
        self.opt(n, Line::int);
    }

    fn opt_moment(&mut self, m: Option<Moment>) {
        self.opt(m, |line, m| m.put(line));
    }
}

impl Moment {
    fn put(&self, line: &mut Line) {
        line.raw(b"{");
        self.put_fields(line);
        line.raw(b"}");
    }

    /// `"time_ns":…,"time":…` and the packet when there is one.
    fn put_fields(&self, line: &mut Line) {
        line.raw(b"\"time_ns\":");
        line.int(self.time_ns);
        line.raw(b",\"time\":");
        line.time(self.time.0);
        if let Some(p) = self.packet {
            line.raw(b",\"packet\":");
            line.int(p);
        }
    }
}

impl EndpointAddr {
    fn put(&self, line: &mut Line) -> io::Result<()> {
        line.raw(b"{\"ip\":");
        line.ip(self.ip)?;
        line.raw(b",\"port\":");
        line.int(self.port);
        line.raw(b"}");
        Ok(())
    }
}

impl ConnectionRecord {
    fn put(&self, line: &mut Line) -> io::Result<()> {
        line.raw(b"{");
        if let Some(kind) = self.kind {
            line.raw(b"\"type\":");
            line.name(kind);
            line.raw(b",");
        }
        line.raw(b"\"id\":");
        line.int(self.id);
        line.raw(b",\"client\":");
        self.client.put(line)?;
        line.raw(b",\"server\":");
        self.server.put(line)?;
        line.raw(b",\"ip_version\":");
        line.int(self.ip_version);
        line.raw(b",\"first\":");
        self.first.put(line);
        line.raw(b",\"last\":");
        self.last.put(line);
        line.raw(b",\"duration_ns\":");
        line.int(self.duration_ns);
        line.raw(b",\"outcome\":");
        line.name(self.outcome.name());
        line.raw(b",\"midstream\":");
        line.bool(self.midstream);
        line.raw(b",\"roles_from\":");
        line.name(self.roles_from);
        line.raw(b",\"finished_by\":");
        line.name(self.finished_by);
        line.raw(b",\"conn_state\":");
        line.name(self.conn_state);
        line.raw(b",\"history\":");
        line.text(&self.history);
        line.raw(b",\"zeek\":");
        self.zeek.put(line)?;
        line.raw(b",\"handshake\":");
        self.handshake.put(line);
        line.raw(b",\"client_sent\":");
        self.client_sent.put(line);
        line.raw(b",\"server_sent\":");
        self.server_sent.put(line);
        line.raw(b",\"close\":");
        self.close.put(line);
        line.raw(b",\"states\":{\"client\":");
        self.states.client.put(line);
        line.raw(b",\"server\":");
        self.states.server.put(line);
        line.raw(b"},\"previous_incarnation\":");
        line.opt_int(self.previous_incarnation);
        // Anomalies are few (most records have none or one) and of many shapes: serde's.
        line.raw(b",\"anomalies\":");
        compact::to_vec(&self.anomalies, line.out)?;
        line.raw(b"}");
        Ok(())
    }
}

impl ZeekRecord {
    /// The row's fields, then `split`: the row is flattened into the object.
    fn put(&self, line: &mut Line) -> io::Result<()> {
        line.raw(b"{");
        self.row.put_fields(line)?;
        line.raw(b",\"split\":[");
        for (i, row) in self.split.iter().enumerate() {
            if i > 0 {
                line.raw(b",");
            }
            line.raw(b"{");
            row.put_fields(line)?;
            line.raw(b"}");
        }
        line.raw(b"]}");
        Ok(())
    }
}

impl ZeekRowRecord {
    fn put_fields(&self, line: &mut Line) -> io::Result<()> {
        line.raw(b"\"start_ns\":");
        line.int(self.start_ns);
        line.raw(b",\"orig\":");
        self.orig.put(line)?;
        line.raw(b",\"resp\":");
        self.resp.put(line)?;
        line.raw(b",\"duration_ns\":");
        line.int(self.duration_ns);
        line.raw(b",\"orig_bytes\":");
        line.int(self.orig_bytes);
        line.raw(b",\"resp_bytes\":");
        line.int(self.resp_bytes);
        line.raw(b",\"missed_bytes\":");
        line.int(self.missed_bytes);
        line.raw(b",\"orig_pkts\":");
        line.int(self.orig_pkts);
        line.raw(b",\"orig_ip_bytes\":");
        line.int(self.orig_ip_bytes);
        line.raw(b",\"resp_pkts\":");
        line.int(self.resp_pkts);
        line.raw(b",\"resp_ip_bytes\":");
        line.int(self.resp_ip_bytes);
        line.raw(b",\"conn_state\":");
        line.name(self.conn_state);
        line.raw(b",\"history\":");
        line.text(&self.history);
        Ok(())
    }
}

impl Handshake {
    fn put(&self, line: &mut Line) {
        line.raw(b"{\"syn\":");
        line.opt_moment(self.syn);
        line.raw(b",\"syn_ack\":");
        line.opt_moment(self.syn_ack);
        line.raw(b",\"ack\":");
        line.opt_moment(self.ack);
        line.raw(b",\"server_rtt_ns\":");
        line.opt_int(self.server_rtt_ns);
        line.raw(b",\"client_rtt_ns\":");
        line.opt_int(self.client_rtt_ns);
        line.raw(b",\"rtt_ns\":");
        line.opt_int(self.rtt_ns);
        line.raw(b",\"client_isn\":");
        line.opt_int(self.client_isn);
        line.raw(b",\"server_isn\":");
        line.opt_int(self.server_isn);
        line.raw(b",\"client_options\":");
        line.opt(self.client_options, |line, o| o.put(line));
        line.raw(b",\"server_options\":");
        line.opt(self.server_options, |line, o| o.put(line));
        line.raw(b",\"syn_retransmissions\":");
        line.int(self.syn_retransmissions);
        line.raw(b",\"syn_ack_retransmissions\":");
        line.int(self.syn_ack_retransmissions);
        line.raw(b",\"simultaneous_open\":");
        line.bool(self.simultaneous_open);
        line.raw(b",\"ack_mismatch\":");
        line.opt_moment(self.ack_mismatch);
        line.raw(b"}");
    }
}

impl Options {
    fn put(&self, line: &mut Line) {
        line.raw(b"{\"mss\":");
        line.opt_int(self.mss);
        line.raw(b",\"window_scale\":");
        line.opt_int(self.window_scale);
        line.raw(b",\"sack_permitted\":");
        line.bool(self.sack_permitted);
        line.raw(b",\"timestamps\":");
        line.bool(self.timestamps);
        line.raw(b"}");
    }
}

impl DirectionStats {
    fn put(&self, line: &mut Line) {
        line.raw(b"{\"packets\":");
        line.int(self.packets);
        line.raw(b",\"ip_bytes\":");
        line.int(self.ip_bytes);
        line.raw(b",\"payload_bytes\":");
        line.int(self.payload_bytes);
        line.raw(b",\"data_segments\":");
        line.int(self.data_segments);
        line.raw(b",\"retransmitted_segments\":");
        line.int(self.retransmitted_segments);
        line.raw(b",\"retransmitted_bytes\":");
        line.int(self.retransmitted_bytes);
        line.raw(b",\"gap_bytes\":");
        line.int(self.gap_bytes);
        line.raw(b",\"zero_window_advertisements\":");
        line.int(self.zero_window_advertisements);
        line.raw(b",\"keepalive_probes\":");
        line.int(self.keepalive_probes);
        line.raw(b",\"window_probes\":");
        line.int(self.window_probes);
        line.raw(b",\"rst_out_of_window\":");
        line.int(self.rst_out_of_window);
        line.raw(b"}");
    }
}

impl Close {
    fn put(&self, line: &mut Line) {
        line.raw(b"{\"active_closer\":");
        line.opt(self.active_closer, Line::name);
        line.raw(b",\"client_fin\":");
        line.opt(self.client_fin, |line, f| f.put(line));
        line.raw(b",\"server_fin\":");
        line.opt(self.server_fin, |line, f| f.put(line));
        line.raw(b",\"final_ack\":");
        line.opt_moment(self.final_ack);
        line.raw(b",\"time_wait_ends\":");
        line.opt_moment(self.time_wait_ends);
        line.raw(b",\"reset\":");
        line.opt(self.reset, |line, r| r.put(line));
        line.raw(b",\"extra_rsts\":");
        line.int(self.extra_rsts);
        line.raw(b"}");
    }
}

impl Fin {
    fn put(&self, line: &mut Line) {
        line.raw(b"{\"first\":");
        self.first.put(line);
        line.raw(b",\"retransmissions\":");
        line.int(self.retransmissions);
        line.raw(b"}");
    }
}

impl ResetRecord {
    fn put(&self, line: &mut Line) {
        line.raw(b"{\"sender\":");
        line.name(self.sender);
        line.raw(b",\"at\":");
        self.at.put(line);
        line.raw(b",\"sender_state\":");
        line.name(self.sender_state.name());
        line.raw(b",\"receiver_state\":");
        line.name(self.receiver_state.name());
        line.raw(b",\"sender_unacked_bytes\":");
        line.int(self.sender_unacked_bytes);
        line.raw(b",\"receiver_unacked_bytes\":");
        line.int(self.receiver_unacked_bytes);
        line.raw(b"}");
    }
}

impl StateTimeline {
    fn put(&self, line: &mut Line) {
        line.raw(b"{\"initial\":");
        line.name(self.initial.name());
        line.raw(b",\"final\":");
        line.name(self.final_state.name());
        line.raw(b",\"transitions\":[");
        for (i, t) in self.transitions.iter().enumerate() {
            if i > 0 {
                line.raw(b",");
            }
            t.put(line);
        }
        line.raw(b"]}");
    }
}

impl TransitionRecord {
    /// Flat: `{"from", "to", "time_ns", "time", "packet"}`.
    fn put(&self, line: &mut Line) {
        line.raw(b"{\"from\":");
        line.name(self.from.name());
        line.raw(b",\"to\":");
        line.name(self.to.name());
        line.raw(b",");
        self.at.put_fields(line);
        line.raw(b"}");
    }
}

#[cfg(test)]
mod tests {
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

    fn fixture_captures() -> Vec<String> {
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
