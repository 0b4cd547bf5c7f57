//! `cargo leakcheck summary` over real reports of two test binaries in two
//! shards: the counts, the sites with their tests, the later report of a
//! test winning, exit statuses, and the Markdown, JUnit and JSON forms.

mod support;

use support::{c_frame, cli, stderr, stdout, suite, Suite};

fn shards() -> &'static Suite {
    suite("summary_text")
}

#[test]
fn counts_sites_and_tests_across_binaries_and_shards() {
    let s = shards();
    // Shard 2 first on the command line: its `rerun` report is read first
    // but finished later, so it wins anyway.
    let out = cli(&[&"summary", &s.shard2, &s.shard1]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(
        text.starts_with(
            "leakcheck: 7 tests checked: 4 clean, 3 leaked, 0 error (from 8 reports; 1 earlier \
             report of a test seen again not counted)\n"
        ),
        "{text}"
    );
    // One C site in both binaries, deduplicated by its stack above the
    // tests, largest first; then the Rust one.
    let c_site = format!(
        "\n240 bytes in 5 blocks definitely lost, C malloc, in 2 tests\n    at {}\n    at \
         leakcheck_test_support::c_heap::leak (test-support/src/c_heap.rs:",
        c_frame()
    );
    let c_at = text.find(&c_site).unwrap_or_else(|| panic!("{text}"));
    let rust_at = text
        .find("\n100 bytes in 1 block definitely lost, Rust alloc, in 1 test\n    at fixture_b::b_leaks_rust::{{closure}} (cli/tests/fixture_b.rs:")
        .unwrap_or_else(|| panic!("{text}"));
    assert!(c_at < rust_at, "{text}");
    assert!(
        text.contains("  tests: a_leaks_c (fixture_a) [144 B], b_leaks_c (fixture_b) [96 B]\n"),
        "{text}"
    );
    assert!(
        text.contains("  tests: b_leaks_rust (fixture_b) [100 B]\n"),
        "{text}"
    );
    // The fixed rerun (the later report) is clean; what does not fail is
    // not shown by default.
    assert!(!text.contains("rerun"), "{text}");
    assert!(!text.contains("16 bytes"), "{text}");
    assert!(!text.contains("still reachable"), "{text}");
}

#[test]
fn the_earlier_run_alone_counts_its_leak() {
    let s = shards();
    let out = cli(&[&"summary", &s.shard1]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.starts_with(
            "leakcheck: 4 tests checked: 2 clean, 2 leaked, 0 error (from 4 reports)\n"
        ),
        "{text}"
    );
    // The same library call leaking in two tests is one site.
    assert!(
        text.contains(&format!(
            "\n160 bytes in 4 blocks definitely lost, C malloc, in 2 tests\n    at {}\n",
            c_frame()
        )),
        "{text}"
    );
    assert!(
        text.contains("  tests: a_leaks_c (fixture_a) [144 B], rerun (fixture_a) [16 B]\n"),
        "{text}"
    );
}

#[test]
fn all_adds_what_does_not_fail() {
    let s = shards();
    let out = cli(&[&"summary", &"--all", &s.shard1, &s.shard2]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let reachable = format!(
        "\n64 bytes in 1 block still reachable, C malloc, in 1 test (does not fail)\n    at \
         fixture_cache_get (test-support/c/fixtures.c:{})\n",
        leakcheck_test_support::line_of("cache_get")
    );
    assert!(text.contains(&reachable), "{text}");
    assert!(
        text.contains("  tests: a_reachable (fixture_a) [64 B]\n"),
        "{text}"
    );
    // Still after everything that fails.
    assert!(
        text.find(&reachable) > text.find("100 bytes in 1 block"),
        "{text}"
    );
}

#[test]
fn clean_reports_exit_0() {
    let s = shards();
    let clean = |dir: &std::path::Path, test: &str| {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(&format!(".{test}.json")))
            .unwrap()
    };
    let out = cli(&[
        &"summary",
        &clean(&s.shard1, "a_clean"),
        &clean(&s.shard2, "b_clean"),
        &clean(&s.shard1, "a_reachable"),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert_eq!(
        text,
        "leakcheck: 3 tests checked: 3 clean, 0 leaked, 0 error (from 3 reports)\n"
    );
}

#[test]
fn unreadable_reports_and_bad_usage_exit_2_naming_the_file() {
    let s = shards();
    let dir = s.scratch.join("unknown-schema");
    std::fs::create_dir_all(&dir).unwrap();
    let future = dir.join("future.json");
    std::fs::write(&future, r#"{"schema": "leakcheck/v9", "test": "t"}"#).unwrap();
    let out = cli(&[&"summary", &s.shard1, &dir]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}: schema `leakcheck/v9` is not one this cargo-leakcheck reads (`leakcheck/v1`)",
            future.display()
        )),
        "{err}"
    );
    assert_eq!(stdout(&out), "");

    let broken = s.scratch.join("broken.json");
    std::fs::write(&broken, r#"{"schema": "leakcheck/v1", "test": 7}"#).unwrap();
    let err = stderr(&cli(&[&"summary", &broken]));
    assert!(
        err.contains(&format!(
            "{}: not a valid `leakcheck/v1` report",
            broken.display()
        )),
        "{err}"
    );

    let empty = s.scratch.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = cli(&[&"summary", &empty]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no leakcheck JSON reports found"),
        "{}",
        stderr(&out)
    );

    let out = cli(&[&"summary", &s.scratch.join("missing")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("missing: cannot read it"),
        "{}",
        stderr(&out)
    );

    let out = cli(&[&"summary", &"--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--no-such-flag"), "{}", stderr(&out));
}

/// A test whose verdict is an error counts as one and fails the run; JUnit
/// gives it an `error` element.
#[test]
fn error_reports_count_and_fail() {
    let s = shards();
    let dir = s.scratch.join("error");
    std::fs::create_dir_all(&dir).unwrap();
    let source = std::fs::read_dir(&s.shard2)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".b_clean.json"))
        .unwrap();
    let mut report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&source).unwrap()).unwrap();
    report["status"] = "error".into();
    report["errors"] = serde_json::json!([{
        "kind": "c_allocations_invisible",
        "message": "C allocations are invisible to leakcheck in this process"
    }]);
    std::fs::write(dir.join("b_clean.json"), report.to_string()).unwrap();
    let junit = s.scratch.join("error.xml");
    let out = cli(&[&"summary", &dir, &"--junit", &junit]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.starts_with("leakcheck: 1 test checked: 0 clean, 0 leaked, 1 error"),
        "{text}"
    );
    assert!(text.contains("\nerrors (the verdict of these tests cannot be trusted):\n    b_clean (fixture_b): c_allocations_invisible: C allocations are invisible"), "{text}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"<error message="c_allocations_invisible" type="leakcheck.error">"#),
        "{xml}"
    );
}

