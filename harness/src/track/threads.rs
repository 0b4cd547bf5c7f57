//! Every live thread of the process with its stack and thread pointer: the
//! classifier's thread roots.
//!
//! Threads register themselves when they start (the `pthread_create` hook's
//! trampoline; the main thread from the start-up constructor). An entry
//! stays until its thread is found dead, so a thread running its
//! thread-local destructors is still scanned.
//!
//! Also here: wiping a finished test thread's dead stack, so that stale
//! copies of pointers it leaves there cannot hide a leak when glibc hands
//! the same stack to another thread.

use crate::sys::reentry::Bypass;
use crate::sys::sync::SpinLock;
use crate::sys::thread::{alive, current_tid, stack_bounds};

/// One registered thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Thread {
    /// Kernel thread id; 0 marks a free entry.
    pub(crate) tid: i32,
    /// `pthread_self()`: the thread pointer, where glibc keeps the TCB with
    /// static TLS just below it.
    pub(crate) tp: usize,
    /// The stack, guard page excluded; for glibc-made stacks this includes
    /// the static TLS and the TCB at its top.
    pub(crate) stack_low: usize,
    pub(crate) stack_high: usize,
    /// The scope the thread was created in (0 for none), or, for a check's
    /// body thread, the check's.
    pub(crate) scope: u32,
    /// A thread that runs the harness rather than code under test: the
    /// main thread, a thread that has run a check, a check's body thread.
    pub(crate) harness: bool,
    /// The thread that created it (0: unknown, or the main thread).
    pub(crate) parent: i32,
}

const CAPACITY: usize = 4096;

static THREADS: SpinLock<[Thread; CAPACITY]> = SpinLock::new(
    [Thread {
        tid: 0,
        tp: 0,
        stack_low: 0,
        stack_high: 0,
        scope: 0,
        harness: false,
        parent: 0,
    }; CAPACITY],
);

