//! JSON sinks: one document (records sorted by first packet, then id, at the end) or JSON
//! lines (each record as it is finalised, the summary last).

use super::SCHEMA_VERSION;
use super::record::ConnectionRecord;
use super::summary::Summary;
use crate::analyze::{InputStats, RunReport, Sink};
use crate::sorted::{SortedRecords, key, signed};
use serde::Serialize;
use std::io::{self, IoSlice, Write};

/// `--format json`: `{"schema_version", "inputs", "connections", "summary"}`, as serde_json
/// writes it pretty. Each record is encoded as compact JSON on the tracking threads (see
/// [`encode_keyed`]) and kept in [`SortedRecords`] (in memory up to a limit, in sorted
/// temporary files beyond it), so that memory stays bounded while the document still lists
/// connections by first packet, then id; it is laid out pretty ([`pretty`]) as it is written.
pub struct JsonDocument<W: Write> {
    out: W,
    /// Keyed by first packet's time, then id.
    connections: SortedRecords<16>,
    scratch: Vec<u8>,
}

/// Bytes of records held in memory before they are sorted into a temporary file.
const HELD_RECORDS: usize = 32 << 20;

impl<W: Write> JsonDocument<W> {
    pub fn new(out: W) -> Self {
        Self::with_limit(out, HELD_RECORDS)
    }

    /// Holds at most about `limit` bytes of encoded records in memory.
    pub fn with_limit(out: W, limit: usize) -> Self {
        JsonDocument {
            out,
            connections: SortedRecords::new(limit),
            scratch: Vec::new(),
        }
    }
}

/// Where the document's members stand: the pretty printer's indent at their depth.
const MEMBER_INDENT: &[u8] = b"\n  ";
/// Where the elements of `connections` stand.
const ELEMENT_INDENT: &[u8] = b"\n    ";

/// Appends `value` as serde_json writes it pretty at the depth whose line breaks are `indent`.
fn put_pretty(
    value: &impl Serialize,
    indent: &[u8],
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    scratch.clear();
    serde_json::to_writer_pretty(&mut *scratch, value)?;
    // A line break in JSON text is always the printer's: inside strings it is escaped.
    for (i, line) in scratch.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.extend_from_slice(indent);
        }
        out.extend_from_slice(line);
    }
    Ok(())
}

/// Bytes in front of each record that [`encode_keyed`] writes: its key, then the length of its
/// JSON.
const KEYED_HEAD: usize = 16 + 8;

/// A record as the document's tracking threads encode it: its key (the first packet's time,
/// then the id, as bytes that sort as the numbers do), the length of its JSON (8 bytes,
/// little-endian), and the record as compact JSON (a third smaller than pretty, and made in a
/// fraction of the time), which [`pretty`] lays out when the document is written.
fn encode_keyed(record: &mut ConnectionRecord, out: &mut Vec<u8>) -> io::Result<()> {
    let key: [u8; 16] = key(&[&signed(record.first.time_ns), &record.id.to_be_bytes()]);
    out.extend_from_slice(&key);
    let length_at = out.len();
    out.extend_from_slice(&[0; 8]);
    let start = out.len();
    super::line::encode(record, out)?;
    let length = (out.len() - start) as u64;
    if let Some(slot) = out.get_mut(length_at..start) {
        slot.copy_from_slice(&length.to_le_bytes());
    }
    Ok(())
}

impl<W: Write> JsonDocument<W> {
    /// Holds the records that [`encode_keyed`] wrote back to back in `bytes`.
    fn hold(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let (head, rest) = bytes
                .split_first_chunk::<KEYED_HEAD>()
                .ok_or_else(cut_record)?;
            let (key, length) = head.split_first_chunk::<16>().ok_or_else(cut_record)?;
            let length = length
                .first_chunk::<8>()
                .and_then(|l| usize::try_from(u64::from_le_bytes(*l)).ok())
                .ok_or_else(cut_record)?;
            let (json, rest) = rest.split_at_checked(length).ok_or_else(cut_record)?;
            self.connections.push(*key, |out| {
                out.extend_from_slice(json);
                Ok(())
            })?;
            bytes = rest;
        }
        Ok(())
    }
}

