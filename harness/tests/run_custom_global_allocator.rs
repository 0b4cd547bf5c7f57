//! A binary with its own `#[global_allocator]` and leakcheck's default
//! `global-allocator` feature off (`test-support/custom-allocator`, built
//! here by cargo as a user's crate would be): never a blind `clean`.
//!
//! - Its own allocator, not wrapped, that never calls `malloc`: every
//!   verdict is `error` with `rust_allocations_invisible` and the fix.
//! - `System`, not wrapped: the leak is caught, as a C `malloc` block, with
//!   a `rust_allocations_seen_as_c` warning.
//! - Its allocator wrapped in `leakcheck::Tracked`: a Rust leak as usual,
//!   a clean test clean, no error or warning.
//!
//! And leakcheck builds without warnings with the feature off.

mod common;

use common::{read_json, ScratchDir};
use std::path::{Path, PathBuf};
use std::process::Command;

fn report(dir: &Path, binary: &str, test: &str) -> serde_json::Value {
    let suffix = format!(".{test}.json");
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with(&format!("{binary}-")) && name.ends_with(&suffix)
        })
        .collect();
    assert_eq!(found.len(), 1, "{binary} {test}: {found:?}");
    read_json(&found[0])
}

fn kinds(list: &serde_json::Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect()
}

#[test]
fn a_binary_with_its_own_global_allocator_is_never_a_blind_clean() {
    let manifest = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../test-support/custom-allocator/Cargo.toml"
    );
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("custom-allocator");
    let reports = ScratchDir::new(module_path!());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .args(["test", "--manifest-path", manifest, "--no-fail-fast"])
        .args(["--", "--test-threads=1"])
        .env("CARGO_TARGET_DIR", &target)
        .env("LEAKCHECK_REPORT_DIR", reports.path())
        .env_remove("RUST_BACKTRACE");
    for var in [
        "LEAKCHECK",
        "LEAKCHECK_STACK_DEPTH",
        "LEAKCHECK_SUPPRESSIONS",
    ] {
        command.env_remove(var);
    }
    let out = command.output().expect("run cargo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let output = format!("{stdout}\n{stderr}");
    assert!(
        !out.status.success(),
        "the leaking tests must fail:\n{output}"
    );
    assert!(
        !stderr.contains("`leakcheck` (lib) generated"),
        "leakcheck warns without its default feature:\n{stderr}"
    );

    for test in ["leaks_a_box", "frees_everything"] {
        let json = report(reports.path(), "unwrapped_own_allocator", test);
        assert_eq!(json["status"], "error", "{json}");
        assert_eq!(
            kinds(&json["errors"]),
            ["rust_allocations_invisible"],
            "{json}"
        );
        let message = json["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("leakcheck::Tracked"), "{message}");
    }
    assert!(
        output.contains("Rust allocations are invisible to leakcheck"),
        "{output}"
    );

    let json = report(reports.path(), "unwrapped_system", "leaks_a_box");
    assert_eq!(json["status"], "leaked", "{json}");
    assert_eq!(
        kinds(&json["warnings"]),
        ["rust_allocations_seen_as_c"],
        "{json}"
    );
    assert_eq!(json["leaks"][0]["origin"], "c", "{json}");
    assert_eq!(json["leaks"][0]["allocator"], "malloc", "{json}");
    assert_eq!(json["summary"]["leaked_bytes"], 64, "{json}");

    let json = report(reports.path(), "wrapped", "leaks_a_box");
    assert_eq!(json["status"], "leaked", "{json}");
    assert_eq!(json["leaks"][0]["origin"], "rust", "{json}");
    assert_eq!(json["summary"]["leaked_bytes"], 64, "{json}");
    assert!(json["errors"].as_array().unwrap().is_empty(), "{json}");
    assert!(json["warnings"].as_array().unwrap().is_empty(), "{json}");
    let json = report(reports.path(), "wrapped", "frees_everything");
    assert_eq!(json["status"], "clean", "{json}");
}
