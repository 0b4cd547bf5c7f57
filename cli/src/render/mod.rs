//! The forms of a summary: text, Markdown, JUnit XML, JSON, pprof, flame
//! graph. Each takes the [`Summary`](crate::summary::Summary) and what it
//! needs of the options.

pub mod flamegraph;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod pprof;
pub mod text;

use crate::reports::{Frame, Report};
use std::path::Path;

/// Frames shown per site in text and Markdown.
pub const TOP_FRAMES: usize = 8;

/// `definitely_lost` → `definitely lost`.
pub fn kind_words(kind: &str) -> String {
    kind.replace('_', " ")
}

/// `c` → `C`, `rust` → `Rust`.
pub fn origin_words(origin: &str) -> &str {
    match origin {
        "c" => "C",
        "rust" => "Rust",
        other => other,
    }
}

/// `1 block` / `3 blocks`.
pub fn blocks(n: u64) -> String {
    format!("{n} block{}", if n == 1 { "" } else { "s" })
}

/// `1 test` / `3 tests`.
pub fn tests(n: usize) -> String {
    format!("{n} test{}", if n == 1 { "" } else { "s" })
}

/// `function (file:line)`, the file relative to the current directory when
/// it is under it.
pub fn frame(frame: &Frame) -> String {
    let function = frame.function.as_deref().unwrap_or("???");
    match (&frame.file, frame.line) {
        (Some(file), Some(line)) => format!("{function} ({}:{line})", relative(file)),
        (Some(file), None) => format!("{function} ({})", relative(file)),
        _ => match &frame.module {
            Some(module) => format!("{function} (in {module} at {})", frame.ip),
            None => format!("{function} (at {})", frame.ip),
        },
    }
}

/// `test (binary)`.
pub fn test_label(report: &Report) -> String {
    format!("{} ({})", report.test, report.binary_short())
}

/// A path relative to the current directory when it is under it.
pub fn relative(path: &str) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    Path::new(path)
        .strip_prefix(&cwd)
        .map_or_else(|_| path.to_owned(), |p| p.display().to_string())
}
