//! The floor every stage stands on: primitives that allocate nothing through
//! the tracked allocator and name no stage above them — spin locks and
//! mapped pages, a `Vec` in mapped pages, the operating system's view of
//! threads, and the re-entrancy flag that tells the allocation path which of
//! leakcheck's own calls is running on this thread.

pub(crate) mod fasthash;
pub(crate) mod mapvec;
pub(crate) mod reentry;
#[cfg(unix)]
pub(crate) mod signals;
pub(crate) mod sync;
#[cfg(target_os = "linux")]
pub(crate) mod thread;
