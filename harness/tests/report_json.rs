//! `Report::to_json` is the documented `leakcheck/v1` JSON: it parses, and
//! its schema, status, summary, kinds, leaks (origin, allocator, blocks,
//! bytes, stack frames with function, file, line, module, ip), errors and
//! stats match the report, for a C leak, a Rust leak and a clean check; a
//! definitely lost group counts the indirectly lost blocks it holds
//! (`indirect_blocks`, `indirect_bytes`).

use leakcheck::{Report, SCHEMA};
use leakcheck_test_support::{churn, file_of, leak, line_of, list_new, LEAK_FN, LIST_NEW_FN};
use serde_json::Value;
use std::hint::black_box;

fn parse(report: &Report) -> Value {
    let json = report.to_json();
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("not JSON: {e}\n{json}"))
}

/// The fields every report has, whatever its status.
fn assert_common_fields(json: &Value, report: &Report) {
    assert_eq!(json["schema"], SCHEMA);
    assert_eq!(json["schema"], "leakcheck/v1");
    assert_eq!(json["test"], report.test());
    let exe = std::env::current_exe().unwrap();
    assert_eq!(json["binary"], exe.display().to_string());
    assert_eq!(json["errors"], Value::Array(vec![]), "{json}");
    // What fails the check, and when it finished (which of two reports of
    // a test is the later, for `cargo leakcheck summary`).
    assert_eq!(
        json["fail_on"],
        serde_json::json!(["definitely_lost", "indirectly_lost", "possibly_lost"])
    );
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let finished = json["unix_time_ms"].as_u64().expect("unix_time_ms");
    assert!(finished > 0 && finished <= now_ms, "{json}");
    let stats = &json["stats"];
    assert_eq!(stats["allocations"], report.stats().allocations);
    assert_eq!(stats["frees"], report.stats().frees);
    assert_eq!(stats["peak_live_bytes"], report.stats().peak_live_bytes);
    assert!(
        stats["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{stats}"
    );
}

#[test]
fn c_leak_json() {
    let report = leakcheck::check(|| {
        leak(black_box(3), black_box(48));
        black_box(());
    });
    let json = parse(&report);
    assert_common_fields(&json, &report);
    assert_eq!(json["status"], "leaked");
    assert_eq!(json["summary"]["leaked_blocks"], 3);
    assert_eq!(json["summary"]["leaked_bytes"], 144);
    assert_eq!(json["summary"]["kinds"]["definitely_lost"]["blocks"], 3);
    assert_eq!(json["summary"]["kinds"]["definitely_lost"]["bytes"], 144);

    let leaks = json["leaks"].as_array().expect("leaks is an array");
    assert_eq!(leaks.len(), 1, "{json}");
    let leak = &leaks[0];
    assert_eq!(leak["kind"], "definitely_lost");
    assert_eq!(leak["origin"], "c");
    assert_eq!(leak["allocator"], "malloc");
    assert_eq!(leak["blocks"], 3);
    assert_eq!(leak["bytes"], 144);
    // Nothing hangs off these blocks.
    assert_eq!(leak["indirect_blocks"], 0);
    assert_eq!(leak["indirect_bytes"], 0);
    let stack = leak["stack"].as_array().expect("stack is an array");
    assert_eq!(stack.len(), report.leaks()[0].stack.len());
    let top = &stack[0];
    assert_eq!(top["function"], LEAK_FN);
    if cfg!(debug_assertions) {
        assert_eq!(top["file"], file_of("leak"));
        assert_eq!(top["line"], line_of("leak"));
    }
    let exe = std::env::current_exe().unwrap();
    assert_eq!(top["module"], exe.display().to_string());
    let ip = top["ip"].as_str().expect("ip is a string");
    assert!(
        ip.starts_with("0x") && u64::from_str_radix(&ip[2..], 16).is_ok_and(|ip| ip > 0),
        "{ip}"
    );
    for frame in stack {
        for field in ["function", "file", "line", "module", "ip"] {
            assert!(
                frame.get(field).is_some(),
                "frame without `{field}`: {frame}"
            );
        }
    }
}

#[test]
fn rust_leak_json() {
    let report = leakcheck::check(|| {
        let leaked: &'static mut [u8; 40] = Box::leak(Box::new(black_box([9; 40])));
        black_box(leaked);
    });
    let json = parse(&report);
    assert_common_fields(&json, &report);
    assert_eq!(json["status"], "leaked");
    assert_eq!(json["summary"]["leaked_blocks"], 1);
    assert_eq!(json["summary"]["leaked_bytes"], 40);
    assert_eq!(json["leaks"][0]["origin"], "rust");
    assert_eq!(json["leaks"][0]["allocator"], "alloc");
    let function = json["leaks"][0]["stack"][0]["function"].as_str().unwrap();
    assert!(
        function.starts_with(concat!(module_path!(), "::rust_leak_json::")),
        "{function}"
    );
}

#[test]
fn clean_json() {
    let report = leakcheck::check(|| churn(black_box(10), black_box(32)));
    let json = parse(&report);
    assert_common_fields(&json, &report);
    assert_eq!(json["status"], "clean");
    assert_eq!(json["summary"]["leaked_blocks"], 0);
    assert_eq!(json["summary"]["leaked_bytes"], 0);
    assert_eq!(json["leaks"], Value::Array(vec![]));
    assert!(
        json["stats"]["allocations"]
            .as_u64()
            .is_some_and(|n| n >= 10),
        "{json}"
    );
}

#[test]
fn a_definitely_lost_group_counts_the_indirectly_lost_blocks_it_holds() {
    // A C list of five 32-byte nodes whose head nothing points to: the
    // head definitely lost, the four behind it indirectly lost.
    let report = leakcheck::check(|| {
        list_new(black_box(5)).leak();
        black_box(());
    });
    let json = parse(&report);
    assert_common_fields(&json, &report);
    assert_eq!(json["summary"]["leaked_blocks"], 5, "{json}");
    assert_eq!(
        json["summary"]["kinds"]["indirectly_lost"]["blocks"], 4,
        "{json}"
    );
    let leaks = json["leaks"].as_array().expect("leaks is an array");
    assert_eq!(leaks.len(), 2, "{json}");
    // The root first: it is the larger with what it holds.
    let (root, rest) = (&leaks[0], &leaks[1]);
    assert_eq!(root["kind"], "definitely_lost", "{json}");
    assert_eq!((&root["blocks"], &root["bytes"]), (&1.into(), &32.into()));
    assert_eq!(root["indirect_blocks"], 4, "{json}");
    assert_eq!(root["indirect_bytes"], 128, "{json}");
    // The indirectly lost group stays in `leaks`, without the fields.
    assert_eq!(rest["kind"], "indirectly_lost", "{json}");
    assert_eq!((&rest["blocks"], &rest["bytes"]), (&4.into(), &128.into()));
    assert!(rest.get("indirect_blocks").is_none(), "{json}");
    assert!(rest.get("indirect_bytes").is_none(), "{json}");
    for group in leaks {
        assert_eq!(group["stack"][0]["function"], LIST_NEW_FN, "{json}");
    }
    let text = report.to_string();
    assert!(
        text.contains(
            "160 (32 direct, 128 indirect) bytes in 1 block are definitely lost, C malloc"
        ),
        "{text}"
    );
}

#[test]
fn check_writes_no_file() {
    let report = leakcheck::check(|| leak(black_box(1), black_box(8)));
    assert_eq!(report.json_path(), None);
}