fn cut_record() -> io::Error {
    io::Error::other("an encoded record for the JSON document is cut short")
}

/// Appends compact JSON `json` laid out as serde_json's pretty printer lays out the same
/// value, nested `base` spaces deep: a line break and the indent (two spaces a level) after
/// every `{`, `[` and `,` and before every `}` and `]`, but for empty objects and arrays (`{}`,
/// `[]`), and `": "` between a name and its value. Everything else is copied as it is: compact
/// JSON has no other white space, and a structural character inside a string is not one.
///
/// A record is about a thousand such places in four kilobytes, so the bytes between them go
/// in short runs: each is copied as a chunk of constant length (a few moves, not a call) and
/// the output cut back to its end.
fn pretty(json: &[u8], base: usize, out: &mut Vec<u8>) {
    let mut depth = 0usize;
    // Bytes from `run` up to `i` (names, numbers, literals, strings) are copied as they are.
    let mut run = 0;
    let mut i = 0;
    while let Some(&b) = json.get(i) {
        match Layout::of(b) {
            Layout::Verbatim => {
                i += 1;
                continue;
            }
            Layout::Quote => {
                i = string_end(json, i);
                continue;
            }
            Layout::Open | Layout::Close | Layout::Comma | Layout::Colon => {}
        }
        copy_run(json, run, i, out);
        match Layout::of(b) {
            Layout::Open if matches!(json.get(i + 1), Some(b'}' | b']')) => {
                copy_run(json, i, i + 2, out);
                i += 1;
            }
            Layout::Open => {
                out.push(b);
                depth += 1;
                line_break(base + 2 * depth, out);
            }
            Layout::Close => {
                depth = depth.saturating_sub(1);
                line_break(base + 2 * depth, out);
                out.push(b);
            }
            Layout::Comma => {
                out.push(b',');
                line_break(base + 2 * depth, out);
            }
            _ => out.extend_from_slice(b": "),
        }
        i += 1;
        run = i;
    }
    copy_run(json, run, json.len(), out);
}

/// What a byte of compact JSON, outside strings, is to the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Verbatim,
    Quote,
    Open,
    Close,
    Comma,
    Colon,
}

impl Layout {
    fn of(b: u8) -> Layout {
        LAYOUT
            .get(usize::from(b))
            .copied()
            .unwrap_or(Layout::Verbatim)
    }
}

/// [`Layout::of`] every byte, looked up rather than compared six times.
// Built at compile time, where an index out of bounds stops the build: it cannot panic.
#[allow(clippy::indexing_slicing)]
const LAYOUT: [Layout; 256] = {
    let mut table = [Layout::Verbatim; 256];
    table[b'"' as usize] = Layout::Quote;
    table[b'{' as usize] = Layout::Open;
    table[b'[' as usize] = Layout::Open;
    table[b'}' as usize] = Layout::Close;
    table[b']' as usize] = Layout::Close;
    table[b',' as usize] = Layout::Comma;
    table[b':' as usize] = Layout::Colon;
    table
};

