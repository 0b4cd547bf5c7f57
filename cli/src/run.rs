//! `test` and `nextest`: run the suite with a fresh report directory, then
//! the summary; and where reports are by default.

use crate::{summarize, Fatal, RunArgs};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Which runner.
#[derive(Clone, Copy, Debug)]
pub enum Runner {
    /// `cargo test`.
    Test,
    /// `cargo nextest run`.
    Nextest,
}

fn cargo() -> OsString {
    // Set by cargo for the subcommands it runs.
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// `$LEAKCHECK_REPORT_DIR`, else `<target dir>/leakcheck`: where the
/// runtime writes reports. The target directory comes from
/// `cargo metadata` (which honours `CARGO_TARGET_DIR` and cargo's config),
/// else `CARGO_TARGET_DIR`, else `target`.
pub fn default_report_dir() -> PathBuf {
    match std::env::var_os("LEAKCHECK_REPORT_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => target_dir().join("leakcheck"),
    }
}

fn target_dir() -> PathBuf {
    let metadata = Command::new(cargo())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(std::process::Stdio::null())
        .output();
    if let Ok(output) = metadata {
        if output.status.success() {
            if let Some(dir) = serde_json::from_slice::<serde_json::Value>(&output.stdout)
                .ok()
                .and_then(|v| v["target_directory"].as_str().map(PathBuf::from))
            {
                return dir;
            }
        }
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
}

/// What the runtime writes into a report directory: `*.json`, `*.pb.gz`,
/// and their `*.partial` files while they are written.
fn is_report_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path.is_file()
        && (name.ends_with(".json") || name.ends_with(".pb.gz") || name.ends_with(".partial"))
}

/// Empties `dir` of reports, refusing a directory that holds anything else
/// (a typo in `--report-dir` must not delete someone's files).
fn fresh(dir: &Path) -> Result<(), Fatal> {
    let failed = |e: std::io::Error| Fatal(format!("cannot prepare {}: {e}", dir.display()));
    if dir.exists() {
        let entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(failed)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(failed)?;
        if let Some(other) = entries.iter().find(|p| !is_report_file(p)) {
            return Err(Fatal(format!(
                "{} holds {}, which is not a leakcheck report; give an empty or new --report-dir",
                dir.display(),
                other.display()
            )));
        }
        for path in entries {
            std::fs::remove_file(&path).map_err(failed)?;
        }
    }
    std::fs::create_dir_all(dir).map_err(failed)
}

/// The crates leakcheck runs on the allocation path and in the verdict:
/// itself, and the unwinding and symbolisation crates under it. A
/// dependency is built at the dev profile's `opt-level = 0`, where they
/// made rusqlite's suite 3–5 times slower than at `opt-level = 3`
/// (README, "Real suites").
pub const OPTIMISED: &[&str] = &[
    "leakcheck",
    "leakcheck-suppress",
    "leakcheck-profile",
    "backtrace",
    "gimli",
    "addr2line",
    "object",
    "miniz_oxide",
    "adler2",
    "rustc-demangle",
];

/// cargo's arguments for [`OPTIMISED`] at opt-level 3 in the dev profile
/// (which `test` inherits; `--release` is optimised already). A package
/// that is not in the build is ignored by cargo; a value the user gives
/// with `--config` later on the command line wins.
pub fn profile_overrides() -> Vec<OsString> {
    OPTIMISED
        .iter()
        .flat_map(|name| {
            [
                OsString::from("--config"),
                format!("profile.dev.package.{name}.opt-level=3").into(),
            ]
        })
        .collect()
}

/// `cargo test` or `cargo nextest run`: the overrides unless
/// `keep_profile`, then the user's arguments (so that their `--config`
/// wins, and a `--` of theirs comes after ours), writing into `dir`.
fn cargo_command(runner: Runner, keep_profile: bool, args: &[OsString], dir: &Path) -> Command {
    let mut command = Command::new(cargo());
    match runner {
        Runner::Test => command.arg("test"),
        Runner::Nextest => command.args(["nextest", "run"]),
    };
    if !keep_profile {
        command.args(profile_overrides());
    }
    command.args(args).env("LEAKCHECK_REPORT_DIR", dir);
    command
}

/// Runs the suite, then the summary; the exit status.
pub fn run(runner: Runner, args: RunArgs) -> Result<u8, Fatal> {
    let dir = match args.report_dir {
        Some(dir) => dir,
        None => default_report_dir(),
    };
    fresh(&dir)?;
    let dir = dir.canonicalize().unwrap_or(dir);
    let status = cargo_command(runner, args.keep_profile, &args.args, &dir)
        .status()
        .map_err(|e| Fatal(format!("cannot run cargo: {e}")))?;
    match summarize(&[dir], &args.outputs) {
        // Tests that failed for other reasons fail the run too.
        Ok(code) => Ok(code.max(u8::from(!status.success()))),
        Err(Fatal(message)) if !status.success() => Err(Fatal(format!(
            "the tests failed ({status}), and the summary could not be made: {message}"
        ))),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overrides_come_before_the_users_arguments() {
        let user: Vec<OsString> = ["-p", "x", "--", "--nocapture"].map(OsString::from).into();
        let dir = Path::new("/tmp/r");
        for (runner, first) in [(Runner::Test, 1), (Runner::Nextest, 2)] {
            let command = cargo_command(runner, false, &user, dir);
            let args: Vec<&std::ffi::OsStr> = command.get_args().collect();
            let overrides = profile_overrides();
            assert_eq!(args[first..first + overrides.len()], overrides[..]);
            assert_eq!(args[first + overrides.len()..], user[..]);
            let kept = cargo_command(runner, true, &user, dir);
            assert_eq!(kept.get_args().skip(first).collect::<Vec<_>>(), user);
        }
    }

    #[test]
    fn overrides_are_config_pairs_for_every_crate() {
        let args = profile_overrides();
        assert_eq!(args.len(), 2 * OPTIMISED.len());
        for (pair, name) in args.chunks(2).zip(OPTIMISED) {
            assert_eq!(pair[0], "--config");
            assert_eq!(
                pair[1],
                OsString::from(format!("profile.dev.package.{name}.opt-level=3"))
            );
        }
    }
}
