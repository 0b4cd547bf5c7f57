//! LeakSanitizer's suppression lines.
//!
//! `leak:PATTERN` matches, as sanitizer_common's `TemplateMatch` does, when
//! the pattern occurs as a substring of the function name (demangled or
//! mangled), the source file or the module of any frame, or the allocator's
//! name; `^` anchors it at the start, a final `$` at the end, `*` is a
//! wildcard (`?` is literal, as in LSan; a `$` that is not last is literal,
//! which is what Rust's legacy mangled names such as `$LT$` need). It
//! matches every leak kind. Lines of the other sanitizers' suppression types
//! (`interceptor_via_fun:`, `race:`, `signed-integer-overflow:`, …) are
//! accepted and never match.

use crate::{Entry, Glob, Lines, ParseError, Rule};

/// Parses significant line `number`, which is not part of a valgrind block:
/// a `leak:` line, another sanitizer's line, or an error that says what was
/// expected.
pub(crate) fn parse_line(lines: &Lines<'_>, number: u32, line: &str) -> Result<Entry, ParseError> {
    let sanitizer = line
        .split_once(':')
        .map(|(ty, pattern)| (ty.trim(), pattern.trim()))
        .filter(|&(ty, _)| ty == "leak" || is_sanitizer_type(ty));
    let Some((ty, pattern)) = sanitizer else {
        if line.starts_with('{') {
            return Err(lines.error(
                number,
                format!(
                    "a valgrind suppression block cannot be written on one line: `{{`, the \
                     block's name, `Memcheck:Leak`, each `fun:`/`obj:`/`src:` frame and `}}` go \
                     on lines of their own (found `{line}`); write the block over several lines \
                     (in a raw string, in code), or use a LeakSanitizer line such as \
                     `leak:function_name`"
                ),
            ));
        }
        let hint = if crate::valgrind::is_frame_line(line) || line.starts_with("match-leak-kinds:")
        {
            " (a valgrind block's line outside a block: is its `{` missing?)"
        } else {
            ""
        };
        return Err(lines.error(
            number,
            format!(
                "expected `{{` to start a valgrind suppression or `leak:<pattern>` for \
                 LeakSanitizer, found `{line}`{hint}"
            ),
        ));
    };
    let rule = if ty == "leak" {
        if pattern.is_empty() {
            return Err(lines.error(
                number,
                "empty `leak:` pattern: expected `leak:<pattern>` (a function, source file \
                 or module name; `*` wildcards, `^` and `$` anchors)",
            ));
        }
        Rule::Lsan(lsan_glob(pattern))
    } else {
        Rule::Never
    };
    Ok(Entry {
        path: lines.origin.path.clone(),
        line: number,
        name: format!("{ty}:{pattern}"),
        rule,
    })
}

/// Suppression types of the sanitizers other than `leak:` (ASan, TSan,
/// UBSan check names without a `-`; UBSan's hyphenated check names are
/// accepted by shape, see [`is_sanitizer_type`]).
const SANITIZER_TYPES: [&str; 27] = [
    "interceptor_name",
    "interceptor_via_fun",
    "interceptor_via_lib",
    "odr_violation",
    "race",
    "race_top",
    "mutex",
    "thread",
    "signal",
    "deadlock",
    "called_from_lib",
    "alignment",
    "bool",
    "bounds",
    "builtin",
    "cfi",
    "enum",
    "function",
    "integer",
    "null",
    "nullability",
    "return",
    "shift",
    "undefined",
    "unreachable",
    "vptr",
    "implicit_conversion",
];

