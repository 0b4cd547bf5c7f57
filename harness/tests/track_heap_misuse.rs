//! Heap misuse across the FFI boundary is reported in the check that did
//! it, with the stacks of the bad call, of the block's allocation and of
//! its free, and never reaches glibc where glibc would abort: double and
//! invalid frees, frees through the other allocator family, Rust
//! deallocations with the wrong layout, overruns (guard bytes) and writes
//! after free (the quarantine's fill). Each from C and from Rust where both
//! apply; `harness_survives_*` runs a whole binary of them in parallel with
//! clean tests and checks every verdict.

mod common;

use common::{assert_fixture_frame, assert_frame, function, render};
use leakcheck::__private::{check_with, Options, Suppression};
use leakcheck::{Misuse, Report, Status};
use leakcheck_test_support as fixtures;
use std::alloc::Layout;
use std::ffi::CString;
use std::hint::black_box;

/// The report's only misuse, of `kind`.
fn only<'r>(report: &'r Report, kind: &str) -> &'r Misuse {
    assert_eq!(report.status(), Status::Error, "{report}");
    assert_eq!(report.misuse().len(), 1, "{report}");
    let misuse = &report.misuse()[0];
    assert_eq!(misuse.kind, kind, "{report}");
    assert_eq!(report.errors()[0].kind, kind, "{report}");
    misuse
}

fn address(misuse: &Misuse) -> usize {
    let hex = misuse.address.trim_start_matches("0x");
    usize::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("{misuse:?}: {e}"))
}

/// Asserts the report's text shows the misuse valgrind's way, first.
fn assert_text(report: &Report, headline: &str, address_line: &str) {
    let text = report.to_string();
    let body = text.split_once("\n\n").map_or("", |(_, rest)| rest);
    assert!(body.starts_with(headline), "{text}");
    assert!(text.contains(address_line), "{text}");
}

#[test]
fn c_double_free_is_reported_with_all_three_stacks() {
    let report = leakcheck::check(|| {
        // SAFETY: inside a check the second free is caught.
        unsafe { fixtures::double_free() };
    });
    let misuse = only(&report, "double_free");
    assert_eq!(misuse.size, Some(32), "{report}");
    assert_fixture_frame(&misuse.stack[0], "fixture_double_free", "double_free");
    assert_fixture_frame(
        &misuse.freed_at[0],
        "fixture_double_free",
        "double_free_first",
    );
    assert_fixture_frame(
        &misuse.allocated_at[0],
        "fixture_double_free",
        "double_free_alloc",
    );
    assert_text(
        &report,
        "Invalid free() / delete / delete[] / realloc() [double_free]",
        "is 0 bytes inside a block of size 32 free'd",
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["status"], "error");
    let entry = &json["errors"][0];
    assert_eq!(entry["kind"], "double_free");
    assert_eq!(entry["size"], 32);
    assert_eq!(entry["address"], misuse.address.as_str());
    assert_eq!(entry["stack"][0]["function"], "fixture_double_free");
    assert_eq!(entry["freed_at"][0]["function"], "fixture_double_free");
    assert_eq!(entry["allocated_at"][0]["function"], "fixture_double_free");
    assert!(entry["message"]
        .as_str()
        .unwrap()
        .starts_with("Invalid free()"));
    let suppression = entry["suppression"].as_str().unwrap();
    assert!(
        suppression.contains("   Memcheck:Free\n   fun:free\n   fun:fixture_double_free"),
        "{suppression}"
    );
}

#[test]
fn rust_double_free_through_c_is_caught() {
    let report = leakcheck::check(|| {
        let block = fixtures::alloc(black_box(40));
        let ptr = block.as_ptr();
        block.free();
        // SAFETY: freed above, held by the quarantine: caught.
        unsafe { fixtures::c_free(ptr) };
    });
    let misuse = only(&report, "double_free");
    assert_eq!(misuse.size, Some(40), "{report}");
    assert_fixture_frame(&misuse.stack[0], "fixture_free", "free");
    assert_fixture_frame(&misuse.allocated_at[0], "fixture_alloc", "alloc");
}

#[test]
fn c_interior_free_is_invalid_and_names_the_block() {
    let report = leakcheck::check(|| {
        // SAFETY: the interior free is caught.
        unsafe { fixtures::invalid_free() };
    });
    let misuse = only(&report, "invalid_free");
    assert_eq!(misuse.size, Some(32), "{report}");
    assert_fixture_frame(&misuse.stack[0], "fixture_invalid_free", "invalid_free");
    assert_fixture_frame(
        &misuse.allocated_at[0],
        "fixture_invalid_free",
        "invalid_free_alloc",
    );
    assert!(misuse.freed_at.is_empty(), "{report}");
    assert_text(
        &report,
        "Invalid free() / delete / delete[] / realloc() [invalid_free]",
        "is 8 bytes inside a block of size 32 alloc'd",
    );
}

