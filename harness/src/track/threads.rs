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
const MASK: usize = CAPACITY - 1;
const _: () = assert!(CAPACITY.is_power_of_two());

/// The registered threads: an open-addressed table keyed by thread id
/// (linear probing from `tid & MASK`; the kernel hands out ids in
/// sequence, so live threads mostly sit at their home entry). A thread's
/// start finds its entry, or the dead thread's whose id it reuses, in a few
/// steps rather than by reading the whole array.
struct Registry {
    threads: [Thread; CAPACITY],
    /// Entries in use.
    len: usize,
    /// A thread's start sweeps dead threads' entries out once this many are
    /// in use (so that probe runs stay short), then not before half the
    /// entries still free are taken (so that a process with thousands of
    /// live threads does not sweep at every start).
    sweep_at: usize,
}

const SWEEP_AT: usize = CAPACITY / 2;

impl Registry {
    fn home(tid: i32) -> usize {
        tid as u32 as usize & MASK
    }

    /// The entry of `tid`, or the free entry where it would go; `None` if
    /// the table is full without it.
    fn slot(&self, tid: i32) -> Option<usize> {
        let mut i = Self::home(tid);
        for _ in 0..CAPACITY {
            let at = self.threads[i].tid;
            if at == tid || at == 0 {
                return Some(i);
            }
            i = (i + 1) & MASK;
        }
        None
    }

    /// The entry of `tid`, if it has one.
    fn find(&self, tid: i32) -> Option<usize> {
        self.slot(tid)
            .filter(|&i| tid != 0 && self.threads[i].tid == tid)
    }

    /// Puts `t` in its entry (replacing a dead thread's of the same id);
    /// false if the table is full.
    fn put(&mut self, t: Thread) -> bool {
        let Some(i) = self.slot(t.tid) else {
            return false;
        };
        if self.threads[i].tid == 0 {
            self.len += 1;
        }
        self.threads[i] = t;
        true
    }

    /// Frees entry `i`, moving back the entries after it that would
    /// otherwise no longer be found from their home (Knuth's algorithm R).
    fn remove(&mut self, mut i: usize) {
        self.len -= 1;
        let mut j = i;
        loop {
            self.threads[i] = Thread::default();
            loop {
                j = (j + 1) & MASK;
                let t = self.threads[j];
                if t.tid == 0 {
                    return;
                }
                let home = Self::home(t.tid);
                // Stays unless its home is cyclically outside (i, j].
                let stays = if i <= j {
                    i < home && home <= j
                } else {
                    i < home || home <= j
                };
                if !stays {
                    self.threads[i] = t;
                    i = j;
                    break;
                }
            }
        }
    }

    /// Frees the entries of threads that `dead` says have exited, in one
    /// pass: from a free entry on (no probe run crosses it), each dead
    /// thread's entry is freed and each live one moves back to the first
    /// free entry from its home. Removing them one by one instead walks to
    /// the end of the run each time, and the kernel's sequential ids make
    /// one run of every entry: quadratic (perf: 14% of the example
    /// service's user time).
    fn sweep(&mut self, mut dead: impl FnMut(&Thread) -> bool) {
        let start = match self.threads.iter().position(|t| t.tid == 0) {
            Some(free) => Some(free),
            None => (0..CAPACITY).find(|&i| dead(&self.threads[i])).map(|i| {
                self.remove(i);
                self.threads.iter().position(|t| t.tid == 0).unwrap_or(i)
            }),
        };
        if let Some(start) = start {
            for step in 1..CAPACITY {
                let i = (start + step) & MASK;
                let t = self.threads[i];
                if t.tid == 0 {
                    continue;
                }
                if dead(&t) {
                    self.threads[i] = Thread::default();
                    self.len -= 1;
                    continue;
                }
                // Every entry of its run before `i` stays taken: moving it
                // to the first free one keeps it found.
                let mut j = Self::home(t.tid);
                while j != i && self.threads[j].tid != 0 {
                    j = (j + 1) & MASK;
                }
                if j != i {
                    self.threads[j] = t;
                    self.threads[i] = Thread::default();
                }
            }
        }
        self.sweep_at = SWEEP_AT.max(self.len + (CAPACITY - self.len) / 2);
    }

    fn live(&self) -> impl Iterator<Item = &Thread> {
        self.threads.iter().filter(|t| t.tid != 0)
    }
}

