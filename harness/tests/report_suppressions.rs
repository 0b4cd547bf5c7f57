//! Suppressions in every form leakcheck reads: `suppress!` in code, the
//! attribute's `suppress = "…"`, a `LEAKCHECK_SUPPRESSIONS` file in
//! valgrind's format (as `--gen-suppressions=all` writes it) and in
//! LeakSanitizer's, `leakcheck.supp` in the crate directory, and the
//! suppression a report prints for each leak. A malformed file fails the
//! test with the file, the line and what was expected.

mod common;

use common::{is_child, read_json, run_child, ScratchDir};
use leakcheck::__private::{check_with, Options, Suppression};
use leakcheck::{leak_checked, Kind};
use leakcheck_test_support::{aligned_alloc, calloc, leak, memalign, valloc, LEAK_FN};
use std::hint::black_box;

// Everything `fixture_calloc` leaks in this binary is suppressed.
leakcheck::suppress!("leak:fixture_calloc");
const SUPPRESS_LINE: u32 = line!() - 1;

#[test]
fn in_code_suppressions_apply_to_every_check() {
    let report = leakcheck::check(|| calloc(black_box(2), black_box(24)).leak());
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.leaked_blocks(), 0, "{report}");
    let suppressed = report.kinds()[&Kind::Suppressed];
    assert_eq!((suppressed.blocks, suppressed.bytes), (1, 48), "{report}");
    assert_eq!(report.leaks()[0].kind, Kind::Suppressed);
    let by = report.leaks()[0].suppressed_by.as_deref().unwrap_or("");
    assert!(by.starts_with("leak:fixture_calloc ("), "{by}");
    let used = &report.suppressions_used()[0];
    assert_eq!(
        (used.name.as_str(), used.blocks, used.bytes),
        ("leak:fixture_calloc", 1, 48)
    );
    assert!(
        used.location
            .ends_with(&format!("{}:{SUPPRESS_LINE}", file!())),
        "{}",
        used.location
    );
    let text = report.to_string();
    assert!(text.contains("suppressions used:"), "{text}");
    assert!(
        text.contains("48 bytes in 1 block at fixture_calloc, by leak:fixture_calloc"),
        "{text}"
    );
}

#[test]
fn unsuppressed_leaks_still_fail_next_to_suppressed_ones() {
    let report = leakcheck::check(|| {
        calloc(black_box(1), black_box(16)).leak();
        leak(black_box(1), black_box(24));
    });
    assert!(!report.is_clean(), "{report}");
    assert_eq!(
        (report.leaked_blocks(), report.leaked_bytes()),
        (1, 24),
        "{report}"
    );
    assert_eq!(report.kinds()[&Kind::Suppressed].bytes, 16, "{report}");
}

/// The report's own suggestion, pasted back in, suppresses the leak it was
/// printed for.
#[test]
fn the_printed_suppression_matches_its_leak() {
    let report = leakcheck::check(|| leak(black_box(1), black_box(56)));
    let leak_group = &report.leaks()[0];
    let text = leak_group
        .suppression
        .clone()
        .expect("a suggested suppression");
    assert!(
        text.starts_with("{\n   <insert_a_suppression_name_here>\n   Memcheck:Leak\n"),
        "{text}"
    );
    assert!(
        text.contains("   match-leak-kinds: definite\n   fun:malloc\n"),
        "{text}"
    );
    assert!(text.contains(&format!("   fun:{LEAK_FN}\n")), "{text}");
    assert!(report.to_string().contains("suppress it with:"), "{report}");

    let pasted: &'static [Suppression] = Box::leak(Box::new([Suppression {
        text: Box::leak(text.into_boxed_str()),
        file: file!(),
        line: line!(),
    }]));
    let again = check_with(Options::new().suppress(pasted), || {
        leak(black_box(1), black_box(56))
    });
    assert!(again.is_clean(), "{again}");
    assert_eq!(again.kinds()[&Kind::Suppressed].blocks, 1, "{again}");
}

#[test]
fn leakcheck_supp_in_the_crate_directory_is_read() {
    let dir = ScratchDir::new("suppressions-crate-dir");
    std::fs::write(
        dir.path().join("leakcheck.supp"),
        "# next to Cargo.toml\nleak:fixture_aligned_alloc\n",
    )
    .unwrap();
    let dir_str: &'static str = Box::leak(dir.as_str().to_owned().into_boxed_str());
    let report = check_with(Options::new().crate_dir(dir_str), || {
        aligned_alloc(black_box(64), black_box(128)).leak()
    });
    assert!(report.is_clean(), "{report}");
    let used = &report.suppressions_used()[0];
    assert_eq!(used.location, format!("{dir_str}/leakcheck.supp:2"));

    // Without it, the same leak is not suppressed: it is definitely lost
    // (no stale copy of a freed address can make it reachable: the
    // quarantine keeps freed addresses out of use).
    let report = leakcheck::check(|| aligned_alloc(black_box(64), black_box(128)).leak());
    assert!(report.suppressions_used().is_empty(), "{report}");
    let kinds: Vec<(Kind, usize, usize)> = report
        .kinds()
        .iter()
        .map(|(kind, count)| (*kind, count.blocks, count.bytes))
        .collect();
    assert_eq!(kinds, [(Kind::DefinitelyLost, 1, 128)], "{report}");
}

// ---- the attribute, and files named by LEAKCHECK_SUPPRESSIONS (children) ----

#[leak_checked(suppress = "leak:fixture_valloc")]
fn attribute_child() {
    if is_child("attribute_child") {
        valloc(black_box(100)).leak();
        black_box(());
    }
}

