//! The command line: flags (documented where they are declared), exit codes, progress bar.
//! Wiring only; the work happens in [`crate::analyze`].

use crate::analyze::{self, NoProgress, Progress, RunReport, Settings, Sink};
use crate::check::{self, Verdict};
use crate::detect::{DetectConfig, Kind, Severity};
use crate::report::json::{JsonDocument, JsonLines};
use crate::report::text::TextSummary;
use crate::report::zeek::ZeekLog;
use crate::track::Config;
use crate::track::zeek::{ServerPorts, ZeekConfig};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

/// Exit codes of `tcplife analyze` (clap itself exits 2 on a usage error).
pub mod exit {
    /// Every capture was read to its end.
    pub const OK: u8 = 0;
    /// An anomaly named by `--fail-on` or `--fail-on-severity` was found (and every capture
    /// was read; input errors take precedence).
    pub const ANOMALIES: u8 = 1;
    /// The command line was wrong.
    pub const USAGE: u8 = 2;
    /// A capture could not be opened (missing file, no permission).
    pub const CANNOT_OPEN: u8 = 3;
    /// A file is not a pcap or pcapng capture (after any gzip/zstd decompression).
    pub const NOT_A_CAPTURE: u8 = 4;
    /// A capture is truncated or corrupt: the report covers everything before the damage.
    pub const DAMAGED: u8 = 5;
    /// The report could not be written.
    pub const OUTPUT: u8 = 6;
    /// `check`: the analysis differs from the expectation.
    pub const CHECK_DIFFERS: u8 = 1;
    /// `check`: a capture or an expectation could not be used.
    pub const CHECK_ERROR: u8 = 2;
}

#[derive(Parser, Debug)]
#[command(
    name = "tcplife",
    version,
    about = "What happened to every TCP connection in a packet capture",
    long_about = "Reads pcap and pcapng captures (optionally gzip- or zstd-compressed) once, \
                  rebuilds every TCP connection, follows both endpoints through the RFC 9293 \
                  state machine and reports how each connection opened and ended."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Analyse captures and report every TCP connection in them.
    ///
    /// Exit codes: 0 all read; 1 an anomaly named by --fail-on or --fail-on-severity was
    /// found; 3 a capture could not be opened; 4 not a capture; 5 a capture is truncated or
    /// corrupt (the report still covers everything before the damage); 6 the report could not
    /// be written.
    Analyze(AnalyzeArgs),
    /// Compare captures with committed expectations: fail CI when connection behaviour changes.
    ///
    /// Exit codes: 0 everything matches (or was blessed); 1 a difference was found; 2 an error
    /// (a missing or corrupt capture, an unreadable expectation).
    Check(CheckArgs),
}

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// Capture files (pcap or pcapng, optionally gzip or zstd compressed); `-` reads standard
    /// input. Several files are read in order as one timeline.
    #[arg(required = true, value_name = "CAPTURE")]
    pub captures: Vec<String>,

    /// Output format: `text` (a summary for people), `json` (one document, connections sorted
    /// by first packet), `jsonl` (one connection per line as each finishes, summary last).
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

/// How connections are tracked and anomalies judged: shared by `analyze` and `check`.
#[derive(clap::Args, Debug)]
pub struct AnalysisArgs {
    /// Maximum segment lifetime: TIME-WAIT lasts twice this. Linux behaves as if 30s
    /// (TIME-WAIT 60 s); RFC 793 says 2m.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub msl: i64,

    /// A connection with no packet for this long (capture time) is reported as it stands.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub idle_timeout: i64,

    /// Most connections tracked at once; beyond it the longest idle are reported early
    /// (`finished_by: "evicted"`) and counted in the summary. Bounds memory on floods.
    #[arg(long, value_name = "N", default_value_t = Config::default().max_connections)]
    pub max_connections: usize,

    /// A side that stays in CLOSE-WAIT longer than this is reported (`long_close_wait`).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration, help_heading = "Anomalies")]
    pub close_wait: i64,

    /// `syn_flood`: the window in which failed handshakes to one server are counted.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration, help_heading = "Anomalies")]
    pub syn_flood_window: i64,

    /// `syn_flood`: failed handshakes within the window that make an episode.
    #[arg(long, value_name = "N", default_value_t = DetectConfig::default().flood_count, help_heading = "Anomalies")]
    pub syn_flood_count: u64,

