//! JSON sinks: one document (records sorted by first packet, then id, at the end) or JSON
//! lines (each record as it is finalised, the summary last).

use super::SCHEMA_VERSION;
use super::record::ConnectionRecord;
use super::summary::Summary;
use crate::analyze::{InputStats, RunReport, Sink};
use crate::sorted::{SortedRecords, key, push_frame, signed};
use serde::Serialize;
use std::io::{self, IoSlice, Write};

/// `--format json`: `{"schema_version", "inputs", "connections", "summary"}`, as serde_json
/// writes it pretty. Each record is encoded on the tracking threads, as it will stand in the
/// document (see [`encode_keyed`]), and kept in [`SortedRecords`] (in memory up to a limit, in
/// sorted temporary files beyond it), so that memory stays bounded while the document still
/// lists connections by first packet, then id.
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

/// Appends `value` as serde_json writes it pretty, at the depth whose line breaks are `indent`.
fn put_pretty(value: &impl Serialize, indent: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    super::line::encode_value_pretty(value, indent.len() - 1, out)
}

/// A record as the document's tracking threads encode it: framed for [`SortedRecords`] under
/// its key (the first packet's time, then the id, as bytes that sort as the numbers do), as
/// serde_json writes it pretty at its depth in the document.
fn encode_keyed(record: &mut ConnectionRecord, out: &mut Vec<u8>) -> io::Result<()> {
    let key: [u8; 16] = key(&[&signed(record.first.time_ns), &record.id.to_be_bytes()]);
    push_frame(&key, out, |out| {
        super::line::encode_pretty(record, ELEMENT_INDENT.len() - 1, out)
    })
}

impl<W: Write> Sink for JsonDocument<W> {
    fn connection(&mut self, mut record: ConnectionRecord) -> io::Result<()> {
        let mut keyed = std::mem::take(&mut self.scratch);
        keyed.clear();
        let held = encode_keyed(&mut record, &mut keyed)
            .and_then(|()| self.connections.push_frames(&keyed));
        self.scratch = keyed;
        held
    }

    fn takes(&self) -> crate::analyze::Takes {
        crate::analyze::Takes::Bytes(encode_keyed)
    }

    fn encoded(&mut self, pieces: &mut [IoSlice<'_>]) -> io::Result<()> {
        // A record is encoded whole into one buffer, and a piece is records back to back in one.
        pieces
            .iter()
            .try_for_each(|piece| self.connections.push_frames(piece))
    }

    fn finish(&mut self, report: &RunReport) -> io::Result<()> {
        let mut head = Vec::new();
        write!(
            head,
            "{{\n  \"schema_version\": {SCHEMA_VERSION},\n  \"inputs\": "
        )?;
        put_pretty(&report.inputs, MEMBER_INDENT, &mut head)?;
        head.extend_from_slice(b",\n  \"connections\": [");
        self.out.write_all(&head)?;
        let connections = std::mem::replace(&mut self.connections, SortedRecords::new(0));
        let mut first = true;
        let out = &mut self.out;
        connections.drain(|_, record| {
            if !first {
                out.write_all(b",")?;
            }
            first = false;
            out.write_all(ELEMENT_INDENT)?;
            out.write_all(record)
        })?;
        let mut tail = Vec::new();
        tail.extend_from_slice(if first { b"]" } else { b"\n  ]" });
        tail.extend_from_slice(b",\n  \"summary\": ");
        put_pretty(&report.summary, MEMBER_INDENT, &mut tail)?;
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

    fn takes(&self) -> crate::analyze::Takes {
        crate::analyze::Takes::Bytes(encode_line)
    }

    fn encoded(&mut self, pieces: &mut [IoSlice<'_>]) -> io::Result<()> {
        crate::write_all_vectored(&mut self.out, pieces)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{self, NoProgress, Settings};

    /// Every record of every fixture comes out of the document as serde_json lays it out
    /// pretty; records handed over whole make the same document as records encoded on the
    /// tracking threads.
    #[test]
    fn every_fixture_document_is_what_serde_json_writes() {
        let captures = super::super::line::tests::fixture_captures();
        assert!(captures.len() >= 58, "fixtures found: {}", captures.len());
        let mut records = 0;
        for capture in &captures {
            let paths = std::slice::from_ref(capture);
            let (list, report) = super::super::line::tests::records_of(paths);
            for mut record in list.iter().cloned() {
                let mut keyed = Vec::new();
                encode_keyed(&mut record, &mut keyed).unwrap();
                let (_, frame, _) = crate::sorted::split_frame::<16>(&keyed).unwrap();
                let ours = crate::sorted::record_of::<16>(frame).to_vec();
                let mut theirs = Vec::new();
                put_pretty(&record, ELEMENT_INDENT, &mut theirs).unwrap();
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
