//! The failure message a person reads to the end: a C library's handle
//! forgotten with a hundred blocks hanging off it (the shape of a forgotten
//! rusqlite `Connection`) is one section, the definitely lost root, whose
//! header counts what hangs off it as valgrind does (`N (D direct, I
//! indirect) bytes`); the indirectly lost sites are listed only when asked
//! (`show`, `LEAKCHECK_SHOW`); at most `max_sections` sections (default 5),
//! the largest first, then one line counting the rest and naming the JSON
//! report, which has every site with `indirect_blocks`/`indirect_bytes`.

mod common;

use common::{
    failure_message, is_child, json_report_path, read_json, run_child, Child, ScratchDir,
};
use leakcheck::__private::{check_with, Options, Suppression};
use leakcheck::{leak_checked, Kind};
use leakcheck_test_support::{CSlots, SLOTS_NEW_FN, STORE_FN};
use serde_json::Value;
use std::hint::black_box;

/// Children hanging off the handle.
const CHILDREN: usize = 100;
/// Each child's size.
const CHILD_BYTES: usize = 64;
/// The C handle: one pointer slot per child.
const SLOTS_BYTES: usize = CHILDREN * 8;
/// The Rust wrapper's block: a `Box<CSlots>` (pointer and length), as
/// rusqlite's `Connection` holds its `sqlite3 *` in a small Rust block.
const WRAPPER_BYTES: usize = 16;
const INDIRECT_BYTES: usize = SLOTS_BYTES + CHILDREN * CHILD_BYTES;

/// Opens the "library handle" (C slots with a block in each) inside a Rust
/// wrapper, and forgets the wrapper: nothing points to it, and everything
/// else hangs off it.
#[inline(never)]
fn forget_wrapped_handle() {
    let mut handle = CSlots::new(CHILDREN);
    for i in 0..CHILDREN {
        handle.store(i, CHILD_BYTES);
    }
    black_box(Box::leak(Box::new(handle)));
}

#[leak_checked]
fn forgotten_handle_child() {
    if is_child("forgotten_handle_child") {
        forget_wrapped_handle();
        black_box(());
    }
}

#[leak_checked(show = "definite,indirect")]
fn forgotten_handle_shown_child() {
    if is_child("forgotten_handle_shown_child") {
        forget_wrapped_handle();
        black_box(());
    }
}

/// The section headers: lines that say what a site's blocks are.
fn headers<'a>(message: &[&'a str]) -> Vec<&'a str> {
    message
        .iter()
        .copied()
        .filter(|l| {
            !l.starts_with(' ')
                && l.contains(" bytes in ")
                && (l.contains(" lost, ") || l.contains(" reachable, "))
        })
        .collect()
}

/// The header of the folded root, as valgrind words it.
fn root_header() -> String {
    let total = WRAPPER_BYTES + INDIRECT_BYTES;
    assert_eq!((total, INDIRECT_BYTES), (7_216, 7_200));
    "7,216 (16 direct, 7,200 indirect) bytes in 1 block are definitely lost, Rust alloc".to_owned()
}

fn leaks(json: &Value) -> &Vec<Value> {
    json["leaks"].as_array().expect("leaks array")
}

fn group<'j>(json: &'j Value, kind: &str, function: &str) -> &'j Value {
    leaks(json)
        .iter()
        .find(|l| l["kind"] == kind && l["stack"][0]["function"] == function)
        .unwrap_or_else(|| panic!("no {kind} group at {function}: {json}"))
}

