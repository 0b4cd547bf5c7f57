//! Leak kinds, with valgrind memcheck's meanings: what a check leaves live is
//! still reachable (a root points to it: data and bss of loaded objects, the
//! TLS and stacks of other live threads, live blocks the check does not
//! own), possibly lost (only an interior pointer reaches it), definitely lost
//! (nothing does) or indirectly lost (only lost blocks do). The checking
//! thread's own stack and the exited body thread's stack are not roots, so a
//! stale copy of a pointer in dead stack does not save a leak.
//!
//! Still reachable blocks are reported but do not fail a check unless it is
//! `strict`. Scenarios, in C and in Rust: a C global cache and a lazily
//! initialised C table, Rust `OnceLock`s (a `HashMap`'s table is reached
//! through a pointer into its middle), a linked list whose head is dropped,
//! a cycle, an interior pointer from a global, stale stack copies, a block
//! referenced from an older block, and a block held by a live thread.
//!
//! Tests touching a C global each use a global of their own (the cache, the
//! table, the interior pointer) and reset it outside the check.

mod common;

use common::{
    assert_fixture_frame, here, is_child, json_report_path, read_json, render, run_child,
    ScratchDir,
};
use leakcheck::{leak_checked, Kind, Leak, Origin, Report, Status};
use leakcheck_test_support::{
    cache_get, cache_reset, interior_global, interior_release, list_new, ring_new,
    rust_stale_stack, stale_stack, table_lookup, table_reset, CKeeper, CSlots, CACHE_BYTES,
    CACHE_GET_FN, INTERIOR_GLOBAL_FN, INTERIOR_OFFSET, KEEPER_GIVE_FN, LIST_NEW_FN,
    LIST_NODE_BYTES, RING_NEW_FN, RUST_STALE_STACK_FN, STALE_STACK_FN, STORE_FN, TABLE_BYTES,
    TABLE_LOOKUP_FN,
};
use std::collections::HashMap;
use std::hint::black_box;
use std::mem;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::{self, JoinHandle};

use Kind::{DefinitelyLost, IndirectlyLost, PossiblyLost, StillReachable};

/// Asserts that the report found exactly these kinds, as (kind, blocks,
/// bytes) in `Kind` order, and that its leak sites add up to them.
/// Tests that leave a thread of their own running while they check run
/// alone: a live thread's stack is a root for every check in the process,
/// and the stale slots in its frames (from blocks freed earlier, whose
/// addresses the allocator hands out again) could make another test's
/// leaked block look reachable.
static THREAD_KEEPERS: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    THREAD_KEEPERS.read().unwrap_or_else(|e| e.into_inner())
}

fn alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    THREAD_KEEPERS.write().unwrap_or_else(|e| e.into_inner())
}

fn assert_kinds(report: &Report, expected: &[(Kind, usize, usize)]) {
    let found: Vec<_> = report
        .kinds()
        .iter()
        .map(|(&kind, count)| (kind, count.blocks, count.bytes))
        .collect();
    assert_eq!(found, expected, "{report}");
    for &(kind, blocks, bytes) in expected {
        let (sites_blocks, sites_bytes) = report
            .leaks()
            .iter()
            .filter(|leak| leak.kind == kind)
            .fold((0, 0), |(n, b), leak| (n + leak.blocks, b + leak.bytes));
        assert_eq!(
            (sites_blocks, sites_bytes),
            (blocks, bytes),
            "{kind:?} sites do not add up to the summary:\n{report}"
        );
    }
    assert!(report.errors().is_empty(), "{report}");
}

/// The report's only site of `kind`.
fn site(report: &Report, kind: Kind) -> &Leak {
    let mut sites = report.leaks().iter().filter(|leak| leak.kind == kind);
    let first = sites
        .next()
        .unwrap_or_else(|| panic!("no {kind:?} site:\n{report}"));
    assert!(sites.next().is_none(), "several {kind:?} sites:\n{report}");
    first
}

/// Asserts a verdict that nothing fails although `kinds` were found: clean,
/// with no leaked blocks or bytes.
fn assert_clean_with(report: &Report, kinds: &[(Kind, usize, usize)]) {
    assert_kinds(report, kinds);
    assert_eq!(report.status(), Status::Clean, "{report}");
    assert!(report.is_clean(), "{report}");
    assert_eq!(
        (report.leaked_blocks(), report.leaked_bytes()),
        (0, 0),
        "{report}"
    );
}

