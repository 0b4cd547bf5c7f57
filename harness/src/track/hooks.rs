//! The C allocation hooks: `malloc` and family, and `pthread_create`,
//! defined in the test executable so that every caller in the process —
//! C compiled into the binary, glibc itself (`strdup`, `getline`, ...),
//! system and `dlopen`ed libraries — resolves to them. Each forwards to
//! glibc's real allocator (`__libc_malloc`, ...), then records the block.
//!
//! Only on Linux with glibc (`cfg(leakcheck_interpose)`, set by build.rs);
//! `hooks_unsupported.rs` stands in elsewhere. The rules of `record` apply:
//! no allocation through the tracked allocator, no lock a fork could leave
//! held (`pthread_atfork` handlers hold ours across `fork`), no panic.

use crate::stacks::{frame_marker, hook_frame_here};
use crate::sys::reentry::Guard;
use crate::sys::relaxed::Relaxed as _;
use crate::track::misuse::{self, guard_for_new, Call, Release};
use crate::track::record::{
    alloc_plain, free_plain, on_alloc, on_final_free, on_free, on_realloc, on_realloc_failed,
};
use crate::track::scope::{self, Untracked};
use crate::track::table::{self, Allocator, Block};
use libc::{c_int, c_void, pthread_attr_t, pthread_t};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

extern "C" {
    fn __libc_malloc(size: usize) -> *mut c_void;
    fn __libc_calloc(n: usize, size: usize) -> *mut c_void;
    fn __libc_realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    fn __libc_free(ptr: *mut c_void);
    fn __libc_memalign(align: usize, size: usize) -> *mut c_void;
    fn __libc_valloc(size: usize) -> *mut c_void;
    fn __libc_pvalloc(size: usize) -> *mut c_void;
}

/// The real allocator behind every front end: glibc's, except that in a
/// harness section new blocks come from leakcheck's own heap
/// (`own_heap`), and a block of that heap is freed or resized there
/// wherever it goes. Not recorded: the callers record.
mod base {
    use crate::track::own_heap;
    use crate::track::scope;
    use libc::c_void;

    /// As `malloc(3)`.
    #[inline(always)]
    pub(super) unsafe fn malloc(size: usize) -> *mut c_void {
        if scope::in_harness_now() {
            let p = own_heap::alloc(size, 1);
            if !p.is_null() {
                return p;
            }
        }
        // SAFETY: malloc's own contract.
        unsafe { super::__libc_malloc(size) }
    }

    /// As `calloc(3)`.
    #[inline(always)]
    pub(super) unsafe fn calloc(n: usize, size: usize) -> *mut c_void {
        if scope::in_harness_now() {
            if let Some(bytes) = n.checked_mul(size) {
                let p = own_heap::alloc(bytes, 1);
                if !p.is_null() {
                    // SAFETY: a fresh block of `bytes` bytes.
                    unsafe { p.cast::<u8>().write_bytes(0, bytes) };
                    return p;
                }
            }
        }
        // SAFETY: calloc's own contract.
        unsafe { super::__libc_calloc(n, size) }
    }

    /// As `memalign(3)` (glibc rounds an `align` that is no power of two
    /// up to one; so does this).
    #[inline(always)]
    pub(super) unsafe fn memalign(align: usize, size: usize) -> *mut c_void {
        if scope::in_harness_now() {
            if let Some(align) = align.checked_next_power_of_two() {
                let p = own_heap::alloc(size, align);
                if !p.is_null() {
                    return p;
                }
            }
        }
        // SAFETY: memalign's own contract.
        unsafe { super::__libc_memalign(align, size) }
    }

    /// As `valloc(3)`: `memalign` to the page, rounded up to it as
    /// `pvalloc` when `round`.
    #[inline(always)]
    pub(super) unsafe fn valloc(size: usize, round: bool) -> *mut c_void {
        if scope::in_harness_now() {
            let page = super::page_size();
            let bytes = if round {
                size.checked_next_multiple_of(page)
            } else {
                Some(size)
            };
            if let Some(bytes) = bytes {
                let p = own_heap::alloc(bytes, page);
                if !p.is_null() {
                    return p;
                }
            }
        }
        if round {
            // SAFETY: pvalloc's own contract.
            unsafe { super::__libc_pvalloc(size) }
        } else {
            // SAFETY: valloc's own contract.
            unsafe { super::__libc_valloc(size) }
        }
    }

