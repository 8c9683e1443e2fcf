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
/// writes it pretty. Each record is encoded as it comes and kept in [`SortedRecords`] (in
/// memory up to a limit, in sorted temporary files beyond it), so that memory stays bounded
/// while the document still lists connections by first packet, then id.
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

impl<W: Write> Sink for JsonDocument<W> {
    fn connection(&mut self, record: ConnectionRecord) -> io::Result<()> {
        let key = key(&[&signed(record.first.time_ns), &record.id.to_be_bytes()]);
        let scratch = &mut self.scratch;
        self.connections
            .push(key, |out| put_pretty(&record, ELEMENT_INDENT, scratch, out))
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
