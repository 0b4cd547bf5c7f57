//! `cargo leakcheck`: one verdict over every leakcheck JSON report — of
//! several test binaries and CI shards — as text, Markdown, JUnit, JSON, a
//! pprof heap profile and a flame graph; and `cargo leakcheck test` /
//! `nextest` to run a suite with a fresh report directory and then that
//! summary.
//!
//! Exit status: 0 when nothing failed, 1 when a test leaked or its verdict
//! is an error, 2 for a usage error or a report that cannot be read.

mod render;
mod reports;
mod run;
mod summary;

use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "cargo-leakcheck",
    bin_name = "cargo leakcheck",
    version,
    about = "One leak verdict over leakcheck's JSON reports: text, Markdown, JUnit, JSON, pprof, flame graphs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Merge the JSON reports under DIRs (default: <target dir>/leakcheck)
    /// and print the verdict.
    Summary {
        #[command(flatten)]
        outputs: Outputs,
        /// Report directories (searched recursively) or report files.
        paths: Vec<PathBuf>,
    },
    /// Run `cargo test ARGS` with a fresh report directory, then the summary.
    Test(RunArgs),
    /// Run `cargo nextest run ARGS` with a fresh report directory, then the
    /// summary.
    Nextest(RunArgs),
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    outputs: Outputs,
    /// The report directory to empty and use (default: <target dir>/leakcheck).
    #[arg(long, value_name = "DIR")]
    report_dir: Option<PathBuf>,
    /// Build leakcheck and the crates it symbolises with as your profiles
    /// say. By default they are built at opt-level 3 in the dev profile
    /// (cargo's `--config profile.dev.package.NAME.opt-level=3`), where
    /// their unoptimised code would make the suite several times slower.
    #[arg(long)]
    keep_profile: bool,
    /// Arguments for cargo (everything from the first one this command does
    /// not know).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<OsString>,
}

/// What `summary` writes besides the text.
#[derive(Args, Debug, Default)]
pub struct Outputs {
    /// Print GitHub-flavoured Markdown instead of text (for
    /// $GITHUB_STEP_SUMMARY).
    #[arg(long)]
    pub markdown: bool,
    /// Write JUnit XML: one testcase per checked test.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the merged summary as JSON (schema leakcheck-summary/v1).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the leaked blocks as a gzipped pprof heap profile.
    #[arg(long, value_name = "FILE")]
    pub pprof: Option<PathBuf>,
    /// Write the leaked bytes as a flame graph (SVG).
    #[arg(long, value_name = "FILE.svg")]
    pub flamegraph: Option<PathBuf>,
    /// Include still-reachable and suppressed groups (default: what failed).
    #[arg(long)]
    pub all: bool,
}

/// A usage error, an unreadable report or an unwritable output: exit 2.
pub struct Fatal(pub String);

fn main() -> ExitCode {
    // `cargo leakcheck X` runs `cargo-leakcheck leakcheck X`.
    let mut args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "leakcheck") {
        args.remove(1);
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Summary { outputs, paths } => {
            let paths = if paths.is_empty() {
                vec![run::default_report_dir()]
            } else {
                paths
            };
            summarize(&paths, &outputs)
        }
        Command::Test(args) => run::run(run::Runner::Test, args),
        Command::Nextest(args) => run::run(run::Runner::Nextest, args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => fatal(e),
    }
}

fn fatal(Fatal(message): Fatal) -> ExitCode {
    eprintln!("cargo-leakcheck: {message}");
    ExitCode::from(2)
}

/// Reads the reports under `paths`, prints the summary, writes the files
/// asked for; the exit status.
pub fn summarize(paths: &[PathBuf], outputs: &Outputs) -> Result<u8, Fatal> {
    let reports = reports::read(paths).map_err(|e| Fatal(e.to_string()))?;
    let summary = summary::Summary::new(reports, outputs.all);
    let write = |path: &PathBuf, bytes: &[u8]| {
        std::fs::write(path, bytes)
            .map_err(|e| Fatal(format!("cannot write {}: {e}", path.display())))
    };
    if let Some(path) = &outputs.junit {
        write(
            path,
            render::junit::render(&summary, outputs.all).as_bytes(),
        )?;
    }
    if let Some(path) = &outputs.json {
        write(path, render::json::render(&summary).as_bytes())?;
    }
    if let Some(path) = &outputs.pprof {
        write(path, &render::pprof::render(&summary, outputs.all))?;
    }
    if let Some(path) = &outputs.flamegraph {
        let svg = render::flamegraph::render(&summary, outputs.all)
            .map_err(|e| Fatal(format!("cannot draw the flame graph: {e}")))?;
        write(path, &svg)?;
    }
    if outputs.markdown {
        print!("{}", render::markdown::render(&summary));
    } else {
        print!("{}", render::text::render(&summary));
    }
    Ok(summary.exit_code())
}