#[test]
fn the_attributes_suppression_applies_to_its_test() {
    let reports = ScratchDir::new("suppressions-attribute");
    let child = run_child(
        "attribute_child",
        &[("LEAKCHECK_REPORT_DIR", reports.as_str())],
    );
    assert!(child.status.success(), "{}", child.output());
    let json = only_json(&reports);
    assert_eq!(json["status"], "clean", "{json}");
    assert_eq!(
        json["summary"]["kinds"]["suppressed"]["blocks"], 1,
        "{json}"
    );
    assert_eq!(
        json["suppressions_used"][0]["name"], "leak:fixture_valloc",
        "{json}"
    );
    assert_eq!(json["leaks"][0]["kind"], "suppressed", "{json}");
}

/// Leaks 2 blocks of 40 bytes through `fixture_leak`, and one through
/// `fixture_memalign`, when run as the child.
#[leak_checked]
fn file_child() {
    if is_child("file_child") {
        leak(black_box(2), black_box(40));
        memalign(black_box(32), black_box(96)).leak();
        black_box(());
    }
}

/// Blocks as `valgrind --gen-suppressions=all` prints them, trimmed with
/// `...` and wildcards (in `--release` the wrapper between the fixture and
/// the test is a tail call and leaves no frame), in a file with comments and
/// a block of another kind.
const VALGRIND_FILE: &str = "\
# suppressions for our C library
{
   fixture-leak
   Memcheck:Leak
   match-leak-kinds: definite
   fun:malloc
   fun:fixture_leak
   ...
   fun:*file_child*
}

{
   an-uninitialised-read
   Memcheck:Cond
   fun:fixture_memalign
}
{
   memalign-anywhere
   Memcheck:Leak
   fun:memalign
   ...
   fun:*fixture_memalign*
}
";

#[test]
fn a_valgrind_suppressions_file_applies() {
    let dir = ScratchDir::new("suppressions-valgrind");
    let (_, child) = with_suppressions(&dir, "valgrind.supp", VALGRIND_FILE, "file_child");
    assert!(child.status.success(), "{}", child.output());
    let json = only_json(&dir);
    assert_eq!(json["status"], "clean", "{json}");
    let suppressed = &json["summary"]["kinds"]["suppressed"];
    assert_eq!(
        (suppressed["blocks"].as_u64(), suppressed["bytes"].as_u64()),
        (Some(3), Some(176))
    );
    let used: Vec<&str> = json["suppressions_used"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(used.len(), 2, "{json}");
    assert!(
        used.contains(&"fixture-leak") && used.contains(&"memalign-anywhere"),
        "{json}"
    );
}

#[test]
fn match_leak_kinds_limits_what_a_block_suppresses() {
    let dir = ScratchDir::new("suppressions-kinds");
    let text = "{\n   only-reachable\n   Memcheck:Leak\n   match-leak-kinds: reachable\n   fun:malloc\n   fun:fixture_leak\n}\n";
    let (_, child) = with_suppressions(&dir, "reachable-only.supp", text, "file_child");
    child.assert_failed("file_child");
    assert!(
        child
            .stderr
            .contains("80 bytes in 2 blocks are definitely lost, C malloc"),
        "{}",
        child.output()
    );
}

#[test]
fn a_leaksanitizer_file_matches_function_file_or_module() {
    let dir = ScratchDir::new("suppressions-lsan");
    // One pattern by source file, one by function.
    let text = "# LSan\nleak:fixtures.c\nleak:^fixture_memalign$\n";
    let (_, child) = with_suppressions(&dir, "lsan.supp", text, "file_child");
    assert!(child.status.success(), "{}", child.output());
    let json = only_json(&dir);
    // The file pattern comes first and matches every fixture.
    assert_eq!(
        json["suppressions_used"][0]["name"], "leak:fixtures.c",
        "{json}"
    );
    assert_eq!(json["suppressions_used"][0]["blocks"], 3, "{json}");
}

#[test]
fn a_malformed_file_fails_the_test_with_file_line_and_expectation() {
    let dir = ScratchDir::new("suppressions-malformed");
    let text = "{\n   name\n   Memcheck:Leak\n   match-leak-kinds: definit\n   fun:malloc\n}\n";
    let (file, child) = with_suppressions(&dir, "broken.supp", text, "attribute_child");
    child.assert_failed("attribute_child");
    let expected = format!("{}:4: ", file.display());
    assert!(child.stderr.contains(&expected), "{}", child.output());
    assert!(
        child.stderr.contains("unknown leak kind `definit`"),
        "{}",
        child.output()
    );
    assert!(
        child.stderr.contains("could not be checked reliably"),
        "{}",
        child.output()
    );

    // A file that does not exist is as much an error.
    let missing = dir.path().join("missing.supp");
    let child = run_child(
        "attribute_child",
        &[("LEAKCHECK_SUPPRESSIONS", missing.to_str().unwrap())],
    );
    child.assert_failed("attribute_child");
    assert!(
        child.stderr.contains("cannot read the suppressions file"),
        "{}",
        child.output()
    );
}

/// Writes `text` to `dir/name` and runs the child test `test` with it as
/// `LEAKCHECK_SUPPRESSIONS`, its JSON report going to `dir`.
fn with_suppressions(
    dir: &ScratchDir,
    name: &str,
    text: &str,
    test: &str,
) -> (std::path::PathBuf, common::Child) {
    let file = dir.path().join(name);
    std::fs::write(&file, text).unwrap();
    let child = run_child(
        test,
        &[
            ("LEAKCHECK_SUPPRESSIONS", file.to_str().unwrap()),
            ("LEAKCHECK_REPORT_DIR", dir.as_str()),
        ],
    );
    (file, child)
}

fn only_json(dir: &ScratchDir) -> serde_json::Value {
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    read_json(&files[0])
}
