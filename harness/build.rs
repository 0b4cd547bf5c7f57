//! Decides whether this target gets the C allocation hooks, and says once
//! when leakcheck is being built unoptimised.
//!
//! The hooks need glibc (its `__libc_malloc` family) and ELF symbol interposition:
//! Linux with glibc on x86_64 or aarch64. Elsewhere leakcheck still checks Rust allocations and
//! says at run time that C allocations are not tracked.
//! `LEAKCHECK_BUILD_PORTABLE=1` builds that portable variant on Linux too, so
//! its code is compiled and tested where CI runs.
//!
//! A dependency gets the dev profile's `opt-level = 0`, and leakcheck's
//! allocation path (stack capture above all) then runs several times
//! slower; no crate can set its own opt-level. So when cargo builds this
//! crate at 0 the build says what to add. Cargo shows a dependency's build
//! warnings for path and workspace dependencies (on every build), and for
//! the others only with `-vv`. `LEAKCHECK_PROFILE_HINT=0` silences it.

/// The crates to optimise: leakcheck and what it unwinds and symbolises
/// with (`cargo leakcheck test` adds leakcheck's small helper crates and
/// `adler2`, `cli/src/run.rs`).
const OPTIMISE: &[&str] = &[
    "leakcheck",
    "backtrace",
    "gimli",
    "addr2line",
    "object",
    "miniz_oxide",
    "rustc-demangle",
];

fn profile_hint() {
    println!("cargo:rerun-if-env-changed=LEAKCHECK_PROFILE_HINT");
    let quiet = std::env::var_os("LEAKCHECK_PROFILE_HINT").is_some_and(|v| v == "0");
    if quiet || std::env::var("OPT_LEVEL").as_deref() != Ok("0") {
        return;
    }
    // Two lines: cargo prints a path dependency's build warnings again on
    // every build, not only when the script runs.
    println!(
        "cargo:warning=leakcheck is built at opt-level 0, where checks run 3-5 times slower; \
         run the tests with `cargo leakcheck test`, which builds it optimised, or add to \
         your workspace's Cargo.toml (LEAKCHECK_PROFILE_HINT=0 hides this):"
    );
    let (first, rest) = OPTIMISE.split_first().expect("a crate to name");
    println!(
        "cargo:warning=[profile.dev.package.{first}] opt-level = 3, on two lines, and the same \
         for {} (README, \"Performance\", has the lines to copy)",
        rest.join(", ")
    );
}

fn main() {
    profile_hint();
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
