//! Compiles the example C library.

fn main() {
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/c/kvstore.c");
    println!("cargo:rerun-if-changed={source}");
    cc::Build::new()
        .file(source)
        .opt_level(0)
        .debug(true)
        .warnings(true)
        .compile("kvstore");
}
