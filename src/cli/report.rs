//! `tcplife report`: one self-contained HTML file about the captures.

use super::progress::Bar;
use super::{AnalysisArgs, exit};
use crate::analyze::{NoProgress, Progress};
use crate::picture::html;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Capture files (pcap or pcapng, optionally compressed), read in order as one timeline.
    /// Read twice (the second time to draw ladders), so not standard input.
    #[arg(required = true, value_name = "CAPTURE")]
    pub captures: Vec<String>,

    /// The HTML file to write (`-`: standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: String,

    /// No progress bar and no warnings on standard error.
    #[arg(long, short)]
    pub quiet: bool,

    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

pub(super) fn run(args: &ReportArgs) -> u8 {
    if let Some(code) = super::refuse_stdin("report", &args.captures) {
        return code;
    }
    let mut out: Box<dyn Write> = if args.output == "-" {
        Box::new(BufWriter::new(io::stdout().lock()))
    } else {
        match File::create(&args.output) {
            Ok(f) => Box::new(BufWriter::new(f)),
            Err(e) => {
                eprintln!("tcplife: cannot create {}: {e}", args.output);
                return exit::OUTPUT;
            }
        }
    };
    let mut progress: Box<dyn Progress> = if args.quiet || !io::stderr().is_terminal() {
        Box::new(NoProgress)
    } else {
        Box::new(Bar::new())
    };
    let settings = args.analysis.settings();
    match html::write_report(&args.captures, settings, out.as_mut(), progress.as_mut()) {
        Ok(report) => {
            if !args.quiet {
                super::analyze::warn(&report);
            }
            super::analyze::exit_code(&report)
        }
        Err(e) => {
            eprintln!("tcplife: cannot write the report to {}: {e}", args.output);
            exit::OUTPUT
        }
    }
}
