//! Profiling mode (feature `profile`) at rate 1: the live heap's sites have
//! exact objects and bytes, the right functions, lines and labels, parse
//! back as pprof (and in `go tool pprof`, where Go is installed); the diff
//! of two snapshots has only what grew. Every test here sets rate 1 first.

mod common;

use leakcheck::{HeapProfile, HeapSite, Origin};
use leakcheck_test_support::{
    churn, file_of, go_tool_pprof, leak, line_of, rust_leak, LEAK_FN, RUST_LEAK_FN,
};
use std::hint::black_box;

fn rate_1() {
    leakcheck::set_profile_rate(1).unwrap();
    assert_eq!(leakcheck::profile_rate(), 1);
}

/// The site whose stack has a frame of `function` (by its path, as
/// symbolised) above a frame of `caller`.
fn site<'p>(profile: &'p HeapProfile, function: &str, caller: &str) -> Option<&'p HeapSite> {
    sites(profile, function, caller).first().copied()
}

/// The in-use objects and bytes of every such site: an optimised loop can
/// allocate from more than one call site (its first turn peeled off).
fn in_use(profile: &HeapProfile, function: &str, caller: &str) -> (i64, i64) {
    sites(profile, function, caller)
        .iter()
        .fold((0, 0), |(objects, bytes), s| {
            (objects + s.inuse_objects, bytes + s.inuse_bytes)
        })
}

/// Every site whose stack has a frame of `function` above one of `caller`.
fn sites<'p>(profile: &'p HeapProfile, function: &str, caller: &str) -> Vec<&'p HeapSite> {
    profile
        .sites()
        .iter()
        .filter(|s| {
            let names: Vec<&str> = s
                .stack
                .iter()
                .filter_map(|f| f.function.as_deref())
                .collect();
            let at = names.iter().position(|n| *n == function);
            at.is_some_and(|i| names[i..].iter().any(|n| n.ends_with(caller)))
        })
        .collect()
}

#[inline(never)]
fn leaks_c_for_the_profile() {
    leak(black_box(3), black_box(1000));
}

#[inline(never)]
fn leaks_rust_for_the_profile() {
    rust_leak(black_box(2), black_box(777));
}

