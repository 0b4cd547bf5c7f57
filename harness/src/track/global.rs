//! Rust allocations: the tracking global allocator.

use crate::stacks::hook_frame_here;
use crate::sys::reentry::WrappedAllocatorCall;
#[cfg(all(leakcheck_interpose, feature = "global-allocator"))]
use crate::track::hooks;
use crate::track::record::{on_alloc, on_free, on_realloc, on_realloc_failed};
use crate::track::table::Allocator;
use std::alloc::{GlobalAlloc, Layout};

/// Wraps a global allocator so that leakcheck sees every Rust allocation.
///
/// leakcheck installs its own tracking global allocator through the default
/// `global-allocator` feature. If your test binary already has a
/// `#[global_allocator]`, turn that feature off and wrap yours:
///
/// ```
/// use std::alloc::System;
///
/// // With `leakcheck = { version = "…", default-features = false }`, add
/// // `#[global_allocator]` here (this example keeps leakcheck's own).
/// static ALLOCATOR: leakcheck::Tracked<System> = leakcheck::Tracked::new(System);
/// # let _ = &ALLOCATOR;
/// ```
///
/// Blocks are recorded with origin `rust`. Calls the inner allocator makes to
/// the C `malloc` family (as `System` does) are not recorded a second time.
#[derive(Debug, Default)]
pub struct Tracked<A> {
    inner: A,
    /// The inner allocator never calls the C hooks (leakcheck's own glibc
    /// allocator), so its calls need no marking.
    inner_bypasses_hooks: bool,
}

impl<A> Tracked<A> {
    /// Wraps `inner`.
    ///
    /// ```
    /// let tracked = leakcheck::Tracked::new(std::alloc::System);
    /// # let _ = tracked;
    /// ```
    pub const fn new(inner: A) -> Self {
        Tracked {
            inner,
            inner_bypasses_hooks: false,
        }
    }

    /// Wraps an allocator that never reaches the C hooks.
    #[cfg(all(feature = "global-allocator", leakcheck_interpose))]
    const fn bypassing_hooks(inner: A) -> Self {
        Tracked {
            inner,
            inner_bypasses_hooks: true,
        }
    }

    /// Allocates with `inner_alloc` and records the block. Inlined into the
    /// `GlobalAlloc` method, whose frame holds `hook_frame`.
    #[inline(always)]
    fn record(
        &self,
        layout: Layout,
        allocator: Allocator,
        hook_frame: usize,
        inner_alloc: impl Fn(Layout) -> *mut u8,
    ) -> *mut u8 {
        #[cfg(leakcheck_interpose)]
        if self.inner_bypasses_hooks {
            let plain =
                crate::track::record::alloc_plain(layout.size(), allocator, layout.align(), || {
                    inner_alloc(layout).cast()
                });
            if let Some(ptr) = plain {
                return ptr.cast();
            }
            #[cfg(feature = "global-allocator")]
            // SAFETY: the caller's layout (GlobalAlloc's contract); the
            // inner allocator is `Glibc`, whose choices this path makes.
            return unsafe {
                crate::track::record::alloc_glibc(
                    layout.size(),
                    layout.align(),
                    allocator,
                    hook_frame,
                )
            }
            .cast();
        }
        let guard = self.guard_for(layout.size());
        // SAFETY: `guard_for` checked that the size plus the guard does not
        // overflow; the alignment is the caller's valid one.
        let request =
            unsafe { Layout::from_size_align_unchecked(layout.size() + guard, layout.align()) };
        let ptr = {
            let _inner = self.inner_call();
            inner_alloc(request)
        };
        on_alloc(
            ptr.cast(),
            layout.size(),
            allocator,
            layout.align(),
            hook_frame,
            guard != 0,
        );
        ptr
    }

    /// Guard bytes for a new block of `size`: only leakcheck's own glibc
    /// allocator gets them (a wrapped one is asked for what the caller
    /// asked), only inside a check.
    #[inline(always)]
    fn guard_for(&self, size: usize) -> usize {
        #[cfg(leakcheck_interpose)]
        if self.inner_bypasses_hooks {
            return crate::track::misuse::guard_for_new(size);
        }
        let _ = size;
        0
    }

    /// Marks a call into the inner allocator, so that the C hooks do not
    /// record its blocks a second time.
    #[inline(always)]
    fn inner_call(&self) -> Option<WrappedAllocatorCall> {
        (!self.inner_bypasses_hooks).then(WrappedAllocatorCall::enter)
    }
}