#[test]
fn a_forgotten_handle_is_one_section_with_what_hangs_off_it() {
    let reports = ScratchDir::new(module_path!());
    let child = run_child(
        "forgotten_handle_child",
        &[("LEAKCHECK_REPORT_DIR", reports.as_str())],
    );
    let output = child.output();
    child.assert_failed("forgotten_handle_child");
    let message = failure_message(&child);
    let text = message.join("\n");
    assert!(message.len() <= 60, "{} lines:\n{text}", message.len());
    assert_eq!(
        message[0],
        "leakcheck: `forgotten_handle_child` leaked 102 blocks (7,216 bytes) from 3 allocation sites",
        "{output}"
    );
    // The leak summary counts every kind, valgrind's way.
    assert!(
        text.contains("indirectly lost: 7,200 bytes in 101 blocks"),
        "{text}"
    );
    assert!(
        text.contains("definitely lost: 16 bytes in 1 block"),
        "{text}"
    );
    // One section: the root, with its direct and indirect bytes, its stack
    // from the allocation to the test, and one suppression.
    assert_eq!(headers(&message), [root_header().as_str()], "{text}");
    let at = message.iter().position(|l| *l == root_header()).unwrap();
    let frames: Vec<&str> = message[at + 1..]
        .iter()
        .map_while(|l| l.strip_prefix("    at "))
        .collect();
    assert!(
        frames
            .iter()
            .any(|f| f.starts_with(concat!(module_path!(), "::forget_wrapped_handle ("))),
        "{text}"
    );
    if cfg!(debug_assertions) {
        // The workspace's own file, relative to the workspace root.
        assert!(
            frames
                .iter()
                .any(|f| f.contains("(harness/tests/report_folded.rs:")),
            "{text}"
        );
    }
    assert_eq!(text.matches("suppress it with:").count(), 1, "{text}");
    assert!(text.contains("match-leak-kinds: definite\n"), "{text}");
    // The two indirectly lost sites are counted on the last line, which
    // names the JSON report.
    let json_path = json_report_path(&child.stderr).unwrap_or_else(|| panic!("{output}"));
    assert_eq!(
        *message.last().unwrap(),
        format!(
            "2 more allocation sites not shown: 2 indirectly lost (LEAKCHECK_SHOW=all lists \
             them); all are in the JSON report: {}",
            json_path.display()
        ),
        "{text}"
    );
    assert!(!text.contains(STORE_FN), "{text}");

    // The JSON has every site; the root counts what it holds.
    let json = read_json(&json_path);
    assert_eq!(leaks(&json).len(), 3, "{json}");
    let root = &leaks(&json)[0];
    assert_eq!(root["kind"], "definitely_lost", "{json}");
    assert_eq!(root["origin"], "rust", "{json}");
    assert_eq!(
        (&root["blocks"], &root["bytes"]),
        (&1.into(), &WRAPPER_BYTES.into())
    );
    assert_eq!(root["indirect_blocks"], CHILDREN + 1, "{json}");
    assert_eq!(root["indirect_bytes"], INDIRECT_BYTES, "{json}");
    let children = group(&json, "indirectly_lost", STORE_FN);
    assert_eq!(children["blocks"], CHILDREN, "{json}");
    assert_eq!(children["bytes"], CHILDREN * CHILD_BYTES, "{json}");
    let slots = group(&json, "indirectly_lost", SLOTS_NEW_FN);
    assert_eq!(slots["bytes"], SLOTS_BYTES, "{json}");
    for indirect in [children, slots] {
        assert!(indirect.get("indirect_blocks").is_none(), "{indirect}");
        assert!(indirect.get("indirect_bytes").is_none(), "{indirect}");
        // Absolute paths in the JSON.
        if let Some(file) = indirect["stack"][0]["file"].as_str() {
            assert!(file.starts_with('/'), "{file}");
        }
    }
}

#[test]
fn show_lists_the_indirectly_lost_sites_too() {
    let expect_shown = |child: &Child| {
        let message = failure_message(child);
        let text = message.join("\n");
        assert_eq!(
            headers(&message),
            [
                root_header().as_str(),
                "6,400 bytes in 100 blocks are indirectly lost, C malloc",
                "800 bytes in 1 block are indirectly lost, C malloc",
            ],
            "{text}"
        );
        assert_eq!(text.matches("suppress it with:").count(), 3, "{text}");
        assert!(text.contains("match-leak-kinds: indirect\n"), "{text}");
        assert!(!text.contains("more allocation site"), "{text}");
        assert!(
            message.last().unwrap().starts_with("JSON report: "),
            "{text}"
        );
    };
    let reports = ScratchDir::new(module_path!());
    // The attribute's `show`.
    let child = run_child(
        "forgotten_handle_shown_child",
        &[("LEAKCHECK_REPORT_DIR", reports.as_str())],
    );
    child.assert_failed("forgotten_handle_shown_child");
    expect_shown(&child);
    // The variable, on a test without `show`.
    let child = run_child(
        "forgotten_handle_child",
        &[
            ("LEAKCHECK_REPORT_DIR", reports.as_str()),
            ("LEAKCHECK_SHOW", "definite,indirect"),
        ],
    );
    child.assert_failed("forgotten_handle_child");
    expect_shown(&child);
}