    /// As `realloc(3)`. A block of the own heap stays there if it can.
    #[inline(always)]
    pub(super) unsafe fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
        if ptr.is_null() {
            // SAFETY: realloc(NULL, n) is malloc(n).
            return unsafe { malloc(size) };
        }
        if !own_heap::contains(ptr) {
            // SAFETY: realloc's own contract; `ptr` is glibc's.
            return unsafe { super::__libc_realloc(ptr, size) };
        }
        if size == 0 {
            own_heap::free(ptr);
            return std::ptr::null_mut();
        }
        let old = own_heap::usable_size(ptr);
        if old == 0 {
            // No live block of the own heap: reported there; as glibc
            // would not be asked, no block.
            return std::ptr::null_mut();
        }
        if size <= old {
            return ptr;
        }
        let mut new = own_heap::alloc(size, 1);
        if new.is_null() {
            // SAFETY: a plain allocation.
            new = unsafe { super::__libc_malloc(size) };
        }
        if !new.is_null() {
            // SAFETY: both are live, distinct blocks of at least `old`
            // bytes (`old < size`).
            unsafe { std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), new.cast::<u8>(), old) };
            own_heap::free(ptr);
        }
        new
    }

    /// As `free(3)`.
    #[inline(always)]
    pub(super) unsafe fn free(ptr: *mut c_void) {
        if own_heap::contains(ptr) {
            own_heap::free(ptr);
        } else {
            // SAFETY: free's own contract; `ptr` is glibc's.
            unsafe { super::__libc_free(ptr) }
        }
    }
}

/// glibc's allocator, bypassing the hooks: for the tracker's own Rust-side
/// allocator (the `global-allocator` feature) and the quarantine. In a
/// harness section, leakcheck's own heap (see `base`).
pub(crate) mod real {
    use libc::c_void;

    #[cfg(any(feature = "global-allocator", test))]
    /// # Safety
    /// As `malloc(3)`.
    pub(crate) unsafe fn malloc(size: usize) -> *mut c_void {
        // SAFETY: forwarded unchanged; the caller upholds malloc's contract.
        unsafe { super::base::malloc(size) }
    }
    #[cfg(feature = "global-allocator")]
    /// # Safety
    /// As `calloc(3)`.
    pub(crate) unsafe fn calloc(n: usize, size: usize) -> *mut c_void {
        // SAFETY: forwarded unchanged.
        unsafe { super::base::calloc(n, size) }
    }
    #[cfg(feature = "global-allocator")]
    /// # Safety
    /// As `realloc(3)`; `ptr` must come from this module's allocators.
    pub(crate) unsafe fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
        // SAFETY: forwarded unchanged.
        unsafe { super::base::realloc(ptr, size) }
    }
    /// # Safety
    /// As `free(3)`; `ptr` must come from this module's allocators.
    pub(crate) unsafe fn free(ptr: *mut c_void) {
        // SAFETY: forwarded unchanged.
        unsafe { super::base::free(ptr) }
    }
    #[cfg(feature = "global-allocator")]
    /// # Safety
    /// As `memalign(3)`: `align` a power of two.
    pub(crate) unsafe fn memalign(align: usize, size: usize) -> *mut c_void {
        // SAFETY: forwarded unchanged.
        unsafe { super::base::memalign(align, size) }
    }

    /// glibc's own allocator, with no choice of heap: for a caller that has
    /// read its thread's state and knows it is in no harness section (the
    /// tracking allocator's general path, `record::alloc_glibc`), which
    /// would otherwise pay that read again, and for a reallocation that
    /// moves a glibc block itself (`record::realloc_holding`).
    pub(crate) mod glibc {
        use libc::c_void;

        /// The alignment glibc's `malloc` guarantees on x86_64 and aarch64.
        pub(crate) const MIN_ALIGN: usize = 16;

        /// Whether `malloc(size)` gives `align` (a power of two): else
        /// `memalign` must.
        #[inline(always)]
        pub(crate) fn malloc_serves(size: usize, align: usize) -> bool {
            align <= MIN_ALIGN && align <= size
        }

        /// # Safety
        /// As `malloc(3)`.
        #[inline(always)]
        pub(crate) unsafe fn malloc(size: usize) -> *mut c_void {
            // SAFETY: forwarded unchanged.
            unsafe { super::super::__libc_malloc(size) }
        }
        /// # Safety
        /// As `calloc(3)`.
        #[cfg(feature = "global-allocator")]
        #[inline(always)]
        pub(crate) unsafe fn calloc(n: usize, size: usize) -> *mut c_void {
            // SAFETY: forwarded unchanged.
            unsafe { super::super::__libc_calloc(n, size) }
        }
        /// # Safety
        /// As `memalign(3)`: `align` a power of two.
        #[inline(always)]
        pub(crate) unsafe fn memalign(align: usize, size: usize) -> *mut c_void {
            // SAFETY: forwarded unchanged.
            unsafe { super::super::__libc_memalign(align, size) }
        }
        /// # Safety
        /// As `free(3)`: `ptr` is null or a live block of glibc's.
        #[inline(always)]
        pub(crate) unsafe fn free(ptr: *mut c_void) {
            // SAFETY: forwarded unchanged.
            unsafe { super::super::__libc_free(ptr) }
        }
        /// glibc's `malloc_usable_size`: the bytes the block at `ptr` has
        /// (0 if glibc's definition cannot be found).
        ///
        /// # Safety
        /// `ptr` is a live block of glibc's.
        pub(crate) unsafe fn usable_size(ptr: *mut c_void) -> usize {
            // SAFETY: the caller's live glibc block.
            unsafe { super::super::glibc_usable_size(ptr) }
        }
    }
}