    /// `syn_flood`: the share of the server's SYNs in the window that must have failed.
    #[arg(long, value_name = "RATIO", default_value_t = DetectConfig::default().flood_ratio, help_heading = "Anomalies")]
    pub syn_flood_ratio: f64,

    /// `excessive_retransmission`: the share of a direction's data segments that may be
    /// retransmissions before it is reported.
    #[arg(long, value_name = "RATIO", default_value_t = DetectConfig::default().retransmission_ratio, help_heading = "Anomalies")]
    pub retransmission_ratio: f64,

    /// Check IP and TCP checksums and set aside packets whose checksum is wrong, as Zeek does
    /// without -C (they show as `C`/`c` in the history). Off by default: captures taken on a
    /// sending host with checksum offload have wrong checksums on every outgoing packet.
    #[arg(long, help_heading = "Zeek compatibility")]
    pub verify_checksums: bool,

    /// Likely server ports, for telling client from server when the handshake was not
    /// captured: a comma-separated list of ports and ranges (`80,443,6666-6669`), `zeek` (Zeek's
    /// list with all its base scripts) or `none`.
    #[arg(long, value_name = "PORTS", default_value = "zeek", value_parser = ServerPorts::parse, help_heading = "Zeek compatibility")]
    pub server_ports: ServerPorts,

    /// Also split connections where Zeek's own timers would (a SYN retransmitted more than 5 s
    /// later, an idle gap over 5 minutes), for row-for-row parity with a Zeek conn.log.
    #[arg(long, help_heading = "Zeek compatibility")]
    pub zeek_timers: bool,
}

impl AnalysisArgs {
    pub fn settings(&self) -> Settings {
        Settings {
            track: Config {
                msl_ns: self.msl,
                idle_timeout_ns: self.idle_timeout,
                max_connections: self.max_connections.max(1),
                zeek: ZeekConfig {
                    server_ports: self.server_ports,
                    timers: self.zeek_timers,
                },
                ..Config::default()
            },
            verify_checksums: self.verify_checksums,
            detect: DetectConfig {
                close_wait_ns: self.close_wait,
                time_wait_ns: self.msl.saturating_mul(2),
                flood_window_ns: self.syn_flood_window,
                flood_count: self.syn_flood_count.max(1),
                flood_ratio: self.syn_flood_ratio,
                retransmission_ratio: self.retransmission_ratio,
                ..DetectConfig::default()
            },
        }
    }
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

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// A capture, or a directory: then every capture in it is checked against its
    /// `<capture>.expect.json` neighbour.
    #[arg(value_name = "CAPTURE|DIR")]
    pub target: String,

    /// The expectation file (default: `<capture>.expect.json`). Not with a directory.
    #[arg(long, value_name = "FILE")]
    pub expect: Option<String>,

    /// Write (or refresh) the expectation from the current analysis instead of checking. An
    /// existing expectation keeps its choice of fields.
    #[arg(long)]
    pub bless: bool,

    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    Jsonl,
    Zeek,
}

/// Parses a duration such as `500ms`, `30s`, `2m`, `1h`, `1.5s` or `250us` into nanoseconds.
/// A bare number is seconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (try 500ms, 30s, 2m)"))?;
    let scale = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "" | "s" => 1e9,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (use ns, us, ms, s, m, h)"
            ));
        }
    };
    let ns = value * scale;
    if !ns.is_finite() || ns < 0.0 || ns > i64::MAX as f64 / 4.0 {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(ns.round() as i64)
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Analyze(args) => ExitCode::from(run_analyze(&args)),
        Command::Check(args) => ExitCode::from(run_check(&args)),
    }
}

