//! Stack capture joins the previous walk of the thread where the stack is
//! still what that walk found, and reuses its outer frames. With
//! `LEAKCHECK_VERIFY_STACKS=1` every such walk is compared with a full one;
//! here a child runs checks whose allocations come through glibc's `qsort`
//! and the system's zlib (optimised C without frame pointers), from deep
//! recursions cut at the stack depth, from one helper called at two sites,
//! and from threads, and must see no difference. The same leaks must show
//! the same stacks with the mode off.

mod common;

use common::{is_child, run_child};
use leakcheck::Report;
use leakcheck_test_support::{thread_leak, zlib_deflate_init_leak, zlib_roundtrip_clean};
use std::ffi::{c_int, c_void};
use std::hint::black_box;

extern "C" fn compare(a: *const c_void, b: *const c_void) -> c_int {
    // SAFETY: a plain allocation, freed at once: one capture each.
    unsafe { libc::free(black_box(libc::malloc(24))) };
    // SAFETY: qsort passes pointers to two elements of the u32 array.
    let (a, b) = unsafe { (*a.cast::<u32>(), *b.cast::<u32>()) };
    a.cmp(&b) as c_int
}

fn sort_allocating() {
    let mut values: Vec<u32> = (0..2000u32)
        .map(|i| i.wrapping_mul(2_654_435_761) % 997)
        .collect();
    // SAFETY: sorting a live array of u32 with a matching comparator.
    unsafe { libc::qsort(values.as_mut_ptr().cast(), values.len(), 4, Some(compare)) };
    assert!(values.windows(2).all(|w| w[0] <= w[1]));
}

/// Allocates at every level of a recursion deeper than the default stack
/// depth, on the way down and back up; leaks one block at the bottom.
#[inline(never)]
fn recurse(n: u32) {
    // SAFETY: a plain allocation, freed at once.
    unsafe { libc::free(black_box(libc::malloc(16))) };
    if n == 0 {
        // SAFETY: leaked on purpose.
        black_box(unsafe { libc::malloc(40) });
    } else {
        recurse(black_box(n - 1));
    }
    // SAFETY: as above.
    unsafe { libc::free(black_box(libc::malloc(16))) };
}

/// One helper, called from two sites at the same stack depth: its frame and
/// its return address into the allocation are the same both times.
#[inline(never)]
fn helper(size: usize) {
    // SAFETY: leaked on purpose.
    black_box(unsafe { libc::malloc(size) });
}

#[inline(never)]
fn site_a() {
    helper(black_box(72));
    black_box(());
}

#[inline(never)]
fn site_b() {
    helper(black_box(88));
    black_box(());
}

/// Every workload's report, in order.
fn workloads() -> Vec<Report> {
    vec![
        leakcheck::check(sort_allocating),
        leakcheck::check(|| {
            let data: Vec<u8> = (0..30_000u32).map(|i| (i * 7 % 251) as u8).collect();
            assert_eq!(zlib_roundtrip_clean(&data), data);
        }),
        leakcheck::check(zlib_deflate_init_leak),
        leakcheck::check(|| {
            for _ in 0..black_box(3) {
                recurse(black_box(45));
            }
        }),
        leakcheck::check(|| {
            for _ in 0..black_box(50) {
                site_a();
                site_b();
            }
        }),
        leakcheck::check(|| thread_leak(black_box(3), black_box(56))),
    ]
}

/// Each leak as (bytes, blocks, function names of its stack).
fn leaks(report: &Report) -> Vec<(usize, usize, Vec<String>)> {
    let mut leaks: Vec<_> = report
        .leaks()
        .iter()
        .map(|leak| {
            let names = leak
                .stack
                .iter()
                .map(|f| f.function.clone().unwrap_or_default())
                .collect();
            (leak.bytes, leak.blocks, names)
        })
        .collect();
    leaks.sort();
    leaks
}

#[test]
fn verified_child() {
    if !is_child("verified_child") {
        return;
    }
    let reports = workloads();
    // The helper's two sites are told apart.
    let sites = leaks(&reports[4]);
    assert_eq!(sites.len(), 2, "{}", reports[4]);
    let through = |name: &str| {
        sites
            .iter()
            .filter(|s| s.2.iter().any(|f| f.contains(name)))
            .count()
    };
    assert_eq!(
        (through("site_a"), through("site_b")),
        (1, 1),
        "{}",
        reports[4]
    );
    // Its own line each: libtest's `test … ` has no newline yet.
    println!();
    for report in &reports {
        println!("leaks: {:?}", leaks(report));
    }
    println!("verified child done");
}

#[test]
fn joined_walks_match_full_walks() {
    let verified = run_child("verified_child", &[("LEAKCHECK_VERIFY_STACKS", "1")]);
    verified.assert_passed("verified child done");
    assert!(
        !verified.stderr.contains("differs from a full one"),
        "{}",
        verified.output()
    );
    // The same leaks, with the same stacks, as a run without the mode.
    let plain = run_child("verified_child", &[]);
    plain.assert_passed("verified child done");
    let lines = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.starts_with("leaks: "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(lines(&verified.stdout), lines(&plain.stdout));
    assert_eq!(lines(&plain.stdout).len(), 6, "{}", plain.output());
}
