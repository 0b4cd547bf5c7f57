//! When the quarantine cannot keep freed addresses out of use, the verdict
//! says so: a check that frees more than the quarantine holds, or one in a
//! process with a handler for an asynchronous signal (the quarantine is
//! off there), gets a warning beside its leaks, since a leaked block at a
//! reused address may be reported still reachable. Each case runs in a
//! child of its own: the quarantine and the handler state are the whole
//! process's.

mod common;

use common::{is_child, run_binary_within};
use leakcheck::Report;
use leakcheck_test_support as fixtures;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

fn warning<'r>(report: &'r Report, kind: &str) -> Option<&'r str> {
    report
        .warnings()
        .iter()
        .find(|w| w.kind == kind)
        .map(|w| w.message.as_str())
}

fn misuse_kinds(report: &Report) -> Vec<&str> {
    report.misuse().iter().map(|m| m.kind).collect()
}

/// Runs `test` of this binary alone in a child and asserts it passed.
fn in_child(test: &str) -> String {
    let child = run_binary_within(
        120,
        &["--exact", test, "--nocapture", "--test-threads=1"],
        test,
        &[],
    );
    let output = child.output();
    assert!(!child.timed_out(), "hung:\n{output}");
    assert!(child.status.success(), "{output}");
    assert!(output.contains("child done"), "{output}");
    output
}

const OVERFLOW: &str = "a_check_that_frees_more_than_the_quarantine_holds_is_warned";

#[test]
fn a_check_that_frees_more_than_the_quarantine_holds_is_warned() {
    if !is_child(OVERFLOW) {
        in_child(OVERFLOW);
        return;
    }
    // A check that frees little: no warning.
    let quiet = leakcheck::check(|| {
        for _ in 0..100 {
            drop(black_box(vec![1u8; 4096]));
        }
        fixtures::leak(1, 48);
    });
    assert_eq!(quiet.leaked_blocks(), 1, "{quiet}");
    assert_eq!(warning(&quiet, "quarantine_overflowed"), None, "{quiet}");
    // 24 MiB of 64 KiB blocks freed inside the check: the quarantine holds
    // 16 MiB, so about a third of them went back to glibc early.
    let busy = leakcheck::check(|| {
        for _ in 0..384 {
            drop(black_box(vec![1u8; 64 << 10]));
        }
        fixtures::leak(1, 48);
    });
    assert_eq!(busy.leaked_blocks(), 1, "{busy}");
    let message = warning(&busy, "quarantine_overflowed").unwrap_or_else(|| panic!("{busy}"));
    let evicted: usize = message
        .split(' ')
        .next()
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("no count first: {message}"));
    // 384 blocks of 64 KiB + 16 bytes each against 16 MiB: at least 128 out.
    assert!((128..=384).contains(&evicted), "{message}");
    assert!(
        message.ends_with(
            "blocks freed while this check ran went back to glibc before its verdict: the \
             quarantine holds at most 16 MiB in 262,144 blocks, shared by the checks running at \
             once; a leaked block at one of their addresses may be reported still reachable or \
             possibly lost (run fewer such tests at once)"
        ),
        "{message}"
    );
    // The text report shows it with the leak.
    assert!(busy.to_string().contains("\n\nwarning: "), "{busy}");
    // A check after it, freeing little, is not told about that one's.
    let after = leakcheck::check(|| fixtures::leak(1, 48));
    assert_eq!(warning(&after, "quarantine_overflowed"), None, "{after}");
    println!("child done");
}

static TICKS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn counting_handler(_signal: libc::c_int) {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

/// Whether a C block freed and allocated again at once gets its address
/// back (glibc's per-thread cache is last in, first out): only when the
/// quarantine does not hold it.
fn freed_address_comes_back() -> bool {
    // SAFETY: a malloc, its free and a malloc of the same size, freed; only
    // the addresses are compared.
    unsafe {
        let first = black_box(libc::malloc(200));
        libc::free(first);
        let second = black_box(libc::malloc(200));
        libc::free(second);
        first == second
    }
}

const HANDLER: &str = "a_handler_for_an_asynchronous_signal_turns_the_quarantine_off_and_is_warned";

#[test]
fn a_handler_for_an_asynchronous_signal_turns_the_quarantine_off_and_is_warned() {
    if !is_child(HANDLER) {
        in_child(HANDLER);
        return;
    }
    // Before any handler: a check's frees are held, and its verdict says
    // nothing about the quarantine.
    let before = leakcheck::check(|| {
        assert!(
            !freed_address_comes_back(),
            "the quarantine holds what is freed"
        );
        fixtures::leak(1, 48);
    });
    assert_eq!(before.leaked_blocks(), 1, "{before}");
    assert_eq!(warning(&before, "quarantine_off"), None, "{before}");
    // A timer's handler, even one that only counts: nothing is held from
    // here on (the handler might allocate, and held blocks keep glibc's
    // per-thread cache empty), and a verdict with survivors says why its
    // kinds may be off.
    common::install_signal_handler(libc::SIGUSR2, counting_handler);
    let off = leakcheck::check(|| {
        // SAFETY: the handler runs on this thread before raise returns.
        unsafe { libc::raise(libc::SIGUSR2) };
        assert!(freed_address_comes_back(), "nothing is held");
        fixtures::leak(1, 48);
    });
    assert_eq!(TICKS.load(Ordering::Relaxed), 1);
    assert_eq!(misuse_kinds(&off), Vec::<&str>::new(), "{off}");
    assert_eq!(off.leaked_blocks(), 1, "{off}");
    let message = warning(&off, "quarantine_off").unwrap_or_else(|| panic!("{off}"));
    assert!(
        message.starts_with(
            "a handler for an asynchronous signal is installed in this process, so freed blocks \
             go back to glibc at once"
        ),
        "{message}"
    );
    // A clean check is told nothing: no block of it could be misjudged.
    let clean = leakcheck::check(|| drop(black_box(vec![1u8; 64])));
    assert!(clean.is_clean(), "{clean}");
    assert!(clean.warnings().is_empty(), "{clean:?}");
    println!("child done");
}
