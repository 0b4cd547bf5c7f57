//! Suppressions: parsing the formats people already have (valgrind's `.supp`
//! blocks and LeakSanitizer's `leak:` lines), matching them against a leak's
//! stack, and writing a ready-to-paste suppression for a leak.
//!
//! Everything here is plain data processing: it runs after the scope has
//! ended, inside an untracked section, and may allocate.
//!
//! # valgrind blocks
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
//! # LeakSanitizer lines
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

use crate::verdict::{Kind, KindSet};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

/// One frame of a leak's stack as matching sees it. The stack handed to
/// [`Entry::matches`] is the *full* stack, innermost first, with inlined
/// frames expanded, starting at the frame that called the allocator (the
/// allocator itself is passed separately, see [`Entry::matches`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MatchFrame<'a> {
    /// Demangled name without the Rust hash (`mycrate::f`, `fixture_leak`).
    pub(crate) function: Option<&'a str>,
    /// The name as the object file spells it (`_ZN7mycrate1f17h…E`; the same
    /// as `function` for C).
    pub(crate) mangled: Option<&'a str>,
    /// Source file path, absolute where debug info has it.
    pub(crate) file: Option<&'a str>,
    pub(crate) line: Option<u32>,
    /// Path of the executable or shared object.
    pub(crate) module: Option<&'a str>,
}

/// Where suppressions text came from, for messages and the "suppressions
/// used" summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    /// A file path, or the source file of a `suppress!`/attribute.
    pub(crate) path: String,
    /// Line in `path` where the text starts (1 for a file; the macro's line
    /// for in-code text, so that line `n` of the text is reported as
    /// `first_line + n - 1`).
    pub(crate) first_line: u32,
}

/// A malformed suppression: where, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParseError {
    pub(crate) path: String,
    pub(crate) line: u32,
    pub(crate) message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.message)
    }
}

/// One suppression.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// Where it was written: path and the line of its first line.
    pub(crate) path: String,
    pub(crate) line: u32,
    /// The valgrind block's name, or `leak:<pattern>`.
    name: String,
    rule: Rule,
}

/// What an entry matches.
#[derive(Clone, Debug)]
enum Rule {
    /// A `Memcheck:Leak` block.
    Leak {
        kinds: KindSet,
        frames: Vec<FramePat>,
    },
    /// A LeakSanitizer `leak:` line: a glob with the anchoring already
    /// applied (an unanchored end is a leading/trailing `*`).
    Lsan(Glob),
    /// A valid suppression that is not about leaks (another tool, another
    /// Memcheck kind, another sanitizer's type).
    Never,
}

/// One location line of a valgrind block.
#[derive(Clone, Debug)]
enum FramePat {
    /// `...`: zero or more frames.
    Dots,
    Fun(Glob),
    /// `obj:`; `last` is the pattern's last `/` component, which is what the
    /// allocator frame's object is matched against when the pattern has a
    /// directory.
    Obj {
        path: Glob,
        last: Option<Glob>,
    },
    /// `src:FILE[:LINE]`; `whole_path` when the pattern has a `/`.
    Src {
        file: Glob,
        line: Option<u32>,
        whole_path: bool,
    },
}

/// A name pattern: literal runs, `*` and (valgrind only) `?`.
#[derive(Clone, Debug, Default)]
struct Glob(Vec<Tok>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Lit(String),
    /// Exactly one character.
    One,
    /// Any run of characters.
    Any,
}

impl Glob {
    /// `*` is always a wildcard; `?` only when `question` (valgrind).
    fn new(pattern: &str, question: bool) -> Glob {
        let mut toks = Vec::new();
        let mut lit = String::new();
        for c in pattern.chars() {
            let tok = match c {
                '*' => Tok::Any,
                '?' if question => Tok::One,
                _ => {
                    lit.push(c);
                    continue;
                }
            };
            if !lit.is_empty() {
                toks.push(Tok::Lit(std::mem::take(&mut lit)));
            }
            // Consecutive `*`s are one `*`.
            if !(tok == Tok::Any && toks.last() == Some(&Tok::Any)) {
                toks.push(tok);
            }
        }
        if !lit.is_empty() {
            toks.push(Tok::Lit(lit));
        }
        Glob(toks)
    }