// --- the C entry points -------------------------------------------------

/// Interposed `malloc(3)`.
///
/// # Safety
///
/// As `malloc(3)`.
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    // SAFETY: forwarding malloc's own contract.
    if let Some(ptr) = alloc_plain(size, Allocator::Malloc, 0, || unsafe {
        __libc_malloc(size)
    }) {
        return ptr;
    }
    // In this frame, so that stacks start at malloc's caller.
    let frame = hook_frame_here!();
    let hook_frame = frame.marker();
    // SAFETY: malloc's own contract.
    unsafe { malloc_general(size, hook_frame) }
}

/// `malloc` for every block a thread's cache does not take, out of line:
/// the hook itself stays small enough to need no saved registers on its
/// fast path.
///
/// # Safety
///
/// As `malloc(3)`.
#[inline(never)]
unsafe fn malloc_general(size: usize, hook_frame: usize) -> *mut c_void {
    crate::track::record::alloc_general(
        size,
        0,
        Allocator::Malloc,
        hook_frame,
        |n| {
            // SAFETY: forwarding malloc's own contract (`alloc_general`
            // adds guard bytes only where the sum does not overflow).
            unsafe { base::malloc(n) }
        },
        |n| {
            // SAFETY: as above.
            unsafe { __libc_malloc(n) }
        },
    )
}

/// Interposed `calloc(3)`.
///
/// # Safety
///
/// As `calloc(3)`.
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    let frame = hook_frame_here!();
    let hook_frame = frame.marker();
    let guarded = n
        .checked_mul(size)
        .filter(|&bytes| guard_for_new(bytes) != 0);
    let ptr = match guarded {
        // SAFETY: one zeroed block of the same bytes and the guard.
        Some(bytes) => unsafe { base::calloc(bytes + misuse::GUARD, 1) },
        // SAFETY: forwarding calloc's own contract (glibc checks the overflow).
        None => unsafe { base::calloc(n, size) },
    };
    on_alloc(
        ptr,
        n.wrapping_mul(size),
        Allocator::Calloc,
        0,
        hook_frame,
        guarded.is_some(),
    );
    ptr
}

/// Interposed `realloc(3)`.
///
/// # Safety
///
/// As `realloc(3)`: `ptr` is null or a live block from this allocator.
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    let frame = hook_frame_here!();
    let hook_frame = frame.marker();
    // SAFETY: the caller upholds realloc's contract.
    unsafe { realloc_as(ptr, size, Allocator::Realloc, hook_frame) }
}