/// Asserts a failing verdict of `blocks` blocks and `bytes` bytes.
fn assert_leaked(report: &Report, (blocks, bytes): (usize, usize)) {
    assert_eq!(report.status(), Status::Leaked, "{report}");
    assert!(!report.is_clean(), "{report}");
    assert_eq!(
        (report.leaked_blocks(), report.leaked_bytes()),
        (blocks, bytes),
        "{report}"
    );
}

/// Asserts that the one block found is of `kind` (a failing one) and `bytes`
/// bytes; returns its site.
fn assert_one_lost(report: &Report, kind: Kind, bytes: usize) -> &Leak {
    assert_kinds(report, &[(kind, 1, bytes)]);
    assert_leaked(report, (1, bytes));
    site(report, kind)
}

/// Asserts that `n` lost blocks of `node` bytes each, linked to each other,
/// are one definitely lost block (the one nothing points to, or the cycle's
/// representative) and `n - 1` indirectly lost ones, all failing; returns
/// the definitely lost site.
fn assert_one_definite_rest_indirect(report: &Report, n: usize, node: usize) -> &Leak {
    let indirect = (IndirectlyLost, n - 1, (n - 1) * node);
    assert_kinds(report, &[(DefinitelyLost, 1, node), indirect]);
    assert_leaked(report, (n, n * node));
    site(report, DefinitelyLost)
}

/// Asserts that the stack's top frame is `function`.
fn assert_top(leak: &Leak, function: &str) {
    let top = leak
        .stack
        .first()
        .unwrap_or_else(|| panic!("empty stack in {leak:?}"));
    assert_eq!(common::function(top), function, "\n{}", render(&leak.stack));
}

// ---- 1, 2: a C global cache ----

#[test]
fn c_global_cache_is_still_reachable_and_clean() {
    let _serial = shared();
    cache_reset();
    let report = leakcheck::check(|| {
        black_box(cache_get());
        black_box(());
    });
    cache_reset();

    assert_clean_with(&report, &[(StillReachable, 1, CACHE_BYTES)]);
    let leak = site(&report, StillReachable);
    assert_eq!((leak.origin, leak.allocator), (Origin::C, "malloc"));
    assert_eq!((leak.blocks, leak.bytes), (1, CACHE_BYTES));
    assert_fixture_frame(&leak.stack[0], CACHE_GET_FN, "cache_get");
}

/// Fills the C cache under `strict` when run as the child.
#[leak_checked(strict)]
fn strict_cache_child() {
    if is_child("strict_cache_child") {
        black_box(cache_get());
        // Not a tail call, so the closure keeps a frame in release builds.
        black_box(());
    }
}

#[test]
fn strict_fails_on_a_still_reachable_cache() {
    let _serial = shared();
    let reports = ScratchDir::new("classification_strict");
    let child = run_child(
        "strict_cache_child",
        &[("LEAKCHECK_REPORT_DIR", reports.as_str())],
    );
    let output = child.output();
    child.assert_failed("strict_cache_child");
    let section = format!("{CACHE_BYTES} bytes in 1 block are still reachable, C malloc");
    assert!(child.stderr.contains(&section), "{output}");

    let path =
        json_report_path(&child.stderr).unwrap_or_else(|| panic!("no JSON report line:\n{output}"));
    let json = read_json(&path);
    assert_eq!(json["status"], "leaked", "{json}");
    assert_eq!(json["summary"]["leaked_blocks"], 1, "{json}");
    assert_eq!(json["summary"]["leaked_bytes"], CACHE_BYTES, "{json}");
    let kinds = json["summary"]["kinds"].as_object().expect("kinds object");
    assert_eq!(kinds.len(), 1, "{json}");
    assert_eq!(kinds["still_reachable"]["blocks"], 1, "{json}");
    assert_eq!(kinds["still_reachable"]["bytes"], CACHE_BYTES, "{json}");
    let leaks = json["leaks"].as_array().expect("leaks array");
    assert_eq!(leaks.len(), 1, "{json}");
    assert_eq!(leaks[0]["kind"], "still_reachable", "{json}");
    assert_eq!(leaks[0]["origin"], "c", "{json}");
    assert_eq!(leaks[0]["stack"][0]["function"], CACHE_GET_FN, "{json}");
}

// ---- 3: a lazily initialised C table ----

