//! The command line: flags (documented where they are declared), exit codes, progress bar.
//! Wiring only; the work happens in the library. One file per subcommand.

mod analyze;
mod check;
mod diagram;
mod progress;
mod report;
mod states;

pub use analyze::{AnalyzeArgs, GateArgs, OutputFormat};
pub use check::CheckArgs;

use crate::analyze::Settings;
use crate::capture::ReadMode;
use crate::detect::DetectConfig;
use crate::track::Config;
use crate::track::zeek::{ServerPorts, ZeekConfig};
use clap::{Parser, Subcommand};
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
    /// Draw one connection as a ladder diagram in the terminal.
    ///
    /// Exit codes: 0 drawn; 1 no connection matches; 2 a wrong command line (or standard
    /// input, which cannot be read twice); 3, 4, 5 as for analyze; 6 the diagram could not be
    /// written.
    Diagram(diagram::DiagramArgs),
    /// Write one self-contained HTML report: summary, timeline, histograms, anomaly tables and
    /// ladder diagrams.
    ///
    /// Exit codes: 0 written; 3, 4, 5 as for analyze; 6 the report could not be written.
    Report(report::ReportArgs),
    /// The endpoints alive at any instant of a capture (`--at`, like `ss -tan` then), or how
    /// many were in each state through it (`--every`: a table, JSON lines or a chart).
    ///
    /// Exit codes: 0 all read; 2 a wrong command line (or a step too short for the capture);
    /// 3, 4, 5 as for analyze; 6 the output could not be written.
    States(states::StatesArgs),
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

    /// Threads tracking connections, each taking the connections whose 4-tuple hashes to it
    /// (default: one per core; 1 does everything on one thread). The thread that reads the
    /// capture is one of them, with a smaller part, to leave it room for the reading: how much
    /// smaller is chosen from the capture's first 4,096 TCP segments (none for a bulk
    /// transfer, where reading large frames is most of the work). The output is the same for
    /// any number, unless --max-connections is reached: each thread then evicts from its own
    /// part of the cap (in proportion to the connections it takes). With more than one, the
    /// capture is also read (and decompressed) a few MiB ahead of the parsing on threads of
    /// their own, unless it is an uncompressed file of small frames.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Map uncompressed capture files into memory and read them in place, instead of copying
    /// them in with `read` calls: about twice as fast on captures of large frames. You promise
    /// that no program rewrites or truncates the files while they are read (a capture still
    /// being appended to is fine): that would change the bytes under the parser, and
    /// truncation kills the run (SIGBUS). Standard input, pipes and compressed captures are
    /// always copied in.
    #[arg(long)]
    pub mmap: bool,

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
        let threads = self.threads.unwrap_or_else(cores);
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
            threads,
            read: ReadMode {
                map: self.mmap,
                // With threads to spare, the copying (and decompressing) runs beside the rest.
                ahead: threads > 1,
            },
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
        Command::Analyze(args) => ExitCode::from(analyze::run(&args)),
        Command::Check(args) => ExitCode::from(check::run(&args)),
        Command::Diagram(args) => ExitCode::from(diagram::run(&args)),
        Command::Report(args) => ExitCode::from(report::run(&args)),
        Command::States(args) => ExitCode::from(states::run(&args)),
    }
}

/// Commands that read their captures twice cannot take standard input: the usage exit code,
/// after saying so, when one of `captures` is `-`.
fn refuse_stdin(command: &str, captures: &[String]) -> Option<u8> {
    if !captures.iter().any(|c| c == "-") {
        return None;
    }
    eprintln!(
        "tcplife: {command} reads the captures twice, so it cannot read standard input; \
         save the capture to a file first"
    );
    Some(exit::USAGE)
}

/// The machine's cores (1 when that cannot be told).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
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