#[test]
fn markdown_for_the_step_summary() {
    let s = shards();
    let out = cli(&[&"summary", &"--markdown", &s.shard1, &s.shard2]);
    let md = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{md}");
    assert!(md.starts_with("## leakcheck: leaks or errors\n"), "{md}");
    assert!(md.contains("| tests checked | clean | leaked | error |\n| ---: | ---: | ---: | ---: |\n| 7 | 4 | 3 | 0 |\n"), "{md}");
    let row = format!(
        "| 240 | 5 | definitely lost | C | `malloc` | `{}` | `a_leaks_c (fixture_a)`, `b_leaks_c (fixture_b)` |\n",
        c_frame()
    );
    assert!(md.contains(&row), "{md}");
    assert!(md.contains("| 100 | 1 | definitely lost | Rust | `alloc` | `fixture_b::b_leaks_rust::{{closure}} (cli/tests/fixture_b.rs:"), "{md}");
    assert!(md.contains(&format!(
        "<details><summary>240 bytes in 5 blocks definitely lost, C malloc</summary>\n\n```text\nat {}\n",
        c_frame()
    )), "{md}");
}

/// The JUnit XML parses, has one testcase per test (in a testsuite per
/// binary), and a failure with the text report for each leaking one.
#[test]
fn junit_has_a_testcase_per_test_and_failures_with_the_report() {
    use quick_xml::events::Event;
    let s = shards();
    let path = s.scratch.join("junit.xml");
    let out = cli(&[&"summary", &s.shard1, &s.shard2, &"--junit", &path]);
    assert_eq!(out.status.code(), Some(1));
    let xml = std::fs::read_to_string(&path).unwrap();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut suites, mut cases, mut failures) = (Vec::new(), Vec::new(), Vec::new());
    let mut in_failure = None;
    let mut text = String::new();
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("{e}\n{xml}")) {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let attr = |name: &str| {
                    e.try_get_attribute(name).unwrap().map(|a| {
                        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .unwrap()
                            .into_owned()
                    })
                };
                match e.name().as_ref() {
                    b"testsuite" => suites.push((attr("name").unwrap(), attr("tests").unwrap())),
                    b"testcase" => cases.push(attr("name").unwrap()),
                    b"failure" => in_failure = Some(cases.last().unwrap().clone()),
                    _ => {}
                }
            }
            // quick-xml hands text and each entity reference separately.
            Event::Text(t) if in_failure.is_some() => text.push_str(&t.decode().unwrap()),
            Event::GeneralRef(r) if in_failure.is_some() => {
                text.push(match r.decode().unwrap().as_ref() {
                    "lt" => '<',
                    "gt" => '>',
                    "amp" => '&',
                    "quot" => '"',
                    "apos" => '\'',
                    other => panic!("unexpected entity {other}"),
                })
            }
            Event::End(e) if e.name().as_ref() == b"failure" => {
                failures.push((in_failure.take().unwrap(), std::mem::take(&mut text)));
            }
            _ => {}
        }
    }
    assert_eq!(
        suites,
        [
            ("fixture_a".to_owned(), "4".to_owned()),
            ("fixture_b".to_owned(), "3".to_owned())
        ]
    );
    cases.sort();
    assert_eq!(
        cases,
        [
            "a_clean",
            "a_leaks_c",
            "a_reachable",
            "b_clean",
            "b_leaks_c",
            "b_leaks_rust",
            "rerun"
        ]
    );
    let failed: Vec<&str> = failures.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(failed, ["a_leaks_c", "b_leaks_c", "b_leaks_rust"], "{xml}");
    let (_, a) = &failures[0];
    assert!(
        a.starts_with("leakcheck: `a_leaks_c` leaked: 3 blocks (144 bytes) fail the test\n"),
        "{a}"
    );
    assert!(
        a.contains(&format!(
            "144 bytes in 3 blocks definitely lost, C malloc\n    at {}\n",
            c_frame()
        )),
        "{a}"
    );
    assert!(
        a.contains("at fixture_a::a_leaks_c::{{closure}} (cli/tests/fixture_a.rs:"),
        "{a}"
    );
}

