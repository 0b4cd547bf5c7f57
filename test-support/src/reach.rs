//! What keeps a block reachable, or does not, for the leak kinds: a stale
//! copy of the only pointer in dead stack (still definitely lost), a ring of
//! nodes (a cycle: one definitely lost, the rest indirectly), a block whose
//! only pointer is in an older block (still reachable), and a keeper thread
//! that holds a block in a local on its own stack (still reachable while it
//! runs).

use crate::c_heap::LIST_NODE_BYTES;
use std::ffi::{c_char, c_int, c_void, CString};
use std::ptr::NonNull;

extern "C" {
    fn fixture_stale_stack(size: usize);
    fn fixture_ring_new(n: usize, node_size: usize) -> *mut c_void;
    fn fixture_ring_free(node: *mut c_void);
    fn fixture_pair_behind(order: *const c_char, a_size: usize, node_size: usize) -> *mut c_void;
    fn fixture_pair_behind_free(a: *mut c_void);
    fn fixture_slots_new(n: usize) -> *mut *mut c_void;
    fn fixture_store(slots: *mut *mut c_void, index: usize, size: usize) -> c_int;
    fn fixture_slots_free(slots: *mut *mut c_void, n: usize);
    fn fixture_keeper_start() -> *mut c_void;
    fn fixture_keeper_give(keeper: *mut c_void, size: usize) -> c_int;
    fn fixture_keeper_stop(keeper: *mut c_void);
}

/// Mallocs a zeroed `size`-byte block in C at
/// [`STALE_STACK_FN`](crate::STALE_STACK_FN), writes its address into a
/// `volatile` array on that function's frame and returns without freeing or
/// returning it: the only copies of the pointer are left in dead stack. One
/// definitely lost block, for a checker that scans only live stack.
pub fn stale_stack(size: usize) {
    // SAFETY: `fixture_stale_stack` only mallocs, zeroes and stores to its
    // own frame.
    unsafe { fixture_stale_stack(size) }
}

/// A ring of malloc'd nodes of [`LIST_NODE_BYTES`], each pointing to the
/// next and the last to the first, built in C. Dropping it leaks a cycle: one
/// node definitely lost and the other `n - 1` indirectly lost (memcheck's
/// semantics); [`CRing::free`] frees them all.
#[derive(Debug)]
pub struct CRing(*mut c_void);

// SAFETY: the nodes are plain malloc blocks that only the owner of the ring
// reaches; any thread may free them.
unsafe impl Send for CRing {}

impl CRing {
    /// Frees every node.
    pub fn free(self) {
        // SAFETY: the ring came from `fixture_ring_new` and `self` owned it,
        // so this frees each node once; NULL (an empty ring) frees nothing.
        unsafe { fixture_ring_free(self.0) }
    }

    /// Drops the only pointer into the ring without freeing anything.
    pub fn leak(self) {}
}

/// Builds a C ring of `n` nodes, each malloc'd at
/// [`RING_NEW_FN`](crate::RING_NEW_FN).
pub fn ring_new(n: usize) -> CRing {
    // SAFETY: LIST_NODE_BYTES holds the node's next pointer, as
    // `fixture_ring_new` requires.
    let node = unsafe { fixture_ring_new(n, LIST_NODE_BYTES) };
    assert!(
        n == 0 || !node.is_null(),
        "fixture_ring_new: allocation failed"
    );
    CRing(node)
}

/// Three malloc'd C nodes, A → B and B ⇄ C (a doubly linked pair behind
/// A), made by [`pair_behind`]. Dropping it leaks them: A definitely lost,
/// B and C indirectly lost (memcheck's definition, whatever the order they
/// were allocated in); [`CPairBehind::free`] frees them.
#[derive(Debug)]
pub struct CPairBehind(*mut c_void);

// SAFETY: the nodes are plain malloc blocks that only the owner reaches; any
// thread may free them.
unsafe impl Send for CPairBehind {}

impl CPairBehind {
    /// Frees the three nodes.
    pub fn free(self) {
        // SAFETY: A came from `fixture_pair_behind` and `self` owned it, so
        // this frees each node once.
        unsafe { fixture_pair_behind_free(self.0) }
    }

    /// Drops the only pointer to A without freeing anything.
    pub fn leak(self) {}
}

