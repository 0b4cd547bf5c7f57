//! The C allocator families, one fixture each, returning a [`CBlock`] to
//! leak or free; and a C linked list.

use std::ffi::c_void;
use std::ptr::NonNull;

extern "C" {
    fn fixture_leak(n: usize, size: usize);
    fn fixture_churn(n: usize, size: usize);
    fn fixture_alloc(size: usize) -> *mut c_void;
    pub(crate) fn fixture_free(ptr: *mut c_void);
    fn fixture_realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    fn fixture_calloc(n: usize, size: usize) -> *mut c_void;
    fn fixture_posix_memalign(align: usize, size: usize) -> *mut c_void;
    fn fixture_aligned_alloc(align: usize, size: usize) -> *mut c_void;
    fn fixture_memalign(align: usize, size: usize) -> *mut c_void;
    fn fixture_valloc(size: usize) -> *mut c_void;
    fn fixture_pvalloc(size: usize) -> *mut c_void;
    fn fixture_realloc_chain(steps: usize, final_size: usize) -> *mut c_void;
    fn fixture_list_new(n: usize, node_size: usize) -> *mut c_void;
    fn fixture_list_free(head: *mut c_void);
}

/// Bytes in each node of a [`CList`]: a next pointer and zeroed payload.
pub const LIST_NODE_BYTES: usize = 32;

/// A live block from the C heap, owned.
///
/// [`CBlock::free`] gives it back to C `free`; dropping it, or
/// [`CBlock::leak`], leaks it — which is what a leak fixture wants.
#[derive(Debug)]
pub struct CBlock(NonNull<c_void>);

// SAFETY: a malloc block is not tied to the thread that allocated it; any
// thread may free it.
unsafe impl Send for CBlock {}

impl CBlock {
    /// Takes ownership of what the C allocator fixture `fixture` returned;
    /// panics on NULL.
    ///
    /// # Safety
    ///
    /// `ptr` is NULL or a live C heap block that nothing else will free.
    pub(crate) unsafe fn from_fixture(ptr: *mut c_void, fixture: &str) -> Self {
        match NonNull::new(ptr) {
            Some(block) => Self(block),
            None => panic!("{fixture}: allocation failed"),
        }
    }

    /// The block's address, for misuse tests (a Rust `dealloc` of a malloc
    /// block) and address comparisons; it stays owned by `self`.
    pub fn as_ptr(&self) -> *mut c_void {
        self.0.as_ptr()
    }

    /// Frees the block with C `free` (through `fixture_free`).
    pub fn free(self) {
        // SAFETY: the block came from the C heap and `self` owned it, so this
        // is its one and only free.
        unsafe { fixture_free(self.0.as_ptr()) }
    }

    /// Resizes the block to `size` (> 0) bytes with C `realloc` (through
    /// `fixture_realloc`, marker `@realloc`): the block it returns, which
    /// may have moved; panics if `realloc` fails.
    pub fn realloc(self, size: usize) -> CBlock {
        assert!(size > 0, "realloc to 0 bytes frees the block");
        // SAFETY: the block came from the C heap and `self` owned it;
        // `realloc` takes it and returns the one block now owned.
        unsafe { CBlock::from_fixture(fixture_realloc(self.0.as_ptr(), size), "fixture_realloc") }
    }

    /// Drops the only pointer to the block without freeing it.
    pub fn leak(self) {}
}

/// Mallocs `n` zeroed blocks of `size` bytes in C and drops every pointer to
/// them: `n` definitely lost blocks at [`LEAK_FN`](crate::LEAK_FN).
pub fn leak(n: usize, size: usize) {
    // SAFETY: `fixture_leak` only calls malloc and memset on what it got.
    unsafe { fixture_leak(n, size) }
}

/// Mallocs and frees a `size`-byte block `n` times in C; leaves nothing.
pub fn churn(n: usize, size: usize) {
    // SAFETY: `fixture_churn` frees each block it mallocs.
    unsafe { fixture_churn(n, size) }
}

/// Mallocs one zeroed `size`-byte block in C, at [`ALLOC_FN`](crate::ALLOC_FN).
pub fn alloc(size: usize) -> CBlock {
    // SAFETY: `fixture_alloc` is malloc plus memset; the block is ours.
    unsafe { CBlock::from_fixture(fixture_alloc(size), "fixture_alloc") }
}

/// Callocs `n * size` bytes in C, at [`CALLOC_FN`](crate::CALLOC_FN).
pub fn calloc(n: usize, size: usize) -> CBlock {
    // SAFETY: `fixture_calloc` is calloc; the block is ours.
    unsafe { CBlock::from_fixture(fixture_calloc(n, size), "fixture_calloc") }
}

/// `posix_memalign`s `size` zeroed bytes aligned to `align` (a power of two,
/// a multiple of the pointer size) in C, at
/// [`POSIX_MEMALIGN_FN`](crate::POSIX_MEMALIGN_FN).
pub fn posix_memalign(align: usize, size: usize) -> CBlock {
    // SAFETY: `fixture_posix_memalign` returns a new block, or NULL for any
    // error, a bad alignment included; the block is ours.
    unsafe {
        CBlock::from_fixture(
            fixture_posix_memalign(align, size),
            "fixture_posix_memalign",
        )
    }
}