#[test]
fn lazy_c_table_is_reachable_when_made_and_nothing_after() {
    let _serial = shared();
    table_reset();
    let first = leakcheck::check(|| {
        assert_eq!(table_lookup(black_box(3)), 9);
        assert_eq!(table_lookup(black_box(4)), 16);
    });
    let second = leakcheck::check(|| {
        assert_eq!(table_lookup(black_box(5)), 25);
    });
    table_reset();

    assert_clean_with(&first, &[(StillReachable, 1, TABLE_BYTES)]);
    let leak = site(&first, StillReachable);
    assert_fixture_frame(&leak.stack[0], TABLE_LOOKUP_FN, "table_lookup");

    assert_clean_with(&second, &[]);
    assert!(second.leaks().is_empty(), "{second}");
    assert_eq!(second.stats().allocations, 0, "{:?}", second.stats());
}

// ---- 4: Rust OnceLocks ----

#[test]
fn rust_once_lock_vec_is_still_reachable() {
    let _serial = shared();
    static ONCE: OnceLock<Vec<u8>> = OnceLock::new();
    let mut init_fn = "";
    let report = leakcheck::check(|| {
        let v = ONCE.get_or_init(|| {
            init_fn = here!();
            vec![7u8; black_box(100)]
        });
        black_box(v);
    });

    assert_clean_with(&report, &[(StillReachable, 1, 100)]);
    let leak = site(&report, StillReachable);
    assert_eq!(leak.origin, Origin::Rust, "{report}");
    assert_top(leak, init_fn);
}

#[test]
fn rust_once_lock_hash_map_is_still_reachable_not_possibly_lost() {
    let _serial = shared();
    static MAP: OnceLock<HashMap<String, String>> = OnceLock::new();
    const ENTRIES: [(&str, &str); 3] = [("alpha", "one"), ("beta", "two"), ("gamma", "three")];
    let report = leakcheck::check(|| {
        let map = MAP.get_or_init(|| {
            ENTRIES
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        });
        black_box(map);
    });

    // The table (its pointer points into the middle of its block, past the
    // buckets) and every key and value: none possibly lost.
    assert!(!report.kinds().contains_key(&PossiblyLost), "{report}");
    let strings: usize = ENTRIES.iter().map(|(k, v)| k.len() + v.len()).sum();
    let reachable = report.kinds().get(&StillReachable).copied();
    let reachable = reachable.unwrap_or_else(|| panic!("nothing still reachable:\n{report}"));
    assert_eq!(reachable.blocks, 1 + 2 * ENTRIES.len(), "{report}");
    assert!(reachable.bytes > strings, "{report}");
    let table_bytes = reachable.bytes - strings;
    assert_clean_with(
        &report,
        &[(StillReachable, 1 + 2 * ENTRIES.len(), strings + table_bytes)],
    );
    assert!(
        report
            .leaks()
            .iter()
            .all(|leak| leak.origin == Origin::Rust),
        "{report}"
    );
}

// ---- 5: a linked list whose head is dropped ----

#[test]
fn c_list_with_its_head_dropped_is_one_definite_and_the_rest_indirect() {
    let _serial = shared();
    const N: usize = 5;
    let report = leakcheck::check(|| {
        list_new(black_box(N)).leak();
        black_box(());
    });

    let definite = assert_one_definite_rest_indirect(&report, N, LIST_NODE_BYTES);
    assert_eq!(definite.origin, Origin::C);
    assert_fixture_frame(&definite.stack[0], LIST_NEW_FN, "list_new");
    let indirect = site(&report, IndirectlyLost);
    assert_fixture_frame(&indirect.stack[0], LIST_NEW_FN, "list_new");
}

/// A Rust list node: a box per node, 32 bytes on 64-bit targets.
struct Node {
    next: Option<Box<Node>>,
    payload: [u8; 24],
}

/// Builds a list of `n` nodes, the last one built first.
#[inline(never)]
fn rust_list(n: usize) -> Option<Box<Node>> {
    let mut head = None;
    for i in 0..n {
        head = Some(Box::new(Node {
            next: head,
            payload: [i as u8 + 1; 24],
        }));
    }
    head
}

/// The number of nodes from `head` on.
fn list_len(mut head: &Option<Box<Node>>) -> usize {
    let mut n = 0;
    while let Some(node) = head {
        n += 1;
        head = &node.next;
    }
    n
}

