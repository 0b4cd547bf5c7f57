//! The summary as GitHub-flavoured Markdown, for `$GITHUB_STEP_SUMMARY`.

use super::text::{headline, provenance, site_title};
use super::{frame, test_label, TOP_FRAMES};
use crate::reports::Status;
use crate::summary::Summary;
use std::fmt::Write;

/// Sites shown: GitHub keeps at most 1 MiB of a step summary, and a suite
/// with thousands of sites is read in the JSON, JUnit or pprof forms.
const MAX_SITES: usize = 100;

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
        for site in summary.sites.iter().take(MAX_SITES) {
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
        if summary.sites.len() > MAX_SITES {
            let _ = writeln!(
                out,
                "\n{} more sites, smaller; the JSON, JUnit and pprof forms have them all.",
                summary.sites.len() - MAX_SITES
            );
        }
        for site in summary.sites.iter().take(MAX_SITES) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::{Report, Reports};

    fn report(i: usize) -> Report {
        serde_json::from_value(serde_json::json!({
            "test": format!("t{i}"),
            "binary": "/t/deps/b-0123456789abcdef",
            "status": "leaked",
            "summary": {"leaked_blocks": 1, "leaked_bytes": 1000 - i},
            "leaks": [{
                "kind": "definitely_lost", "origin": "c", "allocator": "malloc",
                "blocks": 1, "bytes": 1000 - i,
                "stack": [{"function": format!("f{i}"), "file": null, "line": null,
                           "module": null, "ip": "0x1"}],
            }],
        }))
        .unwrap()
    }

    #[test]
    fn at_most_max_sites_are_shown_and_the_rest_counted() {
        let reports = Reports {
            tests: (0..MAX_SITES + 3).map(report).collect(),
            files: MAX_SITES + 3,
            superseded: Vec::new(),
        };
        let md = render(&Summary::new(reports, false));
        assert_eq!(md.matches("<details>").count(), MAX_SITES);
        assert!(md.contains("\n3 more sites, smaller;"), "{md}");
        assert!(
            md.contains("`f0 (at 0x1)`") && !md.contains("`f102 "),
            "{md}"
        );
        assert!(md.contains("`t0 (b)`"), "{md}");
    }
}