#[test]
fn free_of_a_stack_address_is_invalid() {
    let report = leakcheck::check(|| {
        // SAFETY: the free of a stack address is caught.
        unsafe { fixtures::free_stack_address() };
    });
    let misuse = only(&report, "invalid_free");
    assert_eq!(misuse.size, None, "{report}");
    assert_fixture_frame(
        &misuse.stack[0],
        "fixture_free_stack_address",
        "free_stack_address",
    );
    assert!(
        misuse.message.contains("is on a thread's stack"),
        "{report}"
    );
}

#[test]
fn free_of_a_global_is_invalid() {
    let report = leakcheck::check(|| {
        // SAFETY: the free of a global's address is caught.
        unsafe { fixtures::free_static_address() };
    });
    let misuse = only(&report, "invalid_free");
    assert_fixture_frame(
        &misuse.stack[0],
        "fixture_free_static_address",
        "free_static_address",
    );
    assert!(misuse.message.contains("is in a loaded object"), "{report}");
}

#[test]
fn rust_free_of_a_never_allocated_pointer_is_invalid() {
    let mut local = [0u64; 8];
    let ptr = black_box(local.as_mut_ptr()) as usize;
    let report = leakcheck::check(move || {
        // SAFETY: a stack address (of the caller's frame): caught.
        unsafe { fixtures::c_free(ptr as *mut std::ffi::c_void) };
    });
    let misuse = only(&report, "invalid_free");
    assert_eq!(address(misuse), ptr, "{report}");
    assert_fixture_frame(&misuse.stack[0], "fixture_free", "free");
    black_box(&mut local);
}

#[test]
fn c_free_of_a_box_is_mismatched_and_still_frees() {
    let line = line!() + 2;
    let report = leakcheck::check(|| {
        let boxed = Box::into_raw(Box::new(black_box([7u8; 48])));
        // SAFETY: a Rust block freed by C: reported, and freed by glibc,
        // whose block it is.
        unsafe { fixtures::c_free(boxed.cast()) };
    });
    let misuse = only(&report, "mismatched_free");
    assert_eq!(misuse.size, Some(48), "{report}");
    assert_fixture_frame(&misuse.stack[0], "fixture_free", "free");
    let here = "track_heap_misuse::c_free_of_a_box_is_mismatched_and_still_frees::{{closure}}";
    assert_frame(&misuse.allocated_at[0], here, file!(), line);
    assert!(misuse.message.starts_with("Mismatched free()"), "{report}");
    assert_eq!(report.leaked_blocks(), 0, "it was freed:\n{report}");
}

#[test]
fn c_free_of_a_cstring_into_raw_is_mismatched() {
    let report = leakcheck::check(|| {
        let raw = CString::new("handed to C").unwrap().into_raw();
        // SAFETY: as above.
        unsafe { fixtures::c_free(raw.cast()) };
    });
    let misuse = only(&report, "mismatched_free");
    assert_eq!(misuse.size, Some(12), "{report}");
    assert_fixture_frame(&misuse.stack[0], "fixture_free", "free");
    assert_eq!(report.leaked_blocks(), 0, "{report}");
}

#[test]
fn box_from_raw_of_a_malloc_block_is_mismatched() {
    let line = line!() + 6;
    let report = leakcheck::check(|| {
        let block = fixtures::alloc(black_box(24));
        // SAFETY: a malloc block dropped as a Box: reported, freed by
        // glibc as `free` would.
        let boxed = unsafe { Box::from_raw(block.as_ptr().cast::<[u8; 24]>()) };
        drop(black_box(boxed));
        block.leak();
    });
    let misuse = only(&report, "mismatched_free");
    assert_eq!(misuse.size, Some(24), "{report}");
    assert_fixture_frame(&misuse.allocated_at[0], "fixture_alloc", "alloc");
    let here = "track_heap_misuse::box_from_raw_of_a_malloc_block_is_mismatched::{{closure}}";
    let frame = misuse
        .stack
        .iter()
        .find(|f| function(f) == here)
        .unwrap_or_else(|| panic!("no frame of the test:\n{}", render(&misuse.stack)));
    assert_frame(frame, here, file!(), line);
    assert_eq!(report.leaked_blocks(), 0, "{report}");
}