// SAFETY: every method forwards to the inner allocator with the caller's
// arguments unchanged and returns its result unchanged; bookkeeping never
// touches the memory it hands out.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Tracked<A> {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let frame = hook_frame_here!();
        let hook_frame = frame.marker();
        // SAFETY: the caller upholds GlobalAlloc::alloc's contract; the
        // layout may carry guard bytes more.
        self.record(layout, Allocator::RustAlloc, hook_frame, |l| unsafe {
            self.inner.alloc(l)
        })
    }

    #[inline(never)]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let frame = hook_frame_here!();
        let hook_frame = frame.marker();
        self.record(layout, Allocator::RustAllocZeroed, hook_frame, |l| {
            // SAFETY: the caller upholds GlobalAlloc::alloc_zeroed's contract.
            unsafe { self.inner.alloc_zeroed(l) }
        })
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        #[cfg(leakcheck_interpose)]
        if self.inner_bypasses_hooks {
            let plain = crate::track::misuse::Release {
                call: crate::track::misuse::Call::RustDealloc,
                layout: Some((layout.size(), layout.align())),
                hook_frame: 0,
            };
            if crate::track::record::free_plain(ptr.cast(), plain) {
                // SAFETY: the caller upholds GlobalAlloc::dealloc's contract.
                unsafe { self.inner.dealloc(ptr, layout) };
                return;
            }
        }
        #[cfg(leakcheck_interpose)]
        let frame = hook_frame_here!();
        #[cfg(leakcheck_interpose)]
        let how = crate::track::misuse::Release {
            call: crate::track::misuse::Call::RustDealloc,
            layout: Some((layout.size(), layout.align())),
            hook_frame: frame.marker(),
        };
        #[cfg(leakcheck_interpose)]
        if self.inner_bypasses_hooks {
            // The inner allocator is `Glibc`, whose dealloc is glibc's
            // `free`: the quarantine may take the block and free it later.
            if crate::track::record::on_final_free(ptr.cast(), how) {
                // SAFETY: the caller upholds GlobalAlloc::dealloc's contract.
                unsafe { self.inner.dealloc(ptr, layout) }
            }
            return;
        }
        let old = on_free(ptr.cast());
        #[cfg(leakcheck_interpose)]
        if old.is_some_and(|b| crate::track::misuse::wrapped_release(&b, how)) {
            // A malloc block: C's free releases it, as it would have
            // without a wrapped allocator in between.
            // SAFETY: the table knew it as a live block of the malloc family.
            unsafe { crate::track::hooks::real::free(ptr.cast()) };
            return;
        }
        let _ = old;
        let _inner = self.inner_call();
        // SAFETY: the caller upholds GlobalAlloc::dealloc's contract.
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let frame = hook_frame_here!();
        let hook_frame = frame.marker();
        let old = on_free(ptr.cast());
        #[cfg(leakcheck_interpose)]
        {
            let how = crate::track::misuse::Release {
                call: crate::track::misuse::Call::RustRealloc,
                layout: Some((layout.size(), layout.align())),
                hook_frame,
            };
            match &old {
                Some(block) => {
                    crate::track::misuse::wrapped_release(block, how);
                }
                None if !crate::track::record::own_heap_unrecorded(ptr.cast())
                    && crate::track::misuse::rust_realloc_of_unknown(ptr, how) =>
                {
                    // Freed before, or no block: reported; the caller gets
                    // a fresh block rather than an abort.
                    // SAFETY: the caller's new size with its valid alignment.
                    let fresh =
                        unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
                    // SAFETY: a non-zero size (GlobalAlloc::realloc's contract).
                    return unsafe { self.alloc(fresh) };
                }
                None => {}
            }
        }
        let guard = match old {
            Some(block) if block.guarded != 0 && new_size.checked_add(GUARD_BYTES).is_some() => {
                GUARD_BYTES
            }
            Some(_) => 0,
            None => self.guard_for(new_size),
        };
        #[cfg(leakcheck_interpose)]
        if let Some(block) = old.filter(|_| self.inner_bypasses_hooks) {
            // SAFETY: the inner allocator is `Glibc` (`inner_bypasses_hooks`),
            // so `ptr` is the live glibc block `block` describes (retired
            // from the table, not yet freed), which this call reallocates.
            let moved = unsafe {
                crate::track::record::realloc_holding(
                    ptr.cast(),
                    block,
                    (new_size, guard),
                    Allocator::RustRealloc,
                    layout.align(),
                    hook_frame,
                )
            };
            if let Some(new) = moved {
                return new.cast();
            }
        }
        let new = {
            let _inner = self.inner_call();
            // SAFETY: the caller upholds GlobalAlloc::realloc's contract;
            // the new size may carry guard bytes more (checked not to
            // overflow).
            unsafe { self.inner.realloc(ptr, layout, new_size + guard) }
        };
        if new.is_null() {
            on_realloc_failed(old);
        } else {
            on_realloc(
                old,
                new.cast(),
                new_size,
                Allocator::RustRealloc,
                layout.align(),
                hook_frame,
                guard != 0,
            );
        }
        new
    }
}