fn run_analyze(args: &AnalyzeArgs) -> u8 {
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

/// `tcplife check`: one capture, or every capture of a directory.
fn run_check(args: &CheckArgs) -> u8 {
    let target = std::path::Path::new(&args.target);
    let settings = args.analysis.settings();
    if target.is_dir() {
        if args.expect.is_some() {
            eprintln!(
                "tcplife: --expect names one file; a directory uses <capture>.expect.json files"
            );
            return exit::USAGE;
        }
        return check_directory(target, settings, args.bless);
    }
    let expect = args
        .expect
        .as_ref()
        .map_or_else(|| check::expectation_for(target), std::path::PathBuf::from);
    let mut out = io::stdout().lock();
    match check::check(target, &expect, settings, args.bless) {
        Ok(verdict) => {
            let _ = print_verdict(&mut out, &args.target, &expect, &verdict, false);
            match verdict {
                Verdict::Differs(_) => exit::CHECK_DIFFERS,
                _ => exit::OK,
            }
        }
        Err(message) => {
            eprintln!("tcplife: error: {message}");
            exit::CHECK_ERROR
        }
    }
}

fn check_directory(dir: &std::path::Path, settings: Settings, bless: bool) -> u8 {
    let captures = match check::captures_in(dir) {
        Ok(c) => c,
        Err(message) => {
            eprintln!("tcplife: error: {message}");
            return exit::CHECK_ERROR;
        }
    };
    let mut out = io::stdout().lock();
    let (mut ok, mut differ, mut errors) = (0, 0, 0);
    for capture in &captures {
        let name = capture.to_string_lossy();
        let expect = check::expectation_for(capture);
        match check::check(capture, &expect, settings, bless) {
            Ok(verdict) => {
                let _ = print_verdict(&mut out, &name, &expect, &verdict, true);
                match verdict {
                    Verdict::Differs(_) => differ += 1,
                    _ => ok += 1,
                }
            }
            Err(message) => {
                errors += 1;
                let _ = writeln!(out, "ERROR    {name}: {message}");
            }
        }
    }
    let _ = writeln!(
        out,
        "{} capture{}: {ok} ok, {differ} different, {errors} error{}",
        captures.len(),
        if captures.len() == 1 { "" } else { "s" },
        if errors == 1 { "" } else { "s" }
    );
    if errors > 0 || captures.is_empty() {
        exit::CHECK_ERROR
    } else if differ > 0 {
        exit::CHECK_DIFFERS
    } else {
        exit::OK
    }
}

fn print_verdict(
    out: &mut impl Write,
    capture: &str,
    expect: &std::path::Path,
    verdict: &Verdict,
    one_line: bool,
) -> io::Result<()> {
    let expect = expect.display();
    match verdict {
        Verdict::Matches { connections } if one_line => {
            writeln!(out, "ok       {capture} ({connections} connections)")
        }
        Verdict::Matches { connections } => {
            writeln!(
                out,
                "{capture}: matches {expect} ({connections} connections)"
            )
        }
        Verdict::Blessed { created } => {
            let verb = if *created { "wrote" } else { "updated" };
            writeln!(out, "{verb:<8} {expect}")
        }
        Verdict::Differs(diffs) => {
            let head = if one_line { "DIFFERS " } else { "" };
            writeln!(
                out,
                "{head}{capture}: {} difference(s) from {expect}",
                diffs.len()
            )?;
            for d in diffs {
                writeln!(out, "    {d}")?;
            }
            Ok(())
        }
    }
}

/// Tells standard error about damaged inputs and clocks that went backwards.
fn warn(report: &RunReport) {
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

fn exit_code(report: &RunReport) -> u8 {
    match report.first_error().map(|e| e.kind) {
        None => exit::OK,
        Some("open") => exit::CANNOT_OPEN,
        Some("unknown_format") => exit::NOT_A_CAPTURE,
        Some(_) => exit::DAMAGED,
    }
}

/// An indicatif bar on standard error: bytes read of the current file.
struct Bar {
    bar: ProgressBar,
}

impl Bar {
    fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        Bar { bar }
    }
}

impl Progress for Bar {
    fn start_file(&mut self, name: &str, size: Option<u64>) {
        let template = if size.is_some() {
            "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})"
        } else {
            "{msg} {bytes} ({bytes_per_sec})"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.set_length(size.unwrap_or(0));
        self.bar.set_position(0);
        self.bar.set_message(name.to_owned());
    }

    fn advance(&mut self, bytes_read: u64) {
        self.bar.set_position(bytes_read);
    }

    fn finish(&mut self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(500_000_000));
        assert_eq!(parse_duration("2m"), Ok(120_000_000_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("30"), Ok(30_000_000_000));
        assert_eq!(parse_duration("250us"), Ok(250_000));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
