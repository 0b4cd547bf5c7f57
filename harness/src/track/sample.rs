//! Heap profile sampling (feature `profile`): which blocks get a stack
//! outside any check, and what each sampled block stands for.
//!
//! Every block is tracked as always; a Poisson sample of the allocated
//! bytes also gets its stack, as Go's `MemProfileRate` and jemalloc's
//! `lg_prof_sample` do: each thread counts down the bytes until its next
//! sample, drawn from an exponential distribution of mean [`rate`], and the
//! block in which the countdown runs out is sampled. A block of `size`
//! bytes is thus sampled with probability `1 - exp(-size / rate)`, whatever
//! came before it, and stands for `1 / (1 - exp(-size / rate))` blocks
//! ([`weight`], Go's unbiased scaling). Rate 1 samples every block, with
//! weight 1.
//!
//! The fast path is one thread-local load and store. The slow path (once
//! per `rate` bytes on average) captures the stack with the cached unwinder
//! only (never libgcc's, whose lock a `fork` or an interrupted thread may
//! hold), never in a signal handler (the sample is counted with no stack),
//! and only under the allocation path's [`Guard`], which is not available
//! to a thread past its thread-locals. Cumulative allocation counts are kept
//! per interned stack, in pages mapped from the kernel. Nothing here
//! allocates through the tracked allocator.

use crate::stacks;
use crate::sys::reentry::Guard;
use crate::sys::sync::pages;
use crate::track::table::{Allocator, Block};
use std::sync::atomic::{
    AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
};

/// One sample per this many bytes allocated, unless told otherwise.
pub(crate) const DEFAULT_RATE: u64 = 512 * 1024;

/// The largest rate accepted (1 TiB): one sample per that many bytes.
pub(crate) const MAX_RATE: u64 = 1 << 40;

/// The environment variable that sets the rate at start-up.
pub(crate) const RATE_VAR: &str = "LEAKCHECK_PROFILE_RATE";

static RATE: AtomicU64 = AtomicU64::new(DEFAULT_RATE);

/// Whether the rate is settled: 0 until `LEAKCHECK_PROFILE_RATE` has been
/// read (on the first sample anywhere) or [`set_rate`] was called, 1 while
/// it is being read, 2 after.
static RATE_STATE: AtomicU8 = AtomicU8::new(0);

/// `LEAKCHECK_PROFILE_RATE` was set to something that is not a rate.
static ENV_INVALID: AtomicU8 = AtomicU8::new(0);

/// The sampling rate in bytes (see the module docs).
pub(crate) fn rate() -> u64 {
    if RATE_STATE.load(Acquire) != 2 {
        read_env();
    }
    RATE.load(Relaxed)
}

/// Sets the rate (1 ..= [`MAX_RATE`], checked by the caller). The calling
/// thread's next countdown is drawn at once; other threads' run out at the
/// old rate first. Blocks sampled before are weighed at the new rate, so
/// set it at start-up.
pub(crate) fn set_rate(rate: u64) {
    let rate = rate.clamp(1, MAX_RATE);
    RATE.store(rate, Relaxed);
    RATE_STATE.store(2, Release);
    let _ = SAMPLER.try_with(|s| s.countdown.store(s.draw(rate), Relaxed));
}

/// Whether `LEAKCHECK_PROFILE_RATE` held something other than a rate (the
/// default was used; a message went to stderr).
pub(crate) fn env_invalid() -> bool {
    rate();
    ENV_INVALID.load(Relaxed) != 0
}

