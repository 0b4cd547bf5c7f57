//! leakcheck's overhead, measured with criterion: the allocation path
//! (`malloc_free`, `rust_box`) and the end-of-check verdict (`verdict`).
//!
//! Every group measures its own baseline in the same run, so ratios hold on a
//! noisy machine. `cargo bench -p leakcheck-benches` measures;
//! `cargo test --benches -p leakcheck-benches` runs each benchmark once.

use criterion::criterion_main;

mod benchmarks;

criterion_main! {
    benchmarks::malloc_free::benches,
    benchmarks::rust_box::benches,
    benchmarks::verdict::benches,
}