#[test]
fn bad_show_and_max_sections_variables_are_errors_naming_them() {
    for (var, value, says) in [
        (
            "LEAKCHECK_SHOW",
            "definite,lost",
            "expected leak kinds in valgrind's words",
        ),
        ("LEAKCHECK_MAX_SECTIONS", "five", "expected a whole number"),
    ] {
        let child = run_child("forgotten_handle_child", &[(var, value)]);
        child.assert_failed("forgotten_handle_child");
        let error = format!("{var}=\"{value}\" is not valid: {says}");
        assert!(child.stderr.contains(&error), "{error}\n{}", child.output());
    }
}

/// Leaks one `N`-byte Rust block from a function of its own: a site per `N`.
/// Not zeroed, so that optimised builds allocate it with `alloc` too.
#[inline(never)]
fn leak_site<const N: usize>() {
    black_box(Box::leak(Box::new([1u8; N])));
}

/// Eight definitely lost sites, 16 to 128 bytes.
fn eight_sites() {
    leak_site::<16>();
    leak_site::<32>();
    leak_site::<48>();
    leak_site::<64>();
    leak_site::<80>();
    leak_site::<96>();
    leak_site::<112>();
    leak_site::<128>();
    black_box(());
}

#[leak_checked]
fn eight_sites_child() {
    if is_child("eight_sites_child") {
        eight_sites();
    }
}

#[leak_checked(max_sections = 2)]
fn eight_sites_two_sections_child() {
    if is_child("eight_sites_two_sections_child") {
        eight_sites();
    }
}

fn site_header(bytes: usize) -> String {
    format!("{bytes} bytes in 1 block are definitely lost, Rust alloc")
}

#[test]
fn more_roots_than_sections_show_the_largest_then_count_the_rest() {
    let reports = ScratchDir::new(module_path!());
    let child = run_child(
        "eight_sites_child",
        &[("LEAKCHECK_REPORT_DIR", reports.as_str())],
    );
    child.assert_failed("eight_sites_child");
    let message = failure_message(&child);
    let text = message.join("\n");
    let largest: Vec<String> = [128, 112, 96, 80, 64].map(site_header).into();
    assert_eq!(headers(&message), largest, "{text}");
    assert_eq!(text.matches("suppress it with:").count(), 5, "{text}");
    let json_path = json_report_path(&child.stderr).unwrap();
    assert_eq!(
        *message.last().unwrap(),
        format!(
            "3 more allocation sites not shown: 3 past the first 5 sections \
             (LEAKCHECK_MAX_SECTIONS); all are in the JSON report: {}",
            json_path.display()
        ),
        "{text}"
    );
    let json = read_json(&json_path);
    assert_eq!(leaks(&json).len(), 8, "{json}");
    for leak in leaks(&json) {
        assert!(leak["suppression"].is_string(), "{leak}");
        assert_eq!(leak["indirect_blocks"], 0, "{leak}");
        assert_eq!(leak["indirect_bytes"], 0, "{leak}");
    }

    // The attribute's `max_sections`.
    let child = run_child(
        "eight_sites_two_sections_child",
        &[("LEAKCHECK_REPORT_DIR", reports.as_str())],
    );
    child.assert_failed("eight_sites_two_sections_child");
    let message = failure_message(&child);
    assert_eq!(
        headers(&message),
        [128, 112].map(site_header),
        "{message:#?}"
    );
    assert!(
        message
            .last()
            .unwrap()
            .starts_with("6 more allocation sites not shown: 6 past the first 2 sections"),
        "{message:#?}"
    );
    // The variable overrides it: every site, and no count line.
    let child = run_child(
        "eight_sites_two_sections_child",
        &[
            ("LEAKCHECK_REPORT_DIR", reports.as_str()),
            ("LEAKCHECK_MAX_SECTIONS", "8"),
        ],
    );
    let message = failure_message(&child);
    assert_eq!(headers(&message).len(), 8, "{message:#?}");
    assert!(message.last().unwrap().starts_with("JSON report: "));
}

