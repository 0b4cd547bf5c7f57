//! `malloc(64)` + `free` pairs through the hooks against glibc's own, in one
//! process: `pair_loop [PAIRS]` prints nanoseconds a pair for each and the
//! ratio. Build it with and without `--features profile` to compare
//! profiling mode with plain tracking (criterion's `profile_mode` group
//! measures the same in its own build).

use leakcheck_benches::glibc;
use std::hint::black_box;
use std::time::Instant;

fn time(pairs: u64, pair: impl Fn()) -> f64 {
    let started = Instant::now();
    for _ in 0..pairs {
        pair();
    }
    started.elapsed().as_nanos() as f64 / pairs as f64
}

fn main() {
    let pairs: u64 = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("PAIRS: a whole number"))
        .unwrap_or(20_000_000);
    // SAFETY: a plain allocation of 64 bytes, freed at once by its allocator.
    let plain = || unsafe { glibc::free(black_box(glibc::malloc(64))) };
    // SAFETY: as above, through the hooks.
    let hooked = || unsafe { libc::free(black_box(libc::malloc(64))) };
    let (mut best_plain, mut best_hooked) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        best_plain = best_plain.min(time(pairs / 5, plain));
        best_hooked = best_hooked.min(time(pairs / 5, hooked));
    }
    println!(
        "glibc {best_plain:.1} ns, hooks {best_hooked:.1} ns, ratio {:.2} (profile feature: {})",
        best_hooked / best_plain,
        cfg!(feature = "profile")
    );
}
