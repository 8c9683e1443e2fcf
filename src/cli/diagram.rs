//! `tcplife diagram`: the ladder of one connection in the terminal.

use super::{AnalysisArgs, exit};
use crate::detect::Kind;
use crate::picture::ladder::LadderOptions;
use crate::picture::text::{self, MIN_WIDTH, TextOptions};
use crate::picture::{self, Selector};
use clap::ValueEnum;
use std::io::{self, IsTerminal, Write};

/// No connection matches the selector.
const NOT_FOUND: u8 = 1;

#[derive(clap::Args, Debug)]
pub struct DiagramArgs {
    /// Capture files (pcap or pcapng, optionally compressed), read in order as one timeline.
    /// Read twice, so not standard input.
    #[arg(required = true, value_name = "CAPTURE")]
    pub captures: Vec<String>,

    /// The connection to draw: its id (`17` or `#17`), or the address and port of either side
    /// (`10.0.0.1:80`, `[2001:db8::1]:443`: the first such connection). Default: the first
    /// connection with a warning, else the first.
    #[arg(long, value_name = "SELECTOR", value_parser = Selector::parse, conflicts_with = "anomaly")]
    pub conn: Option<Selector>,

    /// Draw the first connection with an anomaly of this kind (e.g. `missing_final_ack`).
    #[arg(long, value_name = "KIND")]
    pub anomaly: Option<Kind>,

    /// Draw every segment: do not collapse long data phases into a summary line.
    #[arg(long)]
    pub expand: bool,

    /// Sequence and acknowledgment numbers as on the wire, not relative to each side's ISN.
    #[arg(long)]
    pub absolute_seq: bool,

    /// Width of the picture in columns.
    #[arg(long, value_name = "COLUMNS", default_value_t = 80, value_parser = clap::value_parser!(u16).range(MIN_WIDTH as i64..))]
    pub width: u16,

    /// No warnings on standard error (errors are still printed).
    #[arg(long, short)]
    pub quiet: bool,

    /// Colour: `auto` when standard output is a terminal and NO_COLOR is not set.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,

    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

impl Color {
    fn enabled(self) -> bool {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => !no_color && io::stdout().is_terminal(),
        }
    }
}

pub(super) fn run(args: &DiagramArgs) -> u8 {
    if let Some(code) = super::refuse_stdin("diagram", &args.captures) {
        return code;
    }
    let selector = match (args.conn, args.anomaly) {
        (Some(s), _) => s,
        (None, Some(kind)) => Selector::Anomaly(kind),
        (None, None) => Selector::Default,
    };
    let options = LadderOptions {
        expand: args.expand,
        absolute_seq: args.absolute_seq,
        ..LadderOptions::default()
    };
    let settings = args.analysis.settings();
    let (ladder, report) = match picture::diagram(&args.captures, settings, selector, options) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("tcplife: error: {e}");
            return exit::OUTPUT;
        }
    };
    if !args.quiet {
        super::analyze::warn(&report);
    }
    let code = super::analyze::exit_code(&report);
    let Some(ladder) = ladder else {
        if code == exit::OK {
            eprintln!(
                "tcplife: no connection matches: {} was not found in {} connection(s)",
                selector.describe(),
                report.summary.connections
            );
            return NOT_FOUND;
        }
        return code;
    };
    let text = text::render(
        &ladder,
        TextOptions {
            width: usize::from(args.width),
            color: args.color.enabled(),
        },
    );
    match io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => code,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => code,
        Err(e) => {
            eprintln!("tcplife: cannot write the diagram: {e}");
            exit::OUTPUT
        }
    }
}
