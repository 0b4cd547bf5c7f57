//! Reports: a check's surviving blocks grouped by allocation site and
//! kind, symbolised, matched against suppressions ([`suppress`]), and their
//! text and JSON forms. Imports go down only: to `verdict`, `track`,
//! `stacks` and `sys`.

#[cfg(feature = "pprof")]
pub(crate) mod pprof;
pub(crate) mod suppress;

use crate::stacks;
use crate::stacks::symbols::{self, Symbol};
use crate::track::table::{Allocator, Block};
use crate::verdict::{Kind, KindSet};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The JSON schema this version writes.
pub const SCHEMA: &str = "leakcheck/v1";

/// Which allocator family made a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The C `malloc` family.
    C,
    /// Rust's global allocator.
    Rust,
}

/// The overall verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nothing fails the check.
    Clean,
    /// Blocks leaked.
    Leaked,
    /// The check could not be trusted or the heap was misused; see
    /// [`Report::errors`].
    Error,
}

/// One frame of an allocation stack.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Frame {
    /// Demangled function name, without the hash.
    pub function: Option<String>,
    /// Source file, where debug info has it.
    pub file: Option<String>,
    /// Source line, where debug info has it.
    pub line: Option<u32>,
    /// The executable or shared object the code is in.
    pub module: Option<String>,
    /// The return address, as `0x…`.
    pub ip: String,
}

/// Blocks that leaked from one allocation site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Leak {
    /// Classification.
    pub kind: Kind,
    /// C or Rust.
    pub origin: Origin,
    /// The allocating function: `malloc`, `calloc`, `realloc`, …, or `alloc`,
    /// `alloc_zeroed`, `realloc` for Rust.
    pub allocator: &'static str,
    /// How many blocks.
    pub blocks: usize,
    /// Their total size.
    pub bytes: usize,
    /// The allocation stack, the allocating call first, ending at the test.
    pub stack: Vec<Frame>,
    /// For a suppressed group: the suppression that matched, as
    /// `name (file:line)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed_by: Option<String>,
    /// For any other group: a valgrind-format suppression that matches it,
    /// ready to paste into a suppressions file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppression: Option<String>,
}

/// How much one suppression matched in a check.
///
/// ```
/// use leakcheck::__private::{check_with, Options, Suppression};
///
/// static SUPPRESS: [Suppression; 1] = [Suppression {
///     text: "leak:leaky_helper",
///     file: file!(),
///     line: line!(),
/// }];
///
/// #[inline(never)]
/// fn leaky_helper() {
///     std::hint::black_box(Box::leak(Box::new([0u8; 32])));
/// }
///
/// let report = check_with(Options::new().suppress(&SUPPRESS), || {
///     leaky_helper();
///     std::hint::black_box(());
/// });
/// assert!(report.is_clean());
/// let used = &report.suppressions_used()[0];
/// assert_eq!((used.name.as_str(), used.blocks, used.bytes), ("leak:leaky_helper", 1, 32));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SuppressionUse {
    /// The valgrind block's name, or `leak:<pattern>`.
    pub name: String,
    /// Where it was written: `file:line`.
    pub location: String,
    /// Blocks it suppressed.
    pub blocks: usize,
    /// Their total size.
    pub bytes: usize,
}

/// A problem that makes the verdict untrustworthy, or heap misuse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReportError {
    /// A stable identifier: `c_allocations_invisible`, `untracked_blocks`,
    /// `c_allocations_untracked` (a warning).
    pub kind: &'static str,
    /// What happened and what to do.
    pub message: String,
}

/// Blocks and bytes of one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Count {
    /// Number of blocks.
    pub blocks: usize,
    /// Their total size.
    pub bytes: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
struct Summary {
    leaked_blocks: usize,
    leaked_bytes: usize,
    kinds: BTreeMap<Kind, Count>,
}