/// `aligned_alloc`s `size` zeroed bytes (a multiple of `align`, a power of
/// two) in C, at [`ALIGNED_ALLOC_FN`](crate::ALIGNED_ALLOC_FN).
pub fn aligned_alloc(align: usize, size: usize) -> CBlock {
    // SAFETY: glibc's aligned_alloc returns a new block, or NULL for a bad
    // alignment; the block is ours.
    unsafe { CBlock::from_fixture(fixture_aligned_alloc(align, size), "fixture_aligned_alloc") }
}

/// `memalign`s `size` zeroed bytes aligned to `align` (a power of two) in C,
/// at [`MEMALIGN_FN`](crate::MEMALIGN_FN).
pub fn memalign(align: usize, size: usize) -> CBlock {
    // SAFETY: glibc's memalign returns a new block, or NULL for a bad
    // alignment; the block is ours.
    unsafe { CBlock::from_fixture(fixture_memalign(align, size), "fixture_memalign") }
}

/// `valloc`s `size` zeroed, page-aligned bytes in C, at
/// [`VALLOC_FN`](crate::VALLOC_FN).
pub fn valloc(size: usize) -> CBlock {
    // SAFETY: `fixture_valloc` is valloc plus memset of `size` bytes; the
    // block is ours.
    unsafe { CBlock::from_fixture(fixture_valloc(size), "fixture_valloc") }
}

/// `pvalloc`s `size` zeroed bytes, rounded up to whole pages, in C, at
/// [`PVALLOC_FN`](crate::PVALLOC_FN).
pub fn pvalloc(size: usize) -> CBlock {
    // SAFETY: `fixture_pvalloc` is pvalloc plus memset of `size` bytes; the
    // block is ours.
    unsafe { CBlock::from_fixture(fixture_pvalloc(size), "fixture_pvalloc") }
}

/// Mallocs 16 bytes in C and reallocs them `steps` times through sizes that
/// grow in place, move, shrink and cross the mmap threshold, then to
/// `final_size` (> 0) zeroed bytes, at
/// [`REALLOC_CHAIN_FN`](crate::REALLOC_CHAIN_FN): one live block, the last
/// `realloc`'s.
pub fn realloc_chain(steps: usize, final_size: usize) -> CBlock {
    assert!(final_size > 0, "realloc to 0 bytes frees the block");
    // SAFETY: `fixture_realloc_chain` frees every block but the one it
    // returns, which is ours.
    unsafe {
        CBlock::from_fixture(
            fixture_realloc_chain(steps, final_size),
            "fixture_realloc_chain",
        )
    }
}

/// A singly linked list of `n` malloc'd nodes of [`LIST_NODE_BYTES`], built
/// in C. Dropping it leaks the head (definitely lost) and with it the other
/// `n - 1` nodes (indirectly lost); [`CList::free`] frees them all.
#[derive(Debug)]
pub struct CList(*mut c_void);

// SAFETY: the nodes are plain malloc blocks that only the owner of the head
// reaches; any thread may free them.
unsafe impl Send for CList {}

impl CList {
    /// Frees every node.
    pub fn free(self) {
        // SAFETY: the list came from `fixture_list_new` and `self` owned it,
        // so this frees each node once; NULL (an empty list) frees nothing.
        unsafe { fixture_list_free(self.0) }
    }

    /// Drops the only pointer to the head without freeing anything.
    pub fn leak(self) {}
}

/// Builds a C linked list of `n` nodes, each malloc'd at
/// [`LIST_NEW_FN`](crate::LIST_NEW_FN).
pub fn list_new(n: usize) -> CList {
    // SAFETY: LIST_NODE_BYTES holds the node's next pointer, as
    // `fixture_list_new` requires.
    let head = unsafe { fixture_list_new(n, LIST_NODE_BYTES) };
    assert!(
        n == 0 || !head.is_null(),
        "fixture_list_new: allocation failed"
    );
    CList(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_families_align() {
        let page = 4096;
        for (align, block) in [
            (64, posix_memalign(64, 100)),
            (4096, aligned_alloc(4096, 4096)),
            (256, memalign(256, 10)),
            (page, valloc(10)),
            (page, pvalloc(10)),
        ] {
            assert_eq!(block.as_ptr() as usize % align, 0);
            block.free();
        }
    }

    #[test]
    fn list_has_n_nodes() {
        let list = list_new(4);
        let mut node = list.0;
        let mut count = 0;
        while !node.is_null() {
            count += 1;
            // SAFETY: each node is a live LIST_NODE_BYTES block starting with
            // the next pointer.
            node = unsafe { *node.cast::<*mut c_void>() };
        }
        assert_eq!(count, 4);
        list.free();
    }
}
