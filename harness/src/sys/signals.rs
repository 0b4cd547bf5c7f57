//! Keeping asynchronous signals out of leakcheck's own work.
//!
//! A handler that allocates (not async-signal-safe, but programs do it and
//! work) deadlocks when it interrupts code holding glibc's arena lock on the
//! same thread. The verdict and the report allocate through glibc directly,
//! so while the checking thread builds them it blocks every signal a
//! handler could be waiting on; the kernel delivers process-directed ones
//! to another thread meanwhile, and thread-directed ones when the mask is
//! restored.

/// While alive, the calling thread has the chosen signals blocked; dropping
/// it restores the mask it had.
#[must_use = "signals are unblocked when this is dropped"]
pub(crate) struct Blocked {
    old: libc::sigset_t,
    /// A thread's mask is the thread's: not `Send`.
    _thread: std::marker::PhantomData<*const ()>,
}

/// Raised by the faulting instruction itself: blocking one of these while
/// it is raised kills the process (and the verdict's fault-tolerant reads
/// rely on catching `SIGSEGV` and `SIGBUS`).
pub(crate) const SYNCHRONOUS: [libc::c_int; 6] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGTRAP,
    libc::SIGSYS,
];

impl Blocked {
    /// Blocks every signal, for code that must not see a handler's frame
    /// written below its stack pointer.
    pub(crate) fn all() -> Blocked {
        Blocked::mask(|_| {})
    }

    /// Blocks every asynchronous signal (timers, `kill`, I/O, ...), for
    /// leakcheck's own work on a thread: the verdict, symbolisation, the
    /// report.
    pub(crate) fn asynchronous() -> Blocked {
        Blocked::mask(|set| {
            for signal in SYNCHRONOUS {
                // SAFETY: `set` is an initialised signal set; `signal` is a
                // valid signal number.
                unsafe { libc::sigdelset(set, signal) };
            }
        })
    }

    /// The mask this thread had before, for a thread this one starts to
    /// run the program's code with (see [`restore`]).
    pub(crate) fn saved(&self) -> Mask {
        Mask(self.old)
    }

    fn mask(adjust: impl FnOnce(&mut libc::sigset_t)) -> Blocked {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        let mut old = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigfillset initialises the set we own; pthread_sigmask
        // only changes the calling thread's mask and writes the old one
        // into `old`, which it initialises.
        unsafe {
            libc::sigfillset(set.as_mut_ptr());
            adjust(&mut *set.as_mut_ptr());
            libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), old.as_mut_ptr());
            Blocked {
                old: old.assume_init(),
                _thread: std::marker::PhantomData,
            }
        }
    }
}

/// A thread's signal mask, to hand to another thread.
#[derive(Clone, Copy)]
pub(crate) struct Mask(libc::sigset_t);

/// Sets the calling thread's mask to `mask`: a thread started by one of
/// leakcheck's blocked threads to run the program's code gets the program's
/// mask back.
pub(crate) fn restore(mask: Mask) {
    // SAFETY: sets the calling thread's mask from an initialised set.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &mask.0, std::ptr::null_mut()) };
}

impl Drop for Blocked {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved when this was created, on the
        // thread that created it (the type is not `Send`).
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(signal: libc::c_int) -> bool {
        let mut now = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: reads the calling thread's mask into a set we own.
        unsafe {
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), now.as_mut_ptr());
            libc::sigismember(now.as_ptr(), signal) == 1
        }
    }

    #[test]
    fn asynchronous_blocks_timers_but_not_faults_and_restores() {
        assert!(!blocked(libc::SIGALRM));
        {
            let _blocked = Blocked::asynchronous();
            assert!(blocked(libc::SIGALRM));
            assert!(blocked(libc::SIGUSR1));
            assert!(!blocked(libc::SIGSEGV));
            assert!(!blocked(libc::SIGBUS));
            {
                let _all = Blocked::all();
                assert!(blocked(libc::SIGSEGV));
            }
            assert!(!blocked(libc::SIGSEGV));
            assert!(blocked(libc::SIGALRM));
        }
        assert!(!blocked(libc::SIGALRM));
    }
}
