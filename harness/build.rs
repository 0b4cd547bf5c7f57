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
        "cargo:warning=leakcheck is built at opt-level 0, where checks run about twice as slow; \
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

/// At `opt-level = 0`, builds `src/stacks/walk_core.rs` (the stack
/// walker's hot loop) as an object of its own at `opt-level = 3`, with the
/// same compiler and target, and links it: unoptimised, that loop is most of
/// what a check costs (see `walk_core.rs`). `LEAKCHECK_PREBUILT_WALK=1`
/// builds it at every opt-level, `0` never.
fn prebuilt_walk(interpose: bool) {
    println!("cargo:rustc-check-cfg=cfg(leakcheck_prebuilt_walk)");
    println!("cargo:rerun-if-env-changed=LEAKCHECK_PREBUILT_WALK");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/stacks/walk_core.rs");
    println!("cargo:rerun-if-changed=src/stacks/walk_object.rs");
    println!("cargo:rerun-if-changed=src/stacks/stack_hash.rs");
    println!("cargo:rerun-if-changed=src/stacks/capture_core.rs");
    println!("cargo:rerun-if-changed=src/stacks/cfi.rs");
    println!("cargo:rerun-if-changed=src/stacks/stack_index.rs");
    println!("cargo:rerun-if-changed=src/sys/bytes.rs");
    println!("cargo:rerun-if-changed=src/track/shard_core.rs");
    println!("cargo:rerun-if-changed=src/track/quarantine_core.rs");
    let wanted = match std::env::var("LEAKCHECK_PREBUILT_WALK").as_deref() {
        Err(_) => std::env::var("OPT_LEVEL").as_deref() == Ok("0"),
        Ok("1") => true,
        Ok("0") => false,
        Ok(other) => panic!("LEAKCHECK_PREBUILT_WALK={other:?}: expected 0 or 1 (or unset)"),
    };
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if !wanted || !interpose || arch != "x86_64" {
        return;
    }
    match build_walk_object() {
        Ok(()) => println!("cargo:rustc-cfg=leakcheck_prebuilt_walk"),
        Err(why) => println!(
            "cargo:warning=leakcheck: could not build its stack walker optimised ({why}); \
             it runs unoptimised (LEAKCHECK_PREBUILT_WALK=0 hides this)"
        ),
    }
}

/// How the walker's object is compiled: optimised, without the checks of a
/// debug build, unwindable (leakcheck's own walker unwinds through it), and
/// with line tables for profilers and debuggers.
const WALK_OBJECT_CODEGEN: &[&str] = &[
    "-Copt-level=3",
    "-Ccodegen-units=1",
    "-Cpanic=abort",
    "-Cdebug-assertions=off",
    "-Coverflow-checks=off",
    "-Cforce-unwind-tables=yes",
    "-Cmetadata=leakcheck_walk_core",
    "-Cdebuginfo=line-tables-only",
];

fn build_walk_object() -> Result<(), String> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let out = std::path::PathBuf::from(var("OUT_DIR")?);
    let source =
        std::path::Path::new(&var("CARGO_MANIFEST_DIR")?).join("src/stacks/walk_object.rs");
    let object = out.join("leakcheck_walk_core.o");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let mut emit = std::ffi::OsString::from("obj=");
    emit.push(&object);
    let output = std::process::Command::new(&rustc)
        .args([
            "--crate-name=leakcheck_walk_core",
            "--crate-type=rlib",
            "--edition=2021",
        ])
        .args(["--target", &var("TARGET")?, "--cap-lints=allow"])
        .args(WALK_OBJECT_CODEGEN)
        .arg("--emit")
        .arg(&emit)
        // rustc's temporary files go to the output directory, by default
        // the working directory: the package's sources, which may be
        // read-only (vendored, a Nix store).
        .arg("--out-dir")
        .arg(&out)
        .current_dir(&out)
        .arg(&source)
        .output()
        .map_err(|e| format!("running {rustc}: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("{rustc} failed: {}", stderr.trim()));
    }
    cc::Build::new()
        .object(&object)
        .try_compile("leakcheck_walk_core")
        .map_err(|e| format!("archiving {}: {e}", object.display()))
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
    let interpose = os == "linux" && env == "gnu" && arch_ok && !portable;
    if interpose {
        println!("cargo:rustc-cfg=leakcheck_interpose");
    }
    prebuilt_walk(interpose);
    // `sys::relaxed` spells relaxed atomics as one instruction only where
    // the atomics' own methods are not optimised into one.
    println!("cargo:rustc-check-cfg=cfg(leakcheck_unoptimized)");
    if std::env::var("OPT_LEVEL").as_deref() == Ok("0") {
        println!("cargo:rustc-cfg=leakcheck_unoptimized");
    }
}
