//! Decides whether this target gets the C allocation hooks.
//!
//! They need glibc (its `__libc_malloc` family) and ELF symbol interposition:
//! Linux with glibc. Elsewhere leakcheck still checks Rust allocations and
//! says at run time that C allocations are not tracked.
//! `LEAKCHECK_BUILD_PORTABLE=1` builds that portable variant on Linux too, so
//! its code is compiled and tested where CI runs.

fn main() {
    println!("cargo:rustc-check-cfg=cfg(leakcheck_interpose)");
    println!("cargo:rerun-if-env-changed=LEAKCHECK_BUILD_PORTABLE");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let portable = std::env::var_os("LEAKCHECK_BUILD_PORTABLE").is_some_and(|v| v == "1");
    if os == "linux" && env == "gnu" && !portable {
        println!("cargo:rustc-cfg=leakcheck_interpose");
    }
}
