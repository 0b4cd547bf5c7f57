//! valgrind's suppression blocks.
//!
//! As valgrind's manual ("Suppressing errors", and memcheck's "Writing
//! suppression files") and `coregrind/m_errormgr.c` define them:
//!
//! ```text
//! {
//!    name
//!    Tool1,Tool2:Kind
//!    <extra line, for some kinds>
//!    fun:PATTERN | obj:PATTERN | src:FILE[:LINE] | ...
//!    ...
//! }
//! ```
//!
//! * Only blocks whose tool list names `Memcheck` (or the old `Addrcheck`,
//!   or a wildcard such as `*` — a leakcheck extension; valgrind compares
//!   tool names literally) and whose kind is `Leak` suppress leaks. Every
//!   other valid block is accepted and never matches. Blocks for other tools
//!   (Helgrind, DRD, …) are skipped up to their `}` without looking at their
//!   lines, as valgrind skips them; Memcheck blocks of other kinds are
//!   checked (known kind, `Param`'s mandatory extra line, frames).
//! * `Memcheck:Leak` takes an optional `match-leak-kinds: <set>` line;
//!   without it the block matches every leak kind (the manual: "If this
//!   optional extra line is not present, the suppression entry will match
//!   all leak kinds").
//! * Frame patterns match a prefix of `[allocator, stack[0], stack[1], …]`;
//!   `...` matches zero or more frames. In names, `*` matches any run of
//!   characters and `?` one character; the whole name must match.
//! * `fun:` matches the demangled name or the mangled one; `obj:` the
//!   module path; `src:FILE[:LINE]` the source file's name *without its
//!   directory* (valgrind matches the file name of the line table, e.g.
//!   `src:prog.c:5`, not `/home/me/prog.c`) — as a leakcheck extension a
//!   pattern containing `/` is matched against the whole path instead. A
//!   missing or `0` line number matches any line.
//! * The allocator frame has only a function name; its object is taken to
//!   be glibc's `libc.so.6` (or valgrind's own `vgpreload_memcheck-*.so`,
//!   where valgrind shows `malloc`): an `obj:` pattern matches it when the
//!   pattern, or its last `/` component, matches one of those names. `src:`
//!   never matches it.
//! * Like valgrind, a block made only of `...` lines is rejected.
//!

use crate::KindSet;
use crate::{Entry, FramePat, Glob, Lines, ParseError, Rule};

/// Memcheck's suppression kinds (`mc_errors.c`,
/// `MC_(is_recognised_suppression)`).
const MEMCHECK_KINDS: [&str; 28] = [
    "Leak",
    "Param",
    "User",
    "CoreMem",
    "Addr1",
    "Addr2",
    "Addr4",
    "Addr8",
    "Addr16",
    "Addr32",
    "Jump",
    "Free",
    "Overlap",
    "Mempool",
    "Cond",
    "Value0",
    "Value1",
    "Value2",
    "Value4",
    "Value8",
    "Value16",
    "Value32",
    "FishyValue",
    "ReallocZero",
    "BadAlign",
    "BadSize",
    "SizeMismatch",
    "AlignMismatch",
];

pub(crate) fn is_frame_line(line: &str) -> bool {
    line == "..." || ["fun:", "obj:", "src:"].iter().any(|p| line.starts_with(p))
}