/// What the checked code did with the heap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Blocks allocated (a reallocation counts as a free and an allocation).
    pub allocations: usize,
    /// Blocks freed.
    pub frees: usize,
    /// Highest total of live bytes at any moment.
    pub peak_live_bytes: usize,
    /// Wall time of the checked code, in milliseconds.
    pub duration_ms: f64,
}

/// The result of one check: the verdict, what leaked and where.
///
/// ```
/// let report = leakcheck::check(|| {
///     let v = vec![1u8; 100];
///     drop(v);
/// });
/// assert!(report.is_clean());
/// assert_eq!(report.leaked_blocks(), 0);
/// assert!(report.to_json().contains(r#""status": "clean""#));
/// ```
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    schema: &'static str,
    test: String,
    binary: String,
    status: Status,
    summary: Summary,
    leaks: Vec<Leak>,
    suppressions_used: Vec<SuppressionUse>,
    errors: Vec<ReportError>,
    warnings: Vec<ReportError>,
    stats: Stats,
    /// The kinds that fail this test, so a reader of the JSON (the
    /// `cargo leakcheck summary`) knows which groups failed.
    #[serde(rename = "fail_on", serialize_with = "serialize_kinds")]
    failing: KindSet,
    /// When the check finished, in milliseconds since the Unix epoch: which
    /// of two reports of one test is the later.
    unix_time_ms: u64,
    #[serde(skip)]
    json_path: Option<PathBuf>,
}

fn serialize_kinds<S: serde::Serializer>(set: &KindSet, s: S) -> Result<S::Ok, S::Error> {
    let kinds = [
        Kind::DefinitelyLost,
        Kind::IndirectlyLost,
        Kind::PossiblyLost,
        Kind::StillReachable,
    ];
    s.collect_seq(kinds.into_iter().filter(|k| set.contains(*k)))
}

impl Report {
    /// True when nothing fails the check.
    pub fn is_clean(&self) -> bool {
        self.status == Status::Clean
    }

    /// The verdict.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The test (or thread) the check ran for.
    pub fn test(&self) -> &str {
        &self.test
    }

    /// Number of blocks that fail the check.
    pub fn leaked_blocks(&self) -> usize {
        self.summary.leaked_blocks
    }

    /// Bytes in the blocks that fail the check.
    pub fn leaked_bytes(&self) -> usize {
        self.summary.leaked_bytes
    }

    /// Blocks and bytes of each kind found, failing or not.
    ///
    /// ```
    /// use leakcheck::Kind;
    /// use std::sync::OnceLock;
    ///
    /// static CACHE: OnceLock<Vec<u8>> = OnceLock::new();
    /// let report = leakcheck::check(|| {
    ///     CACHE.get_or_init(|| vec![1u8; 100]);
    /// });
    /// // Still reachable from a global: shown, but the check passes.
    /// assert!(report.is_clean());
    /// assert_eq!(report.kinds()[&Kind::StillReachable].bytes, 100);
    /// ```
    pub fn kinds(&self) -> &BTreeMap<Kind, Count> {
        &self.summary.kinds
    }

    /// One entry per allocation site and kind, largest first.
    pub fn leaks(&self) -> &[Leak] {
        &self.leaks
    }

    /// The suppressions that matched, with what each suppressed (see
    /// [`SuppressionUse`] for an example).
    pub fn suppressions_used(&self) -> &[SuppressionUse] {
        &self.suppressions_used
    }

    /// Why the verdict is an error, if it is.
    pub fn errors(&self) -> &[ReportError] {
        &self.errors
    }

    /// What limits the check without invalidating it (such as C allocations
    /// not being tracked on this platform).
    pub fn warnings(&self) -> &[ReportError] {
        &self.warnings
    }

    /// What the checked code did with the heap.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Where the JSON report was written (only for `#[leak_checked]` tests).
    pub fn json_path(&self) -> Option<&Path> {
        self.json_path.as_deref()
    }

    pub(crate) fn set_json_path(&mut self, path: PathBuf) {
        self.json_path = Some(path);
    }

