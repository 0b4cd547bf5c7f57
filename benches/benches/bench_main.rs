//! leakcheck's overhead, measured with criterion: the allocation path
//! (`malloc_free`, `realloc_grow`, `rust_box`) and the end-of-check verdict (`verdict`).
//!
//! Every group measures its own baseline in the same run, so ratios hold on a
//! noisy machine. `cargo bench -p leakcheck-benches` measures;
//! `cargo test --benches -p leakcheck-benches` runs each benchmark once.

use criterion::criterion_main;

mod benchmarks;

#[cfg(not(feature = "profile"))]
criterion_main! {
    benchmarks::malloc_free::benches,
    benchmarks::realloc_grow::benches,
    benchmarks::rust_box::benches,
    benchmarks::verdict::benches,
}

// Profiling mode changes what every allocation does, so it is measured in
// a build of its own.
#[cfg(feature = "profile")]
criterion_main! {
    benchmarks::profile_mode::benches,
}
