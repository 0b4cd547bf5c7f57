//! Under valgrind, which redirects the executable's own `malloc` to its
//! replacement, the hooks see no C allocation. The start-up self-test must
//! notice, and every verdict must say so (`error`, kind
//! `c_allocations_invisible`) instead of reporting a blind `clean`.
//!
//! Nor may leakcheck's own work make valgrind report errors (it wiped dead
//! stacks, "invalid write below the stack pointer", once per check): the
//! child, which also runs a thread inside the check, must pass under
//! `--error-exitcode`.
//!
//! Needs `valgrind` on PATH (`.ci/run` installs it and sets
//! `LEAKCHECK_REQUIRE_VALGRIND=1`, which turns its absence into a failure).

mod common;

use common::is_child;
use std::process::Command;

/// The child: a C leak that leakcheck cannot see under valgrind.
#[test]
fn child_checks_a_c_leak() {
    if !is_child("valgrind_child") {
        return;
    }
    let report = leakcheck::check(|| {
        // SAFETY: a plain C allocation, leaked on purpose.
        std::hint::black_box(unsafe { libc::malloc(40) });
        std::thread::spawn(|| std::hint::black_box(vec![1u8; 8]))
            .join()
            .unwrap();
    });
    println!("STATUS={:?}", report.status());
    println!(
        "KINDS={:?}",
        report.errors().iter().map(|e| e.kind).collect::<Vec<_>>()
    );
    println!("{report}");
}

#[test]
fn under_valgrind_the_verdict_is_an_error_not_a_blind_clean() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("LEAKCHECK_REQUIRE_VALGRIND").is_none(),
            "valgrind is required here (apt-get install valgrind)"
        );
        eprintln!("valgrind is not installed: this test checked nothing (install it to run it)");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let exe = exe.to_str().unwrap();
    let out = Command::new("valgrind")
        .args(["-q", "--leak-check=no", "--error-exitcode=97", exe])
        .args([
            "--exact",
            "child_checks_a_c_leak",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(common::CHILD_ENV, "valgrind_child")
        .env_remove("LEAKCHECK")
        .output()
        .expect("run valgrind");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(!stderr.contains("Invalid write"), "{stderr}");
    assert!(stdout.contains("STATUS=Error"), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("c_allocations_invisible"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("something replaced the executable's malloc"),
        "{stdout}"
    );
}
