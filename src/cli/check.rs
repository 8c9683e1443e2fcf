//! `tcplife check`: compare captures with committed expectations.

use super::{AnalysisArgs, exit};
use crate::analyze::Settings;
use crate::check::{self, Verdict};
use std::io::{self, Write};

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

/// `tcplife check`: one capture, or every capture of a directory.
pub(super) fn run(args: &CheckArgs) -> u8 {
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