    /// Whether the whole of `text` matches. Iterative with a single
    /// backtracking point (the last `*` seen): a literal run or `?` after a
    /// `*` is matched at its leftmost possible place, which is never worse
    /// than a later one, so at most `O(tokens × text)` steps.
    fn matches(&self, text: &str) -> bool {
        let toks = &self.0;
        let (mut p, mut t) = (0, 0);
        // (token after the last `*`, where in `text` that `*` stops).
        let mut back: Option<(usize, usize)> = None;
        loop {
            if let Some(tok) = toks.get(p) {
                match tok {
                    Tok::Any => {
                        back = Some((p + 1, t));
                        p += 1;
                        continue;
                    }
                    Tok::One => {
                        if let Some(c) = text[t..].chars().next() {
                            p += 1;
                            t += c.len_utf8();
                            continue;
                        }
                    }
                    Tok::Lit(lit) => {
                        if text[t..].starts_with(lit.as_str()) {
                            p += 1;
                            t += lit.len();
                            continue;
                        }
                    }
                }
            } else if t == text.len() {
                return true;
            }
            // Mismatch: let the last `*` swallow one more character.
            let Some((bp, bt)) = back else { return false };
            let Some(c) = text[bt..].chars().next() else {
                return false;
            };
            back = Some((bp, bt + c.len_utf8()));
            p = bp;
            t = bt + c.len_utf8();
        }
    }
}

