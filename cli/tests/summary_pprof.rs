//! The pprof and flame-graph forms over real reports: `summary --pprof`
//! parsed back (prost, through `leakcheck_profile::decode`) and read by
//! `go tool pprof`; the per-test `<report>.pb.gz` of `LEAKCHECK_PPROF=1`;
//! `--flamegraph` well-formed and naming the C function.

mod support;

use leakcheck_profile::proto::Profile;
use support::{cli, run_fixture, stderr, stdout, suite, Suite};

fn shards() -> &'static Suite {
    suite("summary_pprof")
}

fn string(p: &Profile, i: i64) -> &str {
    &p.string_table[i as usize]
}

/// Each sample as (labels as `key=value`, values, leaf-first function names
/// and lines).
/// A sample as the tests compare it: labels, values, (function, line)s.
type Seen = (Vec<String>, Vec<i64>, Vec<(String, i64)>);

fn samples(p: &Profile) -> Vec<Seen> {
    p.sample
        .iter()
        .map(|s| {
            let labels = s
                .label
                .iter()
                .map(|l| match l.str {
                    0 => format!("{}={}", string(p, l.key), l.num),
                    v => format!("{}={}", string(p, l.key), string(p, v)),
                })
                .collect();
            let frames = s
                .location_id
                .iter()
                .flat_map(|&id| {
                    let location = &p.location[id as usize - 1];
                    assert_eq!(location.id, id);
                    // Every location has a mapping that holds its address.
                    let mapping = &p.mapping[location.mapping_id as usize - 1];
                    assert!(mapping.memory_start <= location.address);
                    assert!(location.address < mapping.memory_limit);
                    location.line.iter().map(|line| {
                        let f = &p.function[line.function_id as usize - 1];
                        (string(p, f.name).to_owned(), line.line)
                    })
                })
                .collect();
            (labels, s.value.clone(), frames)
        })
        .collect()
}