/// Threads that found the registry full.
static UNREGISTERED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Registers the calling thread, created in `scope`. Call once per thread,
/// at its start.
pub(crate) fn register_current(scope: u32, harness: bool, parent: i32) {
    let _bypass = Bypass::enter();
    let (stack_low, stack_high) = stack_bounds();
    #[cfg(feature = "profile")]
    crate::track::sample::thread_started(stack_low, stack_high);
    let me = Thread {
        tid: current_tid(),
        // SAFETY: pthread_self has no preconditions.
        tp: unsafe { libc::pthread_self() } as usize,
        stack_low,
        stack_high,
        scope,
        harness,
        parent,
    };
    let mut threads = THREADS.lock();
    // A thread id is unique among live threads: an entry with ours is a
    // dead thread's whose id the kernel reused.
    if let Some(old) = threads.iter_mut().find(|t| t.tid == me.tid) {
        *old = me;
        return;
    }
    let free = match threads.iter().position(|t| t.tid == 0) {
        Some(free) => Some(free),
        None => {
            for t in threads.iter_mut().filter(|t| !alive(t.tid)) {
                *t = Thread::default();
            }
            threads.iter().position(|t| t.tid == 0)
        }
    };
    match free {
        Some(i) => threads[i] = me,
        None => {
            UNREGISTERED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Marks the calling thread as the harness's (see [`Thread::harness`]),
/// registering it if it is not yet; `scope` is the check it runs a body
/// for, if it is a body thread.
pub(crate) fn mark_harness(scope: u32) {
    let tid = current_tid();
    {
        let _bypass = Bypass::enter();
        let mut threads = THREADS.lock();
        if let Some(t) = threads.iter_mut().find(|t| t.tid == tid) {
            t.harness = true;
            if scope != 0 {
                t.scope = scope;
            }
            return;
        }
    }
    register_current(scope, true, 0);
}

/// The threads that created `tid`, its creator's creator and so on (at
/// most `out.len()`, the main thread not among them): for a check called
/// on a thread the test started, the test's own thread holds the test's
/// data although it is libtest's. Returns how many were written.
pub(crate) fn ancestors(tid: i32, out: &mut [i32]) -> usize {
    // SAFETY: getpid has no preconditions.
    let main = unsafe { libc::getpid() };
    let _bypass = Bypass::enter();
    let threads = THREADS.lock();
    let mut len = 0;
    let mut at = tid;
    while len < out.len() {
        let parent = match threads.iter().find(|t| t.tid == at) {
            Some(t) => t.parent,
            None => break,
        };
        if parent == 0 || parent == main || out[..len].contains(&parent) {
            break;
        }
        out[len] = parent;
        len += 1;
        at = parent;
    }
    len
}

/// How many threads found the registry full: their stacks are not roots.
pub(crate) fn unregistered() -> usize {
    UNREGISTERED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Calls `f` with every registered live thread (dead ones are dropped).
pub(crate) fn for_each_live(mut f: impl FnMut(&Thread)) {
    let mut snapshot = crate::sys::mapvec::MapVec::<Thread>::new();
    {
        let _bypass = Bypass::enter();
        let mut threads = THREADS.lock();
        for t in threads.iter_mut().filter(|t| t.tid != 0) {
            if alive(t.tid) {
                if !snapshot.push(*t) {
                    break;
                }
            } else {
                *t = Thread::default();
            }
        }
    }
    for t in snapshot.iter() {
        f(t);
    }
}

/// Whether `addr` lies in the stack of a registered live thread (a dead
/// one's may have been unmapped, and the range reused for a big block).
/// Allocates nothing; for the rare free of a pointer that is no block.
#[cfg(leakcheck_interpose)]
pub(crate) fn on_a_stack(addr: usize) -> bool {
    let _bypass = Bypass::enter();
    let threads = THREADS.lock();
    threads
        .iter()
        .any(|t| t.tid != 0 && t.stack_low <= addr && addr < t.stack_high && alive(t.tid))
}

/// `pthread_atfork` prepare.
pub(crate) fn lock_for_fork() {
    THREADS.lock_for_fork();
}

/// `pthread_atfork` parent and child. In the child only the forking thread
/// lives on; the others' entries are dropped at the next scan.
///
/// # Safety
///
/// Only after [`lock_for_fork`] on the forking thread.
pub(crate) unsafe fn unlock_after_fork() {
    // SAFETY: the caller guarantees lock_for_fork holds the registry.
    unsafe { THREADS.force_unlock() };
}

/// Zeroes the resident part of the calling thread's stack below its
/// stack pointer, down to `stack_low`: what a finished test left there
/// (stale copies of pointers to blocks it leaked) must not be found by a
/// later scan when glibc gives this stack to another thread. Signals are
/// blocked meanwhile, so no handler frame is written into the range, and the
/// zeroing loop calls nothing, so nothing below the stack pointer is live.
#[inline(never)]
pub(crate) fn wipe_dead_stack(stack_low: usize) {
    const PAGE: usize = 4096;
    if stack_low == 0 {
        return;
    }
    let blocked = crate::sys::signals::Blocked::all();
    let sp = stack_pointer() & !7;
    // One `mincore` for a default 2 MiB thread stack (it was eight, each a
    // system call at every check's end).
    let mut vec = [0u8; 512];
    let mut page = stack_low.next_multiple_of(PAGE);
    while page < sp {
        let end = (page + vec.len() * PAGE).min(sp.next_multiple_of(PAGE));
        let count = (end - page) / PAGE;
        // SAFETY: `vec` has room for `count` entries; the range is this
        // thread's own mapped stack.
        let ok =
            unsafe { libc::mincore(page as *mut libc::c_void, end - page, vec.as_mut_ptr()) } == 0;
        for (i, resident) in vec.iter().take(count).enumerate() {
            if !ok || resident & 1 == 0 {
                continue;
            }
            let from = page + i * PAGE;
            let to = (from + PAGE).min(sp);
            // SAFETY: words of this thread's own stack below its stack
            // pointer: dead, and with signals blocked nothing else writes
            // there. The zeroing is inline assembly, not a call, so it
            // uses no stack itself.
            unsafe { zero_words(from, (to - from) / 8) };
        }
        page = end;
    }
    drop(blocked);
}

/// Zeroes `words` words at `at` without calling anything.
///
/// # Safety
///
/// The range must be writable and unused.
#[inline(always)]
unsafe fn zero_words(at: usize, words: usize) {
    if words == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller guarantees the range; `rep stosq` writes exactly
    // `words` words from `at` upwards (the ABI keeps the direction flag
    // clear).
    unsafe {
        std::arch::asm!(
            "rep stosq",
            inout("rcx") words => _,
            inout("rdi") at => _,
            in("rax") 0u64,
            options(nostack, preserves_flags)
        )
    };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: as above; a store loop over exactly `words` words.
    unsafe {
        std::arch::asm!(
            "2:",
            "str xzr, [{at}], #8",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            at = inout(reg) at => _,
            n = inout(reg) words => _,
            options(nostack)
        )
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = (at, words);
    }
}

#[inline(always)]
fn stack_pointer() -> usize {
    let sp: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads the stack pointer register; no memory is touched.
    unsafe {
        std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags))
    };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: as above.
    unsafe {
        std::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags))
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        // Conservatively below any frame of ours.
        let marker = 0u8;
        sp = (std::hint::black_box(&marker) as *const u8 as usize).saturating_sub(4096);
    }
    sp
}