/// Guard bytes after a block of a check (see `misuse`).
#[cfg(leakcheck_interpose)]
const GUARD_BYTES: usize = crate::track::misuse::GUARD;
#[cfg(not(leakcheck_interpose))]
const GUARD_BYTES: usize = 0;

/// glibc's allocator reached directly (`__libc_malloc`, ...), so that Rust
/// allocations never pass through the C hooks and are recorded exactly once.
#[cfg(all(leakcheck_interpose, feature = "global-allocator"))]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Glibc;

// SAFETY: each method returns memory from glibc's allocator that satisfies
// `layout` (malloc when its guaranteed alignment suffices, memalign
// otherwise) and releases only memory obtained here.
#[cfg(all(leakcheck_interpose, feature = "global-allocator"))]
unsafe impl GlobalAlloc for Glibc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        use crate::track::record::{glibc_block, RoutedBy};
        // SAFETY: the layout's non-zero size and power-of-two alignment.
        unsafe { glibc_block(layout.size(), layout.align(), false, RoutedBy::Base) }.cast()
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        use crate::track::record::{glibc_block, RoutedBy};
        // SAFETY: the layout's non-zero size and power-of-two alignment.
        unsafe { glibc_block(layout.size(), layout.align(), true, RoutedBy::Base) }.cast()
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (GlobalAlloc contract).
        unsafe { hooks::real::free(ptr.cast()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if crate::track::hooks::real::glibc::malloc_serves(new_size, layout.align()) {
            // SAFETY: `ptr` came from glibc's malloc family via this allocator.
            unsafe { hooks::real::realloc(ptr.cast(), new_size) }.cast()
        } else {
            // SAFETY: the GlobalAlloc contract makes this layout valid.
            let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
            // SAFETY: as `alloc`.
            let new = unsafe { self.alloc(new_layout) };
            if !new.is_null() {
                // SAFETY: both blocks are live, distinct and at least
                // `min(old, new)` bytes long.
                unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
                // SAFETY: `ptr` came from this allocator.
                unsafe { self.dealloc(ptr, layout) };
            }
            new
        }
    }
}

/// The allocator leakcheck installs under the default `global-allocator`
/// feature: glibc reached directly where the C hooks exist (so Rust blocks
/// never pass through them), the system allocator elsewhere.
#[cfg(feature = "global-allocator")]
#[global_allocator]
#[cfg(leakcheck_interpose)]
static GLOBAL: Tracked<Glibc> = Tracked::bypassing_hooks(Glibc);

#[cfg(feature = "global-allocator")]
#[global_allocator]
#[cfg(not(leakcheck_interpose))]
static GLOBAL: Tracked<std::alloc::System> = Tracked::new(std::alloc::System);

/// How Rust allocations reach leakcheck in this binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RustVisibility {
    /// Through the tracking allocator (leakcheck's own, or `Tracked<A>`).
    Tracked,
    /// Only through the C hooks: the binary's `#[global_allocator]` is not
    /// wrapped but calls `malloc` (`System`); Rust blocks are reported as C.
    AsC,
    /// Not at all: the binary's `#[global_allocator]` is not wrapped and
    /// does not use `malloc` (mimalloc, jemalloc, a bump allocator).
    Invisible,
}

/// Whether a Rust allocation reaches the tracker, probed once per process
/// with one `std::alloc::alloc` through whatever `#[global_allocator]` the
/// binary has, then looked up by its address in the block table.
pub(crate) fn rust_visibility() -> RustVisibility {
    use std::sync::OnceLock;
    static SEEN: OnceLock<RustVisibility> = OnceLock::new();
    *SEEN.get_or_init(|| {
        const PROBE: usize = 4091;
        let layout = Layout::from_size_align(PROBE, 8).expect("a valid layout");
        // SAFETY: a non-zero layout; the block is freed below with it.
        let ptr = unsafe { std::alloc::alloc(layout) };
        if ptr.is_null() {
            return RustVisibility::Tracked; // no memory: nothing to say
        }
        let seen = crate::track::table::get(ptr as usize).filter(|b| b.size == PROBE);
        // Asked in a harness section, the tracking allocator does not
        // record a block of leakcheck's own heap (`record::alloc_general`);
        // the C hooks record theirs, so an unrecorded block there is a
        // tracked Rust one.
        #[cfg(leakcheck_interpose)]
        let unrecorded_own = seen.is_none()
            && crate::track::scope::in_harness_now()
            && crate::track::own_heap::contains(ptr.cast_const().cast());
        #[cfg(not(leakcheck_interpose))]
        let unrecorded_own = false;
        // SAFETY: `ptr` came from `alloc` with `layout`, freed once.
        unsafe { std::alloc::dealloc(ptr, layout) };
        match seen {
            Some(block) if block.allocator().is_rust() => RustVisibility::Tracked,
            Some(_) => RustVisibility::AsC,
            None if unrecorded_own => RustVisibility::Tracked,
            None => RustVisibility::Invisible,
        }
    })
}