#[test]
fn rust_list_with_its_head_forgotten_is_one_definite_and_the_rest_indirect() {
    let _serial = shared();
    const N: usize = 5;
    let node = mem::size_of::<Node>();
    let report = leakcheck::check(|| {
        let head = rust_list(black_box(N));
        assert_eq!(list_len(&head), N);
        assert_eq!(head.as_ref().map(|h| h.payload[0]), Some(N as u8));
        mem::forget(head);
        black_box(());
    });

    let definite = assert_one_definite_rest_indirect(&report, N, node);
    assert_eq!(definite.origin, Origin::Rust);
    assert_top(definite, concat!(module_path!(), "::rust_list"));
    assert_top(
        site(&report, IndirectlyLost),
        concat!(module_path!(), "::rust_list"),
    );
}

// ---- 6: an interior pointer from a global ----

#[test]
fn block_held_through_an_interior_pointer_is_possibly_lost() {
    let _serial = shared();
    const BYTES: usize = 32;
    const { assert!(BYTES > INTERIOR_OFFSET) };
    interior_release();
    let report = leakcheck::check(|| {
        interior_global(black_box(BYTES));
        black_box(());
    });
    interior_release();

    let leak = assert_one_lost(&report, PossiblyLost, BYTES);
    assert_fixture_frame(&leak.stack[0], INTERIOR_GLOBAL_FN, "interior_global");
}

/// A block far larger than the check's others (64 MiB, alone): an index of
/// the check's blocks would need an entry for every page of it, so the
/// classifier searches the sorted blocks instead; an interior pointer from a
/// global still finds it.
#[test]
fn huge_block_held_through_an_interior_pointer_is_possibly_lost() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    static HELD: AtomicUsize = AtomicUsize::new(0);
    const BYTES: usize = 64 << 20;
    const OFFSET: usize = 3 * 4096 + 8;
    let _serial = shared();
    let report = leakcheck::check(|| {
        let block: &'static mut [u8] = vec![0u8; BYTES].leak();
        HELD.store(block.as_mut_ptr() as usize + OFFSET, SeqCst);
    });
    let start = (HELD.swap(0, SeqCst) - OFFSET) as *mut u8;
    // SAFETY: the leaked Vec's buffer, BYTES long, freed once.
    drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(start, BYTES)) });

    let leak = assert_one_lost(&report, PossiblyLost, BYTES);
    assert_eq!(leak.origin, Origin::Rust);
}

/// A zeroed Rust block held only through a pointer where a hashbrown table
/// keeps its control bytes (160 bytes, 16 buckets of 8 bytes, pointer at
/// +128): all-zero bytes look like a full table, which hashbrown never
/// makes, so this is not taken for a map and stays possibly lost.
#[test]
fn rust_block_that_only_looks_like_a_hash_table_is_possibly_lost() {
    let _serial = shared();
    static INTO: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let report = leakcheck::check(|| {
        let block: &'static mut [u8; 160] = Box::leak(Box::new(black_box([0u8; 160])));
        INTO.store(
            block.as_ptr() as usize + 128,
            std::sync::atomic::Ordering::SeqCst,
        );
    });
    let inner = INTO.swap(0, std::sync::atomic::Ordering::SeqCst) - 128;
    // SAFETY: the block leaked above, freed once.
    drop(unsafe { Box::from_raw(inner as *mut [u8; 160]) });

    let leak = assert_one_lost(&report, PossiblyLost, 160);
    assert_eq!(leak.origin, Origin::Rust, "{report}");
}

// ---- 7: stale pointer copies in dead stack ----

#[test]
fn c_block_with_only_stale_copies_on_a_dead_stack_is_definitely_lost() {
    let _serial = shared();
    let report = leakcheck::check(|| {
        stale_stack(black_box(48));
        black_box(());
    });

    let leak = assert_one_lost(&report, DefinitelyLost, 48);
    assert_fixture_frame(&leak.stack[0], STALE_STACK_FN, "stale_stack");
}

#[test]
fn rust_block_with_only_stale_copies_on_a_dead_stack_is_definitely_lost() {
    let _serial = shared();
    let report = leakcheck::check(|| {
        rust_stale_stack(black_box(40));
        black_box(());
    });

    let leak = assert_one_lost(&report, DefinitelyLost, 40);
    assert_eq!(leak.origin, Origin::Rust);
    assert_fixture_frame(&leak.stack[0], RUST_STALE_STACK_FN, "rust_stale_stack");
}

// ---- 8: a block referenced from a block allocated before the check ----

