//! What the suppression tests share: parsing shorthands and frames.

// What every suppression test module uses, so that `test_util::*` is all
// it imports besides its own file's items.
pub(crate) use super::{parse, Entry, MatchFrame, Origin, ParseError};
pub(crate) use crate::Kind;

pub(crate) fn origin(first_line: u32) -> Origin {
    Origin {
        path: "test.supp".to_string(),
        first_line,
    }
}

pub(crate) fn parse_ok(text: &str) -> Vec<Entry> {
    match parse(text, &origin(1)) {
        Ok(entries) => entries,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

pub(crate) fn one(text: &str) -> Entry {
    let mut entries = parse_ok(text);
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries.remove(0)
}

pub(crate) fn error(text: &str, first_line: u32) -> ParseError {
    match parse(text, &origin(first_line)) {
        Ok(entries) => panic!("expected an error, got {entries:?}"),
        Err(e) => e,
    }
}

/// A C frame: the same demangled and mangled name.
pub(crate) fn c(function: &'static str) -> MatchFrame<'static> {
    MatchFrame {
        function: Some(function),
        mangled: Some(function),
        ..MatchFrame::default()
    }
}

pub(crate) fn at(
    function: &'static str,
    file: &'static str,
    line: u32,
    module: &'static str,
) -> MatchFrame<'static> {
    MatchFrame {
        function: Some(function),
        mangled: Some(function),
        file: Some(file),
        line: Some(line),
        module: Some(module),
    }
}

pub(crate) const DEF: Kind = Kind::DefinitelyLost;

/// A `Memcheck:Leak` block with these space-separated frame lines.
pub(crate) fn block(frames: &str) -> Entry {
    one(&format!(
        "{{\n n\n Memcheck:Leak\n{}\n}}",
        frames.replace(' ', "\n")
    ))
}