/// A suppression type of some sanitizer other than LeakSanitizer's `leak`.
fn is_sanitizer_type(ty: &str) -> bool {
    SANITIZER_TYPES.contains(&ty)
        || (ty.contains('-')
            && ty != "match-leak-kinds"
            && ty
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
}

/// sanitizer_common's `TemplateMatch` as a whole-string glob: a substring
/// match unless anchored by a leading `^` or a final `$`.
fn lsan_glob(pattern: &str) -> Glob {
    let (start, core) = match pattern.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let (end, core) = match core.strip_suffix('$') {
        Some(rest) => (true, rest),
        None => (false, core),
    };
    let mut whole = String::with_capacity(core.len() + 2);
    if !start {
        whole.push('*');
    }
    whole.push_str(core);
    if !end {
        whole.push('*');
    }
    Glob::new(&whole, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;

    #[test]
    fn a_valgrind_block_on_one_line_says_to_use_one_line_each() {
        for text in [
            "{ x Memcheck:Leak fun:malloc }",
            "  { x Memcheck:Leak foo:bar }",
        ] {
            let e = error(text, 7);
            assert_eq!(e.line, 7);
            assert_eq!(e.column, if text.starts_with(' ') { 3 } else { 1 });
            assert!(
                e.message.starts_with(
                    "a valgrind suppression block cannot be written on one line: `{`, the \
                     block's name, `Memcheck:Leak`, each `fun:`/`obj:`/`src:` frame and `}` go \
                     on lines of their own (found `{ x Memcheck:Leak "
                ),
                "{e}"
            );
            assert!(!e.message.contains("expected `{`"), "{e}");
        }
    }

    #[test]
    fn lsan_patterns() {
        let frames = [
            MatchFrame {
                function: Some("mycrate::cache::fill"),
                mangled: Some("_ZN7mycrate5cache4fill17h0123456789abcdefE"),
                file: Some("/src/mycrate/src/cache.rs"),
                line: Some(12),
                module: Some("/target/debug/deps/mycrate-1234"),
            },
            c("main"),
        ];
        let matches =
            |pattern: &str| one(&format!("leak:{pattern}")).matches(DEF, "malloc", &frames);
        for pattern in [
            "cache::fill",
            "mycrate::cache",
            "^mycrate::",
            "fill$",
            "^mycrate::cache::fill$",
            "^main$",
            "cache.rs",
            "src/cache.rs$",
            "^/src/*cache*",
            "deps/mycrate",
            "_ZN7mycrate5cache",
            "my*fill",
            "^malloc$",
            "*",
            "  spaced  ",
        ] {
            let pattern = if pattern.trim() == "spaced" {
                "cache"
            } else {
                pattern
            };
            assert!(matches(pattern), "{pattern}");
        }
        for pattern in [
            "^cache",
            "cache$",
            "^fill",
            "mycrate::fill",
            "fill?",
            "other",
            "^cache.rs",
            "^mai$",
        ] {
            assert!(!matches(pattern), "{pattern}");
        }
        // Every kind, name is `leak:<pattern>`.
        let entry = one("leak:  ^main$  ");
        assert_eq!(entry.name(), "leak:^main$");
        assert!(entry.matches(Kind::StillReachable, "malloc", &frames));
        assert!(entry.matches(Kind::IndirectlyLost, "malloc", &frames));
        // `$` not at the end is literal (Rust legacy mangling); a final one
        // anchors.
        let legacy = MatchFrame {
            mangled: Some("_ZN4core3ptr13drop_in_place$LT$T$GT$17hE"),
            ..MatchFrame::default()
        };
        assert!(one("leak:drop_in_place$LT$T$GT").matches(DEF, "malloc", &[legacy]));
    }

    #[test]
    fn other_sanitizer_types_are_accepted_and_never_match() {
        let text = "\
# ASan
interceptor_via_fun:main
interceptor_via_lib:libfoo.so
interceptor_name:strlen
odr_violation:^foo$
# TSan
race:main
race_top:main
thread:main
mutex:main
signal:main
deadlock:main
called_from_lib:libfoo.so
# UBSan
signed-integer-overflow:main
unsigned-integer-overflow:*
vptr:main
alignment:main
leak:real
";
        let entries = parse_ok(text);
        assert_eq!(entries.len(), 16);
        assert_eq!(entries[0].name(), "interceptor_via_fun:main");
        assert_eq!(entries[0].line, 2);
        let stack = [c("main"), c("real")];
        let matching: Vec<_> = entries
            .iter()
            .filter(|e| e.matches(DEF, "malloc", &stack))
            .map(Entry::name)
            .collect();
        assert_eq!(matching, ["leak:real"]);
    }
}