/// Runs `go ARGS` in `dir` (its home, caches and pprof's temporary files
/// there); `None`, said on stderr, where go cannot run and
/// `LEAKCHECK_REQUIRE_GO` (set by .ci/run, which installs it) is unset.
fn go(dir: &std::path::Path, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Option<std::process::Output> {
    let run = std::process::Command::new("go")
        .args(args.iter().map(|a| a.as_ref()))
        .current_dir(dir)
        .env("HOME", dir)
        .env("GOPATH", dir.join("gopath"))
        .env("GOCACHE", dir.join("gocache"))
        .env("GO111MODULE", "off")
        .env("PPROF_TMPDIR", dir)
        .output();
    match run {
        Ok(out) => Some(out),
        Err(e) if std::env::var_os("LEAKCHECK_REQUIRE_GO").is_none() => {
            eprintln!(
                "SKIPPED: `go` cannot run here ({e}); install Debian's golang-go (as .ci/run does) \
                 to check the profile with go tool pprof"
            );
            None
        }
        Err(e) => panic!("LEAKCHECK_REQUIRE_GO is set but go cannot run: {e}"),
    }
}

fn profile_of(path: &std::path::Path) -> Profile {
    leakcheck_profile::decode(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn pprof_parses_back_with_values_labels_functions_and_lines() {
    let s = shards();
    let path = s.scratch.join("leaks.pb.gz");
    let out = cli(&[&"summary", &s.shard1, &s.shard2, &"--pprof", &path]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let p = profile_of(&path);
    let types: Vec<_> = p
        .sample_type
        .iter()
        .map(|t| format!("{}/{}", string(&p, t.r#type), string(&p, t.unit)))
        .collect();
    assert_eq!(
        types,
        [
            "alloc_objects/count",
            "alloc_space/bytes",
            "inuse_objects/count",
            "inuse_space/bytes"
        ]
    );
    let period = p.period_type.as_ref().unwrap();
    assert_eq!(
        (string(&p, period.r#type), string(&p, period.unit), p.period),
        ("space", "bytes", 1)
    );
    let mut got = samples(&p);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let c_line = i64::from(leakcheck_test_support::line_of("leak"));
    let labels = |test: &str, origin: &str, allocator: &str, bytes: u64| {
        vec![
            format!("test={test}"),
            "kind=definitely_lost".to_owned(),
            format!("origin={origin}"),
            format!("allocator={allocator}"),
            format!("bytes={bytes}"),
        ]
    };
    // One sample per failing group and test (the clean rerun won).
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0].0, labels("a_leaks_c", "c", "malloc", 48));
    assert_eq!(got[0].1, [3, 144, 3, 144]);
    let names: Vec<_> = got[0].2.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        names,
        [
            "fixture_leak",
            "leakcheck_test_support::c_heap::leak",
            "fixture_a::a_leaks_c::{{closure}}"
        ]
    );
    assert_eq!(got[0].2[0].1, c_line);
    assert_eq!(got[1].0, labels("b_leaks_c", "c", "malloc", 48));
    assert_eq!(got[1].1, [2, 96, 2, 96]);
    assert_eq!(got[1].2[0], ("fixture_leak".to_owned(), c_line));
    assert_eq!(got[2].0, labels("b_leaks_rust", "rust", "alloc", 100));
    assert_eq!(got[2].1, [1, 100, 1, 100]);
    assert_eq!(got[2].2[0].0, "fixture_b::b_leaks_rust::{{closure}}");
    // The C function's file is the fixture source.
    let leaf = p
        .function
        .iter()
        .find(|f| string(&p, f.name) == "fixture_leak")
        .unwrap();
    assert!(string(&p, leaf.filename).ends_with("test-support/c/fixtures.c"));
}

/// `LEAKCHECK_PPROF=1` (with the `pprof` feature, which this package's
/// dev-dependency turns on) wrote `<report>.pb.gz` beside each leaking
/// test's report, none for a clean test, and removes the profile of a test
/// that leaked before and is clean now.
#[test]
fn per_test_profiles_beside_the_reports() {
    let s = shards();
    let files: Vec<String> = std::fs::read_dir(&s.shard1)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pb.gz"))
        .collect();
    let mut tests: Vec<&str> = files
        .iter()
        .map(|n| n.trim_end_matches(".pb.gz").rsplit('.').next().unwrap())
        .collect();
    tests.sort();
    assert_eq!(tests, ["a_leaks_c", "rerun"], "{files:?}");
    let one = files
        .iter()
        .find(|n| n.ends_with(".a_leaks_c.pb.gz"))
        .unwrap();
    let got = samples(&profile_of(&s.shard1.join(one)));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, [3, 144, 3, 144]);
    assert!(got[0].0.contains(&"test=a_leaks_c".to_owned()), "{got:?}");
    assert_eq!(got[0].2[0].0, "fixture_leak");

    let dir = s.scratch.join("stale");
    run_fixture(
        "fixture_a",
        &dir,
        &["--exact", "rerun"],
        &[("LEAKCHECK_PPROF", "1")],
    );
    let profiles = || {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".pb.gz")
            })
            .count()
    };
    assert_eq!(profiles(), 1);
    run_fixture(
        "fixture_a",
        &dir,
        &["--exact", "rerun"],
        &[
            ("LEAKCHECK_PPROF", "1"),
            ("LEAKCHECK_CLI_FIXTURE_FIXED", "1"),
        ],
    );
    assert_eq!(profiles(), 0);
}

/// `go tool pprof` reads the profile: `-top` shows the C function with the
/// bytes of both tests, `-traces` each test's label and bytes.
#[test]
fn go_tool_pprof_shows_the_c_function_and_the_tests() {
    let s = shards();
    let path = s.scratch.join("go.pb.gz");
    cli(&[&"summary", &s.shard1, &s.shard2, &"--pprof", &path]);
    let pprof = |args: &[&str]| {
        let mut all: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"tool", &"pprof"];
        all.extend(args.iter().map(|a| a as &dyn AsRef<std::ffi::OsStr>));
        all.push(&path);
        go(&s.scratch, &all)
    };
    let Some(top) = pprof(&["-top", "-sample_index=inuse_space"]) else {
        return;
    };
    let text = stdout(&top);
    assert!(top.status.success(), "{text}{}", stderr(&top));
    assert!(text.contains("Type: inuse_space"), "{text}");
    assert!(text.contains("of 340B total"), "{text}");
    let line = text
        .lines()
        .find(|l| l.trim_end().ends_with(" fixture_leak"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.trim_start().starts_with("240B "), "{line}");
    let traces = pprof(&["-traces"]).unwrap();
    let text = stdout(&traces);
    assert!(traces.status.success(), "{}", stderr(&traces));
    for (test, bytes) in [("a_leaks_c", "144B"), ("b_leaks_c", "96B")] {
        let trace = text
            .split("-----------+")
            .find(|t| t.contains(&format!("test:  {test}\n")))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            trace.contains(&format!("{bytes}   fixture_leak\n")),
            "{trace}"
        );
        assert!(trace.contains("kind:  definitely_lost"), "{trace}");
    }
}

/// The profile merges with a heap profile Go wrote (pprof merges only
/// profiles with the same sample and period types).
#[test]
fn it_merges_with_a_go_heap_profile() {
    let s = shards();
    let dir = s.scratch.join("go-heap");
    std::fs::create_dir_all(&dir).unwrap();
    let ours = dir.join("leaks.pb.gz");
    cli(&[&"summary", &s.shard1, &s.shard2, &"--pprof", &ours]);
    let program = dir.join("heap.go");
    std::fs::write(
        &program,
        r#"package main

import (
	"os"
	"runtime"
	"runtime/pprof"
)

var keep [][]byte

func main() {
	for i := 0; i < 100; i++ {
		keep = append(keep, make([]byte, 4096))
	}
	runtime.GC()
	f, _ := os.Create(os.Args[1])
	pprof.Lookup("heap").WriteTo(f, 0)
	f.Close()
}
"#,
    )
    .unwrap();
    let go_heap = dir.join("go.pb.gz");
    let Some(written) = go(&dir, &[&"run", &program, &go_heap]) else {
        return;
    };
    assert!(written.status.success(), "{}", stderr(&written));
    let merged = go(
        &dir,
        &[
            &"tool",
            &"pprof",
            &"-top",
            &"-sample_index=inuse_space",
            &"-unit=B",
            &"-focus=fixture_leak",
            &go_heap,
            &ours,
        ],
    )
    .unwrap();
    let text = stdout(&merged);
    assert!(merged.status.success(), "{text}{}", stderr(&merged));
    let line = text
        .lines()
        .find(|l| l.trim_end().ends_with(" fixture_leak"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.trim_start().starts_with("240B "), "{line}");
}

#[test]
fn flamegraph_is_well_formed_svg_naming_the_c_function_and_tests() {
    use quick_xml::events::Event;
    let s = shards();
    let path = s.scratch.join("leaks.svg");
    let out = cli(&[&"summary", &s.shard1, &s.shard2, &"--flamegraph", &path]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let svg = std::fs::read_to_string(&path).unwrap();
    let mut reader = quick_xml::Reader::from_str(&svg);
    let mut titles = Vec::new();
    let mut in_title = false;
    let mut depth = 0i32;
    loop {
        match reader
            .read_event()
            .unwrap_or_else(|e| panic!("not XML: {e}"))
        {
            Event::Eof => break,
            Event::Start(e) => {
                depth += 1;
                in_title = e.name().as_ref() == b"title";
            }
            Event::End(_) => {
                depth -= 1;
                in_title = false;
            }
            Event::Text(t) if in_title => titles.push(t.decode().unwrap().into_owned()),
            _ => {}
        }
    }
    assert_eq!(depth, 0, "unbalanced elements");
    let title = |prefix: &str| {
        assert!(
            titles.iter().any(|t| t.starts_with(prefix)),
            "no frame {prefix}: {titles:?}"
        )
    };
    // Roots are the tests; the C function is the leaf with both tests' bytes.
    title("a_leaks_c (144 bytes");
    title("b_leaks_c (96 bytes");
    title("fixture_leak (144 bytes");
    title("fixture_leak (96 bytes");
}