/// # Safety
///
/// As `realloc(3)`.
#[inline(always)]
unsafe fn realloc_as(
    ptr: *mut c_void,
    size: usize,
    allocator: Allocator,
    hook_frame: usize,
) -> *mut c_void {
    let old = on_free(ptr);
    if !ptr.is_null() && realloc_misuse(ptr, old.as_ref(), hook_frame) {
        set_errno(libc::ENOMEM);
        return std::ptr::null_mut();
    }
    // realloc(p, 0) frees p: no guard, or glibc would return a block.
    let guard = match old {
        _ if size == 0 => 0,
        Some(old) if old.guarded != 0 => misuse::GUARD,
        Some(_) => 0,
        None => guard_for_new(size),
    };
    let Some(request) = size.checked_add(guard) else {
        on_realloc_failed(old);
        set_errno(libc::ENOMEM);
        return std::ptr::null_mut();
    };
    if let Some(block) = old.filter(|_| size != 0) {
        // SAFETY: `ptr` is the live block `block` describes (retired from
        // the table, not yet freed), which this call reallocates.
        let moved = unsafe {
            crate::track::record::realloc_holding(
                ptr,
                block,
                (size, guard),
                allocator,
                0,
                hook_frame,
            )
        };
        if let Some(new) = moved {
            // A null `new` left the old block intact, and errno as glibc's
            // malloc set it.
            return new;
        }
    }
    // SAFETY: the caller upholds realloc's contract; the block's record is
    // already retired so a concurrent reuse of the address is safe.
    let new = unsafe { base::realloc(ptr, request) };
    if new.is_null() {
        // realloc(p, 0) frees p and returns null; any other null leaves p.
        if size != 0 || ptr.is_null() {
            on_realloc_failed(old);
        }
        return new;
    }
    on_realloc(old, new, size, allocator, 0, hook_frame, guard != 0);
    new
}

/// The misuse checks of a `realloc` of `ptr` (non-null), whose live
/// block, if any, is `old`. Returns whether the call must not reach glibc
/// (`ptr` is no live block, and a misuse was reported).
#[inline(always)]
fn realloc_misuse(ptr: *mut c_void, old: Option<&Block>, hook_frame: usize) -> bool {
    let Some(guard) = Guard::enter() else {
        return false;
    };
    let how = Release {
        call: Call::Realloc,
        layout: None,
        hook_frame,
    };
    match old {
        Some(block) => {
            misuse::on_release(&guard, block, how, false);
            false
        }
        None => misuse::unknown_pointer(&guard, ptr as usize, how),
    }
}

/// Interposed `reallocarray(3)`.
///
/// # Safety
///
/// As `reallocarray(3)`.
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn reallocarray(ptr: *mut c_void, n: usize, size: usize) -> *mut c_void {
    let frame = hook_frame_here!();
    let hook_frame = frame.marker();
    let Some(bytes) = n.checked_mul(size) else {
        set_errno(libc::ENOMEM);
        return std::ptr::null_mut();
    };
    // SAFETY: the caller upholds realloc's contract.
    unsafe { realloc_as(ptr, bytes, Allocator::Reallocarray, hook_frame) }
}

/// Interposed `free(3)`.
///
/// # Safety
///
/// As `free(3)`.
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn free(ptr: *mut c_void) {
    let plain = Release {
        call: Call::Free,
        layout: None,
        hook_frame: 0,
    };
    if free_plain(ptr, plain) {
        // SAFETY: the caller upholds free's contract.
        unsafe { __libc_free(ptr) };
        return;
    }
    // In this frame, so that stacks start at free's caller.
    let frame = hook_frame_here!();
    let hook_frame = frame.marker();
    // SAFETY: free's own contract.
    unsafe { free_general(ptr, hook_frame) }
}

/// `free` for every block not in this thread's cache, out of line (see
/// `malloc_general`).
///
/// # Safety
///
/// As `free(3)`.
#[inline(never)]
unsafe fn free_general(ptr: *mut c_void, hook_frame: usize) {
    let how = Release {
        call: Call::Free,
        layout: None,
        hook_frame,
    };
    if on_final_free(ptr, how) {
        // SAFETY: the caller upholds free's contract.
        unsafe { base::free(ptr) }
    }
}

/// Interposed `posix_memalign(3)`.
///
/// # Safety
///
/// As `posix_memalign(3)`: `out` is valid for a write.
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    let frame = hook_frame_here!();
    let hook_frame = frame.marker();
    if !align.is_power_of_two() || align % std::mem::size_of::<*mut c_void>() != 0 {
        return libc::EINVAL;
    }
    let guard = guard_for_new(size);
    // SAFETY: align is a power of two, as memalign requires.
    let ptr = unsafe { base::memalign(align, size + guard) };
    if ptr.is_null() {
        return libc::ENOMEM;
    }
    on_alloc(
        ptr,
        size,
        Allocator::PosixMemalign,
        align,
        hook_frame,
        guard != 0,
    );
    // SAFETY: the caller guarantees `out` is valid for a write.
    unsafe { out.write(ptr) };
    0
}

