//! A connection record as JSON, written field by field: compact (one line of `--format jsonl`)
//! or laid out as serde_json's pretty printer lays it out (an element of `--format json`).
//!
//! On a capture of many short connections, writing the JSON lines was half of all the work: a
//! record is about 4 KB, two hundred fields and a dozen and a half times. Through serde every
//! field name arrives as a string of unknown length (a call to `memcpy` each) and every time as
//! a `&str` checked for UTF-8; here a field name is a byte literal with its punctuation
//! (`,"time_ns":`), copied in a move or two, and a time goes in as the bytes it was written in.
//!
//! The two layouts are one writer: [`Style`] decides, at compile time, whether a member's name
//! comes with a line break and an indent before it and a space after its colon.
//!
//! The derived `Serialize` impls stay the definition of the schema (check mode and the JSON
//! Schema follow them); `tests::every_fixture_record_is_what_serde_json_writes` holds this
//! writer to serde_json's bytes, compact and pretty, on every record of every fixture capture.

use super::compact;
use super::record::{
    Close, ConnectionRecord, DirectionStats, EndpointAddr, Fin, Handshake, Moment, Options,
    ResetRecord, StateTimeline, TransitionRecord,
};
use super::zeek::{ZeekRecord, ZeekRowRecord};
use crate::decimal::Decimal;
use crate::detect::Anomaly;
use crate::time::Rfc3339;
use crate::track::{History, State};
use serde::Serialize;
use std::convert::Infallible;
use std::io;
use std::marker::PhantomData;
use std::net::IpAddr;

/// Appends `record` as compact JSON, byte for byte what `serde_json::to_writer` writes.
pub fn encode(record: &ConnectionRecord, out: &mut Vec<u8>) -> io::Result<()> {
    record.put(&mut Line::<Compact>::new(out, 0))
}

/// Appends `record` as `serde_json::to_writer_pretty` writes it, nested `indent` spaces deep
/// (every line break is followed by that many spaces more than the printer's own).
pub fn encode_pretty(
    record: &ConnectionRecord,
    indent: usize,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    record.put(&mut Line::<Pretty>::new(out, indent))
}

/// Appends any value as `serde_json::to_writer_pretty` writes it, nested `indent` spaces deep.
pub fn encode_value_pretty(
    value: &impl Serialize,
    indent: usize,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    Line::<Pretty>::new(out, indent).serde(value)
}

/// How a record is laid out.
trait Style {
    /// As serde_json's pretty printer: a line break and the indent before every member of an
    /// object or array and before its closing bracket, two spaces more a level, and `": "`
    /// after a name. Otherwise compact: no white space at all.
    const PRETTY: bool;
}

struct Compact;

impl Style for Compact {
    const PRETTY: bool = false;
}

struct Pretty;

impl Style for Pretty {
    const PRETTY: bool = true;
}

/// The buffer a record is written into, and how.
struct Line<'a, S: Style> {
    out: &'a mut Vec<u8>,
    /// Pretty: the spaces after a line break at the current depth.
    indent: usize,
    style: PhantomData<S>,
}

/// A line break and the most spaces an indent takes in one copy.
const BREAK: &[u8; 65] = b"\n                                                                ";

impl<'a, S: Style> Line<'a, S> {
    fn new(out: &'a mut Vec<u8>, indent: usize) -> Self {
        Line {
            out,
            indent,
            style: PhantomData,
        }
    }

    /// A member's name: compact `"name":` (`,"name":` after the first member), pretty the same
    /// with a line break and the indent before the name and a space after the colon. Both are
    /// constants, and only one of them is ever written (the style is known when compiling).
    fn member<const C: usize, const P: usize>(
        &mut self,
        compact: &[u8; C],
        pretty: &[u8; P],
        first: bool,
    ) {
        if S::PRETTY {
            if !first {
                self.out.push(b',');
            }
            self.line_break();
            self.raw(pretty);
        } else {
            self.raw(compact);
        }
    }

    /// The comma between members written apart.
    fn comma(&mut self) {
        self.out.push(b',');
    }

    /// `{` or `[` of an object or array that is not empty.
    fn open(&mut self, bracket: u8) {
        self.out.push(bracket);
        if S::PRETTY {
            self.indent += 2;
        }
    }

    /// The closing `}` or `]` of what [`Line::open`] opened.
    fn close(&mut self, bracket: u8) {
        if S::PRETTY {
            self.indent = self.indent.saturating_sub(2);
            self.line_break();
        }
        self.out.push(bracket);
    }

