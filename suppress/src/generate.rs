//! Writing the valgrind block that suppresses a leak, for the report to
//! show next to it.

use crate::Kind;
use crate::MatchFrame;

/// A literal name as a valgrind pattern that matches it (and little else):
/// characters that are wildcards, or that trimming or line splitting would
/// lose, become `?`.
fn literal_pattern(name: &str) -> String {
    let last = name.chars().count().saturating_sub(1);
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            let edge_space = (i == 0 || i == last) && c.is_whitespace();
            if c == '*' || c == '?' || c.is_control() || edge_space {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// A valgrind suppression block for a leak, ready to paste into a file:
/// `{`, `<insert_a_suppression_name_here>`, `Memcheck:Leak`,
/// `match-leak-kinds: <word>`, `fun:<allocator>`, then `...` if
/// `skipped_plumbing`, then one `fun:` line per frame of `stack` (the
/// report's trimmed stack; `obj:` where the function is unknown), `}`.
/// It must match the leak it was generated for (by [`Entry::matches`](super::Entry::matches)).
///
/// Lines are indented by three spaces, as valgrind writes them, and joined
/// by `\n`, without a final newline. A frame with neither function nor
/// module becomes `...` (consecutive ones collapse). `*` and `?` in names
/// become `?`, which matches them. `Kind::Suppressed`, which valgrind has no
/// word for, gets no `match-leak-kinds` line.
///
/// ```
/// use leakcheck_suppress::{generate, Kind, MatchFrame};
/// let frame = MatchFrame { function: Some("kv_put"), ..MatchFrame::default() };
/// let text = generate(Kind::DefinitelyLost, "malloc", false, &[frame]);
/// assert!(text.contains("   match-leak-kinds: definite\n   fun:malloc\n   fun:kv_put\n}"));
/// ```
pub fn generate(
    kind: impl Into<Kind>,
    allocator: &str,
    skipped_plumbing: bool,
    stack: &[MatchFrame<'_>],
) -> String {
    let kind = kind.into();
    let mut lines = vec![
        "{".to_string(),
        "   <insert_a_suppression_name_here>".to_string(),
        "   Memcheck:Leak".to_string(),
    ];
    if kind != Kind::Suppressed {
        lines.push(format!("   match-leak-kinds: {}", kind.valgrind_word()));
    }
    lines.push(format!("   fun:{}", literal_pattern(allocator)));
    let mut push = |line: String| {
        if !(line == "   ..." && lines.last().is_some_and(|l| l == "   ...")) {
            lines.push(line);
        }
    };
    if skipped_plumbing {
        push("   ...".to_string());
    }
    for frame in stack {
        let function = frame.function.filter(|f| !f.trim().is_empty());
        let module = frame.module.filter(|m| !m.trim().is_empty());
        push(match (function, module) {
            (Some(function), _) => format!("   fun:{}", literal_pattern(function)),
            (None, Some(module)) => format!("   obj:{}", literal_pattern(module)),
            (None, None) => "   ...".to_string(),
        });
    }
    lines.push("}".to_string());
    lines.join("\n")
}

/// A valgrind suppression block for a heap misuse: `Memcheck:<memcheck>`
/// (`Free`, `Addr1`, `SizeMismatch`, `AlignMismatch`), `fun:<first>` (the
/// call, or the allocator for a write), then the frames as in [`generate`].
/// It must match the error it was generated for (by
/// [`Entry::matches_error`](super::Entry::matches_error)).
pub fn generate_error(
    memcheck: &str,
    first: &str,
    skipped_plumbing: bool,
    stack: &[MatchFrame<'_>],
) -> String {
    let leak = generate(Kind::Suppressed, first, skipped_plumbing, stack);
    leak.replacen("   Memcheck:Leak", &format!("   Memcheck:{memcheck}"), 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;

    #[test]
    fn generate_exact_text() {
        let text = generate(DEF, "malloc", true, &[c("first_frame"), c("second_frame")]);
        assert_eq!(
            text,
            "{\n   <insert_a_suppression_name_here>\n   Memcheck:Leak\n   match-leak-kinds: \
             definite\n   fun:malloc\n   ...\n   fun:first_frame\n   fun:second_frame\n}"
        );
        let unknown = MatchFrame::default();
        let in_lib = MatchFrame {
            module: Some("/lib/libfoo.so"),
            ..MatchFrame::default()
        };
        let text = generate(
            Kind::PossiblyLost,
            "calloc",
            true,
            &[unknown, unknown, in_lib, unknown, c("f")],
        );
        assert_eq!(
            text,
            "{\n   <insert_a_suppression_name_here>\n   Memcheck:Leak\n   match-leak-kinds: \
             possible\n   fun:calloc\n   ...\n   obj:/lib/libfoo.so\n   ...\n   fun:f\n}"
        );
    }

    #[test]
    fn generated_error_blocks_match_their_error() {
        let frames = [c("fixture_double_free"), c("t::double_free::{{closure}}")];
        for memcheck in ["Free", "Addr1", "SizeMismatch", "AlignMismatch"] {
            let text = generate_error(memcheck, "free", true, &frames);
            assert!(
                text.contains(&format!("\n   Memcheck:{memcheck}\n   fun:free\n")),
                "{text}"
            );
            let entry = one(&text);
            let mut full = vec![c("leakcheck::hooks::free")];
            full.extend(frames);
            assert!(entry.matches_error(memcheck, "free", &full), "{text}");
            assert!(!entry.matches(DEF, "free", &full), "{text}");
        }
    }

    #[test]
    fn generate_round_trips() {
        let plumbing = [c("leakcheck::hooks::malloc"), c("leakcheck::record")];
        let frames = [
            MatchFrame {
                function: Some("<alloc::vec::Vec<T> as core::clone::Clone>::clone"),
                mangled: Some("_ZN4core5clone5Clone5clone17h1111111111111111E"),
                ..MatchFrame::default()
            },
            MatchFrame {
                function: Some("weird*name?with[wildcards]"),
                ..MatchFrame::default()
            },
            MatchFrame {
                module: Some("/usr/lib/libz*.so"),
                ..MatchFrame::default()
            },
            MatchFrame::default(),
            c("mycrate::tests::leaks"),
        ];
        let below = [c("test::run_test"), c("std::rt::lang_start")];
        for kind in [
            Kind::DefinitelyLost,
            Kind::IndirectlyLost,
            Kind::PossiblyLost,
            Kind::StillReachable,
        ] {
            for skipped in [false, true] {
                let text = generate(kind, "posix_memalign", skipped, &frames);
                let entry = one(&text);
                let mut full: Vec<MatchFrame<'_>> = Vec::new();
                if skipped {
                    full.extend(plumbing);
                }
                full.extend(frames);
                full.extend(below);
                assert!(entry.matches(kind, "posix_memalign", &full), "{text}");
                assert!(entry.matches(kind, "posix_memalign", &full[..full.len() - 2]));
                assert!(!entry.matches(kind, "malloc", &full), "{text}");
                let other = if kind == DEF {
                    Kind::StillReachable
                } else {
                    DEF
                };
                assert!(!entry.matches(other, "posix_memalign", &full), "{text}");
            }
        }
        // Names that trimming or line splitting would change still match.
        let odd = [MatchFrame {
            function: Some(" spaced\tname "),
            ..MatchFrame::default()
        }];
        let entry = one(&generate(DEF, "malloc", false, &odd));
        assert!(entry.matches(DEF, "malloc", &odd));
    }
}