/// Interposed `aligned_alloc(3)`.
///
/// # Safety
///
/// As `aligned_alloc(3)`.
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    let frame = hook_frame_here!();
    let hook_frame = frame.marker();
    if !align.is_power_of_two() {
        set_errno(libc::EINVAL);
        return std::ptr::null_mut();
    }
    let guard = guard_for_new(size);
    // SAFETY: align is a power of two.
    let ptr = unsafe { base::memalign(align, size + guard) };
    on_alloc(
        ptr,
        size,
        Allocator::AlignedAlloc,
        align,
        hook_frame,
        guard != 0,
    );
    ptr
}

/// Interposed `memalign(3)`.
///
/// # Safety
///
/// As `memalign(3)`.
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    let frame = hook_frame_here!();
    let hook_frame = frame.marker();
    let guard = guard_for_new(size);
    // SAFETY: forwarded with the guard added; glibc validates and rounds
    // `align`.
    let ptr = unsafe { base::memalign(align, size + guard) };
    on_alloc(
        ptr,
        size,
        Allocator::Memalign,
        align,
        hook_frame,
        guard != 0,
    );
    ptr
}

/// Interposed `valloc(3)`.
///
/// # Safety
///
/// As `valloc(3)`.
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    let frame = hook_frame_here!();
    let hook_frame = frame.marker();
    let guard = guard_for_new(size);
    // SAFETY: forwarded with the guard added.
    let ptr = unsafe { base::valloc(size + guard, false) };
    on_alloc(
        ptr,
        size,
        Allocator::Valloc,
        page_size(),
        hook_frame,
        guard != 0,
    );
    ptr
}

/// Interposed `pvalloc(3)`.
///
/// # Safety
///
/// As `pvalloc(3)`.
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let frame = hook_frame_here!();
    let hook_frame = frame.marker();
    let guard = guard_for_new(size);
    // SAFETY: forwarded with the guard added.
    let ptr = unsafe { base::valloc(size + guard, true) };
    on_alloc(
        ptr,
        size,
        Allocator::Pvalloc,
        page_size(),
        hook_frame,
        guard != 0,
    );
    ptr
}

/// Interposed `malloc_usable_size(3)`: for a block with guard bytes, its
/// requested size (so that code using all of it never writes the guard);
/// otherwise glibc's answer.
///
/// # Safety
///
/// As `malloc_usable_size(3)`: `ptr` is null or a live block.
#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(ptr: *mut c_void) -> usize {
    if ptr.is_null() {
        return 0;
    }
    if let Some(Some(size)) =
        table::with_block(ptr as usize, |b| (b.guarded != 0).then_some(b.size))
    {
        return size;
    }
    // After the guard: a block of leakcheck's own reallocated inside a
    // check stays there, with guard bytes past its size.
    if crate::track::own_heap::contains(ptr) {
        return crate::track::own_heap::usable_size(ptr);
    }
    // SAFETY: a live block of glibc's (the caller's contract; not of the
    // own heap, checked above).
    unsafe { glibc_usable_size(ptr) }
}

/// glibc's `malloc_usable_size(ptr)`, found past this executable's (0 if
/// it cannot be).
///
/// # Safety
///
/// `ptr` is a live block of glibc's.
unsafe fn glibc_usable_size(ptr: *mut c_void) -> usize {
    static REAL: AtomicUsize = AtomicUsize::new(0);
    let addr = next_definition(&REAL, c"malloc_usable_size");
    if addr == 0 {
        return 0;
    }
    // SAFETY: `addr` is glibc's malloc_usable_size, whose signature this is.
    let real: unsafe extern "C" fn(*mut c_void) -> usize = unsafe { std::mem::transmute(addr) };
    // SAFETY: forwarding the caller's pointer unchanged.
    unsafe { real(ptr) }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions and does not allocate.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

fn set_errno(value: c_int) {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() = value };
}

// --- threads ------------------------------------------------------------

type StartRoutine = unsafe extern "C-unwind" fn(*mut c_void) -> *mut c_void;
type PthreadCreate =
    unsafe extern "C" fn(*mut pthread_t, *const pthread_attr_t, StartRoutine, *mut c_void) -> c_int;

/// glibc's own definition of a symbol this executable interposes, looked up
/// once (`dlsym(RTLD_NEXT)`; a successful lookup allocates nothing) and
/// cached in `cache`. 0 if glibc has none.
fn next_definition(cache: &AtomicUsize, name: &std::ffi::CStr) -> usize {
    let mut addr = cache.load(Ordering::Acquire);
    if addr == 0 {
        // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name.
        addr = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize;
        cache.store(addr, Ordering::Release);
    }
    addr
}

