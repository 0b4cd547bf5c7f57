//! `Tracked<A>`, the wrapper for a binary that has its own global allocator:
//! each block it hands out is recorded once, as a Rust block, although
//! `System` reaches the C hooks too.

use leakcheck::{Origin, Tracked};
use std::alloc::{GlobalAlloc, Layout, System};

static WRAPPED: Tracked<System> = Tracked::new(System);

#[test]
fn a_wrapped_system_allocator_records_each_block_once_as_rust() {
    let report = leakcheck::check(|| {
        let kept = Layout::from_size_align(40, 8).unwrap();
        // SAFETY: a non-zero layout; the block is leaked on purpose.
        std::hint::black_box(unsafe { WRAPPED.alloc(kept) });
        let small = Layout::from_size_align(24, 64).unwrap();
        // SAFETY: a non-zero layout.
        let p = unsafe { WRAPPED.alloc_zeroed(small) };
        assert!(!p.is_null());
        // SAFETY: `p` came from WRAPPED with `small`.
        let p = unsafe { WRAPPED.realloc(p, small, 200) };
        assert!(!p.is_null());
        // SAFETY: `p` is live with size 200 and the same alignment.
        unsafe { WRAPPED.dealloc(p, Layout::from_size_align(200, 64).unwrap()) };
    });
    // System's own malloc/posix_memalign calls reach the C hooks (on
    // glibc) but must not be recorded a second time, as C blocks.
    assert_eq!(report.leaked_blocks(), 1, "{report}");
    assert_eq!(report.leaked_bytes(), 40, "{report}");
    let leak = &report.leaks()[0];
    assert_eq!((leak.origin, leak.allocator), (Origin::Rust, "alloc"));
    assert!(report.stats().allocations >= 3, "{report:?}");
}
