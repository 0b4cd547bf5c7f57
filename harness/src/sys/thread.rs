//! What the operating system says about threads: ids, liveness, stack
//! bounds. Nothing here allocates but [`stack_bounds`], which says so.

/// The calling thread's kernel id.
pub(crate) fn current_tid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// Whether thread `tid` of this process still exists.
pub(crate) fn alive(tid: i32) -> bool {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    // SAFETY: signal 0 only checks that the thread exists.
    unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, 0) == 0 }
}

/// The calling thread's stack bounds, (0, 0) if unknown
/// (`pthread_getattr_np`, which allocates: callers hold the hooks off or run
/// outside a scope).
pub(crate) fn stack_bounds() -> (usize, usize) {
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