static THREADS: SpinLock<Registry> = SpinLock::new(Registry {
    threads: [Thread {
        tid: 0,
        tp: 0,
        stack_low: 0,
        stack_high: 0,
        scope: 0,
        harness: false,
        parent: 0,
    }; CAPACITY],
    len: 0,
    sweep_at: SWEEP_AT,
});

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
    let mut reg = THREADS.lock();
    // A thread id is unique among live threads: an entry with ours is a
    // dead thread's whose id the kernel reused, and `put` replaces it.
    if reg.len >= reg.sweep_at && reg.find(me.tid).is_none() {
        reg.sweep(|t| !alive(t.tid));
    }
    if !reg.put(me) {
        UNREGISTERED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Marks the calling thread as the harness's (see [`Thread::harness`]),
/// registering it if it is not yet; `scope` is the check it runs a body
/// for, if it is a body thread.
pub(crate) fn mark_harness(scope: u32) {
    let tid = current_tid();
    {
        let _bypass = Bypass::enter();
        let mut reg = THREADS.lock();
        if let Some(i) = reg.find(tid) {
            let t = &mut reg.threads[i];
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
    let reg = THREADS.lock();
    let mut len = 0;
    let mut at = tid;
    while len < out.len() {
        let parent = match reg.find(at) {
            Some(i) => reg.threads[i].parent,
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
        let mut reg = THREADS.lock();
        reg.sweep(|t| !alive(t.tid));
        for t in reg.live() {
            if !snapshot.push(*t) {
                break;
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
    let reg = THREADS.lock();
    let found = reg
        .live()
        .any(|t| t.stack_low <= addr && addr < t.stack_high && alive(t.tid));
    found
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
/// blocked meanwhile, so no handler frame is written into the range, and
/// the zeroing is inline assembly, so nothing below the stack pointer is
/// live while it runs. The search for resident pages between zeroings does
/// call functions, whose frames land just below the stack pointer: that
/// page is zeroed once more at the end, after the last call of the loop.
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
        // From one resident page to the next, not page by page: most of a
        // 2 MiB stack was never touched, and unoptimised (a user's dev
        // profile) an iterator over the 512 entries cost 40,000
        // instructions a check.
        let mut i = 0;
        while ok && i < count {
            i = next_set(&vec[..count], i);
            if i < count && vec[i] & 1 != 0 {
                let from = page + i * PAGE;
                let to = (from + PAGE).min(sp);
                // SAFETY: words of this thread's own stack below its stack
                // pointer: dead, and with signals blocked nothing else writes
                // there. The zeroing is inline assembly, not a call, so it
                // uses no stack itself.
                unsafe { zero_words(from, (to - from) / 8) };
            }
            i += 1;
        }
        page = end;
    }
    if sp >= stack_low + PAGE {
        // SAFETY: the 4 KiB below this frame's stack pointer, inside the
        // thread's mapped stack (above `stack_low`): dead (the loop's
        // calls, a few hundred bytes deep, have returned), and the zeroing
        // is inline assembly, calling nothing.
        unsafe { zero_words(sp - PAGE, PAGE / 8) };
    }
    drop(blocked);
}

/// The first index from `from` on whose byte in `vec` is not 0, or
/// `vec.len()`.
#[inline(always)]
fn next_set(vec: &[u8], from: usize) -> usize {
    let rest = &vec[from.min(vec.len())..];
    #[cfg(leakcheck_interpose)]
    // SAFETY: `rest` is a live slice, not written meanwhile.
    let found = unsafe { crate::sys::first_not_at(rest.as_ptr(), rest.len(), 0) };
    #[cfg(not(leakcheck_interpose))]
    let found = rest.iter().position(|&b| b != 0);
    found.map_or(vec.len(), |at| vec.len() - rest.len() + at)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Box<Registry> {
        Box::new(Registry {
            threads: [Thread::default(); CAPACITY],
            len: 0,
            sweep_at: SWEEP_AT,
        })
    }

    fn thread(tid: i32) -> Thread {
        Thread {
            tid,
            ..Thread::default()
        }
    }

    #[test]
    fn entries_are_found_past_collisions_and_after_removals() {
        let mut reg = registry();
        // Three ids with one home, one at the next entry, one wrapping.
        let ids = [
            5,
            5 + CAPACITY as i32,
            6,
            5 + 2 * CAPACITY as i32,
            4095,
            8191,
        ];
        for tid in ids {
            assert!(reg.put(thread(tid)));
        }
        assert_eq!(reg.len, ids.len());
        for tid in ids {
            assert_eq!(reg.threads[reg.find(tid).unwrap()].tid, tid);
        }
        assert_eq!(reg.find(7), None);
        assert_eq!(reg.find(0), None);
        // A reused id replaces its dead thread's entry.
        assert!(reg.put(Thread {
            parent: 9,
            ..thread(6)
        }));
        assert_eq!(reg.len, ids.len());
        assert_eq!(reg.threads[reg.find(6).unwrap()].parent, 9);
        reg.sweep(|t| t.tid == 5 || t.tid == 4095);
        assert_eq!(reg.len, ids.len() - 2);
        for tid in [5 + CAPACITY as i32, 6, 5 + 2 * CAPACITY as i32, 8191] {
            assert_eq!(reg.threads[reg.find(tid).unwrap()].tid, tid, "{tid}");
        }
        assert_eq!(reg.find(5), None);
        assert_eq!(reg.live().count(), 4);
    }

    #[test]
    fn a_sweep_of_one_long_run_keeps_every_survivor_found() {
        let mut reg = registry();
        // Sequential ids from just below the wrap: one run of 3000 entries
        // across the end of the table, some of them displaced.
        let ids: Vec<i32> = (4000..7000)
            .chain([4000 + CAPACITY as i32, 4001 + 2 * CAPACITY as i32])
            .collect();
        for &tid in &ids {
            assert!(reg.put(thread(tid)));
        }
        reg.sweep(|t| t.tid % 3 != 0);
        let kept: Vec<i32> = ids.iter().copied().filter(|t| t % 3 == 0).collect();
        assert_eq!(reg.len, kept.len());
        assert_eq!(reg.live().count(), kept.len());
        for &tid in &kept {
            assert_eq!(reg.threads[reg.find(tid).unwrap()].tid, tid, "{tid}");
        }
        for tid in ids.iter().copied().filter(|t| t % 3 != 0) {
            assert_eq!(reg.find(tid), None, "{tid}");
        }
    }

    #[test]
    fn a_full_registry_takes_no_more_until_swept() {
        let mut reg = registry();
        for tid in 1..=CAPACITY as i32 {
            assert!(reg.put(thread(tid)));
        }
        assert!(!reg.put(thread(CAPACITY as i32 + 1)));
        assert!(reg.put(thread(3)), "an id it holds");
        reg.sweep(|t| t.tid % 2 == 0);
        assert_eq!(reg.len, CAPACITY / 2);
        assert!(reg.put(thread(CAPACITY as i32 + 1)));
        for tid in (1..=CAPACITY as i32).step_by(2) {
            assert!(reg.find(tid).is_some(), "{tid}");
        }
    }
}