#[test]
fn cstring_from_raw_of_a_malloc_block_is_mismatched() {
    let report = leakcheck::check(|| {
        let block = fixtures::alloc(black_box(8));
        // SAFETY: 8 writable bytes; a NUL-terminated string in them.
        unsafe { block.as_ptr().cast::<[u8; 4]>().write(*b"abc\0") };
        // SAFETY: as above; dropping it deallocates through Rust.
        drop(unsafe { CString::from_raw(block.as_ptr().cast()) });
        block.leak();
    });
    let misuse = only(&report, "mismatched_free");
    assert_eq!(misuse.size, Some(8), "{report}");
    assert_fixture_frame(&misuse.allocated_at[0], "fixture_alloc", "alloc");
}

#[test]
fn dealloc_with_the_wrong_size_is_a_layout_mismatch() {
    let line = line!() + 6;
    let report = leakcheck::check(|| {
        let layout = Layout::from_size_align(24, 8).unwrap();
        // SAFETY: a live block deallocated with another size: reported,
        // freed all the same.
        unsafe {
            let ptr = std::alloc::alloc(layout);
            std::alloc::dealloc(black_box(ptr), Layout::from_size_align(16, 8).unwrap());
        }
    });
    let misuse = only(&report, "layout_mismatch");
    assert_eq!(misuse.size, Some(24), "{report}");
    assert!(
        misuse
            .message
            .contains("size 16 align 8 for a block allocated with size 24 align 8"),
        "{report}"
    );
    let here = "track_heap_misuse::dealloc_with_the_wrong_size_is_a_layout_mismatch::{{closure}}";
    assert_frame(&misuse.stack[0], here, file!(), line + 1);
    assert_frame(&misuse.allocated_at[0], here, file!(), line);
    let suppression = misuse.suppression.as_deref().unwrap();
    assert!(
        suppression.contains("Memcheck:SizeMismatch"),
        "{suppression}"
    );
    assert_eq!(report.leaked_blocks(), 0, "{report}");
}

#[test]
fn dealloc_with_the_wrong_alignment_is_a_layout_mismatch() {
    let report = leakcheck::check(|| {
        let layout = Layout::from_size_align(64, 64).unwrap();
        // SAFETY: as above, with another alignment.
        unsafe {
            let ptr = std::alloc::alloc(layout);
            std::alloc::dealloc(black_box(ptr), Layout::from_size_align(64, 8).unwrap());
        }
    });
    let misuse = only(&report, "layout_mismatch");
    assert!(misuse
        .message
        .contains("size 64 align 8 for a block allocated with size 64 align 64"));
    let suppression = misuse.suppression.as_deref().unwrap();
    assert!(
        suppression.contains("Memcheck:AlignMismatch"),
        "{suppression}"
    );
}

#[test]
fn c_strcpy_one_byte_past_the_end_is_an_overrun_at_free() {
    let report = leakcheck::check(|| {
        // SAFETY: the guard bytes take the overrun.
        unsafe { fixtures::overrun_strcpy(true) };
    });
    let misuse = only(&report, "overrun");
    assert_eq!(misuse.size, Some(5), "{report}");
    assert_fixture_frame(&misuse.stack[0], "fixture_overrun_strcpy", "overrun_strcpy");
    assert_fixture_frame(
        &misuse.allocated_at[0],
        "fixture_overrun_strcpy",
        "overrun_strcpy_alloc",
    );
    assert_text(
        &report,
        "Invalid write after the end of a heap block",
        "is 0 bytes after a block of size 5 alloc'd",
    );
    let suppression = misuse.suppression.as_deref().unwrap();
    assert!(
        suppression.contains("   Memcheck:Addr1\n   fun:malloc\n   fun:fixture_overrun_strcpy"),
        "{suppression}"
    );
}

#[test]
fn an_overrun_block_left_live_is_found_by_the_verdict_and_still_leaks() {
    let report = leakcheck::check(|| {
        // SAFETY: as above; the block is leaked.
        unsafe { fixtures::overrun_strcpy(false) };
    });
    let misuse = only(&report, "overrun");
    assert!(misuse.stack.is_empty(), "found by the verdict: {report}");
    assert_fixture_frame(
        &misuse.allocated_at[0],
        "fixture_overrun_strcpy",
        "overrun_strcpy_alloc",
    );
    assert_eq!(
        (report.leaked_blocks(), report.leaked_bytes()),
        (1, 5),
        "{report}"
    );
    let text = report.to_string();
    assert!(text.starts_with(
        "leakcheck: `an_overrun_block_left_live_is_found_by_the_verdict_and_still_leaks` misused \
         the heap (1 error) and leaked 1 block (5 bytes)"
    ), "{text}");
    let error = text.find("Invalid write after the end").unwrap();
    let leak = text.find("5 bytes in 1 block are definitely lost").unwrap();
    assert!(error < leak, "errors first:\n{text}");
}

