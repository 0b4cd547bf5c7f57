//! The end of a check with 1k, 10k and 100k other live blocks in the process
//! (C blocks allocated before the check, outside any scope, kept for the
//! benchmark).
//!
//! - `empty/0`: `check(|| {})` with no extra live blocks: the baseline.
//! - `clean/N`: `check(|| {})` with N live blocks. A scope that leaves
//!   nothing live is known clean from its counters, without a table scan.
//! - `leak_one/N`: `check` of a closure that leaks one 64-byte C block: a
//!   full table scan, then the report (the stack's symbols are cached after
//!   the first iteration, which warm-up absorbs).
//! - `leak_one_verdict/N`: the same, minus the wall time of the checked
//!   code (`Stats::duration_ms`: starting, running and joining its thread).
//!   What remains is the verdict: the scan, grouping, symbol look-up and
//!   building the report, plus the scope's small set-up.
//!
//! - `leak_one_unclassified/N`, `leak_one_verdict_unclassified/N`: the
//!   same with classification switched off (every surviving block
//!   definitely lost, as before classification existed): the baseline the
//!   classified verdict is compared with. The N blocks are reachable from a
//!   global and each holds a pointer to the next, so classification follows
//!   and scans all of them, as it would a real library's heap.
//!
//! - `keep_one_verdict/N`: the checked code stores its block in a global
//!   vector allocated before the check (so it is still reachable, and the
//!   check passes). A block outside the scope now points into it, so the
//!   classifier cannot take its fast path: it indexes the N blocks and
//!   follows them from the roots, as LeakSanitizer always does.
//!
//! - `leak_one_after_peak/1000`, `leak_one_verdict_after_peak/1000`: as
//!   `leak_one/1000` once the 100k blocks have been freed: the table keeps
//!   the capacity it grew to, and the scan walks all of it.
//!
//! Every `check` starts a thread for the checked code; that is part of a real
//! check's cost and is in all but the `_verdict` figures. The block each
//! `leak_one` iteration leaks is freed after its check returns, outside the
//! timing, so the process holds at most one extra block however many
//! iterations criterion runs.

use criterion::measurement::WallTime;
use criterion::{criterion_group, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode};
use leakcheck::__private::{check_with, Options};
use leakcheck::Report;
use std::hint::black_box;
use std::time::{Duration, Instant};

const LEAK: usize = 64;

/// The live blocks, held by a global as a library's state would be.
static LIVE: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

/// Live C blocks, freed on drop. Each holds a pointer to the next one and
/// a few small integers, so a scan has pointers to follow.
struct LiveBlocks;

impl LiveBlocks {
    fn new(n: usize) -> LiveBlocks {
        let mut live = LIVE.lock().unwrap();
        for i in 0..n {
            // SAFETY: a plain allocation, freed in `drop`.
            let ptr = unsafe { libc::malloc(LEAK) }.cast::<usize>();
            assert!(!ptr.is_null());
            // SAFETY: the block holds LEAK / 8 words.
            unsafe {
                for w in 0..LEAK / 8 {
                    ptr.add(w).write(i * 8 + w);
                }
                if let Some(&previous) = live.last() {
                    (previous as *mut usize).write(ptr as usize);
                }
            }
            live.push(ptr as usize);
        }
        LiveBlocks
    }
}

impl Drop for LiveBlocks {
    fn drop(&mut self) {
        for ptr in LIVE.lock().unwrap().drain(..) {
            // SAFETY: each pointer came from malloc in `new` and is freed once.
            unsafe { libc::free(ptr as *mut libc::c_void) };
        }
    }
}

fn clean() -> Report {
    leakcheck::check(|| {})
}

/// A check that leaks one C block; returns the report and the block.
fn leak_one(options: Options) -> (Report, usize) {
    let mut leaked = 0usize;
    let report = check_with(options, || {
        // SAFETY: a plain allocation, deliberately not freed here.
        leaked = black_box(unsafe { libc::malloc(LEAK) }) as usize;
    });
    (report, leaked)
}