fn real_pthread_create() -> Option<PthreadCreate> {
    static REAL: AtomicUsize = AtomicUsize::new(0);
    let addr = next_definition(&REAL, c"pthread_create");
    // SAFETY: a non-zero `addr` is glibc's pthread_create, whose C signature
    // is `PthreadCreate` (the start routine type differs only in unwind ABI).
    (addr != 0).then(|| unsafe { std::mem::transmute::<usize, PthreadCreate>(addr) })
}

/// Interposed `dlclose(3)`: once a library may be unmapped, its addresses
/// can hold another library's code, so the unwinder's cached rules are
/// dropped (the next capture recomputes them).
///
/// # Safety
///
/// As `dlclose(3)`.
#[no_mangle]
pub unsafe extern "C" fn dlclose(handle: *mut c_void) -> c_int {
    static REAL: AtomicUsize = AtomicUsize::new(0);
    let addr = next_definition(&REAL, c"dlclose");
    if addr == 0 {
        return -1;
    }
    // SAFETY: `addr` is glibc's dlclose, whose signature this is.
    let real =
        unsafe { std::mem::transmute::<usize, unsafe extern "C" fn(*mut c_void) -> c_int>(addr) };
    // SAFETY: forwarding the caller's handle unchanged.
    let rc = unsafe { real(handle) };
    #[cfg(target_arch = "x86_64")]
    crate::stacks::unwind::code_unmapped();
    rc
}

/// The handlers installed through [`sigaction`], by signal number (0: none
/// of ours), and whether each takes `siginfo` (`SA_SIGINFO`).
static HANDLERS: [AtomicUsize; 65] = [const { AtomicUsize::new(0) }; 65];

/// Set once the program has installed a handler for an asynchronous signal
/// (a timer, `kill`, ...) through [`sigaction`], and never cleared.
static ASYNC_HANDLERS: AtomicBool = AtomicBool::new(false);

/// Whether a handler for an asynchronous signal may run in this process. The
/// quarantine then holds nothing: a held block does not go back to glibc's
/// per-thread cache, so the code it interrupts is far more often inside
/// glibc's locked paths, and a handler that allocates there waits forever
/// for the arena lock its own thread holds.
#[inline(always)]
pub(crate) fn async_handlers_installed() -> bool {
    ASYNC_HANDLERS.relaxed()
}
static TAKES_SIGINFO: [AtomicBool; 65] = [const { AtomicBool::new(false) }; 65];

/// What every handler installed through [`sigaction`] runs as: marks the
/// thread as in a signal handler (the quarantine then passes its frees to
/// glibc at once, as without leakcheck), and calls the real handler.
extern "C" fn signal_trampoline(sig: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    let _in_handler = scope::InSignalHandler::enter();
    let Some(slot) = usize::try_from(sig).ok().filter(|&s| s < HANDLERS.len()) else {
        return;
    };
    let handler = HANDLERS[slot].load(Ordering::Acquire);
    if handler == 0 {
        return;
    }
    if TAKES_SIGINFO[slot].load(Ordering::Acquire) {
        // SAFETY: the handler was installed with SA_SIGINFO, so this is its
        // signature; the arguments are the kernel's.
        let handler: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) =
            unsafe { std::mem::transmute(handler) };
        handler(sig, info, context);
    } else {
        // SAFETY: installed without SA_SIGINFO: a one-argument handler.
        let handler: extern "C" fn(c_int) = unsafe { std::mem::transmute(handler) };
        handler(sig);
    }
}

