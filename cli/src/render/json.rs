//! The merged summary as JSON (schema `leakcheck-summary/v1`, documented in
//! the README).

use crate::reports::Frame;
use crate::summary::Summary;
use serde_json::{json, Value};

/// This form's schema.
pub const SUMMARY_SCHEMA: &str = "leakcheck-summary/v1";

fn frame(f: &Frame) -> Value {
    json!({
        "function": f.function,
        "file": f.file,
        "line": f.line,
        "module": f.module,
        "ip": f.ip,
    })
}

pub fn render(summary: &Summary) -> String {
    let c = summary.counts;
    let tests: Vec<Value> = summary
        .reports
        .iter()
        .map(|r| {
            json!({
                "test": r.test,
                "binary": r.binary,
                "status": r.status.word(),
                "leaked_blocks": r.summary.leaked_blocks,
                "leaked_bytes": r.summary.leaked_bytes,
                "errors": r.errors.iter().map(|e| json!({"kind": e.kind, "message": e.message})).collect::<Vec<_>>(),
                "report": r.path.display().to_string(),
            })
        })
        .collect();
    let sites: Vec<Value> = summary
        .sites
        .iter()
        .map(|s| {
            json!({
                "kind": s.kind,
                "origin": s.origin,
                "allocator": s.allocator,
                "blocks": s.blocks,
                "bytes": s.bytes,
                "fails": s.fails(),
                "stack": s.stack.iter().map(frame).collect::<Vec<_>>(),
                "tests": s.seen.iter().map(|seen| {
                    let r = &summary.reports[seen.report];
                    json!({
                        "test": r.test,
                        "binary": r.binary,
                        "blocks": seen.blocks,
                        "bytes": seen.bytes,
                        "fails": seen.fails,
                    })
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    let value = json!({
        "schema": SUMMARY_SCHEMA,
        "counts": {
            "checked": c.checked,
            "clean": c.clean,
            "leaked": c.leaked,
            "error": c.error,
        },
        "reports_read": summary.files,
        "reports_superseded": summary.superseded,
        "tests": tests,
        "sites": sites,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
}
