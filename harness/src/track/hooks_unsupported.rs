//! Stand-in for `hooks.rs` where the C allocation hooks cannot work (not
//! Linux with glibc): Rust allocations are still tracked through the global
//! allocator; reports say that C allocations are not.

/// Registers the fork handlers, once.
pub(crate) fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(crate::track::record::register_fork_handlers);
}

/// C allocations are never seen here.
pub(crate) fn c_allocations_visible() -> bool {
    false
}

/// Without hooks nothing can replace them: the scan's own work still runs.
pub(crate) fn malloc_replaced() -> bool {
    false
}