/// Parses a rate: a whole number of bytes from 1 to [`MAX_RATE`], blanks
/// around it allowed.
pub(crate) fn parse_rate(text: &[u8]) -> Option<u64> {
    let text = text.trim_ascii();
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: u64 = 0;
    for &d in text {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    (1..=MAX_RATE).contains(&n).then_some(n)
}

/// Reads `LEAKCHECK_PROFILE_RATE` once, without allocating (this runs on the
/// allocation path): `getenv`, and a message written straight to stderr
/// when the value is not a rate.
#[cold]
fn read_env() {
    if RATE_STATE.compare_exchange(0, 1, Acquire, Relaxed).is_err() {
        return;
    }
    #[cfg(unix)]
    {
        // SAFETY: the name is a NUL-terminated literal; getenv returns null
        // or a NUL-terminated string of the environment.
        let raw = unsafe { libc::getenv(c"LEAKCHECK_PROFILE_RATE".as_ptr()) };
        if !raw.is_null() {
            // SAFETY: non-null: a NUL-terminated string (see above), read at
            // once, before anything could change the environment.
            let value = unsafe { std::ffi::CStr::from_ptr(raw) }.to_bytes();
            match parse_rate(value) {
                Some(rate) => RATE.store(rate, Relaxed),
                None if value.trim_ascii().is_empty() => {}
                None => {
                    ENV_INVALID.store(1, Relaxed);
                    say_env_invalid(value);
                }
            }
        }
    }
    RATE_STATE.store(2, Release);
}

#[cfg(unix)]
fn say_env_invalid(value: &[u8]) {
    let parts: [&[u8]; 3] = [
        b"leakcheck: LEAKCHECK_PROFILE_RATE=`",
        value,
        b"` is not a sampling rate: give a whole number of bytes from 1 (every block) \
          to 1099511627776; sampling one block per 524288 bytes instead\n",
    ];
    for part in parts {
        // SAFETY: writes a live byte slice to stderr; a short or failed
        // write only shortens the message.
        unsafe { libc::write(2, part.as_ptr().cast(), part.len()) };
    }
}

/// How many blocks a sampled block of `size` bytes stands for at `rate`.
pub(crate) fn weight(size: usize, rate: u64) -> f64 {
    if rate <= 1 || size == 0 {
        return 1.0;
    }
    let p = -(-(size as f64) / rate as f64).exp_m1();
    if p > 0.0 {
        1.0 / p
    } else {
        1.0
    }
}

struct ThreadSampler {
    /// Bytes this thread allocates before its next sample.
    countdown: AtomicU64,
    /// xorshift64* state; 0 until this thread's first draw.
    rng: AtomicU64,
    /// The thread's stack, from its registration (0: unknown).
    stack_low: AtomicUsize,
    stack_high: AtomicUsize,
}

thread_local! {
    static SAMPLER: ThreadSampler = const {
        ThreadSampler {
            countdown: AtomicU64::new(0),
            rng: AtomicU64::new(0),
            stack_low: AtomicUsize::new(0),
            stack_high: AtomicUsize::new(0),
        }
    };
}

/// Seeds of new threads' generators: a counter, so a program's sampling is
/// the same from run to run.
static NEXT_SEED: AtomicU64 = AtomicU64::new(1);

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl ThreadSampler {
    /// The next exponentially distributed countdown of mean `rate`.
    fn draw(&self, rate: u64) -> u64 {
        if rate <= 1 {
            return 0;
        }
        let mut x = self.rng.load(Relaxed);
        if x == 0 {
            x = splitmix(NEXT_SEED.fetch_add(1, Relaxed)) | 1;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.store(x, Relaxed);
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        // Uniform in (0, 1]: never ln(0).
        let u = ((r >> 11) + 1) as f64 / (1u64 << 53) as f64;
        let next = -u.ln() * rate as f64;
        if next >= u64::MAX as f64 {
            u64::MAX
        } else {
            next as u64
        }
    }
}

/// Records the calling thread's stack bounds for its samples (from the
/// thread registry, which computes them where that may allocate).
pub(crate) fn thread_started(stack_low: usize, stack_high: usize) {
    let _ = SAMPLER.try_with(|s| {
        s.stack_low.store(stack_low, Relaxed);
        s.stack_high.store(stack_high, Relaxed);
    });
}

/// Restarts the calling thread's generator from `seed` and draws its next
/// countdown: for tests whose estimates must not depend on what ran before.
pub(crate) fn reseed_thread(seed: u64) {
    let rate = rate();
    let _ = SAMPLER.try_with(|s| {
        s.rng.store(splitmix(seed) | 1, Relaxed);
        s.countdown.store(s.draw(rate), Relaxed);
    });
}

/// Counts `size` bytes off this thread's countdown if they do not reach a
/// sample: true then (the block is not sampled, and [`on_alloc`] must not
/// be called for it). False, and nothing counted, if they would.
#[inline(always)]
pub(crate) fn unsampled(size: usize) -> bool {
    let size = size as u64;
    SAMPLER
        .try_with(|s| {
            let left = s.countdown.load(Relaxed);
            if size < left {
                s.countdown.store(left - size, Relaxed);
                true
            } else {
                false
            }
        })
        .unwrap_or(true)
}

/// Decides whether `block`, just made, is sampled, and if so gives it its
/// stack (`hook_frame` as for [`stacks::capture`]) and counts it in its
/// stack's cumulative allocations.
///
/// Only scalars go to the slow path and come back: a `&mut Block` reaching
/// a call that is not inlined puts the block in memory on every
/// allocation, and the table's 16-byte load of it then waits on the narrow
/// stores that built it (measured: 25 ns a `malloc`/`free` pair).
#[inline(always)]
pub(crate) fn on_alloc(block: &mut Block, guard: &Guard, hook_frame: usize) {
    let fired = !unsampled(block.size);
    if fired {
        let sampled = sample(
            block.size,
            block.allocator(),
            block.harness,
            block.stack,
            guard,
            hook_frame,
        );
        if let Some(stack) = sampled {
            block.sampled = true;
            block.stack = stack;
        }
    }
}

/// The slow path of [`on_alloc`]: `Some(stack)` when the block is sampled.
#[cold]
#[inline(never)]
fn sample(
    size: usize,
    allocator: Allocator,
    harness: u8,
    stack: u32,
    guard: &Guard,
    hook_frame: usize,
) -> Option<u32> {
    let rate = rate();
    let Ok((taken, bounds)) = SAMPLER.try_with(|s| {
        let unseeded = s.rng.load(Relaxed) == 0 && rate > 1;
        let next = s.draw(rate);
        // A thread's first countdown is drawn here, not taken as 0: the
        // block that finds it is sampled only if it reaches past it.
        if unseeded && (size as u64) < next {
            s.countdown.store(next - size as u64, Relaxed);
            return (false, (0, 0));
        }
        s.countdown.store(next, Relaxed);
        (
            true,
            (s.stack_low.load(Relaxed), s.stack_high.load(Relaxed)),
        )
    }) else {
        return None;
    };
    // leakcheck's own blocks (symbols, profiles) are not the program's; the
    // sample point fell in one, which keeps every other block's chances.
    if !taken || harness != 0 {
        return None;
    }
    let mut stack = stack;
    if stack == 0 && !in_signal_handler(guard) && bounds.1 != 0 {
        stack = stacks::capture_sampled(hook_frame, bounds.0, bounds.1);
    }
    count_allocated(stack, size, allocator, rate);
    Some(stack)
}

#[cfg(leakcheck_interpose)]
fn in_signal_handler(guard: &Guard) -> bool {
    guard.in_signal_handler()
}

#[cfg(not(leakcheck_interpose))]
fn in_signal_handler(_guard: &Guard) -> bool {
    false
}

// --- cumulative allocations per stack -------------------------------------

/// Stacks counted one by one (interned ids below this; the stack store holds
/// fewer); any other id is counted with the unknown stack, 0.
const SITES: usize = 1 << 21;

/// Estimated objects and bytes allocated at one stack since start, as `f64`
/// bits, and the allocator (`Allocator as u64`, 0 until the first sample).
#[repr(C)]
struct Allocated {
    objects: AtomicU64,
    bytes: AtomicU64,
    allocator: AtomicU64,
}

static ALLOCATED: AtomicPtr<Allocated> = AtomicPtr::new(std::ptr::null_mut());
/// One more than the highest stack id counted.
static SITES_USED: AtomicU32 = AtomicU32::new(0);

fn allocated_table() -> Option<&'static [Allocated]> {
    let mut table = ALLOCATED.load(Acquire);
    if table.is_null() {
        let bytes = SITES * std::mem::size_of::<Allocated>();
        let fresh = pages::map(bytes, true).cast::<Allocated>();
        if fresh.is_null() {
            return None;
        }
        match ALLOCATED.compare_exchange(std::ptr::null_mut(), fresh, AcqRel, Acquire) {
            Ok(_) => table = fresh,
            Err(theirs) => {
                // SAFETY: `fresh` was mapped above with `bytes` and never
                // published.
                unsafe { pages::unmap(fresh.cast(), bytes) };
                table = theirs;
            }
        }
    }
    // SAFETY: the table maps `SITES` zeroed entries (all-zero atomics are
    // valid) and is never unmapped once published.
    Some(unsafe { std::slice::from_raw_parts(table, SITES) })
}

fn add_f64(cell: &AtomicU64, value: f64) {
    let _ = cell.fetch_update(Relaxed, Relaxed, |bits| {
        Some((f64::from_bits(bits) + value).to_bits())
    });
}

fn count_allocated(stack: u32, size: usize, allocator: Allocator, rate: u64) {
    let Some(table) = allocated_table() else {
        return;
    };
    let id = if (stack as usize) < SITES { stack } else { 0 };
    let entry = &table[id as usize];
    let w = weight(size, rate);
    add_f64(&entry.objects, w);
    add_f64(&entry.bytes, w * size as f64);
    let _ = entry
        .allocator
        .compare_exchange(0, allocator as u64, Relaxed, Relaxed);
    SITES_USED.fetch_max(id + 1, Relaxed);
}

/// Calls `f(stack, allocator, objects, bytes)` with the estimated
/// allocations since start at every stack that has any.
pub(crate) fn for_each_allocated(mut f: impl FnMut(u32, Allocator, f64, f64)) {
    let Some(table) = allocated_table() else {
        return;
    };
    let used = SITES_USED.load(Relaxed) as usize;
    for (id, entry) in table.iter().enumerate().take(used) {
        let allocator = entry.allocator.load(Relaxed);
        if allocator == 0 {
            continue;
        }
        f(
            id as u32,
            Allocator::from_u8(allocator as u8),
            f64::from_bits(entry.objects.load(Relaxed)),
            f64::from_bits(entry.bytes.load(Relaxed)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_as_whole_numbers_of_bytes() {
        assert_eq!(parse_rate(b"1"), Some(1));
        assert_eq!(parse_rate(b" 524288\n"), Some(DEFAULT_RATE));
        for bad in [
            &b"0"[..],
            b"",
            b"-1",
            b"1k",
            b"abc",
            b"1.5",
            b"99999999999999999999",
        ] {
            assert_eq!(parse_rate(bad), None, "{:?}", std::str::from_utf8(bad));
        }
        assert_eq!(parse_rate(b"1099511627777"), None, "above MAX_RATE");
    }

    #[test]
    fn weights_are_gos_unbiased_scaling() {
        assert_eq!(weight(100, 1), 1.0);
        assert_eq!(weight(0, DEFAULT_RATE), 1.0);
        let w = weight(1024, DEFAULT_RATE);
        assert!((w - 1.0 / (1.0 - (-1024.0f64 / 524288.0).exp())).abs() < 1e-6);
        // A block far larger than the rate is always sampled: weight 1.
        assert!((weight(1 << 30, DEFAULT_RATE) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn countdowns_average_the_rate() {
        let s = ThreadSampler {
            countdown: AtomicU64::new(0),
            rng: AtomicU64::new(splitmix(7) | 1),
            stack_low: AtomicUsize::new(0),
            stack_high: AtomicUsize::new(0),
        };
        let n = 20_000;
        let mean = (0..n).map(|_| s.draw(1000) as f64).sum::<f64>() / n as f64;
        assert!((mean - 1000.0).abs() < 30.0, "{mean}");
        assert_eq!(s.draw(1), 0, "rate 1 samples every block");
    }
}
