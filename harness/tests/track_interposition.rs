//! The hooks are what every caller in the process gets: each symbol of the
//! malloc family and `pthread_create` is exported from the test executable
//! (what `nm -D` shows as `T malloc`), so the dynamic linker resolves
//! glibc's and every shared library's calls to it.

use std::ffi::{c_void, CStr};

/// What the dynamic linker resolves `name` to for the whole process.
fn resolved(name: &CStr) -> usize {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) as usize }
}

/// The module that holds `address`.
fn module_of(address: usize) -> String {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY: dladdr only reads the address and fills `info`.
    let found = unsafe { libc::dladdr(address as *const c_void, info.as_mut_ptr()) };
    assert_ne!(found, 0, "no module holds {address:#x}");
    // SAFETY: filled by dladdr above.
    let info = unsafe { info.assume_init() };
    // SAFETY: dladdr's file name is a NUL-terminated string.
    unsafe { CStr::from_ptr(info.dli_fname) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn the_malloc_family_and_pthread_create_resolve_to_the_executable() {
    let exe = std::env::current_exe().unwrap();
    let exe_name = exe.file_name().unwrap().to_string_lossy().into_owned();
    for name in [
        c"malloc",
        c"free",
        c"calloc",
        c"realloc",
        c"reallocarray",
        c"posix_memalign",
        c"aligned_alloc",
        c"memalign",
        c"valloc",
        c"pvalloc",
        c"pthread_create",
    ] {
        let address = resolved(name);
        assert_ne!(address, 0, "{name:?} does not resolve");
        let module = module_of(address);
        // The main program's dli_fname is its path as started (or empty on
        // some loaders); a library would be a libc.so path.
        assert!(
            module.is_empty() || module.ends_with(&exe_name),
            "{name:?} resolves into {module}, not the test executable {exe_name}"
        );
    }
}

#[test]
fn glibc_internal_callers_reach_the_hooks() {
    // strdup lives in libc.so and calls malloc through its PLT: the block
    // it returns must be known to the tracker.
    let report = leakcheck::check(|| {
        // SAFETY: strdup of a valid C string; leaked on purpose.
        let copy = unsafe { libc::strdup(c"through glibc".as_ptr()) };
        std::hint::black_box(copy);
    });
    assert_eq!(report.leaked_blocks(), 1, "{report}");
    assert_eq!(report.leaked_bytes(), 14, "{report}");
    assert_eq!(report.leaks()[0].allocator, "malloc");
}
