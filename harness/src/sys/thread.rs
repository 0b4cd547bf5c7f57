//! What the operating system says about threads: ids, liveness, stack
//! bounds. Nothing here allocates but [`stack_bounds`], which says so.

use std::sync::atomic::{AtomicI32, Ordering::Relaxed};

thread_local! {
    /// The calling thread's id once asked for (0 before): a thread's id
    /// never changes but in a `fork` child (see [`forget_ids_in_child`]).
    static TID: AtomicI32 = const { AtomicI32::new(0) };
}

/// The process id once asked for (0 before).
static PID: AtomicI32 = AtomicI32::new(0);

/// The calling thread's kernel id: a system call on each thread's first
/// use, then its thread-local copy (every thread start asks for it twice:
/// its creator's in `pthread_create`, its own when it registers).
pub(crate) fn current_tid() -> i32 {
    fn gettid() -> i32 {
        // SAFETY: gettid has no preconditions.
        unsafe { libc::syscall(libc::SYS_gettid) as i32 }
    }
    TID.try_with(|t| match t.load(Relaxed) {
        0 => {
            let tid = gettid();
            t.store(tid, Relaxed);
            tid
        }
        tid => tid,
    })
    .unwrap_or_else(|_| gettid())
}

/// This process's id, asked for once.
pub(crate) fn current_pid() -> i32 {
    match PID.load(Relaxed) {
        0 => {
            // SAFETY: getpid has no preconditions.
            let pid = unsafe { libc::getpid() };
            PID.store(pid, Relaxed);
            pid
        }
        pid => pid,
    }
}

/// `pthread_atfork` child: the process and its one thread have new ids.
/// (A child made by a raw `fork` system call, which runs no handlers,
/// keeps the parent's, as glibc's own copy of the thread id does.)
pub(crate) fn forget_ids_in_child() {
    PID.store(0, Relaxed);
    let _ = TID.try_with(|t| t.store(0, Relaxed));
}

/// Whether thread `tid` of this process still exists.
pub(crate) fn alive(tid: i32) -> bool {
    // SAFETY: signal 0 only checks that the thread exists.
    unsafe { libc::syscall(libc::SYS_tgkill, current_pid(), tid, 0) == 0 }
}

/// The calling thread's stack bounds, (0, 0) if unknown
/// (`pthread_getattr_np`, which allocates: callers hold the hooks off or run
/// outside a scope). Found once a thread: the body thread of a check asks
/// twice (registering, entering its scope), and each `pthread_getattr_np`
/// was about 10,000 instructions and a `sched_getaffinity` call.
pub(crate) fn stack_bounds() -> (usize, usize) {
    thread_local! {
        // No destructor: readable until the thread is gone.
        static FOUND: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
    }
    let found = FOUND.try_with(std::cell::Cell::get).unwrap_or((0, 0));
    if found != (0, 0) {
        return found;
    }
    let bounds = stack_bounds_now();
    let _ = FOUND.try_with(|f| f.set(bounds));
    bounds
}

fn stack_bounds_now() -> (usize, usize) {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: fills `attr` for the calling thread; on failure it is unused.
    if unsafe { libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) } != 0 {
        return (0, 0);
    }
    let (mut low, mut size) = (std::ptr::null_mut(), 0usize);
    // SAFETY: `attr` was initialised by pthread_getattr_np.
    let found = unsafe { libc::pthread_attr_getstack(attr.as_ptr(), &mut low, &mut size) } == 0;
    // SAFETY: initialised above and destroyed once.
    unsafe { libc::pthread_attr_destroy(attr.as_mut_ptr()) };
    if found {
        (low as usize, low as usize + size)
    } else {
        (0, 0)
    }
}

/// Whether thread `tid` of this process is running or waiting for a CPU
/// (state `R` in `/proc/self/task/<tid>/stat`), as opposed to sleeping.
/// False when the state cannot be read.
pub(crate) fn runnable(tid: i32) -> bool {
    let mut stat = [0u8; 512];
    let stat = read_task_file(tid, "stat", &mut stat);
    // `pid (comm) S ...`: the state follows the last `)` (comm may hold one).
    stat.iter()
        .rposition(|&b| b == b')')
        .and_then(|close| stat.get(close + 2))
        .is_some_and(|&state| state == b'R')
}