/// Interposed `sigaction(2)`: a handler is installed wrapped in
/// [`signal_trampoline`], and reported back as the caller installed it.
///
/// # Safety
///
/// As `sigaction(2)`.
#[no_mangle]
pub unsafe extern "C" fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    static REAL: AtomicUsize = AtomicUsize::new(0);
    let addr = next_definition(&REAL, c"sigaction");
    if addr == 0 {
        set_errno(libc::ENOSYS);
        return -1;
    }
    // SAFETY: `addr` is glibc's sigaction, whose signature this is.
    let real: unsafe extern "C" fn(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int =
        unsafe { std::mem::transmute(addr) };
    let slot = usize::try_from(sig)
        .ok()
        .filter(|&s| s > 0 && s < HANDLERS.len());
    let (Some(slot), false) = (slot, act.is_null() && old.is_null()) else {
        // SAFETY: forwarded unchanged.
        return unsafe { real(sig, act, old) };
    };
    let previous = (
        HANDLERS[slot].load(Ordering::Acquire),
        TAKES_SIGINFO[slot].load(Ordering::Acquire),
    );
    let mut wrapped;
    let mut act = act;
    if !act.is_null() {
        // SAFETY: the caller passes a valid sigaction to read.
        wrapped = unsafe { act.read() };
        let handler = wrapped.sa_sigaction;
        if handler == libc::SIG_DFL || handler == libc::SIG_IGN || handler == libc::SIG_ERR {
            HANDLERS[slot].store(0, Ordering::Release);
        } else {
            let siginfo = wrapped.sa_flags & libc::SA_SIGINFO != 0;
            TAKES_SIGINFO[slot].store(siginfo, Ordering::Release);
            HANDLERS[slot].store(handler, Ordering::Release);
            if !crate::sys::signals::SYNCHRONOUS.contains(&sig) {
                ASYNC_HANDLERS.store(true, Ordering::Release);
            }
            wrapped.sa_sigaction = signal_trampoline as *const () as usize;
            wrapped.sa_flags |= libc::SA_SIGINFO;
            act = &wrapped;
        }
    }
    // SAFETY: `act` is the caller's or our copy of it; `old` is the caller's.
    let rc = unsafe { real(sig, act, old) };
    if rc != 0 {
        HANDLERS[slot].store(previous.0, Ordering::Release);
        TAKES_SIGINFO[slot].store(previous.1, Ordering::Release);
    } else if !old.is_null() {
        // SAFETY: the caller passes a valid sigaction to write; `real` filled it.
        let old = unsafe { &mut *old };
        if old.sa_sigaction == signal_trampoline as *const () as usize {
            old.sa_sigaction = previous.0;
            if !previous.1 {
                old.sa_flags &= !libc::SA_SIGINFO;
            }
        }
    }
    rc
}

/// What a new thread needs from its creator.
struct ThreadStart {
    start: StartRoutine,
    arg: *mut c_void,
    scope: u32,
    /// Made by the main thread outside any check: one of libtest's test
    /// threads (see `pthread_create`).
    harness: bool,
    /// The creating thread's id.
    parent: i32,
}

/// Interposed `pthread_create(3)`: a thread created while a scope is running
/// on the creating thread belongs to that scope. What glibc allocates to make
/// the thread (its TLS, kept in glibc's stack cache after the join) is the
/// runtime's and is never charged.
///
/// # Safety
///
/// As `pthread_create(3)`.
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn pthread_create(
    thread: *mut pthread_t,
    attr: *const pthread_attr_t,
    start: StartRoutine,
    arg: *mut c_void,
) -> c_int {
    let Some(real) = real_pthread_create() else {
        return libc::EAGAIN;
    };
    let inherited = scope::inheritable();
    let parent = crate::sys::thread::current_tid();
    // The main thread runs only libtest's harness (every test runs on a
    // thread it makes): the threads it makes are the harness's, whose
    // stacks hold nothing another test's check gave them, only their own
    // test's stale slots (a blocked `Command::output` frame naming a block
    // it freed before another test's leak got that address). So are the
    // threads leakcheck's own code makes (a check's body thread): until the
    // body starts, such a thread runs std's start-up, whose frame keeps the
    // address of the start-up box it freed, which another check's block
    // may have got since.
    let harness = inherited.scope == 0
        && (parent == crate::sys::thread::current_pid() || scope::in_harness_now());
    let _runtime = Untracked::enter();
    // Every thread starts in `thread_start`, which registers its stack as a
    // root for the classifier.
    // SAFETY: a plain allocation from glibc, freed by the new thread or below.
    let boxed = unsafe { __libc_malloc(std::mem::size_of::<ThreadStart>()) }.cast::<ThreadStart>();
    if boxed.is_null() {
        return libc::EAGAIN;
    }
    // SAFETY: `boxed` is a fresh, suitably aligned allocation of the right size.
    unsafe {
        boxed.write(ThreadStart {
            start,
            arg,
            scope: inherited.scope,
            harness,
            parent,
        })
    };
    if inherited.scope != 0 {
        scope::thread_creating(inherited.scope);
    }
    // SAFETY: the caller's arguments are forwarded; `thread_start` takes
    // ownership of `boxed`.
    let rc = unsafe { real(thread, attr, thread_start, boxed.cast()) };
    if rc != 0 {
        if inherited.scope != 0 {
            scope::thread_created(inherited.scope);
        }
        // SAFETY: the thread was not created, so `boxed` is still ours.
        unsafe { __libc_free(boxed.cast()) };
    }
    rc
}

