//! Reading memory that may vanish while it is read.
//!
//! The classifier reads other threads' stacks and live blocks that other
//! threads may free (and glibc unmap) at any moment. Every read goes through
//! [`Reader::copy`], which never faults the process: on x86_64 a word-copy
//! loop whose one load instruction a temporary `SIGSEGV`/`SIGBUS` handler
//! knows (a fault there resumes at a fix-up that reports how far the copy
//! got, as a kernel's `copy_from_user` does; any other fault goes to the
//! handler that was installed before). Elsewhere, or if the handler cannot
//! be installed, `process_vm_readv` on the own process does the same, about
//! 15 times slower on small blocks.
//!
//! Nothing here allocates: buffers are mapped pages.

use crate::sys::sync::pages;
use std::ffi::c_void;

/// Words copied per batch.
const BUF_WORDS: usize = 16 * 1024;
const PAGE: usize = 4096;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod fault_safe {
    use std::ffi::{c_int, c_void};
    use std::sync::atomic::{AtomicUsize, Ordering};

    // rdi = destination, rsi = source, rdx = words. Returns in rax the words
    // left uncopied: 0, or the count from the word whose load faulted.
    std::arch::global_asm!(
        ".pushsection .text.__leakcheck_copy_words,\"ax\",@progbits",
        ".globl __leakcheck_copy_words",
        ".hidden __leakcheck_copy_words",
        ".globl __leakcheck_copy_load",
        ".hidden __leakcheck_copy_load",
        ".globl __leakcheck_copy_fixup",
        ".hidden __leakcheck_copy_fixup",
        ".p2align 4",
        "__leakcheck_copy_words:",
        "    test rdx, rdx",
        "    jz 3f",
        "2:",
        "__leakcheck_copy_load:",
        "    mov rcx, qword ptr [rsi]",
        "    mov qword ptr [rdi], rcx",
        "    add rsi, 8",
        "    add rdi, 8",
        "    dec rdx",
        "    jnz 2b",
        "3:",
        "    xor eax, eax",
        "    ret",
        "__leakcheck_copy_fixup:",
        "    mov rax, rdx",
        "    ret",
        ".popsection",
    );

    extern "C" {
        fn __leakcheck_copy_words(dst: *mut u64, src: *const u64, words: usize) -> usize;
        static __leakcheck_copy_load: u8;
        static __leakcheck_copy_fixup: u8;
    }

    fn load_ip() -> usize {
        std::ptr::addr_of!(__leakcheck_copy_load) as usize
    }

    fn fixup_ip() -> usize {
        std::ptr::addr_of!(__leakcheck_copy_fixup) as usize
    }

    /// Copies `words` words; returns how many were copied before a fault.
    ///
    /// # Safety
    ///
    /// `dst` must be valid for `words` writes, and the fault handler must be
    /// installed (else a fault in `src` kills the process).
    pub(super) unsafe fn copy(dst: *mut u64, src: usize, words: usize) -> usize {
        // SAFETY: the caller guarantees `dst`; faults in `src` are caught.
        let left = unsafe { __leakcheck_copy_words(dst, src as *const u64, words) };
        words - left
    }

    /// The handlers that were installed before ours, as raw `sigaction`s.
    static PREVIOUS: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
    static mut SAVED: [std::mem::MaybeUninit<libc::sigaction>; 2] = [
        std::mem::MaybeUninit::uninit(),
        std::mem::MaybeUninit::uninit(),
    ];
    const SIGNALS: [c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

    extern "C" fn on_fault(signal: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
        let uc = context.cast::<libc::ucontext_t>();
        // SAFETY: the kernel passes a valid ucontext to an SA_SIGINFO handler.
        let rip = unsafe { &mut (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] };
        if *rip as usize == load_ip() {
            *rip = fixup_ip() as i64;
            return;
        }
        chain(signal, info, context);
    }

    /// Passes a fault that is not ours to the handler installed before.
    fn chain(signal: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
        let index = SIGNALS.iter().position(|&s| s == signal).unwrap_or(0);
        if PREVIOUS[index].load(Ordering::Acquire) == 0 {
            return default_action(signal);
        }
        // SAFETY: SAVED[index] was written before PREVIOUS[index] was set
        // (Release above, Acquire here) and is not written while set.
        let previous = unsafe { (*std::ptr::addr_of!(SAVED[index])).assume_init_ref() };
        let handler = previous.sa_sigaction;
        if handler == libc::SIG_DFL
            || handler == libc::SIG_IGN
            || handler == on_fault as *const () as usize
        {
            return default_action(signal);
        }
        if previous.sa_flags & libc::SA_SIGINFO != 0 {
            // SAFETY: an SA_SIGINFO handler has this signature; it gets the
            // arguments the kernel gave us.
            let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) =
                unsafe { std::mem::transmute(handler) };
            f(signal, info, context);
        } else {
            // SAFETY: a plain handler takes the signal number.
            let f: extern "C" fn(c_int) = unsafe { std::mem::transmute(handler) };
            f(signal);
        }
    }

    /// Restores the default action: returning re-runs the faulting
    /// instruction, which then takes it (a core dump, as without us).
    fn default_action(signal: c_int) {
        // SAFETY: resetting a signal to SIG_DFL has no preconditions.
        unsafe { libc::signal(signal, libc::SIG_DFL) };
    }

    /// Installs the handler for the life of the returned value. `None` if
    /// `sigaction` refused.
    pub(super) fn install() -> Option<Installed> {
        for (index, &signal) in SIGNALS.iter().enumerate() {
            // SAFETY: a zeroed sigaction is a valid starting point; every
            // field used is set below.
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            action.sa_sigaction = on_fault as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            // SAFETY: fills the mask of the action we own.
            unsafe { libc::sigemptyset(&mut action.sa_mask) };
            let mut old = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
            PREVIOUS[index].store(0, Ordering::Release);
            // SAFETY: `action` is initialised; `old` receives the previous
            // action. Installs are serialised by the classifier's lock.
            if unsafe { libc::sigaction(signal, &action, old.as_mut_ptr()) } != 0 {
                drop(Installed { count: index });
                return None;
            }
            // SAFETY: sigaction filled `old`.
            let mut old = unsafe { old.assume_init() };
            clean_mask(&mut old);
            // SAFETY: PREVIOUS[index] is 0, so no handler reads SAVED[index].
            unsafe { (*std::ptr::addr_of_mut!(SAVED[index])).write(old) };
            PREVIOUS[index].store(1, Ordering::Release);
        }
        Some(Installed {
            count: SIGNALS.len(),
        })
    }

    /// Keeps only the kernel's 64 signals of a mask `sigaction` returned:
    /// glibc copies its whole 128-byte `sigset_t` from a stack buffer the
    /// kernel filled 8 bytes of, and the rest (stale stack words, heap
    /// addresses among them) must not sit in a static the classifier scans.
    fn clean_mask(action: &mut libc::sigaction) {
        let mask = std::ptr::addr_of_mut!(action.sa_mask).cast::<u64>();
        let words = std::mem::size_of::<libc::sigset_t>() / 8;
        for i in 1..words {
            // SAFETY: within the sigset_t, which is `words` words long.
            unsafe { mask.add(i).write(0) };
        }
    }

    /// Puts the previous handlers back when dropped.
    pub(super) struct Installed {
        count: usize,
    }

    impl Drop for Installed {
        fn drop(&mut self) {
            for index in 0..self.count {
                // SAFETY: SAVED[index] was written by `install`.
                let previous = unsafe { (*std::ptr::addr_of!(SAVED[index])).assume_init() };
                let mut current = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
                // SAFETY: restores the action saved by `install`.
                unsafe { libc::sigaction(SIGNALS[index], &previous, current.as_mut_ptr()) };
                // SAFETY: sigaction succeeded or left `current` unread.
                let current = unsafe { current.assume_init() };
                if current.sa_sigaction != on_fault as *const () as usize {
                    // Someone installed a handler while we scanned: theirs
                    // stays.
                    // SAFETY: puts back the action read just now.
                    unsafe { libc::sigaction(SIGNALS[index], &current, std::ptr::null_mut()) };
                }
                PREVIOUS[index].store(0, Ordering::Release);
            }
        }
    }
}

