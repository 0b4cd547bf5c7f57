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
