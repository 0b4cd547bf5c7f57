//! Decides whether this target gets the C allocation hooks.
//!
//! They need glibc (its `__libc_malloc` family) and ELF symbol interposition:
//! Linux with glibc on x86_64 or aarch64. Elsewhere leakcheck still checks Rust allocations and
//! says at run time that C allocations are not tracked.
//! `LEAKCHECK_BUILD_PORTABLE=1` builds that portable variant on Linux too, so
//! its code is compiled and tested where CI runs.

fn main() {
    println!("cargo:rustc-check-cfg=cfg(leakcheck_interpose)");
    println!("cargo:rerun-if-env-changed=LEAKCHECK_BUILD_PORTABLE");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    // glibc's malloc aligns to 16 on these (the tracking allocator relies on
    // it); 32-bit targets align to 8.
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let arch_ok = arch == "x86_64" || arch == "aarch64";
    let portable = std::env::var_os("LEAKCHECK_BUILD_PORTABLE").is_some_and(|v| v == "1");
    if os == "linux" && env == "gnu" && arch_ok && !portable {
        println!("cargo:rustc-cfg=leakcheck_interpose");
    }
}