#[test]
fn c_and_rust_sites_have_exact_bytes_functions_lines_and_labels() {
    rate_1();
    leaks_c_for_the_profile();
    leaks_rust_for_the_profile();
    let profile = HeapProfile::take();
    let text = profile.to_string();

    let c = site(&profile, LEAK_FN, "leaks_c_for_the_profile").unwrap_or_else(|| panic!("{text}"));
    assert_eq!((c.origin, c.allocator), (Origin::C, "malloc"), "{text}");
    assert_eq!((c.inuse_objects, c.inuse_bytes), (3, 3000), "{text}");
    assert_eq!((c.alloc_objects, c.alloc_bytes), (3, 3000), "{text}");
    // The C frame on top, with its file and line.
    common::assert_fixture_frame(&c.stack[0], LEAK_FN, "leak");

    let rust = site(&profile, RUST_LEAK_FN, "leaks_rust_for_the_profile")
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(rust.origin, Origin::Rust, "{text}");
    assert_eq!(
        in_use(&profile, RUST_LEAK_FN, "leaks_rust_for_the_profile"),
        (2, 1554),
        "{text}"
    );
    // The allocator's plumbing (alloc::, the shim) is cut from the top.
    let top = rust.stack[0].function.as_deref().unwrap_or("");
    assert_eq!(top, RUST_LEAK_FN, "{text}");
    assert!(
        text.contains(&format!(
            "at {LEAK_FN} ({}:{})",
            file_of("leak"),
            line_of("leak")
        )) || !cfg!(debug_assertions),
        "{text}"
    );

    // The pprof form, read back.
    let bytes = profile.to_pprof();
    let p = leakcheck_profile::decode(&bytes).unwrap();
    let s = |i: i64| p.string_table[i as usize].as_str();
    let types: Vec<_> = p
        .sample_type
        .iter()
        .map(|t| (s(t.r#type), s(t.unit)))
        .collect();
    assert_eq!(types, leakcheck_profile::HEAP_SAMPLE_TYPES);
    let period = p.period_type.as_ref().unwrap();
    assert_eq!(
        (s(period.r#type), s(period.unit), p.period),
        ("space", "bytes", 1)
    );
    let functions = |sample: &leakcheck_profile::proto::Sample| -> Vec<(String, i64)> {
        sample
            .location_id
            .iter()
            .flat_map(|&id| p.location[id as usize - 1].line.iter())
            .map(|l| {
                let f = &p.function[l.function_id as usize - 1];
                (s(f.name).to_owned(), l.line)
            })
            .collect()
    };
    let sample = p
        .sample
        .iter()
        .find(|x| {
            let f = functions(x);
            f[0].0 == LEAK_FN
                && f.iter()
                    .any(|(n, _)| n.ends_with("leaks_c_for_the_profile"))
        })
        .expect("the C site in the pprof profile");
    assert_eq!(sample.value, [3, 3000, 3, 3000]);
    assert_eq!(functions(sample)[0].1, i64::from(line_of("leak")));
    let labels: Vec<(&str, &str, i64)> = sample
        .label
        .iter()
        .map(|l| (s(l.key), s(l.str), l.num))
        .collect();
    assert_eq!(
        labels,
        [
            ("origin", "c", 0),
            ("allocator", "malloc", 0),
            ("bytes", "", 1000)
        ]
    );

    // Go's own reader, where Go is installed.
    let dir = common::ScratchDir::new(module_path!());
    let path = dir.path().join("heap.pb.gz");
    std::fs::write(&path, &bytes).unwrap();
    let Some(out) = go_tool_pprof(
        dir.path(),
        &[&"-top", &"-lines", &"-tagfocus=origin=c", &path],
    ) else {
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Type: inuse_space"), "{stdout}");
    let line = format!("{LEAK_FN} {}:{}", file_of("leak"), line_of("leak"));
    assert!(stdout.contains(&line), "{line} in\n{stdout}");
    assert!(
        !stdout.contains("rust_leak"),
        "-tagfocus=origin=c keeps C only:\n{stdout}"
    );
}

#[inline(never)]
fn leaks_before_the_first_snapshot() {
    leak(black_box(2), black_box(1111));
}

#[inline(never)]
fn leaks_between_the_snapshots() {
    leak(black_box(5), black_box(2222));
    rust_leak(black_box(1), black_box(3333));
}

#[inline(never)]
fn churns_between_the_snapshots() {
    churn(black_box(7), black_box(4444));
}

#[test]
fn the_diff_of_two_snapshots_has_only_what_grew() {
    rate_1();
    leaks_before_the_first_snapshot();
    let before = HeapProfile::take();
    leaks_between_the_snapshots();
    churns_between_the_snapshots();
    let after = HeapProfile::take();
    let grew = after.diff(&before);
    let text = grew.to_string();

    assert!(grew.sites().iter().all(|s| s.inuse_bytes > 0), "{text}");
    assert!(
        site(&grew, LEAK_FN, "leaks_before_the_first_snapshot").is_none(),
        "what did not grow is not in the diff:\n{text}"
    );
    let c = site(&grew, LEAK_FN, "leaks_between_the_snapshots").unwrap_or_else(|| panic!("{text}"));
    assert_eq!((c.inuse_objects, c.inuse_bytes), (5, 11110), "{text}");
    assert_eq!((c.alloc_objects, c.alloc_bytes), (5, 11110), "{text}");
    let rust = site(&grew, RUST_LEAK_FN, "leaks_between_the_snapshots")
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!((rust.inuse_objects, rust.inuse_bytes), (1, 3333), "{text}");
    assert!(
        site(&grew, "fixture_churn", "churns_between_the_snapshots").is_none(),
        "freed again: did not grow\n{text}"
    );
    // The delta has the churn too: allocated, not in use.
    let delta = after.delta(&before);
    let churn = site(&delta, "fixture_churn", "churns_between_the_snapshots")
        .unwrap_or_else(|| panic!("{delta}"));
    assert_eq!(
        (churn.inuse_objects, churn.alloc_objects, churn.alloc_bytes),
        (0, 7, 7 * 4444)
    );
    // And the earlier snapshot still has the first leak.
    let first = site(&before, LEAK_FN, "leaks_before_the_first_snapshot").expect("first leak");
    assert_eq!(first.inuse_bytes, 2222);
    let p = leakcheck_profile::decode(&grew.to_pprof()).unwrap();
    assert_eq!(p.sample.len(), grew.sites().len());
}

#[test]
fn a_rate_of_0_is_an_error_that_names_it() {
    let err = leakcheck::set_profile_rate(0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "leakcheck: 0 is not a sampling rate: give the mean number of bytes between samples, \
         from 1 (every block) to 1099511627776"
    );
    assert!(leakcheck::set_profile_rate(1 << 41).is_err());
}
