//! The failure message of a `#[leak_checked]` test that opens an SQLite
//! connection (libsqlite3-sys, bundled) and never closes it: the case of a
//! forgotten rusqlite `Connection`, which made a 4,920-line message before
//! roots were folded. One section, the definitely lost root with what hangs
//! off it in valgrind's words, SQLite's frames named from the crate's
//! directory in cargo's registry, the indirectly lost sites counted on the
//! last line with the JSON report's path; the whole message fits a screen.
//! The README's example of a report is this test's child.
//!
//! Its own test binary: the block SQLite's cycles are entered through (the
//! root) is the lowest-addressed one of the cycle, as in memcheck, and
//! another test allocating in parallel can change which that is.

#[path = "../../harness/tests/common/mod.rs"]
mod common;

use common::{failure_message, is_child, json_report_path, read_json, run_child, ScratchDir};
use libsqlite3_sys as ffi;
use std::hint::black_box;
use std::ptr;

/// Opens an in-memory database, creates a table and inserts a row.
fn open_and_use() -> *mut ffi::sqlite3 {
    let mut db = ptr::null_mut();
    let flags = ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE;
    // SAFETY: a NUL-terminated name, a valid out pointer, no VFS name.
    let rc = unsafe { ffi::sqlite3_open_v2(c":memory:".as_ptr(), &mut db, flags, ptr::null()) };
    assert_eq!(rc, ffi::SQLITE_OK, "sqlite3_open_v2");
    let sql =
        c"CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO t (name) VALUES ('one')";
    // SAFETY: `db` is open; NUL-terminated SQL, no callback, no error
    // message out pointer.
    let rc = unsafe { ffi::sqlite3_exec(db, sql.as_ptr(), None, ptr::null_mut(), ptr::null_mut()) };
    assert_eq!(rc, ffi::SQLITE_OK, "sqlite3_exec");
    db
}

#[leakcheck::leak_checked]
fn forgets_a_connection() {
    if is_child("forgets_a_connection") {
        black_box(open_and_use());
        black_box(());
    }
}

#[test]
fn a_forgotten_connection_is_one_section_that_fits_a_screen() {
    let reports = ScratchDir::new(module_path!());
    let child = run_child(
        "forgets_a_connection",
        &[("LEAKCHECK_REPORT_DIR", reports.as_str())],
    );
    let output = child.output();
    child.assert_failed("forgets_a_connection");
    let json_path = json_report_path(&child.stderr).unwrap_or_else(|| panic!("{output}"));
    let message = failure_message(&child);
    assert!(
        message[0].starts_with("leakcheck: `forgets_a_connection` leaked "),
        "{output}"
    );
    assert!(message.len() <= 60, "{} lines:\n{output}", message.len());

    let json = read_json(&json_path);
    let root = &json["leaks"][0];
    assert_eq!(root["kind"], "definitely_lost", "{json}");
    let direct = root["bytes"].as_u64().unwrap();
    let indirect = root["indirect_bytes"].as_u64().unwrap();
    assert!(root["indirect_blocks"].as_u64().unwrap() > 100, "{json}");
    let total = json["summary"]["kinds"]["definitely_lost"]["bytes"]
        .as_u64()
        .unwrap()
        + json["summary"]["kinds"]["indirectly_lost"]["bytes"]
            .as_u64()
            .unwrap();
    assert_eq!(
        direct + indirect,
        total,
        "everything hangs off the root: {json}"
    );
    let sites = json["leaks"].as_array().unwrap().len();

    // The first section is that root, with its direct and indirect bytes;
    // it is the only one.
    let sections: Vec<&str> = message
        .iter()
        .copied()
        .filter(|l| l.contains(" bytes in ") && l.ends_with(", C malloc"))
        .collect();
    let header = format!(
        "{} ({} direct, {} indirect) bytes in 1 block are definitely lost, C malloc",
        grouped(total),
        grouped(direct),
        grouped(indirect)
    );
    assert_eq!(sections, [header.as_str()], "{output}");
    // SQLite's frames: its file from the crate's directory.
    let at_open = message
        .iter()
        .find(|l| l.starts_with("    at openDatabase ("))
        .unwrap_or_else(|| panic!("{output}"));
    assert!(
        at_open.starts_with("    at openDatabase (libsqlite3-sys-0.")
            && at_open.contains("/sqlite3/sqlite3.c:"),
        "{at_open}"
    );
    assert!(!child.stderr.contains("/registry/src/"), "{output}");
    assert_eq!(
        *message.last().unwrap(),
        format!(
            "{n} more allocation sites not shown: {n} indirectly lost (LEAKCHECK_SHOW=all lists \
             them); all are in the JSON report: {}",
            json_path.display(),
            n = sites - 1
        ),
        "{output}"
    );
}

/// `n` with its thousands marked, as the report writes numbers.
fn grouped(n: u64) -> String {
    let (millions, rest) = (n / 1_000_000, n % 1_000_000);
    match (millions, rest / 1000) {
        (0, 0) => n.to_string(),
        (0, thousands) => format!("{thousands},{:03}", rest % 1000),
        (m, thousands) => format!("{m},{thousands:03},{:03}", rest % 1000),
    }
}
