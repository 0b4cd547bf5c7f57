//! Heap misuse: undefined behaviour under plain glibc (which aborts the
//! process), defined only where leakcheck's `free` catches and reports it.

use std::ffi::c_void;

use crate::c_heap::fixture_free;

extern "C" {
    fn fixture_double_free();
    fn fixture_invalid_free();
}

/// Mallocs 32 bytes in C and frees them twice.
///
/// # Safety
///
/// The process's `free` must be leakcheck's, with checking on, so that the
/// second free is reported and not passed to glibc. Otherwise this is a
/// double free: glibc aborts the process, or worse.
pub unsafe fn double_free() {
    // SAFETY: the caller guarantees the second free never reaches glibc.
    unsafe { fixture_double_free() }
}

/// Mallocs 32 bytes in C, frees a pointer 8 bytes into the block, then frees
/// the block.
///
/// # Safety
///
/// As for [`double_free`]: the interior `free` must be caught, not passed to
/// glibc.
pub unsafe fn invalid_free() {
    // SAFETY: the caller guarantees the interior free never reaches glibc.
    unsafe { fixture_invalid_free() }
}

/// Passes `ptr` to C `free` from C code — for freeing a Rust allocation
/// through the wrong family.
///
/// # Safety
///
/// `ptr` must be NULL or a live malloc block — or leakcheck's `free` must be
/// in place, with checking on, to catch and report any other pointer.
pub unsafe fn c_free(ptr: *mut c_void) {
    // SAFETY: the caller guarantees `ptr` is freeable or the free is caught.
    unsafe { fixture_free(ptr) }
}
