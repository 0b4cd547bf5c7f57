//! Strings that libc allocates on the caller's behalf (`strdup`, `asprintf`,
//! `getline`): the frame that calls `malloc` is glibc's, the one below it ours.

use std::ffi::{c_char, c_int, CStr, CString};

use crate::CBlock;

extern "C" {
    fn fixture_strdup(s: *const c_char) -> *mut c_char;
    fn fixture_asprintf(value: c_int) -> *mut c_char;
    fn fixture_getline(text: *const c_char) -> *mut c_char;
}

/// `strdup`s `s` in C and leaks the copy.
pub fn strdup_leak(s: &CStr) {
    strdup(s).leak();
}

/// `strdup`s `s` in C, copies the result into Rust and frees it.
pub fn strdup_clean(s: &CStr) -> CString {
    take_string(strdup(s))
}

fn strdup(s: &CStr) -> CBlock {
    // SAFETY: `s` is NUL-terminated and outlives the call; the copy is a new
    // malloc block, ours.
    unsafe { CBlock::from_fixture(fixture_strdup(s.as_ptr()).cast(), "fixture_strdup") }
}

/// Formats `value=<value>` with `asprintf` in C and leaks the string.
pub fn asprintf_leak(value: i32) {
    asprintf(value).leak();
}

/// Formats `value=<value>` with `asprintf` in C, copies it into Rust and
/// frees it.
pub fn asprintf_clean(value: i32) -> CString {
    take_string(asprintf(value))
}

fn asprintf(value: i32) -> CBlock {
    // SAFETY: `fixture_asprintf` takes a plain int and returns a new malloc
    // block, ours.
    unsafe { CBlock::from_fixture(fixture_asprintf(value).cast(), "fixture_asprintf") }
}

/// Reads the first line of `text` (not empty) with `getline` on a
/// `fmemopen` stream in C and leaks the line buffer. The stream itself is
/// closed: glibc's `FILE` allocations are freed.
pub fn getline_leak(text: &CStr) {
    getline(text).leak();
}

/// As [`getline_leak`], but copies the line (with its newline, if any) into
/// Rust and frees the buffer.
pub fn getline_clean(text: &CStr) -> CString {
    take_string(getline(text))
}

fn getline(text: &CStr) -> CBlock {
    // SAFETY: `text` is NUL-terminated and outlives the call, and the stream
    // only reads it; the line buffer is a new malloc block, ours.
    unsafe { CBlock::from_fixture(fixture_getline(text.as_ptr()).cast(), "fixture_getline") }
}

/// Copies a C string block into Rust, then frees the block.
fn take_string(block: CBlock) -> CString {
    // SAFETY: every fixture here returns a NUL-terminated string, live until
    // the `free` below.
    let copy = unsafe { CStr::from_ptr(block.as_ptr().cast()) }.to_owned();
    block.free();
    copy
}
