//! `tcplife analyze`: report every connection of the captures.

use super::progress::Bar;
use super::{AnalysisArgs, exit};
use crate::analyze::{self, NoProgress, Progress, RunReport, Sink};
use crate::detect::{Kind, Severity};
use crate::report::json::{JsonDocument, JsonLines};
use crate::report::text::TextSummary;
use crate::report::zeek::ZeekLog;
use clap::ValueEnum;
use std::io::{self, IsTerminal, Write};

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// Capture files (pcap or pcapng, optionally gzip or zstd compressed); `-` reads standard
    /// input. Several files are read in order as one timeline.
    #[arg(required = true, value_name = "CAPTURE")]
    pub captures: Vec<String>,

    /// Output format: `text` (a summary for people), `json` (one document, connections sorted
    /// by first packet; a large one is sorted through temporary files in `TMPDIR`), `jsonl`
    /// (one connection per line as each finishes, summary last).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,

    /// No progress bar and no warnings on standard error.
    #[arg(long, short)]
    pub quiet: bool,

    #[command(flatten)]
    pub analysis: AnalysisArgs,

    #[command(flatten)]
    pub gate: GateArgs,
}

/// What makes `analyze` fail a CI job, and what its text shows.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Anomalies")]
pub struct GateArgs {
    /// Exit 1 when any anomaly of these kinds is found (comma-separated, e.g.
    /// `--fail-on missing_final_ack,rst_teardown`). For CI gates.
    #[arg(long, value_name = "KIND", value_delimiter = ',')]
    pub fail_on: Vec<Kind>,

    /// Exit 1 when any anomaly of this severity or worse is found.
    #[arg(long, value_name = "SEVERITY", value_enum)]
    pub fail_on_severity: Option<Severity>,

    /// Show only anomalies of this severity or worse in the text output (JSON always carries
    /// every anomaly).
    #[arg(long, value_name = "SEVERITY", value_enum, default_value_t = Severity::Info)]
    pub min_severity: Severity,
}

impl GateArgs {
    /// The gate: did the run find an anomaly that `--fail-on` or `--fail-on-severity` names?
    fn fails(&self, report: &RunReport) -> bool {
        let found = |k: &Kind| {
            report
                .summary
                .anomalies_by_kind
                .get(k.name())
                .is_some_and(|&n| n > 0)
        };
        let named = self.fail_on.iter().any(found);
        let severe = self
            .fail_on_severity
            .is_some_and(|min| Kind::ALL.iter().any(|k| k.severity() >= min && found(k)));
        named || severe
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    Jsonl,
    Zeek,
}

pub(super) fn run(args: &AnalyzeArgs) -> u8 {
    let settings = args.analysis.settings();
    let stdout = io::stdout().lock();
    let out = io::BufWriter::with_capacity(1 << 16, stdout);
    let mut sink: Box<dyn Sink> = match args.format {
        OutputFormat::Text => Box::new(TextSummary::new(out, args.gate.min_severity)),
        OutputFormat::Json => Box::new(JsonDocument::new(out)),
        OutputFormat::Jsonl => Box::new(JsonLines::new(out)),
        OutputFormat::Zeek => Box::new(ZeekLog::new(out)),
    };
    let mut progress: Box<dyn Progress> = if args.quiet || !io::stderr().is_terminal() {
        Box::new(NoProgress)
    } else {
        Box::new(Bar::new())
    };
    match analyze::analyze(&args.captures, settings, sink.as_mut(), progress.as_mut()) {
        Ok(report) => {
            if !args.quiet {
                warn(&report);
            }
            match exit_code(&report) {
                exit::OK if args.gate.fails(&report) => exit::ANOMALIES,
                code => code,
            }
        }
        // `tcplife analyze x.pcap | head` is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            eprintln!("tcplife: cannot write the report: {e}");
            exit::OUTPUT
        }
    }
}

/// Tells standard error about damaged inputs and clocks that went backwards.
pub(super) fn warn(report: &RunReport) {
    let mut err = io::stderr().lock();
    for input in &report.inputs {
        if input.timestamps_backwards > 0 {
            let _ = writeln!(
                err,
                "tcplife: warning: {}: timestamps go backwards {} time(s), first at packet {}; \
                 durations that span those packets may be wrong",
                input.file,
                input.timestamps_backwards,
                input.first_backwards_packet.unwrap_or(0)
            );
        }
        if let Some(e) = &input.error {
            let _ = writeln!(err, "tcplife: error: {}", e.message);
        }
    }
}

pub(super) fn exit_code(report: &RunReport) -> u8 {
    match report.first_error().map(|e| e.kind) {
        None => exit::OK,
        Some("open") => exit::CANNOT_OPEN,
        Some("unknown_format") => exit::NOT_A_CAPTURE,
        Some(_) => exit::DAMAGED,
    }
}
