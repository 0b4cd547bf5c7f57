//! Heap misuse: undefined behaviour under plain glibc (which aborts the
//! process), defined only where leakcheck's `free` catches and reports it.

use std::ffi::c_void;

use crate::c_heap::fixture_free;

extern "C" {
    fn fixture_double_free();
    fn fixture_invalid_free();
    fn fixture_free_stack_address();
    fn fixture_free_static_address();
    fn fixture_overrun_strcpy(release: i32);
    fn fixture_write_after_free();
    fn fixture_thread_double_free() -> i32;
    fn fixture_usable_size(size: usize) -> usize;
}

/// Frees the address of a C local array (marker `free_stack_address`).
///
/// # Safety
///
/// As for [`double_free`]: the free must be caught, not passed to glibc.
pub unsafe fn free_stack_address() {
    // SAFETY: the caller guarantees the free never reaches glibc.
    unsafe { fixture_free_stack_address() }
}

/// Frees the address of a C global (marker `free_static_address`).
///
/// # Safety
///
/// As for [`double_free`].
pub unsafe fn free_static_address() {
    // SAFETY: the caller guarantees the free never reaches glibc.
    unsafe { fixture_free_static_address() }
}

/// Mallocs 5 bytes and `strcpy`s `"hello"` (6 bytes) into them
/// (`overrun_strcpy_alloc`); frees the block if `release`
/// (`overrun_strcpy`), else leaks it.
///
/// # Safety
///
/// A heap overrun: only where the allocation has room after it (leakcheck's
/// guard bytes inside a check; glibc's chunk slack otherwise, which 5 bytes
/// always have).
pub unsafe fn overrun_strcpy(release: bool) {
    // SAFETY: the caller guarantees the byte past the block is writable.
    unsafe { fixture_overrun_strcpy(i32::from(release)) }
}

/// Mallocs 32 bytes (`write_after_free_alloc`), frees them
/// (`write_after_free_free`), then writes one 8 bytes in
/// (`write_after_free`).
///
/// # Safety
///
/// The freed block must still be mapped: leakcheck's quarantine holds it
/// inside a check (glibc's heap keeps it mapped too, but may be corrupted).
pub unsafe fn write_after_free() {
    // SAFETY: the caller guarantees the write lands in held memory.
    unsafe { fixture_write_after_free() }
}

/// Runs [`double_free`] on a C thread (`pthread_create`) and joins it.
///
/// # Safety
///
/// As for [`double_free`].
pub unsafe fn thread_double_free() {
    // SAFETY: the caller guarantees the second free never reaches glibc.
    let rc = unsafe { fixture_thread_double_free() };
    assert_eq!(rc, 0, "pthread_create or pthread_join failed");
}

/// `malloc_usable_size` of a fresh C block of `size` bytes, freed after.
pub fn usable_size(size: usize) -> usize {
    // SAFETY: the fixture mallocs, asks and frees its own block.
    unsafe { fixture_usable_size(size) }
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
