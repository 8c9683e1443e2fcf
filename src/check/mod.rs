//! `tcplife check`: compare a capture's analysis with a committed expectation, snapshot-test
//! style. `--bless` writes or refreshes the expectation; a directory checks every capture in it
//! against its `<capture>.expect.json` neighbour.

pub mod compare;
pub mod expectation;

use crate::analyze::{self, NoProgress, RunReport, Settings, Sink};
use crate::report::record::ConnectionRecord;
pub use compare::Difference;
use serde_json::Value;
use std::io;
use std::path::{Path, PathBuf};

/// What checking one capture came to.
#[derive(Debug)]
pub enum Verdict {
    /// The analysis matches the expectation.
    Matches { connections: u64 },
    /// It does not: every difference.
    Differs(Vec<Difference>),
    /// `--bless` wrote the expectation (`created` when there was none before).
    Blessed { created: bool },
}

/// Keeps every record, for building the expectation at the end.
#[derive(Default)]
struct Collect {
    records: Vec<ConnectionRecord>,
}

impl Sink for Collect {
    fn connection(&mut self, record: ConnectionRecord) -> io::Result<()> {
        self.records.push(record);
        Ok(())
    }

    fn finish(&mut self, _: &RunReport) -> io::Result<()> {
        Ok(())
    }
}

/// The expectation file that goes with a capture: `<capture>.expect.json`.
pub fn expectation_for(capture: &Path) -> PathBuf {
    let mut name = capture.as_os_str().to_owned();
    name.push(".expect.json");
    PathBuf::from(name)
}

/// The captures in a directory (not recursive), sorted by name.
pub fn captures_in(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: cannot read the directory: {e}", dir.display()))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let capture = [
                ".pcap",
                ".pcapng",
                ".cap",
                ".pcap.gz",
                ".pcapng.gz",
                ".pcap.zst",
                ".pcapng.zst",
            ]
            .iter()
            .any(|ext| name.ends_with(ext));
            p.is_file() && capture
        })
        .collect();
    found.sort();
    Ok(found)
}

/// Analyses `capture` and compares it with (or, blessing, writes) `expect`. An `Err` is an
/// error in the sense of exit code 2: the capture or the expectation cannot be used.
pub fn check(
    capture: &Path,
    expect: &Path,
    settings: Settings,
    bless: bool,
) -> Result<Verdict, String> {
    let name = capture.to_string_lossy().into_owned();
    let mut sink = Collect::default();
    let report = analyze::analyze(
        std::slice::from_ref(&name),
        settings,
        &mut sink,
        &mut NoProgress,
    )
    .map_err(|e| format!("{name}: {e}"))?;
    if let Some(e) = report.first_error() {
        return Err(e.message.clone());
    }
    let actual = expectation::build(&sink.records, &report);
    if bless {
        return bless_into(expect, &actual);
    }
    let expected = read_expectation(expect)?;
    let diffs = compare::compare(&expected, &actual);
    Ok(if diffs.is_empty() {
        Verdict::Matches {
            connections: report.summary.connections,
        }
    } else {
        Verdict::Differs(diffs)
    })
}

fn read_expectation(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "{}: cannot read the expectation: {e} (create it with --bless)",
            path.display()
        )
    })?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a valid expectation: {e}", path.display()))?;
    match value.get(expectation::FORMAT_KEY).and_then(Value::as_u64) {
        Some(expectation::FORMAT) | None if value.is_object() => Ok(value),
        _ => Err(format!(
            "{}: not an expectation of this tcplife (expected \"{}\": {})",
            path.display(),
            expectation::FORMAT_KEY,
            expectation::FORMAT
        )),
    }
}

/// Writes the expectation; an existing one keeps its choice of fields.
fn bless_into(path: &Path, actual: &Value) -> Result<Verdict, String> {
    let existing = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok());
    let value = match &existing {
        Some(template) => expectation::project(actual, template),
        None => actual.clone(),
    };
    let mut text = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?;
    text.push('\n');
    std::fs::write(path, text)
        .map_err(|e| format!("{}: cannot write the expectation: {e}", path.display()))?;
    Ok(Verdict::Blessed {
        created: existing.is_none(),
    })
}
