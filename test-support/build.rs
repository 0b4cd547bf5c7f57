//! Compiles the C fixtures into a static library linked into every binary
//! that depends on this crate.

use std::env;
use std::path::PathBuf;

/// The C sources, relative to the crate root.
const SOURCES: &[&str] = &["c/fixtures.c"];

fn main() {
    let root =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let mut build = cc::Build::new();
    build
        // -O0 and -fno-builtin: no allocation may be elided, merged or
        // inlined, and every fixture keeps its own frame at its own line.
        .opt_level(0)
        .debug(true)
        .flag("-fno-builtin")
        .flag("-fno-omit-frame-pointer")
        .flag("-pthread")
        .std("c11")
        .warnings(true)
        .extra_warnings(true);
    for source in SOURCES {
        // An absolute path makes DWARF name the file exactly as
        // `FIXTURES_C` does, whatever directory the compiler runs in.
        let path = root.join(source);
        println!("cargo:rerun-if-changed={}", path.display());
        build.file(path);
    }
    build.compile("leakcheck_fixtures");
}