/// The CPU time thread `tid` of this process has used, in nanoseconds (the
/// first field of `/proc/self/task/<tid>/schedstat`); 0 when unknown.
pub(crate) fn cpu_ns(tid: i32) -> u64 {
    let mut text = [0u8; 128];
    let text = read_task_file(tid, "schedstat", &mut text);
    let digits = text.iter().take_while(|b| b.is_ascii_digit());
    digits.fold(0u64, |n, &d| {
        n.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))
    })
}

/// Reads `/proc/self/task/<tid>/<file>` into `buf` without allocating;
/// empty when it cannot be read.
fn read_task_file<'b>(tid: i32, file: &str, buf: &'b mut [u8]) -> &'b [u8] {
    let mut path = [0u8; 64];
    let mut w = Writer {
        buf: &mut path,
        len: 0,
    };
    if std::fmt::write(&mut w, format_args!("/proc/self/task/{tid}/{file}\0")).is_err() {
        return &[];
    }
    // SAFETY: `path` is NUL-terminated; the descriptor is read into a
    // buffer we own and closed once.
    let read = unsafe {
        let fd = libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return &[];
        }
        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        libc::close(fd);
        n
    };
    match usize::try_from(read) {
        Ok(n) => &buf[..n],
        Err(_) => &[],
    }
}

/// A `fmt::Write` into a byte buffer, so a path is built without allocating.
struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl std::fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let room = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_bounds_are_each_threads_own_and_found_once() {
        // Two threads alive at once: distinct stacks, each holding its own
        // locals, the cached answer the same as a fresh one.
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let first = stack_bounds();
                    let local = 0u8;
                    let at = std::ptr::from_ref(&local) as usize;
                    assert!(first.0 < at && at < first.1, "{first:x?} {at:x}");
                    assert_eq!(stack_bounds(), first);
                    assert_eq!(stack_bounds_now(), first);
                    barrier.wait();
                    first
                })
            })
            .collect();
        let bounds: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_ne!(bounds[0], bounds[1]);
    }

    #[test]
    fn the_calling_thread_is_runnable_and_a_sleeping_one_is_not() {
        assert!(runnable(current_tid()));
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let sleeper = std::thread::spawn(move || {
            tid_tx.send(current_tid()).unwrap();
            let _ = stop_rx.recv();
        });
        let tid = tid_rx.recv().unwrap();
        // Blocked in recv (a futex wait) within a few milliseconds.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while runnable(tid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(!runnable(tid));
        stop_tx.send(()).unwrap();
        sleeper.join().unwrap();
        assert!(!runnable(tid), "an exited thread");
    }

    #[test]
    fn ids_are_the_kernels_and_each_thread_keeps_its_own() {
        // SAFETY: gettid and getpid have no preconditions.
        let (tid, pid) = unsafe { (libc::syscall(libc::SYS_gettid) as i32, libc::getpid()) };
        assert_eq!(current_tid(), tid);
        assert_eq!(current_tid(), tid, "from the copy");
        assert_eq!(current_pid(), pid);
        let other = std::thread::spawn(current_tid).join().unwrap();
        assert_ne!(other, tid);
        assert_eq!(current_tid(), tid);
    }

    #[cfg(leakcheck_interpose)]
    #[test]
    fn a_fork_child_has_its_own_ids() {
        crate::track::hooks::init();
        let (tid, pid) = (current_tid(), current_pid());
        // SAFETY: the child only makes system calls and exits.
        let child = unsafe { libc::fork() };
        assert!(child >= 0);
        if child == 0 {
            // SAFETY: getpid has no preconditions.
            let real = unsafe { libc::getpid() };
            let ok = current_pid() == real && current_tid() == real && current_tid() != tid;
            // SAFETY: _exit ends the child without running the parent's
            // exit handlers.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for the child made above; `status` is valid.
        assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{status}"
        );
        assert_eq!((current_tid(), current_pid()), (tid, pid));
    }

    #[test]
    fn cpu_time_grows_while_a_thread_works() {
        let me = current_tid();
        let before = cpu_ns(me);
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(30) {
            std::hint::black_box(0u64.wrapping_add(1));
        }
        assert!(cpu_ns(me) > before, "{before}");
        assert_eq!(cpu_ns(-5), 0);
    }
}