/// One element of the sequence valgrind patterns are matched against.
#[derive(Clone, Copy)]
enum Subject<'s, 'a> {
    Allocator(&'s str),
    Frame(&'s MatchFrame<'a>),
}

/// What the allocator frame's object is taken to be (see the module docs).
const ALLOCATOR_OBJECTS: [&str; 3] = [
    "libc.so.6",
    "vgpreload_memcheck-amd64-linux.so",
    "vgpreload_memcheck-arm64-linux.so",
];

impl FramePat {
    fn matches(&self, subject: Subject<'_, '_>) -> bool {
        match (self, subject) {
            (FramePat::Dots, _) => true,
            (FramePat::Fun(glob), Subject::Allocator(name)) => glob.matches(name),
            (FramePat::Fun(glob), Subject::Frame(frame)) => {
                frame.function.is_some_and(|f| glob.matches(f))
                    || frame.mangled.is_some_and(|m| glob.matches(m))
            }
            (FramePat::Obj { path, last }, Subject::Allocator(_)) => ALLOCATOR_OBJECTS
                .iter()
                .any(|o| path.matches(o) || last.as_ref().is_some_and(|l| l.matches(o))),
            (FramePat::Obj { path, .. }, Subject::Frame(frame)) => {
                frame.module.is_some_and(|m| path.matches(m))
            }
            (FramePat::Src { .. }, Subject::Allocator(_)) => false,
            (
                FramePat::Src {
                    file,
                    line,
                    whole_path,
                },
                Subject::Frame(frame),
            ) => {
                let Some(path) = frame.file else { return false };
                let name = if *whole_path {
                    path
                } else {
                    path.rsplit(['/', '\\']).next().unwrap_or(path)
                };
                file.matches(name) && line.is_none_or(|l| frame.line == Some(l))
            }
        }
    }
}

/// Whether `pats` matches a prefix of `[allocator, stack…]`, `...` matching
/// any number of frames. The same single-backtrack scheme as
/// [`Glob::matches`], with an implicit `...` at the end.
fn frames_match(pats: &[FramePat], allocator: &str, stack: &[MatchFrame<'_>]) -> bool {
    let len = stack.len() + 1;
    let subject = |i: usize| {
        if i == 0 {
            Subject::Allocator(allocator)
        } else {
            Subject::Frame(&stack[i - 1])
        }
    };
    let (mut p, mut t) = (0, 0);
    let mut back: Option<(usize, usize)> = None;
    loop {
        let Some(pat) = pats.get(p) else { return true };
        match pat {
            FramePat::Dots => {
                back = Some((p + 1, t));
                p += 1;
                continue;
            }
            _ if t < len && pat.matches(subject(t)) => {
                p += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        match back {
            Some((bp, bt)) if bt < len => {
                back = Some((bp, bt + 1));
                p = bp;
                t = bt + 1;
            }
            _ => return false,
        }
    }
}

impl Entry {
    /// What the summary calls it: the valgrind block's name, or
    /// `leak:<pattern>`.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Whether this entry suppresses a block of `kind` allocated by the C
    /// function `allocator` (`malloc`, `calloc`, `realloc`, `posix_memalign`,
    /// …: what valgrind shows as the first frame) with `stack` below it.
    pub(crate) fn matches(&self, kind: Kind, allocator: &str, stack: &[MatchFrame<'_>]) -> bool {
        match &self.rule {
            Rule::Never => false,
            Rule::Leak { kinds, frames } => {
                kinds.contains(kind) && frames_match(frames, allocator, stack)
            }
            Rule::Lsan(glob) => {
                KindSet::ALL.contains(kind)
                    && (glob.matches(allocator)
                        || stack.iter().any(|f| {
                            [f.function, f.mangled, f.file, f.module]
                                .into_iter()
                                .flatten()
                                .any(|s| !s.is_empty() && glob.matches(s))
                        }))
            }
        }
    }
}

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

fn is_frame_line(line: &str) -> bool {
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

/// The text's significant lines (not blank, not comments), trimmed, with
/// their line numbers in the file.
struct Lines<'t> {
    lines: Vec<(u32, &'t str)>,
    /// The number of the text's last line, for errors at its end.
    last: u32,
    origin: &'t Origin,
}

impl Lines<'_> {
    fn get(&self, i: usize) -> Option<(u32, &str)> {
        self.lines.get(i).copied()
    }

    fn error(&self, line: u32, message: impl Into<String>) -> ParseError {
        ParseError {
            path: self.origin.path.clone(),
            line,
            message: message.into(),
        }
    }
}

/// Parses a whole suppressions file (or in-code text).
pub(crate) fn parse(text: &str, origin: &Origin) -> Result<Vec<Entry>, ParseError> {
    let number = |index: usize| {
        origin
            .first_line
            .saturating_add(u32::try_from(index).unwrap_or(u32::MAX))
    };
    let mut last = origin.first_line;
    let mut lines = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        last = number(index);
        let line = raw.trim();
        if !line.is_empty() && !line.starts_with('#') {
            lines.push((last, line));
        }
    }
    let lines = Lines {
        lines,
        last,
        origin,
    };

    let mut entries = Vec::new();
    let mut i = 0;
    while let Some((number, line)) = lines.get(i) {
        if line == "{" {
            let (entry, next) = parse_block(&lines, i)?;
            entries.push(entry);
            i = next;
            continue;
        }
        i += 1;
        let sanitizer = line
            .split_once(':')
            .map(|(ty, pattern)| (ty.trim(), pattern.trim()))
            .filter(|&(ty, _)| ty == "leak" || is_sanitizer_type(ty));
        let Some((ty, pattern)) = sanitizer else {
            let hint = if is_frame_line(line) || line.starts_with("match-leak-kinds:") {
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
        entries.push(Entry {
            path: origin.path.clone(),
            line: number,
            name: format!("{ty}:{pattern}"),
            rule,
        });
    }
    Ok(entries)
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

/// Parses the valgrind block whose `{` is significant line `open`; returns
/// the entry and the index of the line after its `}`.
fn parse_block(lines: &Lines<'_>, open: usize) -> Result<(Entry, usize), ParseError> {
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
    } else {
        Rule::Never
    };
    Ok((entry(rule), i))
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
/// It must match the leak it was generated for (by [`Entry::matches`]).
///
/// Lines are indented by three spaces, as valgrind writes them, and joined
/// by `\n`, without a final newline. A frame with neither function nor
/// module becomes `...` (consecutive ones collapse). `*` and `?` in names
/// become `?`, which matches them. `Kind::Suppressed`, which valgrind has no
/// word for, gets no `match-leak-kinds` line.
pub(crate) fn generate(
    kind: Kind,
    allocator: &str,
    skipped_plumbing: bool,
    stack: &[MatchFrame<'_>],
) -> String {
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

// --- which suppressions apply to a check ---------------------------------

/// The file looked for next to the test crate's `Cargo.toml`.
pub(crate) const CRATE_FILE: &str = "leakcheck.supp";

type Parsed = Result<Vec<Arc<Entry>>, String>;

/// Every suppression in force for one check, in the order they are tried:
/// `LEAKCHECK_SUPPRESSIONS` files, the crate's `leakcheck.supp`, the
/// binary's `suppress!`es, the attribute's own. Files and `suppress!` text
/// are parsed once per process. Each malformed source gives one error
/// message (`path:line: what was expected`); the others still apply.
pub(crate) fn for_check(
    env_files: Option<&std::path::Path>,
    crate_dir: Option<&str>,
    attribute: &[crate::run::Suppression],
) -> (Vec<Arc<Entry>>, Vec<String>) {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let mut take = |parsed: &Parsed| match parsed {
        Ok(found) => entries.extend(found.iter().cloned()),
        Err(message) => errors.push(message.clone()),
    };
    if let Some(list) = env_files {
        for path in std::env::split_paths(list) {
            take(&file(&path, true));
        }
    }
    let crate_dir = crate_dir
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("CARGO_MANIFEST_DIR").map(Into::into));
    if let Some(dir) = crate_dir {
        take(&file(&dir.join(CRATE_FILE), false));
    }
    static IN_CODE: OnceLock<Vec<Parsed>> = OnceLock::new();
    for parsed in IN_CODE.get_or_init(|| crate::inline::registered().map(in_code).collect()) {
        take(parsed);
    }
    for suppression in attribute {
        take(&in_code(suppression));
    }
    (entries, errors)
}

fn in_code(suppression: &crate::run::Suppression) -> Parsed {
    let origin = Origin {
        path: suppression.file.to_owned(),
        first_line: suppression.line,
    };
    parse(suppression.text, &origin)
        .map(|found| found.into_iter().map(Arc::new).collect())
        .map_err(|e| format!("malformed suppression: {e}"))
}

/// A suppressions file, parsed once per process. A missing file is an
/// error only if it was asked for (`required`).
fn file(path: &std::path::Path, required: bool) -> Parsed {
    static FILES: OnceLock<Mutex<HashMap<std::path::PathBuf, Parsed>>> = OnceLock::new();
    let files = FILES.get_or_init(Default::default);
    if let Some(hit) = files.lock().unwrap_or_else(|e| e.into_inner()).get(path) {
        return hit.clone();
    }
    let parsed = match std::fs::read_to_string(path) {
        Ok(text) => {
            let origin = Origin {
                path: path.display().to_string(),
                first_line: 1,
            };
            parse(&text, &origin)
                .map(|found| found.into_iter().map(Arc::new).collect())
                .map_err(|e| format!("malformed suppressions file: {e}"))
        }
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!(
            "cannot read the suppressions file {} named by LEAKCHECK_SUPPRESSIONS: {e}",
            path.display()
        )),
    };
    files
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(path.to_owned(), parsed.clone());
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn origin(first_line: u32) -> Origin {
        Origin {
            path: "test.supp".to_string(),
            first_line,
        }
    }

    fn parse_ok(text: &str) -> Vec<Entry> {
        match parse(text, &origin(1)) {
            Ok(entries) => entries,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    fn one(text: &str) -> Entry {
        let mut entries = parse_ok(text);
        assert_eq!(entries.len(), 1, "{entries:?}");
        entries.remove(0)
    }

    fn error(text: &str, first_line: u32) -> ParseError {
        match parse(text, &origin(first_line)) {
            Ok(entries) => panic!("expected an error, got {entries:?}"),
            Err(e) => e,
        }
    }

    /// A C frame: the same demangled and mangled name.
    fn c(function: &'static str) -> MatchFrame<'static> {
        MatchFrame {
            function: Some(function),
            mangled: Some(function),
            ..MatchFrame::default()
        }
    }

    fn at(
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

    const DEF: Kind = Kind::DefinitelyLost;

    /// A `Memcheck:Leak` block with these space-separated frame lines.
    fn block(frames: &str) -> Entry {
        one(&format!(
            "{{\n n\n Memcheck:Leak\n{}\n}}",
            frames.replace(' ', "\n")
        ))
    }

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

    #[test]
    fn frame_level_wildcards() {
        let stack = [c("a"), c("b"), c("c"), c("d")];
        let yes = [
            "...",
            "... fun:a",
            "... fun:c",
            "... fun:d",
            "fun:malloc ...",
            "fun:malloc ... fun:b ... fun:d",
            "fun:malloc ... fun:a fun:b",
            "fun:malloc fun:a ... fun:d",
            "fun:malloc fun:a ... ... fun:b",
            "fun:malloc ... fun:a ... fun:d ...",
            "... ... fun:malloc ... fun:a",
        ];
        // `...` alone is rejected at parse time; test it through the rest.
        for frames in &yes[1..] {
            assert!(block(frames).matches(DEF, "malloc", &stack), "{frames}");
        }
        let no = [
            "... fun:e",
            "fun:malloc fun:b",
            "fun:malloc ... fun:b fun:a",
            "fun:malloc ... fun:d fun:e",
            "fun:a ...",
            "fun:malloc ... fun:d ... fun:a",
        ];
        for frames in no {
            assert!(!block(frames).matches(DEF, "malloc", &stack), "{frames}");
        }
    }

    #[test]
    fn name_wildcards() {
        let matches = |pattern: &str, name: &'static str| {
            one(&format!(
                "{{\n n\n Memcheck:Leak\n fun:malloc\n fun:{pattern}\n}}"
            ))
            .matches(DEF, "malloc", &[c(name)])
        };
        assert!(matches("make_*", "make_buffer"));
        assert!(matches("*buffer", "make_buffer"));
        assert!(matches("*", "x"));
        assert!(matches("m?ke_buffer", "make_buffer"));
        assert!(matches("*::*::f", "a::b::c::f"));
        assert!(matches("a*b*c", "abc"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(matches("??", "é!"));
        assert!(!matches("??", "é"));
        assert!(!matches("make_*", "remake_buffer"));
        assert!(!matches("make", "make_buffer"));
        assert!(!matches("a*b*c", "abcd"));
        assert!(!matches("m?ke", "mke"));
        // Allocator frame and `malloc*`.
        let entry = one("{\n n\n Memcheck:Leak\n fun:*alloc\n}");
        assert!(entry.matches(DEF, "calloc", &[]));
        assert!(entry.matches(DEF, "realloc", &[]));
        assert!(!entry.matches(DEF, "posix_memalign", &[]));
    }

    #[test]
    fn mangled_and_demangled_names() {
        let frame = MatchFrame {
            function: Some("mycrate::make"),
            mangled: Some("_ZN7mycrate4make17h0123456789abcdefE"),
            ..MatchFrame::default()
        };
        for pattern in [
            "mycrate::make",
            "_ZN7mycrate4make17h0123456789abcdefE",
            "_ZN7mycrate4make*",
            "*::make",
        ] {
            let entry = one(&format!("{{\n n\n Memcheck:Leak\n ...\n fun:{pattern}\n}}"));
            assert!(entry.matches(DEF, "malloc", &[frame]), "{pattern}");
        }
        // A frame without a function never matches `fun:`, even `fun:*`...
        let unknown = MatchFrame {
            module: Some("/lib/libfoo.so"),
            ..MatchFrame::default()
        };
        let entry = one("{\n n\n Memcheck:Leak\n fun:malloc\n fun:*\n}");
        assert!(!entry.matches(DEF, "malloc", &[unknown]));
        // ... but `...` skips it.
        let entry = one("{\n n\n Memcheck:Leak\n fun:malloc\n ...\n fun:g\n}");
        assert!(entry.matches(DEF, "malloc", &[unknown, c("g")]));
    }

    #[test]
    fn obj_patterns() {
        let stack = [
            MatchFrame {
                module: Some("/usr/lib/x86_64-linux-gnu/libfoo.so.1"),
                ..MatchFrame::default()
            },
            at("main", "main.c", 3, "/home/me/prog"),
        ];
        for frames in [
            "fun:malloc obj:*/libfoo.so*",
            "fun:malloc obj:/usr/lib/x86_64-linux-gnu/libfoo.so.1 obj:/home/me/prog",
            "fun:malloc ... obj:*prog",
            // The allocator frame's object is libc (or valgrind's preload).
            "obj:*libc.so* obj:*libfoo*",
            "obj:/lib/x86_64-linux-gnu/libc.so.6",
            "obj:/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so",
            "obj:*",
        ] {
            assert!(block(frames).matches(DEF, "malloc", &stack), "{frames}");
        }
        for frames in [
            "fun:malloc obj:*/libbar.so*",
            "obj:*libfoo* obj:*libfoo*",
            "fun:malloc obj:libfoo.so.1",
        ] {
            assert!(!block(frames).matches(DEF, "malloc", &stack), "{frames}");
        }
    }

    #[test]
    fn src_patterns() {
        let stack = [
            at("make_buffer", "/tmp/vgt/prog.c", 5, "/tmp/vgt/prog"),
            at("leak_one", "/tmp/vgt/prog.c", 10, "/tmp/vgt/prog"),
            c("no_debug_info"),
        ];
        for frames in [
            // As valgrind: the file name without its directory.
            "fun:malloc src:prog.c:5 src:prog.c",
            "fun:malloc src:prog.c:5 src:prog.c:10",
            "fun:malloc src:*.c src:p?og.c",
            "... src:prog.c:10",
            "fun:malloc src:prog.c:0",
            // leakcheck: with a `/`, the whole path.
            "fun:malloc src:/tmp/vgt/prog.c:5",
            "fun:malloc src:*/vgt/prog.c",
        ] {
            assert!(block(frames).matches(DEF, "malloc", &stack), "{frames}");
        }
        for frames in [
            "fun:malloc src:prog.c:6",
            "fun:malloc src:vgt/prog.c",
            "fun:malloc src:other.c",
            // The allocator frame has no source.
            "src:* ...",
        ] {
            assert!(!block(frames).matches(DEF, "malloc", &stack), "{frames}");
        }
        // Nor has a frame without debug info.
        assert!(!block("fun:malloc ... src:*").matches(DEF, "malloc", &stack[2..]));
    }

    #[test]
    fn match_leak_kinds() {
        let with_line =
            |line: &str| one(&format!("{{\n n\n Memcheck:Leak\n {line}\n fun:malloc\n}}"));
        let kinds = [
            Kind::DefinitelyLost,
            Kind::IndirectlyLost,
            Kind::PossiblyLost,
            Kind::StillReachable,
        ];
        let check = |entry: Entry, expected: [bool; 4]| {
            let got = kinds.map(|k| entry.matches(k, "malloc", &[]));
            assert_eq!(got, expected, "{entry:?}");
        };
        // No line: every kind, as the manual says.
        check(one("{\n n\n Memcheck:Leak\n fun:malloc\n}"), [true; 4]);
        check(
            with_line("match-leak-kinds: definite"),
            [true, false, false, false],
        );
        check(
            with_line("match-leak-kinds:possible,reachable"),
            [false, false, true, true],
        );
        check(
            with_line("match-leak-kinds: indirect, definite"),
            [true, true, false, false],
        );
        check(with_line("match-leak-kinds: all"), [true; 4]);
        check(with_line("match-leak-kinds: none"), [false; 4]);
    }

    #[test]
    fn several_blocks_comments_and_whitespace() {
        let text = "# leading comment\n\
                    \n\
                    {\r\n\
                    \t  first # not a comment: part of the name\n\
                    # comment inside\n\
                    \n   Memcheck:Leak   \n\
                    \x20 # another\n\
                    match-leak-kinds: definite\n\
                    fun:malloc\n\
                    \x20 # between frames\n\
                    fun:f\n\
                    }\n\
                    leak:lsan_thing\n\
                    {\n\
                    second\n\
                    Memcheck:Leak\n\
                    fun:calloc\n\
                    }   \n\
                    # trailing";
        let entries = parse_ok(text);
        let names: Vec<_> = entries.iter().map(Entry::name).collect();
        assert_eq!(
            names,
            [
                "first # not a comment: part of the name",
                "leak:lsan_thing",
                "second"
            ]
        );
        let lines: Vec<_> = entries.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 14, 15]);
        assert!(entries.iter().all(|e| e.path == "test.supp"));
        assert!(entries[0].matches(DEF, "malloc", &[c("f")]));
        assert!(entries[2].matches(Kind::PossiblyLost, "calloc", &[c("f")]));
        assert!(parse_ok("").is_empty());
        assert!(parse_ok("\n  # only comments\n\n").is_empty());
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

    #[test]
    fn errors_with_line_numbers() {
        let kinds_message = KindSet::parse("definit").unwrap_err();
        assert!(kinds_message.contains("; expected"), "{kinds_message}");
        let cases: [(&str, u32, &str); 22] = [
            (
                "{\n}\n",
                2,
                "expected a suppression name after `{`, found `}`",
            ),
            (
                "{\n",
                1,
                "unterminated suppression starting at line 1: expected `}`",
            ),
            (
                "\n{\n  Memcheck:Leak\n  fun:malloc\n}\n",
                3,
                "expected a suppression name after `{`, found the `Tool:Kind` line \
                 `Memcheck:Leak`",
            ),
            (
                "{\n name\n Memcheck\n fun:malloc\n}",
                3,
                "expected `Tool:Kind` (e.g. `Memcheck:Leak`), found `Memcheck`",
            ),
            (
                "{\n name\n}",
                3,
                "expected `Tool:Kind` (e.g. `Memcheck:Leak`), found `}`",
            ),
            (
                "{\n name\n Memcheck:Leek\n fun:malloc\n}",
                3,
                "unknown Memcheck suppression kind `Leek`; expected `Leak`",
            ),
            (
                "{\n n\n Memcheck:Leak\n match-leak-kinds: definit\n fun:malloc\n}",
                4,
                "unknown leak kind `definit` in match-leak-kinds; expected `definite`",
            ),
            (
                "{\n n\n Memcheck:Leak\n match-leak-kinds:\n fun:malloc\n}",
                4,
                "expected leak kinds after `match-leak-kinds:`",
            ),
            (
                "{\n n\n Memcheck:Leak\n match-leak-kind: definite\n fun:malloc\n}",
                4,
                "expected `match-leak-kinds: <kinds>` or a frame (`fun:`, `obj:`, `src:` or \
                 `...`), found `match-leak-kind: definite`",
            ),
            (
                "{\n n\n Memcheck:Param\n fun:write\n}",
                4,
                "expected the system call parameter after `Memcheck:Param` (e.g. \
                 `write(buf)`), found `fun:write`",
            ),
            (
                "{\n n\n Memcheck:Leak\n fun:malloc\n func:f\n}",
                5,
                "expected a frame (`fun:`, `obj:`, `src:` or `...`) or `}`, found `func:f`",
            ),
            (
                "{\n n\n Memcheck:Leak\n}",
                4,
                "suppression `n` has no frames",
            ),
            (
                "{\n n\n Memcheck:Leak\n ...\n ...\n}",
                6,
                "suppression `n` has only `...` frames",
            ),
            (
                "{\n n\n Memcheck:Leak\n fun:malloc\n",
                4,
                "unterminated suppression starting at line 1: expected `}`",
            ),
            (
                "{\n n\n Memcheck:Leak\n fun:malloc\n\n{\n m\n Memcheck:Leak\n fun:f\n}",
                6,
                "unterminated suppression starting at line 1: expected `}`",
            ),
            (
                "{\n n\n Helgrind:Race\n fun:malloc\n",
                4,
                "unterminated suppression starting at line 1: expected `}`",
            ),
            (
                "{\n n\n Memcheck:Leak\n fun:\n}",
                4,
                "empty pattern after `fun:`",
            ),
            (
                "{\n n\n Memcheck:Leak\n src:a.c:x\n}",
                4,
                "expected a line number after `:` in `src:FILE:LINE`, found `x`",
            ),
            (
                "leak:ok\nmalloc\n",
                2,
                "expected `{` to start a valgrind suppression or `leak:<pattern>` for \
                 LeakSanitizer, found `malloc`",
            ),
            (
                "fun:malloc\n",
                1,
                "expected `{` to start a valgrind suppression or `leak:<pattern>` for \
                 LeakSanitizer, found `fun:malloc` (a valgrind block's line outside a \
                 block: is its `{` missing?)",
            ),
            ("}\n", 1, "expected `{` to start a valgrind suppression"),
            ("\n\nleak:   \n", 3, "empty `leak:` pattern"),
        ];
        for (text, line, message) in cases {
            let e = error(text, 1);
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.starts_with(message), "{text:?}: {e}");
            assert_eq!(e.path, "test.supp");
            // The same text inside a file, starting at line 40.
            let e = error(text, 40);
            assert_eq!(e.line, line + 39, "{text:?}: {e}");
            if message.starts_with("unterminated") {
                assert!(e.message.contains("starting at line 40"), "{e}");
            }
        }
        // The first error is reported.
        let e = error("{\n}\nbogus\n", 1);
        assert_eq!(e.line, 2);
        assert_eq!(
            e.to_string(),
            "test.supp:2: expected a suppression name after `{`, found `}`"
        );
    }

    #[test]
    fn never_panics_on_odd_input() {
        for text in [
            "{",
            "}",
            "{{",
            ":",
            "leak:",
            "leak::",
            "{\n\u{e9}\n\u{e9}:\u{e9}\n\u{e9}\n}",
            "{\nn\nMemcheck:Leak\nsrc::\n}",
            "{\nn\nMemcheck:Leak\nsrc:a:99999999999\n}",
            "\u{feff}",
            "\r\r\r",
            "{\nn\n:Leak\n}",
            "{\nn\nMemcheck:\n}",
            "{\nn\nMemcheck:Leak\nfun:\u{e9}?*\n}",
        ] {
            let _ = parse(text, &origin(u32::MAX));
        }
        let entry = one("{\nn\nMemcheck:Leak\nfun:?\u{e9}*?\n}");
        assert!(!entry.matches(DEF, "\u{e9}", &[]));
        assert!(entry.matches(DEF, "a\u{e9}\u{e9}\u{e9}", &[]));
    }

    #[test]
    fn pathological_patterns_finish_fast() {
        let start = Instant::now();
        let name = "a".repeat(2000);
        let star_pattern = format!("{}b", "a*".repeat(200));
        let mut frames = String::new();
        for _ in 0..60 {
            frames.push_str(&format!("...\nfun:{star_pattern}\n...\nfun:*a*a*a*a*\n"));
        }
        let entry = one(&format!("{{\nn\nMemcheck:Leak\n{frames}}}"));
        let stack: Vec<_> = (0..200)
            .map(|_| MatchFrame {
                function: Some(name.as_str()),
                mangled: Some(name.as_str()),
                ..MatchFrame::default()
            })
            .collect();
        assert!(!entry.matches(DEF, "malloc", &stack));
        let lsan = one(&format!("leak:^{star_pattern}$"));
        assert!(!lsan.matches(DEF, "malloc", &stack));
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    }

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
