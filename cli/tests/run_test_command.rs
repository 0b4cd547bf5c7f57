//! `cargo leakcheck test` and `nextest`: the suite runs with a fresh report
//! directory (earlier reports removed, a directory holding anything else
//! refused), then the summary of that run, whose status is the command's.

mod support;

use std::path::Path;
use support::{stderr, stdout, workspace};

fn leakcheck(args: &[&dyn AsRef<std::ffi::OsStr>]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cargo-leakcheck"))
        .arg("leakcheck")
        .args(args.iter().map(|a| a.as_ref()))
        .current_dir(workspace())
        .env("CARGO", env!("CARGO"))
        .env_remove("LEAKCHECK_REPORT_DIR")
        .output()
        .unwrap()
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("run_test_command")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `cargo leakcheck RUNNER --report-dir DIR -p cargo-leakcheck --test
/// fixture_b EXTRA...`.
fn on_fixture_b(
    runner: &str,
    dir: &Path,
    extra: &[&dyn AsRef<std::ffi::OsStr>],
) -> std::process::Output {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
        &runner,
        &"--report-dir",
        &dir,
        &"-p",
        &"cargo-leakcheck",
        &"--test",
        &"fixture_b",
    ];
    args.extend_from_slice(extra);
    leakcheck(&args)
}

const FIXTURE_B: &str = "leakcheck: 3 tests checked: 1 clean, 2 leaked, 0 error (from 3 reports)\n";

#[test]
fn test_runs_cargo_test_into_a_fresh_dir_then_summarises() {
    let dir = scratch("test");
    // A report of an earlier run that must not count.
    std::fs::write(dir.join("old.a_gone.json"), "{}").unwrap();
    std::fs::write(dir.join("old.a_gone.pb.gz"), "").unwrap();
    let out = on_fixture_b("test", &dir, &[&"--", &"--ignored"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    // cargo test's own output, then the summary.
    assert!(text.contains("test b_leaks_c ... FAILED"), "{text}");
    let summary = &text[text
        .find("leakcheck: 3 tests")
        .unwrap_or_else(|| panic!("{text}"))..];
    assert!(summary.starts_with(FIXTURE_B), "{summary}");
    assert!(
        summary.contains("\n96 bytes in 2 blocks definitely lost, C malloc, in 1 test\n"),
        "{summary}"
    );
    assert!(!dir.join("old.a_gone.json").exists());
    assert!(!dir.join("old.a_gone.pb.gz").exists());
}

#[test]
fn a_report_dir_holding_other_files_is_refused() {
    let dir = scratch("refused");
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let out = leakcheck(&[&"test", &"--report-dir", &dir, &"-p", &"cargo-leakcheck"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(
            "notes.txt, which is not a leakcheck report; give an empty or new --report-dir"
        ),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
        "mine"
    );
    assert_eq!(stdout(&out), "", "cargo must not have run");
}

#[test]
fn nextest_runs_each_test_in_its_process_then_summarises() {
    let has_nextest = std::process::Command::new(env!("CARGO"))
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_nextest {
        eprintln!("SKIPPED: cargo-nextest is not installed");
        return;
    }
    let dir = scratch("nextest");
    let out = on_fixture_b(
        "nextest",
        &dir,
        &[&"--run-ignored", &"only", &"--no-fail-fast"],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(text.starts_with(FIXTURE_B), "{text}");
}