/// Parses one location line; `None` if it is not one.
fn parse_frame(line: &str) -> Option<Result<FramePat, String>> {
    if line == "..." {
        return Some(Ok(FramePat::Dots));
    }
    let (prefix, pattern) = line.split_at_checked(4)?;
    let pattern = pattern.trim();
    if !matches!(prefix, "fun:" | "obj:" | "src:") {
        return None;
    }
    if pattern.is_empty() {
        return Some(Err(format!(
            "empty pattern after `{prefix}`: expected a name (`*` and `?` are wildcards)"
        )));
    }
    Some(Ok(match prefix {
        "fun:" => FramePat::Fun(Glob::new(pattern, true)),
        "obj:" => FramePat::Obj {
            path: Glob::new(pattern, true),
            last: pattern
                .rsplit_once('/')
                .map(|(_, last)| Glob::new(last, true)),
        },
        _ => {
            let (file, line) = match pattern.rsplit_once(':') {
                None => (pattern, None),
                Some((file, number)) => match number.trim().parse::<u32>() {
                    // valgrind: line 0 (or none) means any line.
                    Ok(n) => (file.trim(), Some(n).filter(|&n| n != 0)),
                    Err(_) => {
                        return Some(Err(format!(
                            "expected a line number after `:` in `src:FILE:LINE`, found `{number}`"
                        )))
                    }
                },
            };
            if file.is_empty() {
                return Some(Err(
                    "empty file name after `src:`: expected `src:FILE` or `src:FILE:LINE`"
                        .to_string(),
                ));
            }
            FramePat::Src {
                file: Glob::new(file, true),
                line,
                whole_path: file.contains('/'),
            }
        }
    }))
}

/// Parses the valgrind block whose `{` is significant line `open`; returns
/// the entry and the index of the line after its `}`.
pub(crate) fn parse_block(lines: &Lines<'_>, open: usize) -> Result<(Entry, usize), ParseError> {
    let (open_line, _) = lines.lines[open];
    let unterminated = |line: u32| {
        lines.error(
            line,
            format!("unterminated suppression starting at line {open_line}: expected `}}`"),
        )
    };
    let next = |i: usize| lines.get(i).ok_or_else(|| unterminated(lines.last));

    // The name.
    let mut i = open + 1;
    let (name_line, name) = next(i)?;
    if name == "}" || name == "{" {
        return Err(lines.error(
            name_line,
            format!("expected a suppression name after `{{`, found `{name}`"),
        ));
    }
    i += 1;

    // `Tool1,Tool2:Kind`.
    let (kind_line, tool_kind) = next(i)?;
    let split = tool_kind.split_once(':').filter(|(tools, kind)| {
        !tools.is_empty()
            && !kind.is_empty()
            && !tool_kind.contains(char::is_whitespace)
            && !is_frame_line(tool_kind)
            && *tools != "match-leak-kinds"
    });
    let Some((tools, kind)) = split else {
        if name.split_once(':').is_some_and(|(t, _)| is_memcheck(t)) {
            return Err(lines.error(
                name_line,
                format!(
                    "expected a suppression name after `{{`, found the `Tool:Kind` line `{name}`"
                ),
            ));
        }
        return Err(lines.error(
            kind_line,
            format!("expected `Tool:Kind` (e.g. `Memcheck:Leak`), found `{tool_kind}`"),
        ));
    };
    i += 1;

    let entry = |rule| Entry {
        path: lines.origin.path.clone(),
        line: open_line,
        name: name.to_string(),
        rule,
    };

    if !is_memcheck(tools) {
        // Like valgrind, skip another tool's block up to its `}`.
        loop {
            match next(i)? {
                (_, "}") => return Ok((entry(Rule::Never), i + 1)),
                (line, "{") => return Err(unterminated(line)),
                _ => i += 1,
            }
        }
    }
    if !MEMCHECK_KINDS.contains(&kind) {
        return Err(lines.error(
            kind_line,
            format!(
                "unknown Memcheck suppression kind `{kind}`; expected `Leak` (or another \
                 Memcheck kind: {})",
                MEMCHECK_KINDS[1..].join(", ")
            ),
        ));
    }

    // The kind's extra line.
    let mut kinds = KindSet::ALL;
    let (line, text) = next(i)?;
    let is_location = text == "}" || text == "{" || is_frame_line(text);
    match kind {
        "Leak" => {
            if let Some(set) = text.strip_prefix("match-leak-kinds:") {
                kinds = parse_kinds(set).map_err(|message| lines.error(line, message))?;
                i += 1;
            } else if !is_location {
                return Err(lines.error(
                    line,
                    format!(
                        "expected `match-leak-kinds: <kinds>` or a frame (`fun:`, `obj:`, \
                         `src:` or `...`), found `{text}`"
                    ),
                ));
            }
        }
        "Param" => {
            if is_location {
                return Err(lines.error(
                    line,
                    format!(
                        "expected the system call parameter after `Memcheck:Param` (e.g. \
                         `write(buf)`), found `{text}`"
                    ),
                ));
            }
            i += 1;
        }
        "FishyValue" if !is_location => i += 1,
        _ => {}
    }

    // The frames.
    let mut frames = Vec::new();
    let close_line = loop {
        let (line, text) = next(i)?;
        i += 1;
        match text {
            "}" => break line,
            "{" => return Err(unterminated(line)),
            _ => match parse_frame(text) {
                Some(Ok(frame)) => frames.push(frame),
                Some(Err(message)) => return Err(lines.error(line, message)),
                None => {
                    return Err(lines.error(
                        line,
                        format!(
                            "expected a frame (`fun:`, `obj:`, `src:` or `...`) or `}}`, \
                             found `{text}`"
                        ),
                    ))
                }
            },
        }
    };
    if frames.is_empty() {
        return Err(lines.error(
            close_line,
            format!(
                "suppression `{name}` has no frames: expected at least one `fun:`, `obj:` or \
                 `src:` line before `}}`"
            ),
        ));
    }
    if frames.iter().all(|f| matches!(f, FramePat::Dots)) {
        return Err(lines.error(
            close_line,
            format!(
                "suppression `{name}` has only `...` frames: it needs at least one `fun:`, \
                 `obj:` or `src:` line (valgrind rejects it too)"
            ),
        ));
    }
    let rule = if kind == "Leak" {
        Rule::Leak { kinds, frames }
    } else if let Some(kind) = error_family(kind) {
        Rule::Error { kind, frames }
    } else {
        Rule::Never
    };
    Ok((entry(rule), i))
}