/// Mallocs A (`a_size` bytes, at least a pointer) and B and C
/// ([`LIST_NODE_BYTES`] each) at [`PAIR_BEHIND_FN`](crate::PAIR_BEHIND_FN),
/// in `order` (a permutation of `"ABC"`), and links A → B ⇄ C.
pub fn pair_behind(order: &str, a_size: usize) -> CPairBehind {
    let mut sorted: Vec<u8> = order.bytes().collect();
    sorted.sort_unstable();
    assert_eq!(
        sorted, b"ABC",
        "order {order:?} is not a permutation of ABC"
    );
    assert!(
        a_size >= std::mem::size_of::<*mut c_void>(),
        "A holds a pointer"
    );
    let order = CString::new(order).expect("no NUL in the order");
    // SAFETY: `order` is a NUL-terminated permutation of "ABC", and both
    // sizes hold a node's next pointer.
    let a = unsafe { fixture_pair_behind(order.as_ptr(), a_size, LIST_NODE_BYTES) };
    assert!(!a.is_null(), "fixture_pair_behind: allocation failed");
    CPairBehind(a)
}

/// A C array of pointer slots, each filled by [`CSlots::store`] with a new
/// block whose only pointer is that slot: allocate the slots before a check
/// and store in it inside, and the stored block is reachable from a block
/// the check does not own.
#[derive(Debug)]
pub struct CSlots {
    slots: NonNull<*mut c_void>,
    len: usize,
}

// SAFETY: the slots and the blocks in them are plain malloc blocks that only
// the owner reaches; any thread may fill or free them.
unsafe impl Send for CSlots {}

impl CSlots {
    /// `len` (> 0) zeroed slots, malloc'd in C at
    /// [`SLOTS_NEW_FN`](crate::SLOTS_NEW_FN).
    pub fn new(len: usize) -> CSlots {
        assert!(len > 0, "a slots array has at least one slot");
        // SAFETY: `fixture_slots_new` mallocs and zeroes `len` pointers.
        let slots = unsafe { fixture_slots_new(len) };
        let slots = NonNull::new(slots).expect("fixture_slots_new: allocation failed");
        CSlots { slots, len }
    }

    /// The slots block's address, for address comparisons.
    pub fn as_ptr(&self) -> *mut c_void {
        self.slots.as_ptr().cast()
    }

    /// Mallocs a zeroed `size`-byte block at [`STORE_FN`](crate::STORE_FN)
    /// and keeps its only pointer in slot `index` (< the length), replacing
    /// (and leaking) what was there.
    pub fn store(&mut self, index: usize, size: usize) {
        assert!(index < self.len, "slot {index} of {}", self.len);
        // SAFETY: `index` is in bounds, and `&mut self` makes this the only
        // writer.
        let rc = unsafe { fixture_store(self.slots.as_ptr(), index, size) };
        assert!(rc == 0, "fixture_store: allocation failed");
    }

    /// Frees every stored block, then the slots.
    pub fn free(self) {
        // SAFETY: the slots came from `fixture_slots_new` with `self.len`
        // slots, each NULL or a block from `fixture_store` that only this
        // owner reaches; each is freed once.
        unsafe { fixture_slots_free(self.slots.as_ptr(), self.len) }
    }
}

/// A C thread (pthread) that holds the last block handed to it in a local on
/// its own stack, and nowhere else, until it is stopped. Start it before a
/// check and [`give`](CKeeper::give) it a block inside: the block is still
/// reachable, through the stack of a live thread the check does not own.
/// Dropping the keeper stops it.
#[derive(Debug)]
pub struct CKeeper(NonNull<c_void>);

// SAFETY: the keeper's state is guarded by its own mutex; any thread may
// hand it blocks or stop it.
unsafe impl Send for CKeeper {}

// SAFETY: `give` takes the keeper's mutex and waits for the handover slot to
// be free, so threads may hand it blocks at the same time.
unsafe impl Sync for CKeeper {}

impl CKeeper {
    /// Starts the keeper thread; its state is malloc'd at
    /// [`KEEPER_START_FN`](crate::KEEPER_START_FN).
    pub fn start() -> CKeeper {
        // SAFETY: `fixture_keeper_start` returns a started keeper or NULL.
        let keeper = unsafe { fixture_keeper_start() };
        CKeeper(NonNull::new(keeper).expect("fixture_keeper_start failed"))
    }

    /// Mallocs a zeroed `size`-byte block at
    /// [`KEEPER_GIVE_FN`](crate::KEEPER_GIVE_FN) and hands it to the keeper,
    /// which frees the block it held before. Returns once the keeper holds it
    /// and the handover slot is clear.
    pub fn give(&self, size: usize) {
        // SAFETY: the keeper is running until `self` is dropped.
        let rc = unsafe { fixture_keeper_give(self.0.as_ptr(), size) };
        assert!(rc == 0, "fixture_keeper_give: allocation failed");
    }

    /// Stops the keeper: it frees what it holds and exits, and is joined.
    pub fn stop(self) {}
}

impl Drop for CKeeper {
    fn drop(&mut self) {
        // SAFETY: the keeper is running and this is its only stop.
        unsafe { fixture_keeper_stop(self.0.as_ptr()) }
    }
}