/// One [`Reader`] at a time: the fault handler is process-wide.
static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Reads memory for the classifier. Holds the fault handler (where there is
/// one) and a copy buffer; one at a time (the classifier serialises).
pub(crate) struct Reader {
    buffer: *mut u64,
    // Field order: the handler is restored before the lock is released.
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    installed: Option<fault_safe::Installed>,
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

impl Reader {
    /// `None` when no memory could be mapped for the buffer.
    pub(crate) fn new() -> Option<Reader> {
        let one = ONE.lock().unwrap_or_else(|e| e.into_inner());
        let buffer = pages::map(BUF_WORDS * 8, false).cast::<u64>();
        if buffer.is_null() {
            return None;
        }
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        let installed = fault_safe::install();
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        HANDLER_INSTALLED.store(installed.is_some(), std::sync::atomic::Ordering::Release);
        Some(Reader {
            buffer,
            #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
            installed,
            _one_at_a_time: one,
        })
    }

    /// Whether reads take the fast path (for the benches and tests).
    #[cfg(test)]
    pub(crate) fn fast(&self) -> bool {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        return self.installed.is_some();
        #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
        return false;
    }

    /// Copies up to `words` words from `src` (8-aligned) into the buffer;
    /// returns the words copied before the first unreadable one.
    fn copy(&mut self, src: usize, words: usize) -> usize {
        let words = words.min(BUF_WORDS);
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        if self.installed.is_some() {
            // SAFETY: the buffer holds BUF_WORDS words and the handler is
            // installed.
            return unsafe { fault_safe::copy(self.buffer, src, words) };
        }
        self.copy_slow(src, words)
    }

    #[cfg(target_os = "linux")]
    fn copy_slow(&mut self, src: usize, words: usize) -> usize {
        let mut done = 0;
        while done < words {
            // One page at a time, so a fault costs only the page.
            let at = src + done * 8;
            let page_end = (at / PAGE + 1) * PAGE;
            let n = ((page_end - at) / 8).min(words - done);
            let local = libc::iovec {
                // SAFETY: within the buffer of BUF_WORDS words.
                iov_base: unsafe { self.buffer.add(done) }.cast::<c_void>(),
                iov_len: n * 8,
            };
            let remote = libc::iovec {
                iov_base: at as *mut c_void,
                iov_len: n * 8,
            };
            // SAFETY: reads our own process into our buffer; an unreadable
            // source is an error return, not a fault.
            let got = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
            if got != (n * 8) as isize {
                break;
            }
            done += n;
        }
        done
    }

    #[cfg(not(target_os = "linux"))]
    fn copy_slow(&mut self, _src: usize, _words: usize) -> usize {
        0
    }

    /// Calls `visit` with the words of `[start, end)` that can be read,
    /// in batches; unreadable pages are skipped.
    pub(crate) fn scan(&mut self, start: usize, end: usize, visit: &mut impl FnMut(&[u64])) {
        let mut at = start.next_multiple_of(8);
        let end = end & !7;
        while at < end {
            let want = ((end - at) / 8).min(BUF_WORDS);
            let got = self.copy(at, want);
            if got > 0 {
                // SAFETY: `got` words of the buffer were just written.
                visit(unsafe { std::slice::from_raw_parts(self.buffer, got) });
            }
            at += got * 8;
            if got < want {
                // Skip the unreadable page.
                at = (at / PAGE + 1) * PAGE;
            }
        }
    }

    /// Like [`Reader::scan`], but skips pages that are not resident: never
    /// touched (so all zero), or swapped out. For stacks and data segments,
    /// which are mostly untouched.
    pub(crate) fn scan_resident(
        &mut self,
        start: usize,
        end: usize,
        visit: &mut impl FnMut(&[u64]),
    ) {
        const CHUNK_PAGES: usize = 1024;
        let mut vec = [0u8; CHUNK_PAGES];
        let mut page = start / PAGE * PAGE;
        while page < end {
            let chunk_end = (page + CHUNK_PAGES * PAGE).min(end.next_multiple_of(PAGE));
            let pages_here = (chunk_end - page) / PAGE;
            // SAFETY: `vec` has room for `pages_here` entries.
            let ok =
                unsafe { libc::mincore(page as *mut c_void, chunk_end - page, vec.as_mut_ptr()) }
                    == 0;
            if !ok {
                // Partly unmapped: read what can be read.
                self.scan(page.max(start), chunk_end.min(end), visit);
                page = chunk_end;
                continue;
            }
            let mut i = 0;
            while i < pages_here {
                if vec[i] & 1 == 0 {
                    i += 1;
                    continue;
                }
                let run_start = i;
                while i < pages_here && vec[i] & 1 != 0 {
                    i += 1;
                }
                let lo = (page + run_start * PAGE).max(start);
                let hi = (page + i * PAGE).min(end);
                self.scan(lo, hi, visit);
            }
            page = chunk_end;
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        HANDLER_INSTALLED.store(false, std::sync::atomic::Ordering::Release);
        // SAFETY: mapped in `new` with this size; nothing uses it after.
        unsafe { pages::unmap(self.buffer.cast(), BUF_WORDS * 8) };
    }
}

/// Single-word reads for use while a [`Reader`] exists (which keeps the
/// fault handler installed), without borrowing it.
pub(crate) struct Peek(());

impl Peek {
    pub(crate) fn new() -> Peek {
        Peek(())
    }

    /// The word at `at`, if it is aligned and readable.
    pub(crate) fn word(&self, at: usize) -> Option<u64> {
        if at % 8 != 0 {
            return None;
        }
        let mut value = 0u64;
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        if HANDLER_INSTALLED.load(std::sync::atomic::Ordering::Acquire) {
            // SAFETY: `value` has room for one word; the handler is
            // installed (a Reader lives), so a fault returns 0.
            let copied = unsafe { fault_safe::copy(&mut value, at, 1) };
            return (copied == 1).then_some(value);
        }
        #[cfg(target_os = "linux")]
        {
            let local = libc::iovec {
                iov_base: (&mut value as *mut u64).cast(),
                iov_len: 8,
            };
            let remote = libc::iovec {
                iov_base: at as *mut c_void,
                iov_len: 8,
            };
            // SAFETY: reads 8 bytes of our own process into `value`; an
            // unreadable source is an error return.
            let got = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
            (got == 8).then_some(value)
        }
        #[cfg(not(target_os = "linux"))]
        None
    }
}

/// Set while a [`Reader`] holds the fault handler.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
static HANDLER_INSTALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmapped_and_guard_pages_are_skipped_not_fatal() {
        let mut reader = Reader::new().expect("a buffer");
        let map = pages::map(3 * PAGE, false);
        assert!(!map.is_null());
        // SAFETY: the three pages are ours; fill them, then make the middle
        // one inaccessible.
        unsafe {
            std::ptr::write_bytes(map, 0xAB, 3 * PAGE);
            assert_eq!(
                libc::mprotect(map.add(PAGE).cast(), PAGE, libc::PROT_NONE),
                0
            );
        }
        let mut seen = 0usize;
        reader.scan(map as usize, map as usize + 3 * PAGE, &mut |words| {
            assert!(words.iter().all(|&w| w == 0xABAB_ABAB_ABAB_ABAB));
            seen += words.len();
        });
        assert_eq!(
            seen,
            2 * PAGE / 8,
            "both readable pages, not the guarded one"
        );
        // Single words, as the classifier's heuristics read them.
        let peek = Peek::new();
        assert_eq!(peek.word(map as usize + PAGE), None);
        assert_eq!(peek.word(map as usize), Some(0xABAB_ABAB_ABAB_ABAB));
        assert_eq!(peek.word(map as usize + 4), None, "unaligned");
        // SAFETY: unmapping our own pages, then reading where they were.
        unsafe { pages::unmap(map, 3 * PAGE) };
        assert_eq!(peek.word(map as usize), None);
        if cfg!(target_arch = "x86_64") {
            assert!(reader.fast(), "the fault handler is installed");
        }
    }

    #[test]
    fn resident_scan_skips_untouched_pages() {
        let mut reader = Reader::new().expect("a buffer");
        let map = pages::map(64 * PAGE, true);
        // SAFETY: touch two pages of our own mapping.
        unsafe {
            map.add(5 * PAGE).cast::<u64>().write(7);
            map.add(40 * PAGE).cast::<u64>().write(9);
        }
        let (mut words, mut found) = (0, Vec::new());
        reader.scan_resident(map as usize, map as usize + 64 * PAGE, &mut |w| {
            words += w.len();
            found.extend(w.iter().copied().filter(|&x| x != 0));
        });
        assert_eq!(found, [7, 9]);
        assert_eq!(words, 2 * PAGE / 8);
        // SAFETY: ours.
        unsafe { pages::unmap(map, 64 * PAGE) };
    }

    #[test]
    fn a_fault_elsewhere_still_reaches_the_previous_handler() {
        // The handler is only installed while a Reader lives; outside it the
        // process's own handlers are back.
        // Read with no Reader alive (other tests classify concurrently).
        let idle = || {
            let _no_reader = ONE.lock().unwrap_or_else(|e| e.into_inner());
            current_segv_handler()
        };
        let before = idle();
        {
            let _reader = Reader::new().expect("a buffer");
            if cfg!(target_arch = "x86_64") {
                assert_ne!(current_segv_handler(), before);
            }
        }
        assert_eq!(idle(), before);
    }

    fn current_segv_handler() -> usize {
        let mut old = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
        // SAFETY: queries only.
        unsafe { libc::sigaction(libc::SIGSEGV, std::ptr::null(), old.as_mut_ptr()) };
        // SAFETY: filled by sigaction.
        unsafe { old.assume_init() }.sa_sigaction
    }
}