#[test]
fn check_counts_what_hangs_off_each_root() {
    let report = leakcheck::check(forget_wrapped_handle);
    let root = &report.leaks()[0];
    assert_eq!(root.kind, Kind::DefinitelyLost, "{report}");
    assert_eq!((root.blocks, root.bytes), (1, WRAPPER_BYTES), "{report}");
    assert_eq!(
        (root.indirect_blocks, root.indirect_bytes),
        (Some(CHILDREN + 1), Some(INDIRECT_BYTES)),
        "{report}"
    );
    let text = report.to_string();
    assert!(text.contains(&root_header()), "{text}");
    // No JSON file for `check`: the last line says where the JSON is.
    assert!(
        text.ends_with(
            "2 more allocation sites not shown: 2 indirectly lost (LEAKCHECK_SHOW=all lists \
             them); all are in the report's JSON (`Report::to_json`)"
        ),
        "{text}"
    );
    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["leaks"][0]["indirect_bytes"], INDIRECT_BYTES);
}

#[inline(never)]
fn wrapped_by_suppressed_code() -> CSlots {
    let mut handle = CSlots::new(4);
    for i in 0..4 {
        handle.store(i, CHILD_BYTES);
    }
    handle
}

#[test]
fn blocks_whose_root_is_suppressed_get_sections_of_their_own() {
    static SUPPRESS: [Suppression; 1] = [Suppression {
        text: "leak:forget_suppressed_wrapper",
        file: file!(),
        line: line!(),
    }];
    #[inline(never)]
    fn forget_suppressed_wrapper(handle: CSlots) {
        black_box(Box::leak(Box::new(handle)));
    }
    let report = check_with(Options::new().suppress(&SUPPRESS), || {
        forget_suppressed_wrapper(wrapped_by_suppressed_code());
        black_box(());
    });
    let text = report.to_string();
    assert_eq!(report.kinds()[&Kind::Suppressed].blocks, 1, "{text}");
    let indirect = &report.kinds()[&Kind::IndirectlyLost];
    assert_eq!((indirect.blocks, indirect.bytes), (5, 32 + 4 * CHILD_BYTES));
    // The root is suppressed: nothing holds the C blocks in the text, so
    // each of their sites is a section, as before folding (optimised, the
    // loop is unrolled: a site per child).
    let sites = report
        .leaks()
        .iter()
        .filter(|l| l.kind == Kind::IndirectlyLost)
        .count();
    let sections = text
        .lines()
        .filter(|l| l.ends_with(" are indirectly lost, C malloc"))
        .count();
    assert_eq!(sections, sites.min(5), "{text}");
    assert!(
        text.contains(
            "\n32 bytes in 1 block are indirectly lost, C malloc\n    at fixture_slots_new"
        ),
        "{text}"
    );
}

#[test]
fn show_none_and_zero_sections_leave_the_summary_and_the_count() {
    let report = check_with(Options::new().show("none"), forget_wrapped_handle);
    let text = report.to_string();
    assert!(!text.contains(" in 1 block are definitely lost"), "{text}");
    assert!(
        text.ends_with(
            "3 more allocation sites not shown: 1 definitely lost, 2 indirectly lost \
             (LEAKCHECK_SHOW=all lists them); all are in the report's JSON (`Report::to_json`)"
        ),
        "{text}"
    );
    let report = check_with(Options::new().max_sections(0), forget_wrapped_handle);
    let text = report.to_string();
    assert!(
        text.contains(
            "3 more allocation sites not shown: 2 indirectly lost (LEAKCHECK_SHOW=all lists \
             them), 1 past the first 0 sections (LEAKCHECK_MAX_SECTIONS)"
        ),
        "{text}"
    );
}

#[test]
fn suppressed_sites_are_listed_as_many_as_sections() {
    static SUPPRESS: [Suppression; 1] = [Suppression {
        text: "leak:report_folded::leak_site",
        file: file!(),
        line: line!(),
    }];
    let report = check_with(
        Options::new().suppress(&SUPPRESS).max_sections(3),
        eight_sites,
    );
    assert!(report.is_clean(), "{report}");
    let text = report.to_string();
    let listed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(", by leak:report_folded::leak_site"))
        .collect();
    assert_eq!(listed.len(), 3, "{text}");
    assert!(
        listed[0].starts_with("    128 bytes in 1 block at "),
        "{text}"
    );
    assert!(
        text.contains("\n    and 5 more suppressed sites, in the JSON report\n"),
        "{text}"
    );
    // The suppressions used still count all eight.
    let used = &report.suppressions_used()[0];
    assert_eq!((used.blocks, used.bytes), (8, 576), "{text}");
    assert_eq!(report.leaks().len(), 8);
}