    /// Pretty: a line break and the indent, as one copy of constant length cut back to size.
    fn line_break(&mut self) {
        let keep = self.out.len() + 1 + self.indent;
        self.out.extend_from_slice(BREAK);
        self.out.truncate(keep);
        // Deeper than one copy reaches (no record nests so deep).
        while self.out.len() < keep {
            self.out.push(b' ');
        }
    }

    /// A value of any shape, through serde (the anomalies' details, a shape per kind).
    fn serde(&mut self, value: &impl Serialize) -> io::Result<()> {
        if !S::PRETTY {
            return Ok(compact::to_vec(value, self.out)?);
        }
        let text = serde_json::to_vec_pretty(value)?;
        // A line break in JSON text is always the printer's: inside strings it is escaped.
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            if i > 0 {
                self.line_break();
            }
            self.out.extend_from_slice(line);
        }
        Ok(())
    }

    /// Literal JSON: punctuation and field names. The length is a constant, so the copy is a
    /// few moves rather than a call.
    fn raw<const N: usize>(&mut self, bytes: &[u8; N]) {
        self.out.extend_from_slice(bytes);
    }

    fn int(&mut self, n: impl Decimal) {
        n.push_to(self.out);
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
        crate::decimal::push_ip(self.out, ip);
        self.out.push(b'"');
    }

    /// `null`, or what `put` writes of the value.
    fn opt<T>(&mut self, value: Option<T>, put: impl FnOnce(&mut Self, T)) {
        match value {
            Some(v) => put(self, v),
            None => self.raw(b"null"),
        }
    }

    fn opt_int(&mut self, n: Option<impl Decimal>) {
        self.opt(n, Self::int);
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
/// comma is one constant per style, each value what its expression writes.
macro_rules! fields {
    ($line:ident; $first:literal => $put:expr $(, $name:literal => $rest:expr)* $(,)?) => {{
        $line.member(constant!("\"", $first, "\":"), constant!("\"", $first, "\": "), true);
        $put;
        $(
            $line.member(constant!(",\"", $name, "\":"), constant!("\"", $name, "\": "), false);
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
        $line.open(b'{');
        fields!($line; $($fields)*);
        $line.close(b'}');
    }};
}

impl<S: Style> Line<'_, S> {
    /// `"time_ns":NS,"time":"TEXT"`: every time in a record is given both ways, as the first
    /// members of its object.
    fn times(&mut self, time: Rfc3339) {
        if S::PRETTY {
            let line = &mut *self;
            fields!(line;
                "time_ns" => line.int(time.0),
                "time" => time.push_quoted(line.out),
            );
        } else {
            // `time_ns` and `time` are one instant, written from one split.
            self.raw(b"\"time_ns\":");
            time.push_ns_and_time(self.out);
        }
    }
}

/// `[` the items, each as `put` writes it, `]`.
#[inline]
fn array<S: Style, T>(line: &mut Line<S>, items: &[T], mut put: impl FnMut(&mut Line<S>, &T)) {
    let written: Result<(), Infallible> = try_array(line, items, |line, item| {
        put(line, item);
        Ok(())
    });
    let Ok(()) = written;
}

/// [`array`], for items whose writing can fail: it stops at the first that does.
#[inline]
fn try_array<S: Style, T, E>(
    line: &mut Line<S>,
    items: &[T],
    mut put: impl FnMut(&mut Line<S>, &T) -> Result<(), E>,
) -> Result<(), E> {
    if items.is_empty() {
        line.raw(b"[]");
        return Ok(());
    }
    line.open(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            line.comma();
        }
        if S::PRETTY {
            line.line_break();
        }
        put(line, item)?;
    }
    line.close(b']');
    Ok(())
}

impl Moment {
    fn put<S: Style>(&self, line: &mut Line<S>) {
        line.open(b'{');
        self.put_fields(line);
        line.close(b'}');
    }

    /// `"time_ns":…,"time":…` and the packet when there is one.
    #[inline]
    fn put_fields<S: Style>(&self, line: &mut Line<S>) {
        // `time_ns` and `time` are one instant (`From<At>`).
        line.times(self.time);
        if let Some(p) = self.packet {
            line.comma();
            fields!(line; "packet" => line.int(p));
        }
    }
}

impl EndpointAddr {
    fn put<S: Style>(&self, line: &mut Line<S>) {
        object!(line;
            "ip" => line.ip(self.ip),
            "port" => line.int(self.port),
        );
    }
}

