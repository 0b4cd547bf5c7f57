//! JUnit XML: one `testsuite` per test binary, one `testcase` per test, a
//! `failure` (leaked) or `error` (the verdict cannot be trusted) carrying
//! the test's report as text.

use super::text::test_report;
use crate::reports::{Report, Status};
use crate::summary::Summary;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Escapes text for XML content and attribute values, dropping characters
/// XML 1.0 cannot carry.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

pub fn render(summary: &Summary, all: bool) -> String {
    let mut by_binary: BTreeMap<&str, Vec<&Report>> = BTreeMap::new();
    for report in &summary.reports {
        by_binary
            .entry(report.binary_short())
            .or_default()
            .push(report);
    }
    let c = summary.counts;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"leakcheck\" tests=\"{}\" failures=\"{}\" errors=\"{}\">",
        c.checked, c.leaked, c.error
    );
    for (binary, mut reports) in by_binary {
        reports.sort_by(|a, b| a.test.cmp(&b.test));
        let count = |status| reports.iter().filter(|r| r.status == status).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\">",
            escape(binary),
            reports.len(),
            count(Status::Leaked),
            count(Status::Error)
        );
        for report in reports {
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\"",
                escape(&report.test),
                escape(binary)
            );
            let message = match report.status {
                Status::Clean => {
                    out.push_str("/>\n");
                    continue;
                }
                Status::Leaked => format!(
                    "leaked {} blocks ({} bytes)",
                    report.summary.leaked_blocks, report.summary.leaked_bytes
                ),
                Status::Error => report
                    .errors
                    .iter()
                    .map(|e| e.kind.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            let element = if report.status == Status::Error {
                "error"
            } else {
                "failure"
            };
            let _ = writeln!(
                out,
                ">\n      <{element} message=\"{}\" type=\"leakcheck.{}\">{}</{element}>\n    </testcase>",
                escape(&message),
                report.status.word(),
                escape(&test_report(report, all))
            );
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
