//! Memory leakcheck adds per live block, and the verdict's time, at millions
//! of small blocks. Run optimised:
//!
//! ```text
//! cargo build --release -p leakcheck-benches --bin memory_per_block
//! for m in plain outside inside; do target/release/memory_per_block $m 5000000; done
//! ```
//!
//! Each mode is its own process. The baseline (`plain`) is the same number
//! of blocks from glibc's allocator reached
//! without the hooks (`__libc_malloc`: not recorded), in the same process:
//! what the blocks cost with no tracker at all.

use leakcheck_benches::glibc;
use std::hint::black_box;
use std::time::Instant;

const SIZE: usize = 16;

/// Resident set size in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// CPU time of the calling thread: the verdict runs on the thread that
/// called `check`, which meanwhile only waits for the body, so on a loaded
/// machine this says what the verdict cost better than the wall clock.
fn thread_cpu() -> std::time::Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    std::time::Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn per_block(before: usize, after: usize, blocks: usize) -> f64 {
    (after.saturating_sub(before)) as f64 / blocks as f64
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let blocks: usize = args
        .next()
        .map(|n| n.parse().expect("BLOCKS: a whole number"))
        .unwrap_or(5_000_000);
    let mut ptrs: Vec<usize> = Vec::with_capacity(blocks);
    let before = rss();
    let mut verdict = None;
    let mut verdict_cpu = None;
    match mode.as_str() {
        // glibc alone: the blocks with no tracker at all.
        "plain" => {
            for _ in 0..blocks {
                // SAFETY: a plain allocation, never recorded.
                ptrs.push(unsafe { glibc::malloc(black_box(SIZE)) } as usize);
            }
        }
        // Through the hooks, outside any check.
        "outside" => {
            for _ in 0..blocks {
                // SAFETY: a plain allocation.
                ptrs.push(unsafe { libc::malloc(black_box(SIZE)) } as usize);
            }
        }
        // Inside a check, stacks captured; the blocks stay reachable from
        // `ptrs`, so the verdict classifies every one of them.
        "inside" => {
            let mut body_done = None;
            let cpu = thread_cpu();
            let report = leakcheck::check(|| {
                for _ in 0..blocks {
                    // SAFETY: a plain allocation.
                    ptrs.push(unsafe { libc::malloc(black_box(SIZE)) } as usize);
                }
                body_done = Some(Instant::now());
            });
            verdict = body_done.map(|t| t.elapsed());
            verdict_cpu = Some(thread_cpu() - cpu);
            assert_eq!(report.leaked_blocks(), 0, "{report}");
        }
        _ => {
            eprintln!("usage: memory_per_block plain|outside|inside [BLOCKS]");
            std::process::exit(2);
        }
    }
    let bytes = per_block(before, rss(), blocks);
    println!("{mode}: {blocks} blocks of {SIZE} bytes: {bytes:.1} bytes a block");
    if let (Some(verdict), Some(cpu)) = (verdict, verdict_cpu) {
        println!(
            "verdict: {:.0} ms ({:.0} ms CPU on the calling thread)",
            verdict.as_secs_f64() * 1e3,
            cpu.as_secs_f64() * 1e3
        );
    }
}
