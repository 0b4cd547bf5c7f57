//! `malloc(64)` + `free` pairs inside a check, in one process:
//! `scope_loop [PAIRS] [DEPTH]` prints nanoseconds a pair inside
//! `leakcheck::check` (DEPTH frames deeper than the shortest stack) and for
//! glibc's own pair, and the ratio. For `perf stat` and `perf record`:
//! criterion's `malloc_free` group measures the same.

use leakcheck_benches::{glibc, timed_in_check};
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let pairs: u64 = args
        .next()
        .map(|n| n.parse().expect("PAIRS: a whole number"))
        .unwrap_or(5_000_000);
    let depth: usize = args
        .next()
        .map(|n| n.parse().expect("DEPTH: a whole number"))
        .unwrap_or(0);
    // SAFETY: a plain allocation of 64 bytes, freed at once by its allocator.
    let plain = || unsafe { glibc::free(black_box(glibc::malloc(64))) };
    // SAFETY: as above, through the hooks.
    let hooked = || unsafe { libc::free(black_box(libc::malloc(64))) };
    let (mut best_plain, mut best_scope) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        let started = Instant::now();
        for _ in 0..pairs / 5 {
            plain();
        }
        let ns = started.elapsed().as_nanos() as f64 / (pairs / 5) as f64;
        best_plain = best_plain.min(ns);
        let elapsed = timed_in_check(pairs / 5, depth, hooked);
        best_scope = best_scope.min(elapsed.as_nanos() as f64 / (pairs / 5) as f64);
    }
    println!(
        "glibc {best_plain:.1} ns, in a check (depth +{depth}) {best_scope:.1} ns, ratio {:.2}",
        best_scope / best_plain
    );
}
