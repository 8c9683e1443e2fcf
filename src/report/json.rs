//! JSON sinks: one document (records held until the end and sorted by first packet, then id)
//! or JSON lines (each record as it is finalised, the summary last).

use super::SCHEMA_VERSION;
use super::record::ConnectionRecord;
use super::summary::Summary;
use crate::analyze::{InputStats, RunReport, Sink};
use serde::Serialize;
use std::io::{self, IoSlice, Write};

/// `--format json`: `{"schema_version", "inputs", "connections", "summary"}`.
pub struct JsonDocument<W: Write> {
    out: W,
    connections: Vec<ConnectionRecord>,
}

impl<W: Write> JsonDocument<W> {
    pub fn new(out: W) -> Self {
        JsonDocument {
            out,
            connections: Vec::new(),
        }
    }
}

#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    inputs: &'a [InputStats],
    connections: &'a [ConnectionRecord],
    summary: &'a Summary,
}

impl<W: Write> Sink for JsonDocument<W> {
    fn connection(&mut self, record: ConnectionRecord) -> io::Result<()> {
        self.connections.push(record);
        Ok(())
    }

    fn finish(&mut self, report: &RunReport) -> io::Result<()> {
        self.connections.sort_by_key(|c| (c.first.time_ns, c.id));
        let doc = Document {
            schema_version: SCHEMA_VERSION,
            inputs: &report.inputs,
            connections: &self.connections,
            summary: &report.summary,
        };
        serde_json::to_writer_pretty(&mut self.out, &doc)?;
        writeln!(self.out)?;
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