/// Frees a `[u8; 48]` box given as an address.
fn free_box_48(address: usize) {
    // SAFETY: every address given here came from `Box::into_raw` of a
    // `Box<[u8; 48]>` and is freed once.
    drop(unsafe { Box::from_raw(address as *mut [u8; 48]) });
}

#[test]
fn block_in_a_static_vec_grown_before_the_check_is_still_reachable() {
    let _serial = shared();
    static HOLDER: Mutex<Vec<usize>> = Mutex::new(Vec::new());
    // Grown outside: the push inside does not reallocate.
    HOLDER.lock().unwrap().reserve(4);
    let capacity = HOLDER.lock().unwrap().capacity();
    let report = leakcheck::check(|| {
        let block = Box::into_raw(Box::new(black_box([5u8; 48])));
        HOLDER.lock().unwrap().push(block as usize);
    });
    let held: Vec<usize> = mem::take(&mut *HOLDER.lock().unwrap());
    assert_eq!((held.len(), held.capacity()), (1, capacity));
    held.into_iter().for_each(free_box_48);

    assert_clean_with(&report, &[(StillReachable, 1, 48)]);
    assert_eq!(site(&report, StillReachable).origin, Origin::Rust);
    assert_eq!(report.stats().allocations, 1, "{:?}", report.stats());
}

#[test]
fn block_held_only_by_an_older_heap_block_is_still_reachable() {
    let _serial = shared();
    // The vector's header is on this (the checking) thread's stack, which is
    // not a root; its buffer, allocated before the check, is.
    let mut holder: Vec<usize> = Vec::with_capacity(4);
    let report = leakcheck::check(|| {
        let block = Box::into_raw(Box::new(black_box([5u8; 48])));
        holder.push(block as usize);
    });
    assert_eq!(holder.len(), 1);
    holder.drain(..).for_each(free_box_48);

    assert_clean_with(&report, &[(StillReachable, 1, 48)]);
    assert_eq!(site(&report, StillReachable).origin, Origin::Rust);
}

#[test]
fn c_block_stored_in_older_c_slots_is_still_reachable() {
    let _serial = shared();
    let mut slots = CSlots::new(2);
    let report = leakcheck::check(|| {
        slots.store(black_box(1), black_box(40));
        black_box(());
    });
    slots.free();

    assert_clean_with(&report, &[(StillReachable, 1, 40)]);
    let leak = site(&report, StillReachable);
    assert_fixture_frame(&leak.stack[0], STORE_FN, "store");
}

// ---- 9: a block held by a thread that is still alive at the verdict ----

/// A Rust thread started outside the check that keeps the last address it
/// was given in a local on its own stack, and frees it when stopped. The
/// handover slot is cleared as soon as the thread holds the address, and
/// handing over allocates nothing (a futex mutex and condvar, no channel
/// whose waker lists would grow inside the check).
struct RustKeeper {
    shared: Arc<(Mutex<usize>, Condvar)>,
    thread: JoinHandle<()>,
}

impl RustKeeper {
    const EMPTY: usize = 0;
    const STOP: usize = usize::MAX;

    fn start() -> RustKeeper {
        let shared = Arc::new((Mutex::new(Self::EMPTY), Condvar::new()));
        let theirs = Arc::clone(&shared);
        let thread = thread::spawn(move || {
            let (slot, handed) = &*theirs;
            let mut held = [0usize; 1];
            let mut guard = slot.lock().unwrap();
            while *guard != Self::STOP {
                if *guard != Self::EMPTY {
                    assert_eq!(held[0], 0, "the keeper holds one block");
                    held[0] = mem::replace(&mut *guard, Self::EMPTY);
                    // In memory, on this stack, while the thread waits.
                    black_box(&mut held);
                    handed.notify_all();
                }
                guard = handed.wait(guard).unwrap();
            }
            drop(guard);
            if held[0] != 0 {
                free_box_48(held[0]);
            }
        });
        RustKeeper { shared, thread }
    }

    /// Hands `address` over and returns once the keeper holds it.
    fn give(&self, address: usize) {
        let (slot, handed) = &*self.shared;
        let mut guard = slot.lock().unwrap();
        *guard = address;
        handed.notify_all();
        while *guard == address {
            guard = handed.wait(guard).unwrap();
        }
    }

    fn stop(self) {
        let (slot, handed) = &*self.shared;
        *slot.lock().unwrap() = Self::STOP;
        handed.notify_all();
        self.thread.join().unwrap();
    }
}