/// Start routine of threads created inside a scope: enters the scope with
/// this frame as the stack base, then runs the real start routine.
/// `C-unwind` so that `pthread_exit`'s forced unwind may pass through.
unsafe extern "C-unwind" fn thread_start(boxed: *mut c_void) -> *mut c_void {
    let base = frame_marker();
    // SAFETY: `boxed` is the ThreadStart written by pthread_create, owned by
    // this thread from here on.
    let ThreadStart {
        start,
        arg,
        scope,
        harness,
        parent,
    } = unsafe { boxed.cast::<ThreadStart>().read() };
    // SAFETY: allocated with __libc_malloc in pthread_create.
    unsafe { __libc_free(boxed) };
    crate::track::threads::register_current(scope, harness, parent);
    if scope == 0 {
        // SAFETY: the creator's start routine with its own argument.
        return unsafe { start(arg) };
    }
    scope::enter_thread(scope, base);
    scope::thread_started(scope);
    scope::thread_created(scope);
    // SAFETY: the creator's start routine with its own argument, as it asked.
    let result = unsafe { start(arg) };
    // What the thread left on its stack must not keep the scope's blocks
    // reachable once glibc reuses the stack for another thread.
    if !malloc_replaced() {
        crate::track::threads::wipe_dead_stack(scope::stack_low());
    }
    scope::leave_thread(scope::Current::default());
    // From here the thread only runs its thread-local destructors and exits;
    // the verdict waits for that (see `scope::wait_for_threads`).
    scope::thread_exiting();
    std::hint::black_box(base);
    result
}

// --- start-up -----------------------------------------------------------

static VISIBLE: AtomicBool = AtomicBool::new(false);

/// Registers the fork handlers and runs the visibility self-test, once.
/// Runs as a constructor at start-up, and again before each check in case
/// the constructor was not linked; a caller that races the first run waits
/// for its result (`Once` blocks on a futex and allocates nothing).
pub(crate) fn init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        #[cfg(all(target_arch = "x86_64", leakcheck_unoptimized))]
        crate::sys::reentry::init_state_offset();
        crate::track::record::register_fork_handlers();
        crate::track::cache::init();
        // The constructor runs on the main thread, which no pthread_create
        // registers.
        crate::track::threads::register_current(0, true, 0);
        #[cfg(target_arch = "x86_64")]
        crate::stacks::unwind::init();
        VISIBLE.store(self_test(), Ordering::Release);
    });
}

/// Does a `malloc` call through the dynamic symbol reach our hook? It does
/// not when something replaced the executable's `malloc` (valgrind redirects
/// it to its own).
fn self_test() -> bool {
    let alloc: unsafe extern "C" fn(usize) -> *mut c_void = std::hint::black_box(malloc);
    let release: unsafe extern "C" fn(*mut c_void) = std::hint::black_box(free);
    const PROBE: usize = 4093;
    // SAFETY: a plain allocation, freed below.
    let ptr = unsafe { alloc(PROBE) };
    if ptr.is_null() {
        return false;
    }
    let seen = table::get(ptr as usize).is_some_and(|b| b.size == PROBE);
    // glibc's malloc_usable_size is looked up (`dlsym`) here, at start-up,
    // rather than first inside a `realloc` (`record::realloc_holding`).
    // SAFETY: `ptr` is a live block: glibc's, or, where something replaced
    // malloc, that allocator's, whose malloc_usable_size answers for it.
    std::hint::black_box(unsafe { glibc_usable_size(ptr) });
    // SAFETY: `ptr` came from `alloc` above and is freed once.
    unsafe { release(ptr) };
    seen
}

/// Whether the hooks see C allocations in this process.
pub(crate) fn c_allocations_visible() -> bool {
    init();
    VISIBLE.load(Ordering::Acquire)
}

/// Whether something (valgrind) replaced the executable's `malloc`, so
/// that every verdict is an error: work that only serves our own scan
/// (wiping dead stacks) is then skipped, and so are the "invalid write
/// below the stack pointer" reports that tool would make of it.
pub(crate) fn malloc_replaced() -> bool {
    !c_allocations_visible()
}

#[used]
#[link_section = ".init_array"]
static CONSTRUCTOR: extern "C" fn() = {
    extern "C" fn constructor() {
        init();
    }
    constructor
};
