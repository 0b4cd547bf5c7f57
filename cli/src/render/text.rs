//! The summary as text (what `summary` prints), and one test's report as
//! text (the JUnit failure body).

use super::{blocks, frame, kind_words, origin_words, test_label, tests, TOP_FRAMES};
use crate::reports::{Report, Status};
use crate::summary::{selected, Site, Summary};
use std::fmt::Write;

/// The headline: how many tests, and how they ended.
pub fn headline(summary: &Summary) -> String {
    let c = summary.counts;
    format!(
        "{} checked: {} clean, {} leaked, {} error",
        tests(c.checked),
        c.clean,
        c.leaked,
        c.error
    )
}

/// Where the counts come from: files read, duplicates dropped.
pub fn provenance(summary: &Summary) -> String {
    let mut s = format!(
        "from {} report{}",
        summary.files,
        if summary.files == 1 { "" } else { "s" }
    );
    if summary.superseded > 0 {
        let _ = write!(
            s,
            "; {} earlier report{} of a test seen again not counted",
            summary.superseded,
            if summary.superseded == 1 { "" } else { "s" }
        );
    }
    s
}

/// `144 bytes in 3 blocks definitely lost, C malloc`.
pub fn site_title(site: &Site) -> String {
    group_title(
        site.bytes,
        site.blocks,
        &site.kind,
        &site.origin,
        &site.allocator,
    )
}

fn group_title(bytes: u64, n: u64, kind: &str, origin: &str, allocator: &str) -> String {
    format!(
        "{bytes} bytes in {} {}, {} {allocator}",
        blocks(n),
        kind_words(kind),
        origin_words(origin),
    )
}

/// The whole summary.
pub fn render(summary: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "leakcheck: {} ({})",
        headline(summary),
        provenance(summary)
    );
    if !summary.sites.is_empty() {
        let _ = writeln!(out, "\nleak sites, largest first:");
    }
    for site in &summary.sites {
        let _ = write!(out, "\n{}, in {}", site_title(site), tests(site.seen.len()));
        if !site.fails() {
            out.push_str(" (does not fail)");
        }
        out.push('\n');
        for f in site.stack.iter().take(TOP_FRAMES) {
            let _ = writeln!(out, "    at {}", frame(f));
        }
        if site.stack.len() > TOP_FRAMES {
            let _ = writeln!(out, "    ... {} more", site.stack.len() - TOP_FRAMES);
        }
        let names: Vec<String> = site
            .seen
            .iter()
            .map(|s| {
                let report = &summary.reports[s.report];
                format!("{} [{} B]", test_label(report), s.bytes)
            })
            .collect();
        let _ = writeln!(out, "  tests: {}", names.join(", "));
    }
    let erred: Vec<&Report> = summary
        .reports
        .iter()
        .filter(|r| r.status == Status::Error)
        .collect();
    if !erred.is_empty() {
        let _ = writeln!(
            out,
            "\nerrors (the verdict of these tests cannot be trusted):"
        );
        for report in erred {
            for e in &report.errors {
                let _ = writeln!(out, "    {}: {}: {}", test_label(report), e.kind, e.message);
            }
        }
    }
    // Warnings, once each, with how many tests carry them.
    let mut warnings: Vec<(&str, &str, usize)> = Vec::new();
    for w in summary.reports.iter().flat_map(|r| &r.warnings) {
        match warnings
            .iter_mut()
            .find(|(k, m, _)| *k == w.kind && *m == w.message)
        {
            Some(seen) => seen.2 += 1,
            None => warnings.push((&w.kind, &w.message, 1)),
        }
    }
    if !warnings.is_empty() {
        let _ = writeln!(out, "\nwarnings:");
        for (kind, message, n) in warnings {
            let _ = writeln!(out, "    {kind} (in {}): {message}", tests(n));
        }
    }
    out
}

/// One test's report as text: the verdict, each group shown, errors.
pub fn test_report(report: &Report, all: bool) -> String {
    let mut out = format!(
        "leakcheck: `{}` {}: {} ({} bytes) fail the test\n",
        report.test,
        report.status.word(),
        blocks(report.summary.leaked_blocks),
        report.summary.leaked_bytes,
    );
    for leak in selected(report, all) {
        out.push('\n');
        out.push_str(&group_title(
            leak.bytes,
            leak.blocks,
            &leak.kind,
            &leak.origin,
            &leak.allocator,
        ));
        if let Some(by) = &leak.suppressed_by {
            let _ = write!(out, " (suppressed by {by})");
        } else if !report.fails(&leak.kind) {
            out.push_str(" (does not fail the test)");
        }
        out.push('\n');
        for f in &leak.stack {
            let _ = writeln!(out, "    at {}", frame(f));
        }
    }
    for e in &report.errors {
        let _ = writeln!(out, "\nerror: {}: {}", e.kind, e.message);
    }
    for w in &report.warnings {
        let _ = writeln!(out, "\nwarning: {}: {}", w.kind, w.message);
    }
    let _ = writeln!(out, "\nJSON report: {}", report.path.display());
    out
}