/// The heap-misuse family a Memcheck kind suppresses (see
/// `Rule::Error`), if any.
pub(super) fn error_family(kind: &str) -> Option<&'static str> {
    match kind {
        "Free" => Some("Free"),
        "SizeMismatch" => Some("SizeMismatch"),
        "AlignMismatch" => Some("AlignMismatch"),
        k if k.starts_with("Addr") => Some("Addr"),
        _ => None,
    }
}

/// Whether a `Tool1,Tool2` list is for Memcheck.
fn is_memcheck(tools: &str) -> bool {
    tools.split(',').map(str::trim).any(|tool| {
        matches!(tool, "Memcheck" | "Addrcheck")
            || (tool.contains(['*', '?']) && Glob::new(tool, true).matches("Memcheck"))
    })
}

/// `match-leak-kinds:`'s set, with the error saying where the word is.
fn parse_kinds(set: &str) -> Result<KindSet, String> {
    if set.trim().is_empty() {
        return Err(
            "expected leak kinds after `match-leak-kinds:` (`definite`, `indirect`, \
                    `possible`, `reachable` separated by commas, or `all`, or `none`)"
                .to_string(),
        );
    }
    KindSet::parse(set).map_err(|message| {
        if message.contains("; expected") {
            message.replacen("; expected", " in match-leak-kinds; expected", 1)
        } else {
            format!("{message} (in match-leak-kinds)")
        }
    })
}

#[cfg(test)]
mod tests {
    use crate::test_util::*;