impl ConnectionRecord {
    fn put<S: Style>(&self, line: &mut Line<S>) -> io::Result<()> {
        line.open(b'{');
        if let Some(kind) = self.kind {
            fields!(line; "type" => line.name(kind));
            line.comma();
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
        line.close(b'}');
        Ok(())
    }
}

/// `[` the anomalies `]`: the fields every anomaly has are written here, and its details,
/// which have a shape per kind (seventeen of them), through serde.
fn put_anomalies<S: Style>(line: &mut Line<S>, anomalies: &[Anomaly]) -> io::Result<()> {
    try_array(line, anomalies, |line, a| {
        line.open(b'{');
        fields!(line;
            "kind" => line.name(a.kind.name()),
            "severity" => line.name(a.severity.name()),
        );
        if let Some(side) = a.side {
            line.comma();
            fields!(line; "side" => line.name(side));
        }
        // `time_ns` and `time` are one instant (`Anomaly::new`).
        line.comma();
        line.times(a.time);
        line.comma();
        fields!(line;
            "packets" => array(line, a.packets.as_slice(), |line, &p| line.int(p)),
            "details" => line.serde(&a.details)?,
        );
        line.close(b'}');
        Ok(())
    })
}

impl ZeekRecord {
    /// The row's fields, then `split`: the row is flattened into the object.
    fn put<S: Style>(&self, line: &mut Line<S>) {
        line.open(b'{');
        self.row.put_fields(line);
        line.comma();
        fields!(line; "split" => array(line, &self.split, |line, row| {
            line.open(b'{');
            row.put_fields(line);
            line.close(b'}');
        }));
        line.close(b'}');
    }
}

impl ZeekRowRecord {
    fn put_fields<S: Style>(&self, line: &mut Line<S>) {
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
    fn put<S: Style>(&self, line: &mut Line<S>) {
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
    fn put<S: Style>(&self, line: &mut Line<S>) {
        object!(line;
            "mss" => line.opt_int(self.mss),
            "window_scale" => line.opt_int(self.window_scale),
            "sack_permitted" => line.bool(self.sack_permitted),
            "timestamps" => line.bool(self.timestamps),
        );
    }
}

impl DirectionStats {
    fn put<S: Style>(&self, line: &mut Line<S>) {
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
    fn put<S: Style>(&self, line: &mut Line<S>) {
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
    fn put<S: Style>(&self, line: &mut Line<S>) {
        object!(line;
            "first" => self.first.put(line),
            "retransmissions" => line.int(self.retransmissions),
        );
    }
}

impl ResetRecord {
    fn put<S: Style>(&self, line: &mut Line<S>) {
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
    fn put<S: Style>(&self, line: &mut Line<S>) {
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
    fn put<S: Style>(&self, line: &mut Line<S>) {
        line.open(b'{');
        fields!(line;
            "from" => line.state(self.from),
            "to" => line.state(self.to),
        );
        line.comma();
        self.at.put_fields(line);
        line.close(b'}');
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::analyze::{self, NoProgress, RunReport, Settings, Sink};
    use std::path::{Path, PathBuf};

    /// Encodes each record both ways (compact and pretty) and compares with serde_json; counts
    /// what the records had in them, so that the test can tell it saw every shape.
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
                let mut pretty = Vec::new();
                encode_pretty(&record, 0, &mut pretty)?;
                let theirs = serde_json::to_vec_pretty(&record)?;
                assert_eq!(
                    String::from_utf8_lossy(&pretty),
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

    /// Collects the records of a run whole, as a sink that takes records gets them.
    #[derive(Default)]
    struct Records(Vec<ConnectionRecord>, Option<RunReport>);

    impl Sink for Records {
        fn connection(&mut self, record: ConnectionRecord) -> io::Result<()> {
            self.0.push(record);
            Ok(())
        }

        fn finish(&mut self, report: &RunReport) -> io::Result<()> {
            self.1 = Some(report.clone());
            Ok(())
        }
    }

    /// The records of the captures read as one run, and its report. Damaged fixtures end
    /// with an error after their records: those count too.
    pub(in crate::report) fn records_of(captures: &[String]) -> (Vec<ConnectionRecord>, RunReport) {
        let mut collected = Records::default();
        let _ = crate::analyze::analyze(
            captures,
            crate::analyze::Settings::default(),
            &mut collected,
            &mut crate::analyze::NoProgress,
        );
        let Records(records, Some(report)) = collected else {
            panic!("{captures:?}: no report");
        };
        (records, report)
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
    fn a_line_break_indents_past_one_copy_of_spaces() {
        for indent in [0, 4, 64, 65, 150] {
            let mut out = b"x".to_vec();
            Line::<Pretty>::new(&mut out, indent).line_break();
            assert_eq!(out, [&b"x\n"[..], &vec![b' '; indent]].concat(), "{indent}");
        }
    }

    #[test]
    fn every_state_is_written_as_serde_writes_it() {
        for state in State::ALL {
            let mut out = b"[".to_vec();
            Line::<Compact>::new(&mut out, 0).state(state);
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