#[test]
fn rust_ptr_write_past_the_end_is_an_overrun() {
    let line = line!() + 2;
    let report = leakcheck::check(|| {
        let raw = black_box(Box::into_raw(Box::new(black_box([0u8; 8]))));
        // SAFETY: the byte after the block is a guard byte inside a check.
        // Volatile: optimised, a plain write past the end is removed.
        unsafe { raw.cast::<u8>().add(8).write_volatile(1) };
        // SAFETY: the box's own pointer, dropped once.
        drop(unsafe { Box::from_raw(raw) });
    });
    let misuse = only(&report, "overrun");
    assert_eq!(misuse.size, Some(8), "{report}");
    let here = "track_heap_misuse::rust_ptr_write_past_the_end_is_an_overrun::{{closure}}";
    assert_frame(&misuse.allocated_at[0], here, file!(), line);
    assert!(
        misuse.message.contains("0 bytes after a block of size 8"),
        "{report}"
    );
}

#[test]
fn c_write_after_free_is_found_by_the_verdict() {
    let report = leakcheck::check(|| {
        // SAFETY: the quarantine holds the freed block inside a check.
        unsafe { fixtures::write_after_free() };
    });
    let misuse = only(&report, "write_after_free");
    assert_eq!(misuse.size, Some(32), "{report}");
    assert!(
        misuse
            .message
            .contains("is 8 bytes inside a block of size 32 free'd"),
        "{report}"
    );
    assert_fixture_frame(
        &misuse.freed_at[0],
        "fixture_write_after_free",
        "write_after_free_free",
    );
    assert_fixture_frame(
        &misuse.allocated_at[0],
        "fixture_write_after_free",
        "write_after_free_alloc",
    );
}

#[test]
fn a_write_through_the_address_a_moving_realloc_left_is_found() {
    let report = leakcheck::check(|| {
        let block = fixtures::alloc(black_box(32));
        let old = block.as_ptr().cast::<u8>();
        let grown = block.realloc(black_box(200_000));
        assert_ne!(grown.as_ptr().cast::<u8>(), old, "the realloc moved");
        // SAFETY: inside a check the quarantine holds the old block (still
        // glibc's, unused): the write lands in held memory, as a stale
        // pointer's would.
        unsafe { old.add(8).write_volatile(1) };
        grown.free();
    });
    let misuse = only(&report, "write_after_free");
    assert_eq!(misuse.size, Some(32), "{report}");
    assert!(
        misuse
            .message
            .contains("is 8 bytes inside a block of size 32 free'd"),
        "{report}"
    );
    assert_fixture_frame(&misuse.freed_at[0], "fixture_realloc", "realloc");
    assert_fixture_frame(&misuse.allocated_at[0], "fixture_alloc", "alloc");
}

const AFTER_VERDICT: &str = "a_write_after_the_verdict_is_found_as_the_block_leaves_the_quarantine";

