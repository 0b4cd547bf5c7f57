//! Shared by the `summary_*.rs` tests: real reports from the fixture test
//! binaries (`fixture_a`, `fixture_b`) in two "shards", and running the CLI.

#![allow(dead_code, reason = "each test file uses part of it")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The reports of one run of the fixtures.
pub struct Suite {
    /// Shard 1: every `fixture_a` test (`a_leaks_c`, `a_clean`,
    /// `a_reachable`, `rerun` leaking 16 bytes), with `LEAKCHECK_PPROF=1`.
    pub shard1: PathBuf,
    /// Shard 2: every `fixture_b` test (`b_leaks_c`, `b_leaks_rust`,
    /// `b_clean`), then `fixture_a`'s `rerun` again, fixed: the later report.
    pub shard2: PathBuf,
    /// A scratch directory for the test file.
    pub scratch: PathBuf,
}

/// The workspace root: the CLI runs there, so paths print relative to it.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The fixture test binary `name` of this build: in the same `deps`
/// directory as this test binary (cargo builds every test target of the
/// package together), else built with `cargo test --no-run` (when only one
/// test file was asked for).
pub fn fixture(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let prefix = format!("{name}-");
    let newest = std::fs::read_dir(deps)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let file = e.file_name();
            let file = file.to_string_lossy();
            file.strip_prefix(&prefix)
                .is_some_and(|hash| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max();
    if let Some((_, path)) = newest {
        return path;
    }
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args([
        "test",
        "--no-run",
        "--message-format=json",
        "-p",
        "cargo-leakcheck",
        "--test",
        name,
    ]);
    if deps.parent().is_some_and(|p| p.ends_with("release")) {
        cargo.arg("--release");
    }
    let out = cargo.current_dir(workspace()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| {
            (v["target"]["name"] == name)
                .then(|| v["executable"].as_str().map(PathBuf::from))
                .flatten()
        })
        .unwrap_or_else(|| panic!("cargo built no executable for the test target {name}"))
}

/// Runs the ignored (fixture) tests of `binary` into `dir`.
pub fn run_fixture(binary: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) {
    let out = Command::new(fixture(binary))
        .arg("--ignored")
        .args(args)
        .env("LEAKCHECK_REPORT_DIR", dir)
        .env_remove("LEAKCHECK_PPROF")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("test result:"),
        "{binary} did not run:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The fixtures' reports, made once per test binary (`tag` names its
/// directory under cargo's temporary directory).
pub fn suite(tag: &str) -> &'static Suite {
    static SUITE: OnceLock<Suite> = OnceLock::new();
    SUITE.get_or_init(|| {
        // Per process: nextest runs each test in a process of its own.
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(tag)
            .join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&root);
        let suite = Suite {
            shard1: root.join("shard1"),
            shard2: root.join("shard2"),
            scratch: root.join("scratch"),
        };
        std::fs::create_dir_all(&suite.scratch).unwrap();
        run_fixture("fixture_a", &suite.shard1, &[], &[("LEAKCHECK_PPROF", "1")]);
        run_fixture("fixture_b", &suite.shard2, &[], &[]);
        // The rerun must finish in a later millisecond than the first run.
        std::thread::sleep(std::time::Duration::from_millis(5));
        run_fixture(
            "fixture_a",
            &suite.shard2,
            &["--exact", "rerun"],
            &[
                ("LEAKCHECK_CLI_FIXTURE_FIXED", "1"),
                ("LEAKCHECK_PPROF", "1"),
            ],
        );
        suite
    })
}

/// Runs `cargo-leakcheck` with `args` (as cargo runs it: `leakcheck` first)
/// in the workspace root.
pub fn cli(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-leakcheck"))
        .arg("leakcheck")
        .args(args.iter().map(|a| a.as_ref()))
        .current_dir(workspace())
        .env_remove("LEAKCHECK_REPORT_DIR")
        .output()
        .unwrap()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `fixture_leak (test-support/c/fixtures.c:LINE)`: the C frame every C
/// site starts at.
pub fn c_frame() -> String {
    format!(
        "fixture_leak (test-support/c/fixtures.c:{})",
        leakcheck_test_support::line_of("leak")
    )
}