/// Where the string that opens at `start` ends: just past its closing quote (an escaped quote
/// does not close it).
fn string_end(json: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(&b) = json.get(i) {
        match b {
            b'"' => return i + 1,
            // A backslash and the character it escapes.
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    json.len()
}

/// Runs up to this long are copied as one chunk of this length.
const CHUNK: usize = 32;

/// Appends `json[start..end]`.
fn copy_run(json: &[u8], start: usize, end: usize, out: &mut Vec<u8>) {
    let len = end.saturating_sub(start);
    let chunk = json
        .get(start..)
        .and_then(|rest| rest.first_chunk::<CHUNK>());
    match chunk {
        Some(chunk) if len <= CHUNK => {
            let keep = out.len() + len;
            out.extend_from_slice(chunk);
            out.truncate(keep);
        }
        _ => out.extend_from_slice(json.get(start..end).unwrap_or_default()),
    }
}

/// A line break and the most spaces an indent takes in one copy.
const BREAK: &[u8; 65] = b"\n                                                                ";

/// A line break and `spaces` spaces.
fn line_break(spaces: usize, out: &mut Vec<u8>) {
    let keep = out.len() + 1 + spaces;
    out.extend_from_slice(BREAK);
    out.truncate(keep);
    // Deeper than one copy reaches (no record nests so deep).
    while out.len() < keep {
        out.push(b' ');
    }
}

impl<W: Write> Sink for JsonDocument<W> {
    fn connection(&mut self, mut record: ConnectionRecord) -> io::Result<()> {
        let mut keyed = std::mem::take(&mut self.scratch);
        keyed.clear();
        let held = encode_keyed(&mut record, &mut keyed).and_then(|()| self.hold(&keyed));
        self.scratch = keyed;
        held
    }

    fn encoder(&self) -> Option<crate::analyze::Encoder> {
        Some(encode_keyed)
    }

    fn encoded(&mut self, pieces: &mut [IoSlice<'_>]) -> io::Result<()> {
        // A record is encoded whole into one buffer, and a piece is records back to back in one.
        pieces.iter().try_for_each(|piece| self.hold(piece))
    }

    fn finish(&mut self, report: &RunReport) -> io::Result<()> {
        let mut head = Vec::new();
        write!(
            head,
            "{{\n  \"schema_version\": {SCHEMA_VERSION},\n  \"inputs\": "
        )?;
        put_pretty(&report.inputs, MEMBER_INDENT, &mut self.scratch, &mut head)?;
        head.extend_from_slice(b",\n  \"connections\": [");
        self.out.write_all(&head)?;
        let connections = std::mem::replace(&mut self.connections, SortedRecords::new(0));
        let mut first = true;
        let out = &mut self.out;
        let laid_out = &mut self.scratch;
        connections.drain(|_, record| {
            laid_out.clear();
            if !first {
                laid_out.push(b',');
            }
            first = false;
            laid_out.extend_from_slice(ELEMENT_INDENT);
            pretty(record, ELEMENT_INDENT.len() - 1, laid_out);
            out.write_all(laid_out)
        })?;
        let mut tail = Vec::new();
        tail.extend_from_slice(if first { b"]" } else { b"\n  ]" });
        tail.extend_from_slice(b",\n  \"summary\": ");
        put_pretty(&report.summary, MEMBER_INDENT, &mut self.scratch, &mut tail)?;
        tail.extend_from_slice(b"\n}\n");
        self.out.write_all(&tail)?;
        self.out.flush()
    }
}

/// `--format jsonl`: `{"type": "connection", ...}` per line as connections finish, then
/// `{"type": "summary", ...}`.
pub struct JsonLines<W: Write> {
    out: W,
}

impl<W: Write> JsonLines<W> {
    pub fn new(out: W) -> Self {
        JsonLines { out }
    }
}

#[derive(Serialize)]
struct SummaryLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    schema_version: u32,
    inputs: &'a [InputStats],
    summary: &'a Summary,
}

/// One record as a line of `--format jsonl`.
fn encode_line(record: &mut ConnectionRecord, out: &mut Vec<u8>) -> io::Result<()> {
    record.kind = Some("connection");
    super::line::encode(record, out)?;
    out.push(b'\n');
    Ok(())
}

impl<W: Write> Sink for JsonLines<W> {
    fn connection(&mut self, mut record: ConnectionRecord) -> io::Result<()> {
        let mut line = Vec::new();
        encode_line(&mut record, &mut line)?;
        self.out.write_all(&line)
    }

    fn encoder(&self) -> Option<crate::analyze::Encoder> {
        Some(encode_line)
    }

    fn encoded(&mut self, pieces: &mut [IoSlice<'_>]) -> io::Result<()> {
        write_all_vectored(&mut self.out, pieces)
    }

    fn finish(&mut self, report: &RunReport) -> io::Result<()> {
        let line = SummaryLine {
            kind: "summary",
            schema_version: SCHEMA_VERSION,
            inputs: &report.inputs,
            summary: &report.summary,
        };
        serde_json::to_writer(&mut self.out, &line)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}

/// Writes every piece, in as few calls as the writer allows: a batch of records is larger than
/// the output's buffer, so it goes to the file (one `writev`) without being copied into the
/// buffer first. (`Write::write_all_vectored` is not stable yet.)
fn write_all_vectored<W: Write>(out: &mut W, mut pieces: &mut [IoSlice<'_>]) -> io::Result<()> {
    // Empty pieces in front are dropped: a write of nothing would read as a closed file.
    IoSlice::advance_slices(&mut pieces, 0);
    while !pieces.is_empty() {
        match out.write_vectored(pieces) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut pieces, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{self, NoProgress, Settings};
    use proptest::prelude::*;
    use serde_json::Value;

    /// `pretty` of serde_json's compact text of `value`, at the top level.
    fn laid_out(value: &Value) -> String {
        let mut out = Vec::new();
        pretty(&serde_json::to_vec(value).unwrap(), 0, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lays_out_as_serde_json_writes_pretty() {
        let values = [
            r#"{"a":"x\"}{,:[]\\","b":[],"c":{},"d":[1,-2.5e-7,true,null,{"e":"\\"}]}"#,
            r#"[[[]],[{}],{"":{"":[0]}},"\u0000\n\t",""]"#,
            r#"{"deep":[[[[[[[[[[[[[[[[[[["nineteen levels"]]]]]]]]]]]]]]]]]]]}"#,
            r#""just a string, with {braces}, [brackets], commas: and colons""#,
            "17",
            "{}",
            "[]",
        ];
        for text in values {
            let value: Value = serde_json::from_str(text).unwrap();
            let expected = serde_json::to_string_pretty(&value).unwrap();
            assert_eq!(laid_out(&value), expected, "{text}");
        }
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            // Quotes, backslashes, structural characters and control characters in strings.
            "[\"\\\\{}\\[\\],: a\\x00-\\x1fé]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[\"\\\\{}:,a-z]{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn lays_out_any_value_as_serde_json_writes_it_pretty(value in any_json()) {
            prop_assert_eq!(laid_out(&value), serde_json::to_string_pretty(&value).unwrap());
        }
    }

    /// Collects the records of a run, as a sink without an encoder gets them.
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

    /// Every record of every fixture comes out of the document as serde_json lays it out
    /// pretty; records handed over whole make the same document as records encoded on the
    /// tracking threads.
    #[test]
    fn every_fixture_document_is_what_serde_json_writes() {
        let captures = super::super::line::tests::fixture_captures();
        assert!(captures.len() >= 58, "fixtures found: {}", captures.len());
        let mut records = 0;
        for capture in &captures {
            let mut collected = Records::default();
            let paths = std::slice::from_ref(capture);
            // Damaged fixtures end with an error after their records: those count too.
            let _ = analyze::analyze(paths, Settings::default(), &mut collected, &mut NoProgress);
            let Records(list, Some(report)) = collected else {
                panic!("{capture}: no report");
            };
            for mut record in list.iter().cloned() {
                let mut keyed = Vec::new();
                encode_keyed(&mut record, &mut keyed).unwrap();
                let json = keyed.get(KEYED_HEAD..).unwrap();
                let mut ours = Vec::new();
                pretty(json, ELEMENT_INDENT.len() - 1, &mut ours);
                let mut theirs = Vec::new();
                put_pretty(&record, ELEMENT_INDENT, &mut Vec::new(), &mut theirs).unwrap();
                assert_eq!(
                    String::from_utf8(ours),
                    String::from_utf8(theirs),
                    "{capture}"
                );
                records += 1;
            }

            let mut encoded = Vec::new();
            let mut sink = JsonDocument::with_limit(&mut encoded, 4 << 10);
            let _ = analyze::analyze(paths, Settings::default(), &mut sink, &mut NoProgress);
            let mut whole = Vec::new();
            let mut sink = JsonDocument::with_limit(&mut whole, 4 << 10);
            for record in list {
                sink.connection(record).unwrap();
            }
            sink.finish(&report).unwrap();
            assert!(encoded == whole, "{capture}");
        }
        assert!(records > 1_000, "records: {records}");
    }
}