/// In a child with one test thread, so that no other check keeps the
/// quarantine's entries: a block freed in one check and written through
/// its stale address after that check's verdict is found when a later
/// check's end gives it back to glibc (it frees more than the quarantine
/// keeps in reserve, so the older entries leave), and reported on stderr
/// with its stacks, since no running check can take it.
#[test]
fn a_write_after_the_verdict_is_found_as_the_block_leaves_the_quarantine() {
    if common::is_child(AFTER_VERDICT) {
        let mut stale = 0usize;
        let first = leakcheck::check(|| {
            let block = fixtures::alloc(black_box(48));
            stale = block.as_ptr() as usize;
            block.free();
        });
        assert_eq!(first.status(), Status::Clean, "{first}");
        // SAFETY: the quarantine still holds the block (the newest entries
        // stay after a verdict), so the write lands in held memory, past
        // the words glibc keeps in a freed chunk, as a stale pointer's
        // would.
        unsafe { (stale as *mut u8).add(16).write_volatile(7) };
        let second = leakcheck::check(|| fixtures::churn(black_box(400), 4000));
        assert_eq!(second.status(), Status::Clean, "{second}");
        println!("written after the verdict at {stale:#x}");
        return;
    }
    let child = common::run_binary_within(
        60,
        &["--exact", AFTER_VERDICT, "--nocapture", "--test-threads=1"],
        AFTER_VERDICT,
        &[],
    );
    let output = child.output();
    assert!(!child.timed_out(), "hung:\n{output}");
    assert!(child.status.success(), "{output}");
    let stale = child
        .stdout
        .split("written after the verdict at ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address:\n{output}"));
    let stderr = &child.stderr;
    let reported: Vec<&str> = stderr
        .split("leakcheck: heap misuse outside any check (")
        .skip(1)
        .collect();
    assert_eq!(reported.len(), 1, "one misuse:\n{output}");
    let misuse = reported[0];
    assert!(misuse.starts_with("write_after_free)"), "{output}");
    let address = usize::from_str_radix(stale.trim_start_matches("0x"), 16).unwrap() + 16;
    assert!(
        misuse.contains(&format!(
            "Address {address:#x} is 16 bytes inside a block of size 48 free'd"
        )),
        "{output}"
    );
    let (_, freed_at) = misuse
        .split_once("  freed at:")
        .unwrap_or_else(|| panic!("the free's stack:\n{output}"));
    let (freed_at, allocated_at) = freed_at
        .split_once("  allocated at:")
        .unwrap_or_else(|| panic!("the allocation's stack:\n{output}"));
    assert!(freed_at.contains("at fixture_free"), "{output}");
    assert!(allocated_at.contains("at fixture_alloc"), "{output}");
}

#[test]
fn a_double_free_in_a_c_thread_is_charged_to_the_check() {
    let report = leakcheck::check(|| {
        // SAFETY: the second free, on the C thread, is caught.
        unsafe { fixtures::thread_double_free() };
    });
    let misuse = only(&report, "double_free");
    assert_fixture_frame(&misuse.stack[0], "fixture_double_free", "double_free");
    assert_eq!(
        function(&misuse.stack[1]),
        "fixture_double_free_main",
        "{report}"
    );
}

#[test]
fn guard_bytes_keep_usable_size_and_realloc_exact() {
    let report = leakcheck::check(|| {
        assert_eq!(fixtures::usable_size(black_box(5)), 5);
        assert_eq!(fixtures::usable_size(black_box(100)), 100);
        let mut v: Vec<u8> = Vec::with_capacity(3);
        for i in 0..1000u32 {
            v.push(i as u8);
        }
        v.shrink_to_fit();
        assert!(v.iter().enumerate().all(|(i, &b)| b == i as u8));
        fixtures::realloc_chain(20, 40).free();
    });
    assert_eq!(report.status(), Status::Clean, "{report}");
    // Outside a check glibc's answer: at least what was asked.
    assert!(fixtures::usable_size(5) >= 5);
}

#[test]
fn clean_code_next_to_misuse_stays_clean() {
    let report = leakcheck::check(|| {
        fixtures::churn(100, 48);
        let b = Box::new(black_box([1u8; 100]));
        drop(b);
        fixtures::alloc(16).free();
    });
    assert_eq!(report.status(), Status::Clean, "{report}");
    assert!(report.misuse().is_empty());
}

fn suppressing(text: String) -> Options {
    let entry: &'static [Suppression] = Box::leak(Box::new([Suppression {
        text: Box::leak(text.into_boxed_str()),
        file: file!(),
        line: line!(),
    }]));
    Options::new().suppress(entry)
}

#[test]
fn the_generated_suppression_suppresses_the_error_it_was_printed_for() {
    let double_free = || {
        // SAFETY: caught inside the check.
        unsafe { fixtures::double_free() };
    };
    let report = leakcheck::check(double_free);
    let suppression = only(&report, "double_free").suppression.clone().unwrap();
    let report = check_with(suppressing(suppression), double_free);
    assert_eq!(report.status(), Status::Clean, "{report}");
    let used = &report.suppressions_used()[0];
    assert_eq!((used.blocks, used.bytes), (1, 32), "{report}");
}

