//! Real C code no one here wrote: SQLite (libsqlite3-sys, bundled). Its
//! allocator keeps each block's size in the first 8 bytes and hands out
//! `p + 8`, so every pointer it keeps is an interior pointer, and its
//! connection holds hash tables, schema and page cache. A connection never
//! closed is one definitely lost block (the `sqlite3` struct, allocated in
//! `openDatabase ← sqlite3_open_v2`) and everything it holds indirectly lost, as valgrind
//! says; one closed is clean.
//!
//! `valgrind_*_child` run the same scenarios plainly, for
//! `LEAKCHECK=off valgrind --leak-check=full --show-leak-kinds=all` (see
//! the README's agreement table).

#[path = "../../harness/tests/common/mod.rs"]
mod common;

use common::{is_child, kinds};
use leakcheck::{Kind, Status};
use libsqlite3_sys as ffi;
use std::hint::black_box;
use std::ptr;

use Kind::{DefinitelyLost, IndirectlyLost};

/// The `sqlite3` connection block (the struct and SQLite's 8-byte size
/// header), as valgrind 3.19 measures it on this build.
const CONNECTION_BYTES: usize = 800;
/// What the connection holds after `open_and_use`, as valgrind counts it
/// too (its lookaside buffer, schema, hash tables, page cache).
const HELD_BLOCKS: usize = 134;
const HELD_BYTES: usize = 75_808;

/// Opens an in-memory database, creates a table and inserts three rows.
fn open_and_use() -> *mut ffi::sqlite3 {
    let mut db = ptr::null_mut();
    let flags = ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE;
    // SAFETY: a NUL-terminated name, a valid out pointer, no VFS name.
    let rc = unsafe { ffi::sqlite3_open_v2(c":memory:".as_ptr(), &mut db, flags, ptr::null()) };
    assert_eq!(rc, ffi::SQLITE_OK, "sqlite3_open_v2");
    for sql in [
        c"CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)",
        c"INSERT INTO t (name) VALUES ('one'), ('two'), ('three')",
    ] {
        // SAFETY: `db` is open; NUL-terminated SQL, no callback, no error
        // message out pointer.
        let rc =
            unsafe { ffi::sqlite3_exec(db, sql.as_ptr(), None, ptr::null_mut(), ptr::null_mut()) };
        assert_eq!(rc, ffi::SQLITE_OK, "sqlite3_exec {sql:?}");
    }
    db
}

/// Closes `db`, asserting it closed.
fn close(db: *mut ffi::sqlite3) {
    // SAFETY: `db` is open and nothing else uses it.
    assert_eq!(unsafe { ffi::sqlite3_close(db) }, ffi::SQLITE_OK);
}

/// SQLite's process-wide state (made once, on first use) outside any check.
fn initialize() {
    // SAFETY: sqlite3_initialize may be called any number of times.
    assert_eq!(unsafe { ffi::sqlite3_initialize() }, ffi::SQLITE_OK);
}

#[test]
fn a_connection_never_closed_is_one_definite_block_and_the_rest_indirect() {
    initialize();
    // The address only: a raw pointer is not `Send`. Kept on this thread's
    // stack, which is not a root.
    let mut db = 0usize;
    let report = leakcheck::check(|| db = black_box(open_and_use()) as usize);
    close(db as *mut ffi::sqlite3);

    assert_eq!(
        kinds(&report),
        [
            (DefinitelyLost, 1, CONNECTION_BYTES),
            (IndirectlyLost, HELD_BLOCKS, HELD_BYTES),
        ],
        "{report}"
    );
    assert_eq!(report.status(), Status::Leaked, "{report}");
    assert!(report.errors().is_empty(), "{report}");
    let definite: Vec<_> = report
        .leaks()
        .iter()
        .filter(|leak| leak.kind == DefinitelyLost)
        .collect();
    assert_eq!(definite.len(), 1, "{report}");
    let frames: Vec<&str> = definite[0].stack.iter().map(common::function).collect();
    assert!(frames.contains(&"openDatabase"), "{frames:?}");
    assert!(
        frames.contains(&concat!(module_path!(), "::open_and_use")),
        "{frames:?}"
    );
    // Optimised, sqlite3_open_v2 ends in a jump to openDatabase (a tail
    // call): its frame is gone.
    if cfg!(debug_assertions) {
        assert!(frames.contains(&"sqlite3_open_v2"), "{frames:?}");
    }
    assert_folded_message(&report);
}

/// The failure message: one section, the connection, with what hangs off
/// it in valgrind's words, the indirectly lost sites only counted; SQLite's
/// frames name its file from the crate's directory in cargo's registry
/// checkout (the report keeps the absolute path).
fn assert_folded_message(report: &leakcheck::Report) {
    let text = report.to_string();
    assert_eq!((CONNECTION_BYTES, HELD_BYTES), (800, 75_808));
    let header =
        "76,608 (800 direct, 75,808 indirect) bytes in 1 block are definitely lost, C malloc";
    let sections: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" bytes in ") && l.ends_with(", C malloc"))
        .collect();
    assert_eq!(sections, [header], "{text}");
    assert!(text.lines().count() <= 60, "{text}");
    let root = &report.leaks()[0];
    assert_eq!(root.indirect_blocks, Some(HELD_BLOCKS), "{report:?}");
    assert_eq!(root.indirect_bytes, Some(HELD_BYTES), "{report:?}");
    let last = text.lines().last().unwrap();
    assert!(
        last.contains(" indirectly lost (LEAKCHECK_SHOW=all lists them)"),
        "{text}"
    );

    let frame = root
        .stack
        .iter()
        .find(|f| {
            f.file
                .as_deref()
                .is_some_and(|p| p.ends_with("/sqlite3/sqlite3.c"))
        })
        .unwrap_or_else(|| panic!("no frame in sqlite3.c: {report:?}"));
    let absolute = frame.file.as_deref().unwrap();
    assert!(
        absolute.starts_with('/') && absolute.contains("/registry/src/"),
        "{absolute}"
    );
    let short = &absolute[absolute.find("/libsqlite3-sys-").unwrap() + 1..];
    assert!(short.starts_with("libsqlite3-sys-0."), "{short}");
    let shown = format!(
        "at {} ({short}:{})",
        common::function(frame),
        frame.line.unwrap()
    );
    assert!(text.contains(&shown), "{shown}\n{text}");
    assert!(!text.contains("/registry/src/"), "{text}");
}

#[test]
fn a_connection_closed_is_clean() {
    initialize();
    let report = leakcheck::check(|| close(open_and_use()));
    assert_eq!(kinds(&report), [], "{report}");
    assert_eq!(report.status(), Status::Clean, "{report}");
    assert!(report.errors().is_empty(), "{report}");
}

/// The never-closed scenario, unchecked: for valgrind.
#[test]
fn valgrind_never_closed_child() {
    if is_child("valgrind_never_closed_child") {
        initialize();
        black_box(open_and_use());
    }
}

/// The closed scenario, unchecked: for valgrind.
#[test]
fn valgrind_closed_child() {
    if is_child("valgrind_closed_child") {
        initialize();
        close(black_box(open_and_use()));
    }
}
