//! Profiling mode (leakcheck's `profile` feature, this crate's `profile`
//! feature): the allocation path of a program that links leakcheck to serve
//! heap profiles, outside any check. Run with
//! `cargo bench -p leakcheck-benches --features profile -- profile_mode`.
//!
//! - `glibc`: `__libc_malloc(64)` / `__libc_free`, the baseline.
//! - `default_rate`: `libc::malloc` / `libc::free` through the hooks with
//!   sampling at the default rate (one sample per 512 KiB): every block
//!   recorded, one in 8192 of these 64-byte blocks with its stack.
//! - `rate_1`: the same with every block sampled (a stack each).
//! - `box_glibc_calloc` / `box_default_rate`: `Box::new([0u8; 64])` with
//!   glibc's `calloc` (what it costs without leakcheck) and through the
//!   tracking allocator at the default rate.

use criterion::{criterion_group, Criterion};
use leakcheck_benches::glibc;
use std::hint::black_box;

const SIZE: usize = 64;

fn glibc_pair() {
    // SAFETY: a plain allocation, freed below.
    let ptr = black_box(unsafe { glibc::malloc(SIZE) });
    // SAFETY: `ptr` came from glibc's malloc above and is freed once.
    unsafe { glibc::free(ptr) };
}

fn hooked_pair() {
    // SAFETY: a plain allocation, freed below.
    let ptr = black_box(unsafe { libc::malloc(SIZE) });
    // SAFETY: `ptr` came from malloc above and is freed once.
    unsafe { libc::free(ptr) };
}

fn glibc_calloc() {
    // SAFETY: a plain allocation, freed below.
    let ptr = black_box(unsafe { glibc::calloc(SIZE, 1) });
    // SAFETY: `ptr` came from glibc's calloc above and is freed once.
    unsafe { glibc::free(ptr) };
}

fn rust_box() {
    drop(black_box(Box::new([0u8; SIZE])));
}

/// Panics unless the hooks sample this routine's blocks at rate 1: proof
/// that the benchmark runs in profiling mode.
fn assert_sampled() {
    leakcheck::set_profile_rate(1).unwrap();
    let before = leakcheck::HeapProfile::take();
    let kept: Vec<usize> = (0..10)
        // SAFETY: a plain allocation, freed below.
        .map(|_| black_box(unsafe { libc::malloc(SIZE) }) as usize)
        .collect();
    let grew = leakcheck::HeapProfile::take().diff(&before);
    for &p in &kept {
        // SAFETY: each came from malloc above and is freed once.
        unsafe { libc::free(p as *mut libc::c_void) };
    }
    // One site per call where the loop was unrolled.
    let sampled: i64 = grew
        .sites()
        .iter()
        .filter(|s| s.inuse_bytes == s.inuse_objects * SIZE as i64)
        .filter(|s| {
            let in_here = |f: &leakcheck::Frame| {
                f.function
                    .as_deref()
                    .is_some_and(|n| n.contains("assert_sampled"))
            };
            s.stack.iter().any(in_here)
        })
        .map(|s| s.inuse_bytes)
        .sum();
    assert_eq!(
        sampled,
        10 * SIZE as i64,
        "profiling mode is not sampling:\n{grew}"
    );
}

fn profile_mode(c: &mut Criterion) {
    let mut group = c.benchmark_group("profile_mode");
    leakcheck::set_profile_rate(512 * 1024).unwrap();
    group.bench_function("glibc", |b| b.iter(glibc_pair));
    group.bench_function("default_rate", |b| b.iter(hooked_pair));
    group.bench_function("box_glibc_calloc", |b| b.iter(glibc_calloc));
    group.bench_function("box_default_rate", |b| b.iter(rust_box));
    leakcheck::set_profile_rate(1).unwrap();
    group.bench_function("rate_1", |b| b.iter(hooked_pair));
    leakcheck::set_profile_rate(512 * 1024).unwrap();
    group.finish();
    // Last: a profile symbolises, and the symboliser's caches (many live
    // blocks) would be in the table while the others are measured.
    assert_sampled();
}

criterion_group! {
    name = benches;
    config = super::config();
    targets = profile_mode
}