#[test]
fn valgrind_addr_and_free_blocks_suppress_by_their_kind_only() {
    let overrun = "{\n   strcpy-overrun\n   Memcheck:Addr1\n   fun:malloc\n   \
                   fun:fixture_overrun_strcpy\n}\n";
    let overrun_both = || {
        // SAFETY: the guard bytes take the overrun.
        unsafe { fixtures::overrun_strcpy(true) };
        // SAFETY: caught inside the check.
        unsafe { fixtures::double_free() };
    };
    let report = check_with(suppressing(overrun.to_owned()), overrun_both);
    // The overrun is suppressed; the double free is not a write.
    let misuse = only(&report, "double_free");
    assert_fixture_frame(&misuse.stack[0], "fixture_double_free", "double_free");
    assert_eq!(report.suppressions_used()[0].name, "strcpy-overrun");
    let free = "{\n   elsewhere\n   Memcheck:Free\n   fun:free\n   fun:some_other_function\n}\n";
    let report = check_with(suppressing(free.to_owned()), || {
        // SAFETY: caught inside the check.
        unsafe { fixtures::double_free() };
    });
    only(&report, "double_free");
    assert!(report.suppressions_used().is_empty(), "{report}");
}

#[test]
fn c_realloc_of_a_freed_block_is_a_double_free_and_returns_null() {
    let report = leakcheck::check(|| {
        let block = fixtures::alloc(black_box(24));
        let ptr = block.as_ptr();
        block.free();
        // SAFETY: realloc of a held block: caught, NULL returned.
        let again = unsafe { libc::realloc(black_box(ptr), 48) };
        assert!(again.is_null());
    });
    let misuse = only(&report, "double_free");
    assert_fixture_frame(&misuse.freed_at[0], "fixture_free", "free");
    let suppression = misuse.suppression.as_deref().unwrap();
    assert!(
        suppression.contains("Memcheck:Free\n   fun:realloc\n"),
        "{suppression}"
    );
}

#[test]
fn rust_realloc_of_a_freed_block_is_a_double_free_and_goes_on() {
    let line = line!() + 7;
    let report = leakcheck::check(|| {
        let layout = Layout::from_size_align(32, 8).unwrap();
        // SAFETY: a realloc after dealloc: caught, a fresh block returned.
        unsafe {
            let ptr = std::alloc::alloc(layout);
            std::alloc::dealloc(ptr, layout);
            let again = std::alloc::realloc(black_box(ptr), layout, 64);
            assert!(!again.is_null());
            std::alloc::dealloc(again, Layout::from_size_align(64, 8).unwrap());
        }
    });
    let misuse = only(&report, "double_free");
    let here =
        "track_heap_misuse::rust_realloc_of_a_freed_block_is_a_double_free_and_goes_on::{{closure}}";
    assert_frame(&misuse.stack[0], here, file!(), line);
    assert_frame(&misuse.freed_at[0], here, file!(), line - 1);
    assert_eq!(report.leaked_blocks(), 0, "{report}");
}

const IN_HANDLER: &str = "an_invalid_free_in_a_signal_handler_is_reported_without_deadlock";

extern "C" fn freeing_handler(_signal: libc::c_int) {
    // SAFETY: an invalid free, caught (and only recorded in a handler).
    unsafe { fixtures::free_stack_address() };
}

/// In a child: a handler installed for an asynchronous signal stays the
/// whole process's, and one that allocates turns the quarantine off there
/// (`tests/verdict_quarantine_limits.rs`).
#[test]
fn an_invalid_free_in_a_signal_handler_is_reported_without_deadlock() {
    if common::is_child(IN_HANDLER) {
        common::install_signal_handler(libc::SIGUSR1, freeing_handler);
        let report = leakcheck::check(|| {
            // SAFETY: the handler runs on this thread before raise returns.
            unsafe { libc::raise(libc::SIGUSR1) };
        });
        let misuse = only(&report, "invalid_free");
        assert_fixture_frame(
            &misuse.stack[0],
            "fixture_free_stack_address",
            "free_stack_address",
        );
        // Outside any check: addresses only, on stderr.
        // SAFETY: as above.
        unsafe { libc::raise(libc::SIGUSR1) };
        println!("handler misuse reported");
        return;
    }
    let child = common::run_binary_within(
        60,
        &["--exact", IN_HANDLER, "--nocapture", "--test-threads=1"],
        IN_HANDLER,
        &[],
    );
    assert!(!child.timed_out(), "deadlocked:\n{}", child.output());
    assert!(child.status.success(), "{}", child.output());
    assert!(
        child.stdout.contains("handler misuse reported"),
        "{}",
        child.output()
    );
    let stderr = &child.stderr;
    assert!(
        stderr.contains("leakcheck: heap misuse outside any check (invalid_free)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("\n    at 0x"),
        "addresses only in a handler:\n{stderr}"
    );
}