    /// The JSON report (schema `leakcheck/v1`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| {
            format!("{{\"schema\":\"{SCHEMA}\",\"status\":\"error\",\"errors\":[{{\"kind\":\"json\",\"message\":\"{e}\"}}]}}")
        })
    }

    fn sites(&self) -> usize {
        self.leaks
            .iter()
            .filter(|l| self.failing.contains(l.kind))
            .count()
    }
}

/// What the engine hands over at the end of a scope.
pub(crate) struct Outcome {
    pub(crate) test: String,
    pub(crate) failing: KindSet,
    pub(crate) blocks: Vec<(Block, Kind)>,
    pub(crate) stats: Stats,
    pub(crate) suppressions: Vec<Arc<suppress::Entry>>,
    pub(crate) errors: Vec<ReportError>,
    pub(crate) warnings: Vec<ReportError>,
}

/// Frames of std's own machinery that allocate for the runtime, not for the
/// code under test: the stdout/stderr buffers made on first use, libtest's
/// output capture buffer grown by `print!` (`print_to_buffer_if_capture_used`),
/// and the per-thread stack-overflow bookkeeping std's thread start adds to
/// a process-wide map (`stack_overflow::thread_info`), whose nodes a test
/// that starts threads may happen to split. Reading stdin is not in the list:
/// what it fills is the caller's.
const RUNTIME_FRAMES: &[&str] = &[
    "std::io::stdio::_print",
    "std::io::stdio::_eprint",
    "std::io::stdio::print_to",
    "std::io::stdio::stdout",
    "std::io::stdio::stderr",
];

/// Parts of std paths that mark runtime frames wherever std keeps the module
/// (it moves between releases).
const RUNTIME_MODULES: &[&str] = &["::stack_overflow::"];

fn is_runtime(symbols: &[Symbol]) -> bool {
    symbols
        .iter()
        .filter_map(|s| s.function.as_deref())
        .any(|f| {
            RUNTIME_FRAMES.iter().any(|prefix| f.starts_with(prefix))
                || ((f.starts_with("std::") || f.starts_with("<std::"))
                    && RUNTIME_MODULES.iter().any(|module| f.contains(module)))
        })
}

const PLUMBING: &[&str] = &[
    "alloc::",
    "<alloc::",
    "core::",
    "<core::",
    "std::alloc::",
    "<std::alloc::",
    "__rust",
    "__rg_",
    "__rdl_",
    "leakcheck::",
    "<leakcheck::",
    "hashbrown::",
    "<hashbrown::",
    "std::collections::",
    "<std::collections::",
];

/// Allocator plumbing above the code that asked for memory: the allocator
/// and collection internals, including trait impls on std's own or builtin
/// types (`<u8 as alloc::vec::spec_from_elem::SpecFromElem>::from_elem`),
/// but not a user type's impl of a std trait (`<my::Foo as Clone>::clone` is
/// the user's code).
fn is_plumbing(function: &str) -> bool {
    if let Some((self_type, trait_path)) = split_qualified(function) {
        let trait_path = trait_path.trim_start_matches('<');
        let std_trait = PLUMBING.iter().any(|p| trait_path.starts_with(p));
        let std_type =
            PLUMBING.iter().any(|p| self_type.starts_with(p)) || is_builtin_type(self_type);
        return std_trait && std_type
            || PLUMBING
                .iter()
                .any(|p| self_type.starts_with(p) && p.ends_with("::"));
    }
    PLUMBING.iter().any(|p| function.starts_with(p))
}

/// `<Self as Trait>::method` → (`Self`, `Trait`).
fn split_qualified(function: &str) -> Option<(&str, &str)> {
    let inner = function.strip_prefix('<')?;
    let mut depth = 0usize;
    let mut as_at = None;
    for (i, c) in inner.char_indices() {
        match c {
            '<' => depth += 1,
            '>' if depth == 0 => return as_at.map(|a: usize| (&inner[..a], &inner[a + 4..i])),
            '>' => depth -= 1,
            ' ' if depth == 0 && as_at.is_none() && inner[i..].starts_with(" as ") => {
                as_at = Some(i)
            }
            _ => {}
        }
    }
    None
}

