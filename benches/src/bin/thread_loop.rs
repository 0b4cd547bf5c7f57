//! The per-thread cost: `thread_loop [THREADS]` spawns and joins THREADS
//! threads one after another, each doing a few `malloc`/`free` pairs and
//! one `Box`, and prints microseconds a thread. Built without `--features
//! profile` it does not link leakcheck at all (the bin never names it), so
//! the two builds compare the same loop with and without leakcheck's
//! profiling mode:
//!
//! ```sh
//! cargo build --release -p leakcheck-benches --bin thread_loop
//! cp target/release/thread_loop /tmp/thread_loop-without-leakcheck
//! cargo build --release -p leakcheck-benches --features profile --bin thread_loop
//! ```

// Naming the crate is what links it (and its hooks) into the binary.
#[cfg(feature = "profile")]
use leakcheck as _;

use std::hint::black_box;
use std::time::Instant;

fn one_thread() {
    std::thread::spawn(|| {
        for size in [16usize, 64, 256, 1024] {
            // SAFETY: a plain allocation, freed at once by its allocator.
            unsafe { libc::free(black_box(libc::malloc(size))) };
        }
        black_box(Box::new([0u8; 64]));
    })
    .join()
    .expect("the thread does not panic");
}

fn main() {
    let threads: u32 = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("THREADS: a whole number"))
        .unwrap_or(20_000);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        for _ in 0..threads / 5 {
            one_thread();
        }
        best = best.min(started.elapsed().as_nanos() as f64 / f64::from(threads / 5) / 1000.0);
    }
    println!(
        "{best:.2} us a thread (best of five; leakcheck linked: {})",
        cfg!(feature = "profile")
    );
}
