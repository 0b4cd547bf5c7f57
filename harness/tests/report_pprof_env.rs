//! `LEAKCHECK_PPROF=1`: built with the `pprof` feature, a leaking test
//! writes `<report>.pb.gz` (its failing groups as a pprof heap profile)
//! beside its JSON report; built without it, nothing is written and the
//! report carries a `pprof_unavailable` warning saying to enable the
//! feature. (`cargo test --workspace` builds this with the feature, which
//! `cargo-leakcheck`'s tests turn on; `cargo test -p leakcheck` without.)

mod common;

use common::{is_child, read_json, run_child, ScratchDir};
use leakcheck::leak_checked;
use leakcheck_test_support::leak;
use std::hint::black_box;

#[leak_checked]
fn pprof_child() {
    if is_child("pprof_child") {
        leak(black_box(2), black_box(40));
        black_box(());
    }
}

#[test]
fn pprof_env_writes_a_profile_or_warns() {
    let reports = ScratchDir::new(module_path!());
    let child = run_child(
        "pprof_child",
        &[
            ("LEAKCHECK_REPORT_DIR", reports.as_str()),
            ("LEAKCHECK_PPROF", "1"),
        ],
    );
    child.assert_failed("pprof_child");
    let mut files: Vec<String> = std::fs::read_dir(reports.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let exe = std::env::current_exe().unwrap();
    let binary = exe.file_name().unwrap().to_str().unwrap();
    let json_name = format!("{binary}.pprof_child.json");
    let json = read_json(&reports.path().join(&json_name));
    assert_eq!(json["status"], "leaked");
    let warnings = json["warnings"].as_array().unwrap();
    if cfg!(feature = "pprof") {
        assert_eq!(files, [json_name, format!("{binary}.pprof_child.pb.gz")]);
        assert!(warnings.is_empty(), "{json}");
        let profile = std::fs::read(reports.path().join(&files[1])).unwrap();
        assert_profile(&profile);
    } else {
        assert_eq!(files, [json_name]);
        assert_eq!(warnings.len(), 1, "{json}");
        assert_eq!(warnings[0]["kind"], "pprof_unavailable");
        let message = warnings[0]["message"].as_str().unwrap();
        assert!(
            message.contains("built without its `pprof` feature"),
            "{message}"
        );
        assert!(message.contains(r#"features = ["pprof"]"#), "{message}");
    }
}

/// One sample: 2 blocks, 80 bytes, at the C function, labelled with the test.
#[cfg(feature = "pprof")]
fn assert_profile(bytes: &[u8]) {
    let p = leakcheck_profile::decode(bytes).unwrap();
    let s = |i: i64| p.string_table[i as usize].as_str();
    assert_eq!(p.sample.len(), 1);
    assert_eq!(p.sample[0].value, [2, 80, 2, 80]);
    let test = p.sample[0]
        .label
        .iter()
        .find(|l| s(l.key) == "test")
        .unwrap();
    assert_eq!(s(test.str), "pprof_child");
    let leaf = &p.location[p.sample[0].location_id[0] as usize - 1];
    let function = &p.function[leaf.line[0].function_id as usize - 1];
    assert_eq!(s(function.name), "fixture_leak");
    assert_eq!(
        leaf.line[0].line,
        i64::from(leakcheck_test_support::line_of("leak"))
    );
}

#[cfg(not(feature = "pprof"))]
fn assert_profile(_: &[u8]) {
    unreachable!("no profile without the feature")
}