#[test]
fn rust_block_held_by_a_live_thread_is_still_reachable() {
    let _serial = alone();
    let keeper = RustKeeper::start();
    let report = leakcheck::check(|| {
        let block = Box::into_raw(Box::new(black_box([3u8; 48])));
        keeper.give(block as usize);
    });
    keeper.stop();

    assert_clean_with(&report, &[(StillReachable, 1, 48)]);
    assert_eq!(site(&report, StillReachable).origin, Origin::Rust);
}

#[test]
fn c_block_held_by_a_live_c_thread_is_still_reachable() {
    let _serial = alone();
    let keeper = CKeeper::start();
    let report = leakcheck::check(|| {
        keeper.give(black_box(40));
        black_box(());
    });
    keeper.stop();

    assert_clean_with(&report, &[(StillReachable, 1, 40)]);
    let leak = site(&report, StillReachable);
    assert_fixture_frame(&leak.stack[0], KEEPER_GIVE_FN, "keeper_give");
}

// ---- 10: cycles ----

/// Leaks a C ring of `n` nodes and asserts one definitely and `n - 1`
/// indirectly lost nodes, all allocated at the ring fixture.
fn assert_c_ring_leak(n: usize) {
    let report = leakcheck::check(|| {
        ring_new(black_box(n)).leak();
        black_box(());
    });
    let definite = assert_one_definite_rest_indirect(&report, n, LIST_NODE_BYTES);
    assert_fixture_frame(&definite.stack[0], RING_NEW_FN, "ring_new");
    let indirect = site(&report, IndirectlyLost);
    assert_fixture_frame(&indirect.stack[0], RING_NEW_FN, "ring_new");
}

#[test]
fn c_cycle_of_two_is_one_definite_and_one_indirect() {
    let _serial = shared();
    assert_c_ring_leak(2);
}

#[test]
fn c_ring_of_four_is_one_definite_and_three_indirect() {
    let _serial = shared();
    assert_c_ring_leak(4);
}

/// Half of a Rust cycle: 32 bytes on 64-bit targets.
struct Pair {
    other: *mut Pair,
    payload: [u8; 24],
}

/// Makes two boxes that point to each other and drops both pointers.
#[inline(never)]
fn rust_cycle() {
    let a = Box::into_raw(Box::new(Pair {
        other: std::ptr::null_mut(),
        payload: [1; 24],
    }));
    let b = Box::into_raw(Box::new(Pair {
        other: a,
        payload: [2; 24],
    }));
    // SAFETY: `a` and `b` are live boxes that nothing else uses.
    unsafe {
        (*a).other = b;
        assert_eq!((*(*a).other).payload[0], 2);
        assert_eq!((*(*b).other).payload[0], 1);
    }
    black_box((a, b));
}

#[test]
fn rust_cycle_of_two_is_one_definite_and_one_indirect() {
    let _serial = shared();
    let pair = mem::size_of::<Pair>();
    let report = leakcheck::check(|| {
        rust_cycle();
        black_box(());
    });

    let definite = assert_one_definite_rest_indirect(&report, 2, pair);
    assert_eq!(definite.origin, Origin::Rust);
    assert_top(definite, concat!(module_path!(), "::rust_cycle"));
}

// ---- the test's own thread holds what a check on a thread it spawned made ----

/// A test that runs its check on a thread it spawns keeps the check's block
/// in a `Vec` on its own (libtest's) thread: the test's thread is a root for
/// that check (it started the checking thread), so the block is still
/// reachable, not lost. Other tests' threads are never roots.
#[test]
fn the_tests_own_thread_is_a_root_for_a_check_on_a_thread_it_spawned() {
    // The spawned thread is not in a check until it calls one: meanwhile
    // its stack (with std's freed start-up box in a live frame) is a root
    // for every other check.
    let _serial = alone();
    struct Holder(Mutex<Vec<usize>>);
    let holder = Holder(Mutex::new(Vec::with_capacity(4)));
    let report = thread::scope(|s| {
        s.spawn(|| {
            leakcheck::check(|| {
                let block = Box::into_raw(Box::new(black_box([7u8; 40])));
                holder.0.lock().unwrap().push(block as usize);
            })
        })
        .join()
        .unwrap()
    });
    assert_clean_with(&report, &[(StillReachable, 1, 40)]);
    for block in holder.0.lock().unwrap().drain(..) {
        // SAFETY: the box leaked in the check above, freed once.
        drop(unsafe { Box::from_raw(block as *mut [u8; 40]) });
    }
}