/// A builtin type (`u8`, `str`, `&[T]`) or a generic parameter (`T`): what
/// demangled names show for std's blanket and primitive impls. User types
/// always appear with their path (`mycrate::Foo`).
fn is_builtin_type(ty: &str) -> bool {
    let mut inner = ty.trim();
    loop {
        let stripped = ["&mut ", "&", "*const ", "*mut ", "[", "("]
            .iter()
            .find_map(|p| inner.strip_prefix(p));
        match stripped {
            Some(rest) => inner = rest.trim_start(),
            None => break,
        }
    }
    !inner.contains("::") || PLUMBING.iter().any(|p| inner.starts_with(p))
}

/// Harness and std frames below the test function.
fn is_harness(function: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "core::",
        "<core::",
        "std::",
        "<std::",
        "alloc::",
        "<alloc::",
        "leakcheck::",
        "<leakcheck::",
        "__rust",
    ];
    PREFIXES.iter().any(|p| function.starts_with(p))
}

/// Cuts allocator plumbing from the top and harness frames from the bottom,
/// unless nothing else would be left.
fn trim(symbols: &[Symbol]) -> &[Symbol] {
    fn name(s: &Symbol) -> &str {
        s.function.as_deref().unwrap_or("")
    }
    let start = symbols
        .iter()
        .position(|s| !is_plumbing(name(s)))
        .unwrap_or(0);
    let rest = &symbols[start..];
    let end = rest
        .iter()
        .rposition(|s| !is_harness(name(s)))
        .map_or(rest.len(), |i| i + 1);
    &rest[..end]
}

/// leakcheck's own frames, between the allocator and the code that called
/// it (the tracking allocator and its `#[global_allocator]` shims).
fn is_own(function: &str) -> bool {
    function.starts_with("leakcheck::")
        || function.starts_with("<leakcheck::")
        || function.starts_with("__rg_")
}

/// The C function valgrind would show as a block's first frame: Rust's
/// allocations reach glibc as `malloc`, `calloc` and `realloc`.
fn c_allocator(allocator: Allocator) -> &'static str {
    match allocator {
        Allocator::RustAlloc => "malloc",
        Allocator::RustAllocZeroed => "calloc",
        Allocator::RustRealloc => "realloc",
        c => c.name(),
    }
}

fn match_frame(s: &Symbol) -> suppress::MatchFrame<'_> {
    suppress::MatchFrame {
        function: s.function.as_deref(),
        mangled: s.mangled.as_deref(),
        file: s.file.as_deref(),
        line: s.line,
        module: s.module.as_deref(),
    }
}

fn label(entry: &suppress::Entry) -> String {
    format!(
        "{} ({}:{})",
        entry.name(),
        display_path(&entry.path),
        entry.line
    )
}

fn to_frame(s: &Symbol) -> Frame {
    Frame {
        function: s.function.clone(),
        file: s.file.clone(),
        line: s.line,
        module: s.module.clone(),
        ip: format!("{:#x}", s.ip),
    }
}

