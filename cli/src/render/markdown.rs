//! The summary as GitHub-flavoured Markdown, for `$GITHUB_STEP_SUMMARY`.

use super::text::{headline, provenance, site_title};
use super::{frame, test_label, TOP_FRAMES};
use crate::reports::Status;
use crate::summary::Summary;
use std::fmt::Write;

/// Text inside a table cell: no `|`, no line breaks.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// Text inside backticks.
fn code(text: &str) -> String {
    format!("`{}`", text.replace('`', "'"))
}

pub fn render(summary: &Summary) -> String {
    let c = summary.counts;
    let mut out = String::new();
    let verdict = if summary.exit_code() == 0 {
        "no leaks"
    } else {
        "leaks or errors"
    };
    let _ = writeln!(out, "## leakcheck: {verdict}\n");
    let _ = writeln!(out, "{} ({}).\n", headline(summary), provenance(summary));
    let _ = writeln!(out, "| tests checked | clean | leaked | error |");
    let _ = writeln!(out, "| ---: | ---: | ---: | ---: |");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} |",
        c.checked, c.clean, c.leaked, c.error
    );
    if !summary.sites.is_empty() {
        let _ = writeln!(out, "\n### Leak sites, largest first\n");
        let _ = writeln!(
            out,
            "| bytes | blocks | kind | origin | allocator | allocated at | tests |"
        );
        let _ = writeln!(out, "| ---: | ---: | --- | --- | --- | --- | --- |");
        for site in &summary.sites {
            let top = site.stack.first().map(frame).unwrap_or_default();
            let tests: Vec<String> = site
                .seen
                .iter()
                .map(|s| code(&test_label(&summary.reports[s.report])))
                .collect();
            let mut kind = super::kind_words(&site.kind);
            if !site.fails() {
                kind.push_str(" (does not fail)");
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                site.bytes,
                site.blocks,
                cell(&kind),
                super::origin_words(&site.origin),
                cell(&code(&site.allocator)),
                cell(&code(&top)),
                cell(&tests.join(", "))
            );
        }
        for site in &summary.sites {
            let _ = writeln!(
                out,
                "\n<details><summary>{}</summary>\n\n```text",
                html(&site_title(site))
            );
            for f in site.stack.iter().take(TOP_FRAMES) {
                let _ = writeln!(out, "at {}", frame(f).replace("```", "'''"));
            }
            if site.stack.len() > TOP_FRAMES {
                let _ = writeln!(out, "... {} more", site.stack.len() - TOP_FRAMES);
            }
            let _ = writeln!(out, "```\n\n</details>");
        }
    }
    let erred: Vec<_> = summary
        .reports
        .iter()
        .filter(|r| r.status == Status::Error)
        .collect();
    if !erred.is_empty() {
        let _ = writeln!(out, "\n### Errors\n");
        for report in erred {
            for e in &report.errors {
                let _ = writeln!(
                    out,
                    "- {}: {}: {}",
                    code(&test_label(report)),
                    code(&e.kind),
                    e.message.replace('\n', " ")
                );
            }
        }
    }
    out
}

fn html(text: &str) -> String {
    super::junit::escape(text)
}
