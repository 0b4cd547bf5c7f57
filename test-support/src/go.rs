//! Running Go's `pprof` on a profile, where Go is installed.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `go tool pprof ARGS` in `dir` (its home, caches and pprof's
/// temporary files there). `None`, said on stderr, where `go` cannot run
/// and `LEAKCHECK_REQUIRE_GO` (set by .ci/run, which installs Go) is unset;
/// with it set, that is a panic.
pub fn go_tool_pprof(dir: &Path, args: &[&dyn AsRef<OsStr>]) -> Option<Output> {
    let run = Command::new("go")
        .args(["tool", "pprof"])
        .args(args.iter().map(|a| a.as_ref()))
        .current_dir(dir)
        .env("HOME", dir)
        .env("GOPATH", dir.join("gopath"))
        .env("GOCACHE", dir.join("gocache"))
        .env("GO111MODULE", "off")
        .env("PPROF_TMPDIR", dir)
        .output();
    match run {
        Ok(out) => Some(out),
        Err(e) if std::env::var_os("LEAKCHECK_REQUIRE_GO").is_none() => {
            eprintln!(
                "SKIPPED: `go` cannot run here ({e}); install Debian's golang-go (as .ci/run does) \
                 to check the profile with go tool pprof"
            );
            None
        }
        Err(e) => panic!("LEAKCHECK_REQUIRE_GO is set but go cannot run: {e}"),
    }
}