/// Builds the report. Symbolises the stacks of surviving blocks.
pub(crate) fn build(outcome: Outcome) -> Report {
    let Outcome {
        test,
        failing,
        blocks,
        stats,
        suppressions,
        mut errors,
        warnings,
    } = outcome;
    let mut used: Vec<(usize, usize)> = vec![(0, 0); suppressions.len()];
    // Group by (stack, allocator, kind); symbolise each distinct stack once.
    let mut groups: HashMap<(u32, Allocator, Kind), (usize, usize)> = HashMap::new();
    for (b, kind) in &blocks {
        let entry = groups.entry((b.stack, b.allocator(), *kind)).or_default();
        entry.0 += 1;
        entry.1 += b.size;
    }
    let mut ips = Vec::new();
    let mut leaks = Vec::new();
    for ((stack, allocator, kind), (count, bytes)) in groups {
        stacks::frames(stack, &mut ips);
        let symbols: Vec<Symbol> = ips
            .iter()
            .flat_map(|&ip| symbols::resolve(ip).to_vec())
            .collect();
        if is_runtime(&symbols) {
            continue;
        }
        // What suppressions match: the allocator valgrind would show, then
        // the whole stack below leakcheck's own frames.
        let own = symbols
            .iter()
            .take_while(|s| is_own(s.function.as_deref().unwrap_or("")))
            .count();
        let full = &symbols[own..];
        let allocator_fn = c_allocator(allocator);
        let matching: Vec<_> = full.iter().map(match_frame).collect();
        let mut kind = kind;
        let mut suppressed_by = None;
        if let Some(i) = suppressions
            .iter()
            .position(|e| e.matches(kind, allocator_fn, &matching))
        {
            used[i].0 += count;
            used[i].1 += bytes;
            suppressed_by = Some(label(&suppressions[i]));
            kind = Kind::Suppressed;
        }
        let trimmed = trim(full);
        // Plumbing frames were cut from the top.
        let skipped = !std::ptr::eq(trimmed.as_ptr(), full.as_ptr());
        let suppression = suppressed_by.is_none().then(|| {
            let frames: Vec<_> = trimmed.iter().map(match_frame).collect();
            suppress::generate(kind, allocator_fn, skipped, &frames)
        });
        leaks.push(Leak {
            kind,
            origin: if allocator.is_rust() {
                Origin::Rust
            } else {
                Origin::C
            },
            allocator: allocator.name(),
            blocks: count,
            bytes,
            stack: trimmed.iter().map(to_frame).collect(),
            suppressed_by,
            suppression,
        });
    }
    // Several stacks can render the same (an inlined frame, a loop): merge.
    leaks.sort_by(|a, b| {
        (a.kind, a.origin, a.allocator, &a.stack).cmp(&(b.kind, b.origin, b.allocator, &b.stack))
    });
    leaks.dedup_by(|later, first| {
        let same = later.kind == first.kind
            && later.origin == first.origin
            && later.allocator == first.allocator
            && later.stack == first.stack;
        if same {
            first.blocks += later.blocks;
            first.bytes += later.bytes;
        }
        same
    });
    // What fails first, then what does not, then the suppressed; each
    // largest first.
    let rank = |l: &Leak| match l.kind {
        Kind::Suppressed => 2,
        k if failing.contains(k) => 0,
        _ => 1,
    };
    leaks.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then(b.bytes.cmp(&a.bytes))
            .then(b.blocks.cmp(&a.blocks))
            .then(a.kind.cmp(&b.kind))
    });

    let suppressions_used = suppressions
        .iter()
        .zip(used)
        .filter(|(_, (blocks, _))| *blocks > 0)
        .map(|(entry, (blocks, bytes))| SuppressionUse {
            name: entry.name().to_owned(),
            location: format!("{}:{}", entry.path, entry.line),
            blocks,
            bytes,
        })
        .collect();
    let mut summary = Summary::default();
    for leak in &leaks {
        let count = summary.kinds.entry(leak.kind).or_default();
        count.blocks += leak.blocks;
        count.bytes += leak.bytes;
        if failing.contains(leak.kind) {
            summary.leaked_blocks += leak.blocks;
            summary.leaked_bytes += leak.bytes;
        }
    }
    errors.dedup();
    let status = if !errors.is_empty() {
        Status::Error
    } else if summary.leaked_blocks > 0 {
        Status::Leaked
    } else {
        Status::Clean
    };
    Report {
        schema: SCHEMA,
        test,
        binary: std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        status,
        summary,
        leaks,
        suppressions_used,
        errors,
        warnings,
        stats,
        failing,
        unix_time_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| t.as_millis() as u64),
        json_path: None,
    }
}