    /// Pasted verbatim from `valgrind --leak-check=full --show-leak-kinds=all
    /// --gen-suppressions=all ./prog` (valgrind 3.19) on a C program whose
    /// `leak_one` leaks a `malloc` made by `make_buffer`, and whose `main`
    /// keeps another one reachable.
    const VALGRIND_OUTPUT: &str = "\
{
   <insert_a_suppression_name_here>
   Memcheck:Leak
   match-leak-kinds: reachable
   fun:malloc
   fun:make_buffer
   fun:main
}
{
   <insert_a_suppression_name_here>
   Memcheck:Leak
   match-leak-kinds: definite
   fun:malloc
   fun:make_buffer
   fun:leak_one
   fun:main
}
";

    #[test]
    fn real_valgrind_leak_blocks() {
        let entries = parse_ok(VALGRIND_OUTPUT);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].name(), "<insert_a_suppression_name_here>");
        assert_eq!((entries[0].line, entries[1].line), (1, 9));
        let lost = [
            at("make_buffer", "prog.c", 5, "/tmp/vgt/prog"),
            at("leak_one", "prog.c", 10, "/tmp/vgt/prog"),
            at("main", "prog.c", 14, "/tmp/vgt/prog"),
            c("__libc_start_call_main"),
        ];
        let kept = [c("make_buffer"), c("main"), c("__libc_start_call_main")];
        assert!(entries[1].matches(DEF, "malloc", &lost));
        assert!(!entries[1].matches(Kind::StillReachable, "malloc", &lost));
        assert!(!entries[1].matches(DEF, "calloc", &lost));
        assert!(!entries[1].matches(DEF, "malloc", &kept));
        assert!(entries[0].matches(Kind::StillReachable, "malloc", &kept));
        assert!(!entries[0].matches(DEF, "malloc", &kept));
        assert!(!entries[0].matches(Kind::StillReachable, "malloc", &lost));
        // The stack may not be shorter than the pattern.
        assert!(!entries[1].matches(DEF, "malloc", &lost[..2]));
        // Nothing matches the leakcheck-only kind.
        assert!(!entries[1].matches(Kind::Suppressed, "malloc", &lost));
    }

    #[test]
    fn param_and_other_non_leak_blocks_load_and_never_match() {
        // The Param block is pasted from valgrind 3.19's output for
        // `write(1, uninitialised, 8)`.
        let text = "\
{
   <insert_a_suppression_name_here>
   Memcheck:Param
   write(buf)
   fun:write
   fun:main
}
{
   cond
   Memcheck:Cond
   fun:*
}
{
   addr
   Memcheck:Addr8
   obj:/lib/ld-*.so
}
{
   free
   Memcheck:Free
   fun:free
}
{
   fishy
   Memcheck:FishyValue
   malloc(size)
   fun:malloc
}
{
   helgrind
   Helgrind:Race
   fun:malloc
}
{
   drd-with-odd-lines
   drd:ConflictingAccess
   whatever this tool puts here
   fun:*
}
{
   leak-for-another-tool
   Helgrind:Leak
   fun:malloc
}
";
        let entries = parse_ok(text);
        let names: Vec<_> = entries.iter().map(Entry::name).collect();
        assert_eq!(
            names,
            [
                "<insert_a_suppression_name_here>",
                "cond",
                "addr",
                "free",
                "fishy",
                "helgrind",
                "drd-with-odd-lines",
                "leak-for-another-tool"
            ]
        );
        let stack = [c("write"), c("main")];
        for entry in &entries {
            for kind in [DEF, Kind::StillReachable] {
                assert!(!entry.matches(kind, "malloc", &stack), "{}", entry.name());
                assert!(!entry.matches(kind, "write", &stack), "{}", entry.name());
            }
        }
    }

    #[test]
    fn tool_lists_and_wildcard_tools() {
        let tool_block = |tools: &str| format!("{{\n n\n {tools}:Leak\n fun:malloc\n}}\n");
        for tools in [
            "Memcheck",
            "Memcheck,Addrcheck",
            "Addrcheck,Memcheck",
            "*",
            "Mem*",
        ] {
            assert!(
                one(&tool_block(tools)).matches(DEF, "malloc", &[]),
                "{tools}"
            );
        }
        assert!(!one(&tool_block("Helgrind,DRD")).matches(DEF, "malloc", &[]));
    }
}
