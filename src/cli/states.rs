//! `tcplife states`: the endpoints alive at an instant (`--at`), or how many were in each state
//! through the capture (`--every`).

use super::analyze::{exit_code, warn};
use super::progress::Bar;
use super::{AnalysisArgs, exit, parse_duration};
use crate::analyze::{self, NoProgress, Progress, RunReport, Settings, Sink};
use crate::states::{
    Filter, Instant, InstantOptions, JsonLines, MAX_STEPS, PLOTTED, Plot, RowWriter, Series,
    SeriesContext, SeriesOptions, Table, TimeArg, capture_span, parse_state, parse_time,
    write_instant_jsonl, write_instant_table,
};
use crate::track::{Side, State};
use clap::ValueEnum;
use std::io::{self, IsTerminal};
use std::net::IpAddr;

#[derive(clap::Args, Debug)]
pub struct StatesArgs {
    /// Capture files (pcap or pcapng, optionally gzip or zstd compressed); `-` reads standard
    /// input. Several files are read in order as one timeline.
    #[arg(required = true, value_name = "CAPTURE")]
    pub captures: Vec<String>,

    /// List every endpoint alive at this instant, as `ss -tan` would have on its host:
    /// RFC 3339 (`2026-11-21T23:43:40.5Z`), epoch seconds, or `+12.5s` after the first packet.
    #[arg(long, value_name = "TIME", value_parser = parse_time, conflicts_with = "every",
          required_unless_present = "every")]
    pub at: Option<TimeArg>,

    /// Count the endpoints in each state at this interval through the capture (`1s`, `100ms`).
    #[arg(long, value_name = "DURATION", value_parser = parse_step)]
    pub every: Option<i64>,

    /// With --every: one series per server endpoint instead of one for all endpoints.
    #[arg(long, value_enum, value_name = "GROUP", conflicts_with = "at")]
    pub by: Option<GroupBy>,

    /// With --every: draw a small chart of the states that pile up (SYN-RECEIVED,
    /// ESTABLISHED, CLOSE-WAIT, TIME-WAIT, or those given by --state) instead of a table.
    #[arg(long, conflicts_with = "at")]
    pub plot: bool,

    /// `text` (a table), or `jsonl` (one JSON object per line, for dashboards).
    #[arg(long, value_enum, default_value_t = StatesFormat::Text)]
    pub format: StatesFormat,

    /// Only these states (comma-separated, e.g. `CLOSE-WAIT,TIME-WAIT`; `ss` names work):
    /// with --at the endpoints in them, with --every the columns shown.
    #[arg(long, value_name = "STATE", value_delimiter = ',', value_parser = parse_state)]
    pub state: Vec<State>,

    /// Only connections with this address at either end.
    #[arg(long, value_name = "IP")]
    pub host: Option<IpAddr>,

    /// Only connections with this port at either end.
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,

    /// Only the endpoints of this side.
    #[arg(long, value_enum)]
    pub side: Option<SideArg>,

    /// No progress bar and no warnings on standard error.
    #[arg(long, short)]
    pub quiet: bool,

    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GroupBy {
    Server,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StatesFormat {
    Text,
    Jsonl,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SideArg {
    Client,
    Server,
}

/// A step of at least a nanosecond.
fn parse_step(text: &str) -> Result<i64, String> {
    match parse_duration(text)? {
        0 => Err(format!("`{text}`: the step must be longer than zero")),
        ns => Ok(ns),
    }
}

impl StatesArgs {
    fn filter(&self) -> Filter {
        Filter {
            side: self.side.map(|s| match s {
                SideArg::Client => Side::Client,
                SideArg::Server => Side::Server,
            }),
            host: self.host,
            port: self.port,
        }
    }
}

pub(super) fn run(args: &StatesArgs) -> u8 {
    let settings = args.analysis.settings();
    match (args.at, args.every) {
        (Some(at), _) => instant(args, at, settings),
        (None, Some(step)) => series(args, step, settings),
        (None, None) => {
            eprintln!("tcplife: states needs --at TIME or --every DURATION");
            exit::USAGE
        }
    }
}

/// Runs the analysis into `sink`; `None` after telling why when the run could not finish.
fn analyse(args: &StatesArgs, settings: Settings, sink: &mut dyn Sink) -> Option<RunReport> {
    let mut progress: Box<dyn Progress> = if args.quiet || !io::stderr().is_terminal() {
        Box::new(NoProgress)
    } else {
        Box::new(Bar::new())
    };
    match analyze::analyze(&args.captures, settings, sink, progress.as_mut()) {
        Ok(report) => {
            if !args.quiet {
                warn(&report);
            }
            Some(report)
        }
        Err(e) => {
            eprintln!("tcplife: {e}");
            None
        }
    }
}

/// The exit code once the output is written (or could not be).
fn finish(written: io::Result<()>, report: &RunReport) -> u8 {
    match written {
        Ok(()) => exit_code(report),
        // `tcplife states x.pcap --every 1s | head` is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => exit_code(report),
        Err(e) => {
            eprintln!("tcplife: cannot write the output: {e}");
            exit::OUTPUT
        }
    }
}

fn stdout() -> io::BufWriter<io::StdoutLock<'static>> {
    io::BufWriter::with_capacity(1 << 16, io::stdout().lock())
}

fn instant(args: &StatesArgs, at: TimeArg, settings: Settings) -> u8 {
    let mut sink = Instant::new(InstantOptions {
        at,
        filter: args.filter(),
        states: args.state.clone(),
        idle_timeout_ns: settings.track.idle_timeout_ns,
    });
    let Some(report) = analyse(args, settings, &mut sink) else {
        return exit::OUTPUT;
    };
    let (Some(at_ns), Some(start_ns)) = sink.when() else {
        eprintln!("tcplife: no packets: nothing was alive at any time");
        return exit_code(&report);
    };
    if !args.quiet {
        tell_outside(at_ns, start_ns, sink.went_past(), &report);
    }
    let mut out = stdout();
    let rows = sink.rows();
    let written = match args.format {
        StatesFormat::Text => write_instant_table(&mut out, at_ns, start_ns, &rows),
        StatesFormat::Jsonl => write_instant_jsonl(&mut out, &rows),
    };
    finish(written, &report)
}

/// Says when the instant lies before the capture's first packet or after its last.
fn tell_outside(at_ns: i64, start_ns: i64, went_past: bool, report: &RunReport) {
    if at_ns < start_ns {
        eprintln!(
            "tcplife: note: {} is before the first packet ({})",
            crate::time::Rfc3339(at_ns),
            crate::time::Rfc3339(start_ns)
        );
        return;
    }
    let Some((_, last)) = capture_span(&report.inputs) else {
        return;
    };
    if !went_past && at_ns > last {
        eprintln!(
            "tcplife: note: {} is after the last packet ({}): endpoints as they were left, with \
             TIME-WAIT and idle timers run on",
            crate::time::Rfc3339(at_ns),
            crate::time::Rfc3339(last)
        );
    }
}

fn series(args: &StatesArgs, step_ns: i64, settings: Settings) -> u8 {
    let mut sink = Series::new(SeriesOptions {
        step_ns,
        by_server: args.by == Some(GroupBy::Server),
        filter: args.filter(),
        idle_timeout_ns: settings.track.idle_timeout_ns,
    });
    let Some(report) = analyse(args, settings, &mut sink) else {
        return exit::OUTPUT;
    };
    let (Some(start_ns), Some((_, end_ns))) = (sink.start_ns(), capture_span(&report.inputs))
    else {
        eprintln!("tcplife: no packets: no series");
        return exit_code(&report);
    };
    let steps = sink.steps(end_ns);
    if steps > MAX_STEPS {
        eprintln!(
            "tcplife: --every {} makes {steps} instants over the capture; choose a longer step",
            crate::time::Human(step_ns)
        );
        return exit::USAGE;
    }
    let ctx = SeriesContext {
        start_ns,
        end_ns,
        step_ns,
        steps,
        by_server: sink.options().by_server,
        states: shown_states(args),
    };
    let mut out = stdout();
    let mut writer: Box<dyn RowWriter + '_> = match (args.plot, args.format) {
        (true, _) => Box::new(Plot::new(&mut out)),
        (false, StatesFormat::Text) => Box::new(Table(&mut out)),
        (false, StatesFormat::Jsonl) => Box::new(JsonLines(&mut out)),
    };
    let written = write_series(&sink, &ctx, writer.as_mut());
    finish(written, &report)
}

/// The states a series shows: those asked for, else all eleven (four in a chart).
fn shown_states(args: &StatesArgs) -> Vec<State> {
    match (args.state.is_empty(), args.plot) {
        (false, _) => args.state.clone(),
        (true, true) => PLOTTED.to_vec(),
        (true, false) => State::ALL.to_vec(),
    }
}

fn write_series(sink: &Series, ctx: &SeriesContext, writer: &mut dyn RowWriter) -> io::Result<()> {
    writer.begin(ctx)?;
    sink.for_each_row(ctx.end_ns, &ctx.states, |row| writer.row(ctx, row))?;
    writer.end(ctx)
}
