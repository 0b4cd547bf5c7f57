//! Compiles the C workloads the way a C library ships: optimised, without
//! frame pointers (unlike the test fixtures, which keep them).

use std::env;
use std::path::PathBuf;

fn main() {
    let root =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let source = root.join("c/workload.c");
    println!("cargo:rerun-if-changed={}", source.display());
    cc::Build::new()
        .file(source)
        .opt_level(2)
        .debug(true)
        .flag("-fomit-frame-pointer")
        // The allocation calls are the workload: the compiler must not pair
        // up and remove a malloc with its free.
        .flag("-fno-builtin")
        .std("c11")
        .warnings(true)
        .extra_warnings(true)
        .compile("leakcheck_compare_workload");
}
