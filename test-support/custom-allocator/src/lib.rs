//! A global allocator that never calls `malloc`: each block is its own
//! anonymous mapping, like an allocator with arenas of its own (mimalloc,
//! jemalloc) as far as leakcheck's C hooks can tell.

use std::alloc::{GlobalAlloc, Layout};

/// Maps every block (page-aligned, so any alignment up to a page holds).
pub struct Mapped;

const PAGE: usize = 4096;

// SAFETY: each block is a fresh private mapping of at least `layout.size()`
// bytes, page-aligned (alignments above a page are refused with null), and
// is unmapped only by `dealloc` with the same layout.
unsafe impl GlobalAlloc for Mapped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() > PAGE {
            return std::ptr::null_mut();
        }
        let len = layout.size().max(1).next_multiple_of(PAGE);
        // SAFETY: an anonymous private mapping; no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            p.cast()
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let len = layout.size().max(1).next_multiple_of(PAGE);
        // SAFETY: `ptr` is a mapping of `len` bytes made by `alloc`.
        unsafe { libc::munmap(ptr.cast(), len) };
    }
}
