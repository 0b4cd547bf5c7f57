//! Leaked bytes as a flame graph (inferno): each test a root frame, its
//! groups' stacks above it, root first.

use crate::summary::{selected, Summary};
use inferno::flamegraph::{self, Options};

/// A frame's name in the folded format, where `;` separates frames (and
/// demangled Rust names can hold `;`, as in `[u8; 4]`).
fn folded_name(f: &crate::reports::Frame) -> String {
    let name = f
        .function
        .clone()
        .unwrap_or_else(|| format!("{} ({})", f.ip, f.module.as_deref().unwrap_or("?")));
    name.replace(';', ",")
}

/// The folded stacks: `test;root;...;leaf bytes`, one line per group.
pub fn folded(summary: &Summary, all: bool) -> Vec<String> {
    let mut lines = Vec::new();
    for report in &summary.reports {
        for leak in selected(report, all) {
            let mut line = report.test.replace(';', ",");
            for f in leak.stack.iter().rev() {
                line.push(';');
                line.push_str(&folded_name(f));
            }
            lines.push(format!("{line} {}", leak.bytes));
        }
    }
    lines
}

pub fn render(summary: &Summary, all: bool) -> std::io::Result<Vec<u8>> {
    let lines = folded(summary, all);
    let mut options = Options::default();
    options.title = "leakcheck: leaked bytes".to_owned();
    options.count_name = "bytes".to_owned();
    if lines.is_empty() {
        // inferno draws nothing from no samples; say so instead.
        return Ok(
            b"<?xml version=\"1.0\" standalone=\"no\"?>\n<svg version=\"1.1\" width=\"1200\" \
height=\"40\" xmlns=\"http://www.w3.org/2000/svg\"><text x=\"10\" y=\"24\">leakcheck: nothing \
leaked</text></svg>\n"
                .to_vec(),
        );
    }
    let mut svg = Vec::new();
    flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut svg)?;
    Ok(svg)
}
