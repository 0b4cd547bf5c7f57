//! The shape of a forgotten rusqlite `Connection`, as measured in rusqlite
//! 0.40.2's own suite with a `mem::forget(db)` injected
//! (`scripts/real-suites/`, see its RESULTS.md): a 32-byte Rust block (the
//! connection's `Arc`) points to the `sqlite3` struct, which points to its
//! `Btree`, which points back to the `sqlite3`. SQLite's allocator stores the
//! size in the first 8 bytes of each `malloc` block and hands out the address
//! 8 bytes in, so both C pointers are interior pointers.
//!
//! Nothing points to the Rust block: by memcheck's definition (indirectly
//! lost: "all the blocks that point to it are themselves lost") it is the
//! one definitely lost block and the two C blocks indirectly lost. In the
//! suite, among 134 lost blocks, leakcheck called the `Btree` definitely
//! lost as well (2 definite, 132 indirect), issue 8's first point.
//!
//! It depended on addresses, not on the allocation order:
//! `forgotten_connection_is_one_definite_root_in_every_address_order` gives
//! the blocks their roles by address, and failed exactly when the `Btree`
//! had the lowest address of the three (2 definitely lost, 1 indirectly),
//! until cliques were formed in reverse finish order (`verdict/classify.rs`).
//! valgrind 3.19 gives the same 2 + 1 in the same two orders
//! and 1 + 2 in the other four (`scripts/real-suites/sqlite_shape_valgrind.c`,
//! the same blocks in C): its clique pass takes the unreached blocks in
//! address order and has the same dependence. The test asserts the
//! definition, what issue 8 asks for.

use leakcheck::{Kind, Report};
use std::hint::black_box;

/// The size header SQLite's default allocator puts before each block.
const HEADER: usize = 8;
/// The `sqlite3` struct's block, header included, as measured.
const DB_BLOCK: usize = 800;
/// The `Btree`'s block, header included, as measured.
const BTREE_BLOCK: usize = 160;
/// The connection's `Arc<Mutex<*mut sqlite3>>` block.
const HANDLE_BLOCK: usize = 32;

/// Allocates as SQLite does: `block` bytes from C `malloc`, the size in the
/// first word, the address `HEADER` bytes in returned. Zeroed.
fn sqlite_malloc(block: usize) -> *mut usize {
    // SAFETY: calloc has no precondition; the result is checked for null.
    let base = unsafe { libc::calloc(1, block) }.cast::<usize>();
    assert!(!base.is_null(), "calloc({block}) failed");
    // SAFETY: `base` is a fresh, aligned block of at least 8 bytes.
    unsafe { base.write(block - HEADER) };
    // SAFETY: `HEADER` bytes in is still inside the block (`block > HEADER`).
    unsafe { base.add(1) }
}

/// Builds the three blocks in the order given by `handle_first` and forgets
/// them: handle → db (interior), db ⇄ btree (interior both ways).
fn forget_connection(handle_first: bool) {
    let handle = |db: *mut usize| Box::into_raw(Box::new([db as usize, 0, 0, 0]));
    let (handle, db) = if handle_first {
        let handle = handle(std::ptr::null_mut());
        let db = sqlite_malloc(DB_BLOCK);
        // SAFETY: `handle` is the live box made above.
        unsafe { (*handle)[0] = db as usize };
        (handle, db)
    } else {
        let db = sqlite_malloc(DB_BLOCK);
        (handle(db), db)
    };
    let btree = sqlite_malloc(BTREE_BLOCK);
    // SAFETY: both are live blocks of more than four words past the header;
    // slot 3 of each is inside it.
    unsafe {
        db.add(3).write(btree as usize);
        btree.add(3).write(db as usize);
    }
    black_box(handle);
}

fn assert_one_definite_two_indirect(report: &Report) {
    let found: Vec<_> = report
        .kinds()
        .iter()
        .map(|(&kind, count)| (kind, count.blocks, count.bytes))
        .collect();
    assert_eq!(
        found,
        [
            (Kind::DefinitelyLost, 1, HANDLE_BLOCK),
            (Kind::IndirectlyLost, 2, DB_BLOCK + BTREE_BLOCK),
        ],
        "{report}"
    );
    let definite: Vec<_> = report
        .leaks()
        .iter()
        .filter(|leak| leak.kind == Kind::DefinitelyLost)
        .collect();
    assert_eq!(definite.len(), 1, "{report}");
    assert_eq!(
        definite[0].origin,
        leakcheck::Origin::Rust,
        "the root is the Rust handle:\n{report}"
    );
    assert!(report.errors().is_empty(), "{report}");
}

#[test]
fn forgotten_connection_allocated_as_rusqlite_does_is_one_definite_root() {
    let report = leakcheck::check(|| forget_connection(false));
    assert_one_definite_two_indirect(&report);
}

#[test]
fn forgotten_connection_with_its_handle_allocated_first_is_one_definite_root() {
    let report = leakcheck::check(|| forget_connection(true));
    assert_one_definite_two_indirect(&report);
}

/// The same three blocks, all C and of one size, given their roles by
/// address: `order[i]` is the role (0 handle, 1 db, 2 btree) of the block
/// with the i-th lowest address. Returns the handle's address.
fn forget_by_address(order: [usize; 3]) -> usize {
    let mut blocks = [0; 3].map(|_| sqlite_malloc(BTREE_BLOCK));
    blocks.sort();
    let mut role = [std::ptr::null_mut(); 3];
    for (i, &r) in order.iter().enumerate() {
        role[r] = blocks[i];
    }
    let [handle, db, btree] = role;
    // SAFETY: all three are live blocks of more than four words past the
    // header; slot 3 of each is inside it.
    unsafe {
        handle.add(3).write(db as usize);
        db.add(3).write(btree as usize);
        btree.add(3).write(db as usize);
    }
    black_box(handle) as usize - HEADER
}

#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "optimised, about one run in six leaves the three blocks still reachable or possibly \
              lost through a stale copy whose holder is not found yet (issue 8, stale addresses)"
)]
fn forgotten_connection_is_one_definite_root_in_every_address_order() {
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    let mut wrong = Vec::new();
    for order in orders {
        let report = leakcheck::check(move || {
            forget_by_address(order);
        });
        let found: Vec<_> = report
            .kinds()
            .iter()
            .map(|(&kind, count)| (kind, count.blocks, count.bytes))
            .collect();
        let expected = [
            (Kind::DefinitelyLost, 1, BTREE_BLOCK),
            (Kind::IndirectlyLost, 2, 2 * BTREE_BLOCK),
        ];
        if found != expected {
            wrong.push(format!("roles by address {order:?}: {found:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