#[test]
fn json_summary_has_its_schema_counts_and_sites() {
    let s = shards();
    let path = s.scratch.join("summary.json");
    cli(&[&"summary", &s.shard1, &s.shard2, &"--json", &path]);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(v["schema"], "leakcheck-summary/v1");
    assert_eq!(
        v["counts"],
        serde_json::json!({"checked": 7, "clean": 4, "leaked": 3, "error": 0})
    );
    assert_eq!(v["reports_read"], 8);
    assert_eq!(v["reports_superseded"], 1);
    assert_eq!(v["tests"].as_array().unwrap().len(), 7);
    let site = &v["sites"][0];
    assert_eq!(
        (site["bytes"].as_u64(), site["blocks"].as_u64()),
        (Some(240), Some(5))
    );
    assert_eq!(site["kind"], "definitely_lost");
    assert_eq!(site["stack"][0]["function"], "fixture_leak");
    let tests: Vec<_> = site["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["test"].as_str().unwrap(), t["bytes"].as_u64().unwrap()))
        .collect();
    assert_eq!(tests, [("a_leaks_c", 144), ("b_leaks_c", 96)]);
}

/// Without paths: `$LEAKCHECK_REPORT_DIR`, else `<target dir>/leakcheck`
/// as `cargo metadata` reports it (here through `CARGO_TARGET_DIR`).
#[test]
fn the_default_dir_is_the_report_dir_or_the_target_dirs() {
    let s = shards();
    let summary = |env: &[(&str, &std::path::Path)]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cargo-leakcheck"));
        command
            .args(["leakcheck", "summary"])
            .current_dir(support::workspace())
            .env("CARGO", env!("CARGO"))
            .env_remove("LEAKCHECK_REPORT_DIR")
            .env_remove("CARGO_TARGET_DIR");
        for (k, v) in env {
            command.env(k, v);
        }
        stdout(&command.output().unwrap())
    };
    let shard1 = "leakcheck: 4 tests checked: 2 clean, 2 leaked, 0 error (from 4 reports)\n";
    let text = summary(&[("LEAKCHECK_REPORT_DIR", &s.shard1)]);
    assert!(text.starts_with(shard1), "{text}");
    let target = s.scratch.join("target");
    let reports = target.join("leakcheck");
    std::fs::create_dir_all(&reports).unwrap();
    for entry in std::fs::read_dir(&s.shard2).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, reports.join(path.file_name().unwrap())).unwrap();
    }
    let text = summary(&[("CARGO_TARGET_DIR", &target)]);
    assert!(
        text.starts_with(
            "leakcheck: 4 tests checked: 2 clean, 2 leaked, 0 error (from 4 reports)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("tests: b_leaks_c (fixture_b) [96 B]"),
        "{text}"
    );
}

/// `cargo leakcheck summary` runs `cargo-leakcheck leakcheck summary`;
/// `cargo-leakcheck summary` is the same command.
#[test]
fn both_argument_shapes_and_help() {
    let s = shards();
    let run = |args: &[&dyn AsRef<std::ffi::OsStr>]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cargo-leakcheck"))
            .args(args.iter().map(|a| a.as_ref()))
            .current_dir(support::workspace())
            .output()
            .unwrap()
    };
    let direct = run(&[&"summary", &s.shard1]);
    let as_cargo = run(&[&"leakcheck", &"summary", &s.shard1]);
    assert_eq!(direct.status.code(), Some(1));
    assert_eq!(stdout(&direct), stdout(&as_cargo));
    assert!(stdout(&direct).starts_with("leakcheck: 4 tests checked"));
    let help = run(&[&"leakcheck", &"--help"]);
    assert_eq!(help.status.code(), Some(0));
    let text = stdout(&help);
    for command in ["summary", "test", "nextest"] {
        assert!(text.contains(command), "{text}");
    }
}