/// Times `iters` checks; `subtract_body` removes each check's own
/// `duration_ms`, leaving the verdict.
fn time_leak_one(iters: u64, subtract_body: bool, options: Options) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let started = Instant::now();
        let (report, leaked) = leak_one(options);
        let mut elapsed = started.elapsed();
        if subtract_body {
            elapsed =
                elapsed.saturating_sub(Duration::from_secs_f64(report.stats().duration_ms / 1e3));
        }
        total += elapsed;
        assert_eq!(report.leaked_blocks(), 1, "{report}");
        assert_eq!(
            report
                .kinds()
                .get(&leakcheck::Kind::DefinitelyLost)
                .map(|c| c.blocks),
            Some(1),
            "{report}"
        );
        // SAFETY: the block `leak_one` leaked, freed exactly once.
        unsafe { libc::free(leaked as *mut libc::c_void) };
    }
    total
}

/// Where `keep_one` stores its block: reserved before the check.
static KEPT: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

/// Times `iters` checks whose block stays reachable, minus the checked code.
fn time_keep_one(iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        KEPT.lock().unwrap().reserve(1);
        let started = Instant::now();
        let report = leakcheck::check(|| {
            // SAFETY: a plain allocation, kept in KEPT and freed below.
            let block = unsafe { libc::malloc(LEAK) } as usize;
            KEPT.lock().unwrap().push(black_box(block));
        });
        let elapsed = started
            .elapsed()
            .saturating_sub(Duration::from_secs_f64(report.stats().duration_ms / 1e3));
        total += elapsed;
        assert!(report.is_clean(), "{report}");
        assert_eq!(
            report
                .kinds()
                .get(&leakcheck::Kind::StillReachable)
                .map(|c| c.blocks),
            Some(1),
            "{report}"
        );
        let mut kept = KEPT.lock().unwrap();
        for block in kept.drain(..) {
            // SAFETY: the block kept by this iteration, freed once.
            unsafe { libc::free(block as *mut libc::c_void) };
        }
        // Not just emptied: its spare room would keep the freed address,
        // and a later `leak_one` that gets the same address would find it
        // still reachable from there (as valgrind would).
        kept.shrink_to_fit();
    }
    total
}

fn bench_leak_one(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, n: usize) {
    for (suffix, options) in [
        ("", Options::new()),
        ("_unclassified", Options::new().unclassified()),
    ] {
        group.bench_function(
            BenchmarkId::new(format!("leak_one{name}{suffix}"), n),
            |b| b.iter_custom(|iters| time_leak_one(iters, false, options)),
        );
        group.bench_function(
            BenchmarkId::new(format!("leak_one_verdict{name}{suffix}"), n),
            |b| b.iter_custom(|iters| time_leak_one(iters, true, options)),
        );
    }
}

fn verdict(c: &mut Criterion) {
    let mut group = c.benchmark_group("verdict");
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function(BenchmarkId::new("empty", 0), |b| b.iter(clean));
    for n in [1_000, 10_000, 100_000] {
        let live = LiveBlocks::new(n);
        group.bench_function(BenchmarkId::new("clean", n), |b| {
            b.iter(|| {
                let report = clean();
                assert!(report.is_clean(), "{report}");
                report
            })
        });
        bench_leak_one(&mut group, "", n);
        group.bench_function(BenchmarkId::new("keep_one_verdict", n), |b| {
            b.iter_custom(time_keep_one)
        });
        drop(live);
    }
    // The block table keeps the room it grew for the 100k blocks.
    let live = LiveBlocks::new(1_000);
    bench_leak_one(&mut group, "_after_peak", 1_000);
    drop(live);
    group.finish();
}

criterion_group! {
    name = benches;
    config = super::config();
    targets = verdict
}