fn write_frame(f: &mut fmt::Formatter<'_>, frame: &Frame) -> fmt::Result {
    let function = frame.function.as_deref().unwrap_or("???");
    write!(f, "\n    at {function}")?;
    match (&frame.file, frame.line) {
        (Some(file), Some(line)) => write!(f, " ({}:{line})", display_path(file)),
        (Some(file), None) => write!(f, " ({})", display_path(file)),
        _ => match &frame.module {
            Some(module) => write!(f, " (in {module})"),
            None => Ok(()),
        },
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Shows a path relative to the working directory when it is below it.
fn display_path(file: &str) -> String {
    if let Ok(cwd) = std::env::current_dir() {
        if let Ok(rel) = Path::new(file).strip_prefix(&cwd) {
            return rel.display().to_string();
        }
    }
    file.to_owned()
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let test = &self.test;
        match self.status {
            Status::Clean => write!(
                f,
                "leakcheck: `{test}` is clean ({}, {}, peak {})",
                plural(self.stats.allocations, "allocation", "allocations"),
                plural(self.stats.frees, "free", "frees"),
                plural(self.stats.peak_live_bytes, "byte", "bytes")
            )?,
            Status::Leaked => write!(
                f,
                "leakcheck: `{test}` leaked {} ({}) from {}",
                plural(self.summary.leaked_blocks, "block", "blocks"),
                plural(self.summary.leaked_bytes, "byte", "bytes"),
                plural(self.sites(), "allocation site", "allocation sites")
            )?,
            Status::Error => write!(
                f,
                "leakcheck: `{test}` could not be checked reliably ({})",
                plural(self.errors.len(), "error", "errors")
            )?,
        }
        for error in &self.errors {
            write!(f, "\n\nerror: {}", error.message)?;
        }
        for warning in &self.warnings {
            write!(f, "\n\nwarning: {}", warning.message)?;
        }
        if !self.summary.kinds.is_empty() {
            // valgrind's LEAK SUMMARY, largest first.
            let mut kinds: Vec<_> = self.summary.kinds.iter().collect();
            kinds.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then(a.0.cmp(b.0)));
            write!(f, "\n\nleak summary:")?;
            for (kind, count) in kinds {
                write!(
                    f,
                    "\n    {:>15}: {} in {}{}",
                    kind.describe(),
                    plural(count.bytes, "byte", "bytes"),
                    plural(count.blocks, "block", "blocks"),
                    if self.failing.contains(*kind) {
                        ""
                    } else {
                        " (does not fail the test)"
                    }
                )?;
            }
        }
        for leak in self.leaks.iter().filter(|l| l.kind != Kind::Suppressed) {
            let origin = match leak.origin {
                Origin::C => "C",
                Origin::Rust => "Rust",
            };
            let fails = self.failing.contains(leak.kind);
            write!(
                f,
                "\n\n{} in {} {} {}, {} {}",
                plural(leak.bytes, "byte", "bytes"),
                plural(leak.blocks, "block", "blocks"),
                if leak.blocks == 1 { "is" } else { "are" },
                leak.kind.describe(),
                origin,
                leak.allocator,
            )?;
            if !fails {
                write!(f, " (does not fail the test)")?;
            }
            if leak.stack.is_empty() {
                write!(f, "\n    at <no stack captured>")?;
            }
            for frame in &leak.stack {
                write_frame(f, frame)?;
            }
            if let (true, Some(suppression)) = (fails, &leak.suppression) {
                write!(f, "\n  suppress it with:")?;
                for line in suppression.lines() {
                    write!(f, "\n  {line}")?;
                }
            }
        }
        let suppressed: Vec<_> = self
            .leaks
            .iter()
            .filter(|l| l.kind == Kind::Suppressed)
            .collect();
        if !suppressed.is_empty() {
            write!(f, "\n\nsuppressed:")?;
            for leak in suppressed {
                write!(
                    f,
                    "\n    {} in {} at {}, by {}",
                    plural(leak.bytes, "byte", "bytes"),
                    plural(leak.blocks, "block", "blocks"),
                    leak.stack
                        .iter()
                        .find_map(|s| s.function.as_deref())
                        .unwrap_or("<no stack captured>"),
                    leak.suppressed_by.as_deref().unwrap_or("?"),
                )?;
            }
            write!(
                f,
                "\n\nsuppressions used:\n     blocks      bytes  suppression"
            )?;
            for used in &self.suppressions_used {
                write!(
                    f,
                    "\n{:>11}{:>11}  {} ({})",
                    used.blocks,
                    used.bytes,
                    used.name,
                    display_path(&used.location)
                )?;
            }
        }
        if let Some(path) = &self.json_path {
            write!(f, "\n\nJSON report: {}", path.display())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(function: &str) -> Symbol {
        Symbol {
            ip: 1,
            function: Some(function.to_owned()),
            mangled: None,
            file: None,
            line: None,
            module: None,
        }
    }

    #[test]
    fn trim_cuts_plumbing_above_and_harness_below() {
        let stack = [
            sym("__rust_alloc"),
            sym("alloc::raw_vec::RawVec<T,A>::grow_one"),
            sym("mycrate::build"),
            sym("mycrate::tests::t::{{closure}}"),
            sym("core::ops::function::FnOnce::call_once"),
            sym("leakcheck::run::call_body"),
        ];
        let names: Vec<_> = trim(&stack)
            .iter()
            .map(|s| s.function.clone().unwrap())
            .collect();
        assert_eq!(names, ["mycrate::build", "mycrate::tests::t::{{closure}}"]);
    }

    #[test]
    fn trim_keeps_everything_when_only_plumbing_is_there() {
        let stack = [
            sym("alloc::alloc::alloc"),
            sym("core::ops::function::FnOnce::call_once"),
        ];
        assert_eq!(trim(&stack).len(), 2);
    }

    #[test]
    fn plumbing_includes_std_trait_impls_on_std_and_builtin_types_only() {
        for plumbing in [
            "<u8 as alloc::vec::spec_from_elem::SpecFromElem>::from_elem",
            "<&str as <alloc::ffi::c_str::CString>::new::SpecNewImpl>::spec_new_impl",
            "<alloc::vec::Vec<T,A> as core::clone::Clone>::clone",
            "<alloc::string::String as core::convert::From<&str>>::from",
            "<[u8] as alloc::borrow::ToOwned>::to_owned",
            "<T as alloc::slice::<impl [T]>::to_vec_in::ConvertVec>::to_vec",
            "<T as alloc::string::ToString>::to_string",
            "std::collections::hash::map::HashMap<K,V,S,A>::insert",
            "alloc::raw_vec::RawVec<T,A>::grow_one",
            "__rust_alloc",
        ] {
            assert!(is_plumbing(plumbing), "{plumbing}");
        }
        for user in [
            "<mycrate::Foo as core::clone::Clone>::clone",
            "<mycrate::Foo as alloc::string::ToString>::to_string",
            "<&mycrate::Foo as core::fmt::Display>::fmt",
            "mycrate::build",
            "<mycrate::Foo>::new",
            "fixture_leak",
        ] {
            assert!(!is_plumbing(user), "{user}");
        }
    }

    #[test]
    fn std_thread_start_bookkeeping_is_the_runtimes() {
        assert!(is_runtime(&[
            sym("alloc::collections::btree::map::BTreeMap<K,V,A>::insert"),
            sym("std::sys::pal::unix::stack_overflow::thread_info::set_current_info"),
        ]));
        assert!(!is_runtime(&[sym("mycrate::stack_overflow::f")]));
    }

    #[test]
    fn stdio_buffers_are_the_runtimes() {
        assert!(is_runtime(&[
            sym("alloc::raw_vec::finish_grow"),
            sym("std::io::stdio::print_to_buffer_if_capture_used")
        ]));
        assert!(!is_runtime(&[sym("mycrate::f")]));
    }
}
