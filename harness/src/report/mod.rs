//! Reports: a check's surviving blocks grouped by allocation site and
//! kind, symbolised, matched against suppressions ([`suppress`]), and their
//! text and JSON forms. Imports go down only: to `verdict`, `track`,
//! `stacks` and `sys`.

mod json;
pub(crate) mod misuse;
mod paths;
#[cfg(feature = "pprof")]
pub(crate) mod pprof;
pub(crate) mod suppress;

use crate::stacks;
use crate::stacks::symbols::{self, Owner, Symbol};
use crate::sys::fasthash::FastMap;
use crate::track::table::{Allocator, Block};
use crate::verdict::{Kind, KindSet, Survivors};
use serde::Serialize;
use std::collections::BTreeMap;
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
///
/// A definitely lost group counts the indirectly lost blocks that hang off
/// it; those are groups of their own too:
///
/// ```
/// use leakcheck::Kind;
///
/// struct Node {
///     next: Option<Box<Node>>,
///     _payload: [u64; 3],
/// }
///
/// let report = leakcheck::check(|| {
///     let tail = Box::new(Node { next: None, _payload: [0; 3] });
///     let head = Box::new(Node { next: Some(tail), _payload: [0; 3] });
///     std::hint::black_box(Box::leak(head));
/// });
/// let head = &report.leaks()[0];
/// assert_eq!((head.kind, head.blocks, head.bytes), (Kind::DefinitelyLost, 1, 32));
/// assert_eq!((head.indirect_blocks, head.indirect_bytes), (Some(1), Some(32)));
/// let tail = &report.leaks()[1];
/// assert_eq!((tail.kind, tail.indirect_blocks), (Kind::IndirectlyLost, None));
/// assert!(report.to_string().contains("64 (32 direct, 32 indirect) bytes in 1 block"));
/// ```
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
    /// For a definitely or possibly lost group: the indirectly lost blocks
    /// that hang off its blocks (reached only through them; valgrind's
    /// "indirect" part of the group's record). `None` for the other kinds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indirect_blocks: Option<usize>,
    /// The bytes of [`indirect_blocks`](Leak::indirect_blocks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indirect_bytes: Option<usize>,
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
    /// For an indirectly lost group: how many of its blocks hang off no
    /// definitely lost group of this report (their root was suppressed, or
    /// is the runtime's), so that the text shows the group on its own.
    #[serde(skip)]
    unheld: usize,
}

impl Leak {
    /// Its bytes and what hangs off it.
    fn total_bytes(&self) -> usize {
        self.bytes + self.indirect_bytes.unwrap_or(0)
    }
}

/// How many leak sections a failure message shows by default.
pub(crate) const DEFAULT_SECTIONS: usize = 5;

/// What the text form shows (the JSON has everything), from the attribute
/// and the environment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shown {
    /// The kinds given sections; `None`: definitely and possibly lost, and
    /// still reachable when it fails the test.
    pub(crate) kinds: Option<KindSet>,
    /// At most this many sections.
    pub(crate) sections: usize,
    /// The test crate's directory, to find the workspace's files.
    pub(crate) workspace_from: Option<&'static str>,
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
    #[serde(skip)]
    errors: Vec<ReportError>,
    /// The JSON `errors`: heap misuse in full, then the other errors.
    #[serde(rename = "errors")]
    error_list: misuse::ErrorList,
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
    /// The kinds the text gives sections of.
    #[serde(skip)]
    shown: KindSet,
    /// At most this many sections in the text.
    #[serde(skip)]
    sections: usize,
    #[serde(skip)]
    places: paths::Places,
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

    /// One entry per allocation site and kind: what fails first, largest
    /// (with the indirectly lost blocks that hang off it) first.
    pub fn leaks(&self) -> &[Leak] {
        &self.leaks
    }

    /// The suppressions that matched, with what each suppressed (see
    /// [`SuppressionUse`] for an example).
    pub fn suppressions_used(&self) -> &[SuppressionUse] {
        &self.suppressions_used
    }

    /// Why the verdict is an error, if it is: heap misuse first (each as
    /// in [`Report::misuse`]), then problems that make it untrustworthy.
    pub fn errors(&self) -> &[ReportError] {
        &self.errors
    }

    /// The heap misuse the check saw (see [`Misuse`](crate::Misuse)).
    pub fn misuse(&self) -> &[misuse::Misuse] {
        &self.error_list.misuse
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
        json::report(self)
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
    /// This check's body code: the type path of its body closure.
    pub(crate) body: Option<&'static str>,
    /// Other checks' body code (see [`other_checks_work`]).
    pub(crate) others: Vec<&'static str>,
    pub(crate) failing: KindSet,
    pub(crate) shown: Shown,
    pub(crate) blocks: Survivors,
    pub(crate) stats: Stats,
    pub(crate) suppressions: Vec<Arc<suppress::Entry>>,
    pub(crate) errors: Vec<ReportError>,
    pub(crate) warnings: Vec<ReportError>,
    pub(crate) misuse: misuse::MisuseInput,
}

/// Whether a leak's stack shows it to be another check's work: its
/// innermost frame that is written inside a check's body closure (a
/// function or closure whose path lies below the body's type path) belongs
/// to a body in `others`, not to `own`. A thread inherits the scope of the
/// check that created it; a pool created by one check and used by another
/// runs the other's closures, whose paths say whose they are. `None`
/// (charged as inherited) when no frame lies in any body.
fn other_checks_work(
    symbols: &[Symbol],
    own: Option<&'static str>,
    others: &[&'static str],
) -> Option<&'static str> {
    let within = |function: &str, body: &str| {
        function
            .strip_prefix(body)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    };
    for function in symbols.iter().filter_map(|s| s.function.as_deref()) {
        if own.is_some_and(|own| within(function, own)) {
            return None;
        }
        if let Some(&other) = others.iter().find(|&&other| within(function, other)) {
            return Some(other);
        }
    }
    None
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

/// Whether the stack passes through one of std's runtime functions above.
/// Only frames that are std's by identity ([`Owner::Std`]: the source file
/// or crate the compiler recorded) are compared with std's names, so a
/// user's `std_io_print` or `my::std::io::stdout` is never the runtime's.
fn is_runtime(symbols: &[Symbol], owners: &[Owner]) -> bool {
    symbols
        .iter()
        .zip(owners)
        .filter(|(_, owner)| **owner == Owner::Std)
        .filter_map(|(s, _)| s.function.as_deref())
        .any(|f| {
            RUNTIME_FRAMES.iter().any(|prefix| f.starts_with(prefix))
                || RUNTIME_MODULES.iter().any(|module| f.contains(module))
        })
}

/// Drops the base frame's own function from a stack whose walk reached the
/// scope's base (the last return address is in `run::run_body` or the
/// thread trampoline, by position). Its inlined frames stay: a body inlined
/// into `run_body` resolves at that address as the body's frames, then
/// `run_body`'s. Without debug info the address resolves to one symbol and
/// nothing tells whether the body is inlined in it, so it is kept.
fn cut_base_frame(symbols: &mut Vec<Symbol>) {
    if symbols.last().is_some_and(|s| s.file.is_some()) {
        symbols.pop();
    }
}

/// Frames that are not the code under test's: std's and leakcheck's own.
fn is_runtime_code(owner: Owner) -> bool {
    matches!(owner, Owner::Std | Owner::Leakcheck)
}

/// Cuts std's and leakcheck's frames from the top (the allocator shim and
/// std's allocation plumbing above the code that asked for memory) and from
/// the bottom (std's thread start, `FnOnce::call_once`), unless nothing else
/// would be left. Frames without debug info are cut at the bottom only
/// between std frames (compiler helpers such as `__rust_try` in std's thread
/// start); elsewhere they are a C library's or code built without debug
/// info and stay.
fn trim<'s>(symbols: &'s [Symbol], owners: &[Owner]) -> &'s [Symbol] {
    let start = owners
        .iter()
        .position(|&o| !is_runtime_code(o))
        .unwrap_or(0);
    // An unknown frame counts as the nearest known frame above it.
    let mut above_is_user = true;
    let mut end = start;
    for (i, &owner) in owners.iter().enumerate().skip(start) {
        let user = match owner {
            Owner::Unknown => above_is_user,
            known => !is_runtime_code(known),
        };
        if owner != Owner::Unknown {
            above_is_user = user;
        }
        if user {
            end = i + 1;
        }
    }
    if end == start {
        return &symbols[start..];
    }
    &symbols[start..end]
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

fn label(entry: &suppress::Entry, places: &paths::Places) -> String {
    format!(
        "{} ({}:{})",
        entry.name(),
        display_path(places, &entry.path),
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
        body,
        others,
        failing,
        shown,
        blocks,
        stats,
        suppressions,
        mut errors,
        mut warnings,
        misuse: misuse_input,
    } = outcome;
    // Only a report that shows a stack or a suppression shows a path: a
    // clean one (most checks) skips the working directory and the
    // workspace look-up.
    let places = if blocks.is_empty() && misuse_input.is_empty() {
        paths::Places::default()
    } else {
        paths::Places::find(shown.workspace_from)
    };
    let mut foreign: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    let mut used: Vec<(usize, usize)> = vec![(0, 0); suppressions.len()];
    // Group by (stack, allocator, kind); symbolise each distinct stack once.
    let groups = blocks.tally(group_key);
    let mut ips = Vec::new();
    let mut leaks = Vec::new();
    // The group each leak in `leaks` was made from.
    let mut made_from = Vec::new();
    for (key, (count, bytes)) in groups {
        let (stack, allocator, kind) = key;
        let at_base = stacks::frames(stack, &mut ips);
        let mut symbols: Vec<Symbol> = ips
            .iter()
            .flat_map(|&ip| symbols::resolve(ip).to_vec())
            .collect();
        if at_base {
            cut_base_frame(&mut symbols);
        }
        let owners: Vec<Owner> = symbols.iter().map(symbols::owner).collect();
        if is_runtime(&symbols, &owners) {
            continue;
        }
        if let Some(other) = other_checks_work(&symbols, body, &others) {
            let entry = foreign.entry(other).or_default();
            entry.0 += count;
            entry.1 += bytes;
            continue;
        }
        // What suppressions match: the allocator valgrind would show, then
        // the whole stack below leakcheck's own frames (the allocator shim).
        let own = owners
            .iter()
            .take_while(|&&o| o == Owner::Leakcheck)
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
            suppressed_by = Some(label(&suppressions[i], &places));
            kind = Kind::Suppressed;
        }
        let trimmed = trim(full, &owners[own..]);
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
            indirect_blocks: None,
            indirect_bytes: None,
            stack: trimmed.iter().map(to_frame).collect(),
            suppressed_by,
            suppression,
            unheld: 0,
        });
        made_from.push(key);
    }
    fold_indirect(&blocks, &mut leaks, &made_from);
    for (other, (count, bytes)) in foreign {
        warnings.push(ReportError {
            kind: "blocks_of_another_check",
            message: format!(
                "{count} {} ({bytes} bytes) left by the work of another check (`{other}`) on a \
                 thread this test's scope started (a shared pool) are charged to no test",
                if count == 1 { "block" } else { "blocks" }
            ),
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
            let add = |a: Option<usize>, b: Option<usize>| a.zip(b).map(|(a, b)| a + b);
            first.indirect_blocks = add(first.indirect_blocks, later.indirect_blocks);
            first.indirect_bytes = add(first.indirect_bytes, later.indirect_bytes);
            first.unheld += later.unheld;
        }
        same
    });
    // What fails first, then what does not, then the suppressed; each
    // largest first, counting what hangs off a group.
    let rank = |l: &Leak| match l.kind {
        Kind::Suppressed => 2,
        k if failing.contains(k) => 0,
        _ => 1,
    };
    leaks.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then(b.total_bytes().cmp(&a.total_bytes()))
            .then(b.blocks.cmp(&a.blocks))
            .then(a.kind.cmp(&b.kind))
    });

    let misuse = misuse::build(misuse_input, &suppressions, &mut used, &mut errors);
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
    let error_list = misuse::ErrorList {
        misuse,
        others: errors.clone(),
    };
    errors.splice(0..0, error_list.misuse.iter().map(misuse::Misuse::as_error));
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
        binary: crate::config::exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        status,
        summary,
        leaks,
        suppressions_used,
        errors,
        error_list,
        warnings,
        stats,
        failing,
        unix_time_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| t.as_millis() as u64),
        json_path: None,
        shown: shown
            .kinds
            .unwrap_or(if failing.contains(Kind::StillReachable) {
                KindSet::DEFAULT_SHOWN.with(Kind::StillReachable)
            } else {
                KindSet::DEFAULT_SHOWN
            }),
        sections: shown.sections,
        places,
    }
}

/// What blocks are grouped by: their stack, allocator and kind.
type GroupKey = (u32, Allocator, Kind);

fn group_key(b: &Block, kind: Kind) -> GroupKey {
    (b.stack, b.allocator(), kind)
}

/// Counts each indirectly lost block in the group of the definitely lost
/// block it hangs off (valgrind's "N (D direct, I indirect) bytes"), when
/// both groups are reported (not suppressed, not the runtime's); the other
/// indirectly lost blocks are `unheld` in their own group. `made_from[i]`
/// is the group `leaks[i]` was made from.
fn fold_indirect(blocks: &Survivors, leaks: &mut [Leak], made_from: &[GroupKey]) {
    let reported = |kind: Kind| -> FastMap<GroupKey, ()> {
        leaks
            .iter()
            .zip(made_from)
            .filter(|(leak, _)| leak.kind == kind)
            .map(|(_, &key)| (key, ()))
            .collect()
    };
    let (holding, indirect) = (
        reported(Kind::DefinitelyLost),
        reported(Kind::IndirectlyLost),
    );
    let roots: FastMap<usize, ()> = blocks
        .with_roots()
        .filter_map(|(_, _, root)| Some((root?, ())))
        .collect();
    let group_of_root: FastMap<usize, GroupKey> = blocks
        .iter()
        .filter(|(b, _)| roots.contains_key(&b.addr))
        .map(|(b, &kind)| (b.addr, group_key(b, kind)))
        .collect();
    let mut held: FastMap<GroupKey, (usize, usize)> = FastMap::default();
    let mut unheld: FastMap<GroupKey, usize> = FastMap::default();
    for (b, kind, root) in blocks.with_roots() {
        let own = group_key(b, kind);
        if !indirect.contains_key(&own) {
            continue;
        }
        let root = root.and_then(|r| group_of_root.get(&r));
        match root.filter(|key| holding.contains_key(key)) {
            Some(key) => {
                let entry = held.entry(*key).or_default();
                entry.0 += 1;
                entry.1 += b.size;
            }
            None => *unheld.entry(own).or_default() += 1,
        }
    }
    for (leak, key) in leaks.iter_mut().zip(made_from) {
        match leak.kind {
            Kind::DefinitelyLost | Kind::PossiblyLost => {
                let (n, bytes) = held.get(key).copied().unwrap_or_default();
                leak.indirect_blocks = Some(n);
                leak.indirect_bytes = Some(bytes);
            }
            Kind::IndirectlyLost => leak.unheld = unheld.get(key).copied().unwrap_or(0),
            _ => {}
        }
    }
}

fn write_frame(f: &mut fmt::Formatter<'_>, frame: &Frame, places: &paths::Places) -> fmt::Result {
    let function = frame.function.as_deref().unwrap_or("???");
    write!(f, "\n    at {function}")?;
    match (&frame.file, frame.line) {
        (Some(file), Some(line)) => write!(f, " ({}:{line})", display_path(places, file)),
        (Some(file), None) => write!(f, " ({})", display_path(places, file)),
        _ => match &frame.module {
            Some(module) => write!(f, " (in {module})"),
            None => Ok(()),
        },
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// `75960` as valgrind writes it: `75,960`.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && i % 3 == digits.len() % 3 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Shows a path as a person recognises it (see [`paths`]): a registry
/// crate's file from its `crate-version/` directory, a git checkout's as
/// `name@rev/`, std's from `library/`, the workspace's own files relative
/// to the workspace root, else relative to the working directory.
fn display_path(places: &paths::Places, file: &str) -> String {
    places.show(file)
}

impl Report {
    /// Whether `leak` gets a section of its own in the text: its kind is
    /// shown, or it is an indirectly lost group that fails and whose blocks
    /// hang off no section (its root was suppressed).
    fn has_section(&self, leak: &Leak) -> bool {
        leak.kind != Kind::Suppressed
            && (self.shown.contains(leak.kind)
                || (leak.kind == Kind::IndirectlyLost
                    && leak.unheld > 0
                    && self.failing.contains(leak.kind)))
    }

    /// One site's section: its header (valgrind's `N (D direct, I
    /// indirect) bytes in B blocks are definitely lost` when blocks hang off
    /// it), its stack, and a suppression for it when it fails.
    fn write_section(&self, f: &mut fmt::Formatter<'_>, leak: &Leak) -> fmt::Result {
        let origin = match leak.origin {
            Origin::C => "C",
            Origin::Rust => "Rust",
        };
        let fails = self.failing.contains(leak.kind);
        let total = leak.total_bytes();
        let bytes = match leak.indirect_bytes {
            Some(indirect) if indirect > 0 => format!(
                "{} ({} direct, {} indirect) bytes",
                thousands(total),
                thousands(leak.bytes),
                thousands(indirect)
            ),
            _ => plural(leak.bytes, "byte", "bytes"),
        };
        write!(
            f,
            "\n\n{bytes} in {} {} {}, {} {}",
            plural(leak.blocks, "block", "blocks"),
            if total == 1 { "is" } else { "are" },
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
            write_frame(f, frame, &self.places)?;
        }
        if let (true, Some(suppression)) = (fails, &leak.suppression) {
            write!(f, "\n  suppress it with:")?;
            for line in suppression.lines() {
                write!(f, "\n  {line}")?;
            }
        }
        Ok(())
    }

    /// The message's last line when sites were left out: how many, of
    /// which kinds, how to list them, and where every one is (the JSON).
    fn write_more(
        &self,
        f: &mut fmt::Formatter<'_>,
        by_kind: &BTreeMap<Kind, usize>,
        beyond: usize,
    ) -> fmt::Result {
        let mut parts: Vec<String> = by_kind
            .iter()
            .map(|(kind, n)| format!("{n} {}", kind.describe()))
            .collect();
        if !by_kind.is_empty() {
            let last = parts.len() - 1;
            parts[last].push_str(" (LEAKCHECK_SHOW=all lists them)");
        }
        if beyond > 0 {
            parts.push(format!(
                "{beyond} past the first {} (LEAKCHECK_MAX_SECTIONS)",
                plural(self.sections, "section", "sections")
            ));
        }
        let more = by_kind.values().sum::<usize>() + beyond;
        write!(
            f,
            "\n\n{} more {} not shown: {}; ",
            thousands(more),
            if more == 1 {
                "allocation site"
            } else {
                "allocation sites"
            },
            parts.join(", ")
        )?;
        match &self.json_path {
            Some(path) => write!(f, "all are in the JSON report: {}", path.display()),
            None => write!(f, "all are in the report's JSON (`Report::to_json`)"),
        }
    }
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
            Status::Error if !self.misuse().is_empty() => {
                let leaked = (self.summary.leaked_blocks, self.summary.leaked_bytes);
                misuse::write_summary(f, test, self.misuse().len(), leaked)?
            }
            Status::Error => write!(
                f,
                "leakcheck: `{test}` could not be checked reliably ({})",
                plural(self.errors.len(), "error", "errors")
            )?,
        }
        misuse::write_text(f, self.misuse(), &self.places)?;
        for error in &self.errors[self.misuse().len()..] {
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
        // The sections, in the order of `leaks`: what fails first, largest
        // (with what hangs off it) first; at most `sections` of them.
        let mut not_shown: BTreeMap<Kind, usize> = BTreeMap::new();
        let (mut written, mut beyond) = (0, 0);
        for leak in self.leaks.iter().filter(|l| l.kind != Kind::Suppressed) {
            if !self.has_section(leak) {
                *not_shown.entry(leak.kind).or_default() += 1;
            } else if written == self.sections {
                beyond += 1;
            } else {
                written += 1;
                self.write_section(f, leak)?;
            }
        }

        let suppressed: Vec<_> = self
            .leaks
            .iter()
            .filter(|l| l.kind == Kind::Suppressed)
            .collect();
        if !suppressed.is_empty() {
            write!(f, "\n\nsuppressed:")?;
            // As many lines as sections, the largest first.
            let listed = suppressed.len().min(self.sections.max(1));
            for leak in &suppressed[..listed] {
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
            if listed < suppressed.len() {
                let more = suppressed.len() - listed;
                write!(
                    f,
                    "\n    and {} more suppressed {}, in the JSON report",
                    thousands(more),
                    if more == 1 { "site" } else { "sites" }
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
                    display_path(&self.places, &used.location)
                )?;
            }
        }
        // The last line says where the JSON report is; when sites were
        // left out, it is the line that counts them.
        if !not_shown.is_empty() || beyond > 0 {
            self.write_more(f, &not_shown, beyond)?;
        } else if let Some(path) = &self.json_path {
            write!(f, "\n\nJSON report: {}", path.display())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(function: &str, file: Option<&str>) -> Symbol {
        Symbol {
            ip: 1,
            function: Some(function.to_owned()),
            mangled: None,
            file: file.map(str::to_owned),
            line: None,
            module: None,
        }
    }

    #[test]
    fn numbers_are_grouped_by_thousands_as_valgrind_does() {
        let cases = [
            (0, "0"),
            (7, "7"),
            (999, "999"),
            (1_000, "1,000"),
            (75_960, "75,960"),
            (123_456, "123,456"),
            (1_234_567, "1,234,567"),
        ];
        for (n, text) in cases {
            assert_eq!(thousands(n), text);
        }
        assert_eq!(plural(1, "block", "blocks"), "1 block");
        assert_eq!(plural(4_096, "byte", "bytes"), "4,096 bytes");
    }

    #[test]
    fn another_checks_work_is_told_by_the_innermost_body_frame() {
        let x = Some("t::x::{{closure}}");
        let others = ["t::y::{{closure}}", "t::x2::{{closure}}"];
        let stack = |names: &[&str]| names.iter().map(|n| sym(n, None)).collect::<Vec<_>>();
        let y_on_x_pool = stack(&[
            "fixture_leak",
            "t::y::{{closure}}::{{closure}}",
            "rayon::job",
        ]);
        assert_eq!(
            other_checks_work(&y_on_x_pool, x, &others),
            Some("t::y::{{closure}}")
        );
        // x's own closures, and a name that only starts like x's.
        let own = stack(&["t::x::{{closure}}::{{closure}}", "t::y::{{closure}}"]);
        assert_eq!(other_checks_work(&own, x, &others), None);
        let sibling = stack(&["t::x2::{{closure}}"]);
        assert_eq!(
            other_checks_work(&sibling, x, &others),
            Some("t::x2::{{closure}}")
        );
        // No body on the stack (C threads, the pool's own work): inherited.
        assert_eq!(
            other_checks_work(&stack(&["worker", "start"]), x, &others),
            None
        );
    }

    /// Where the compiler recorded std's sources in this binary.
    fn std_file(relative: &str) -> String {
        let here = symbols::resolve(std::io::stdout as fn() -> std::io::Stdout as usize + 1);
        // The outermost frame at the address: `stdout` itself.
        let stdio = here.last().and_then(|s| s.file.clone());
        let stdio = stdio.expect("std has debug info");
        let library = stdio.strip_suffix("std/src/io/stdio.rs").unwrap();
        format!("{library}{relative}")
    }

    fn owners(stack: &[Symbol]) -> Vec<Owner> {
        stack.iter().map(symbols::owner).collect()
    }

    fn names(stack: &[Symbol]) -> Vec<&str> {
        stack
            .iter()
            .map(|s| s.function.as_deref().unwrap())
            .collect()
    }

    #[test]
    fn trim_cuts_std_and_own_frames_above_and_below_by_source() {
        let alloc = std_file("alloc/src/raw_vec/mod.rs");
        let function = std_file("core/src/ops/function.rs");
        let global = concat!(env!("CARGO_MANIFEST_DIR"), "/src/global.rs");
        // A test crate named `core`: its frames are its own by file.
        let stack = [
            sym("__rustc::__rust_alloc", Some(global)),
            sym("alloc::raw_vec::RawVec<T,A>::grow_one", Some(&alloc)),
            sym("core::build", Some("/home/u/core/tests/core.rs")),
            sym("core::t::{{closure}}", Some("/home/u/core/tests/core.rs")),
            sym("core::ops::function::FnOnce::call_once", Some(&function)),
        ];
        let owned = owners(&stack);
        assert_eq!(
            owned,
            [
                Owner::Leakcheck,
                Owner::Std,
                Owner::Other,
                Owner::Other,
                Owner::Std
            ]
        );
        assert_eq!(
            names(trim(&stack, &owned)),
            ["core::build", "core::t::{{closure}}"]
        );
    }

    #[test]
    fn frames_without_debug_info_are_cut_only_between_std_frames() {
        let std_frame = std_file("std/src/panicking.rs");
        let stack = [
            sym("sqlite3MemMalloc", None),
            sym("user::test::{{closure}}", Some("/home/u/src/lib.rs")),
            sym("std::panicking::catch_unwind::do_call", Some(&std_frame)),
            sym("__rust_try", None),
            sym("std::panicking::catch_unwind", Some(&std_frame)),
        ];
        let owned = owners(&stack);
        assert_eq!(
            names(trim(&stack, &owned)),
            ["sqlite3MemMalloc", "user::test::{{closure}}"]
        );
        // Nothing known: nothing is cut.
        let unknown = [
            sym("inflate", None),
            sym("alloc::raw_vec::finish_grow", None),
        ];
        assert_eq!(trim(&unknown, &owners(&unknown)).len(), 2);
    }

    #[test]
    fn trim_keeps_everything_when_only_std_is_there() {
        let stack = [
            sym("alloc::alloc::alloc", Some(&std_file("alloc/src/alloc.rs"))),
            sym(
                "core::ops::function::FnOnce::call_once",
                Some(&std_file("core/src/ops/function.rs")),
            ),
        ];
        assert_eq!(trim(&stack, &owners(&stack)).len(), 2);
    }

    #[test]
    fn v0_symbols_name_their_crate_root() {
        let root = |m: &str| symbols::v0_crate_root_for_test(m);
        assert_eq!(
            root("_RNvNtNtCsjrHSEGnQ3l9_3std2io5stdio6stdout"),
            Some("sjrHSEGnQ3l9_3std".to_owned())
        );
        assert_eq!(
            root("_RNvMs_NtCslNYArtu3iFV_5alloc7raw_vecNtB4_11RawVecInner15try_allocate_in"),
            Some("slNYArtu3iFV_5alloc".to_owned())
        );
        assert_eq!(
            root("_RNvCsfLfy6EI15iL_7___rustc12___rust_alloc"),
            Some("sfLfy6EI15iL_7___rustc".to_owned())
        );
        assert_eq!(root("_ZN4core3fmt5write17h0123456789abcdefE"), None);
        // A std function seen without debug info is std's by its crate.
        let mut stdout = symbols::resolve(std::io::stdout as fn() -> std::io::Stdout as usize + 1)
            .last()
            .cloned()
            .unwrap();
        stdout.file = None;
        let mangled = stdout.mangled.clone().unwrap_or_default();
        if mangled.starts_with("_R") {
            assert_eq!(symbols::owner(&stdout), Owner::Std, "{mangled}");
        }
        let mut user = stdout;
        user.mangled = Some("_ZN4core3fmt5write17h0123456789abcdefE".to_owned());
        assert_eq!(symbols::owner(&user), Owner::Unknown);
    }

    #[test]
    fn std_thread_start_bookkeeping_is_the_runtimes() {
        let thread_info = std_file("std/src/sys/pal/unix/stack_overflow.rs");
        let stack = [
            sym(
                "alloc::collections::btree::map::BTreeMap<K,V,A>::insert",
                Some(&std_file("alloc/src/collections/btree/map.rs")),
            ),
            sym(
                "std::sys::pal::unix::stack_overflow::thread_info::set_current_info",
                Some(&thread_info),
            ),
        ];
        assert!(is_runtime(&stack, &owners(&stack)));
        let user = [sym(
            "std::sys::pal::unix::stack_overflow::thread_info::set_current_info",
            Some("/home/u/std/src/lib.rs"),
        )];
        assert!(!is_runtime(&user, &owners(&user)));
    }

    #[test]
    fn stdio_buffers_are_the_runtimes_and_a_users_namesakes_are_not() {
        let stack = [
            sym(
                "alloc::raw_vec::finish_grow",
                Some(&std_file("alloc/src/raw_vec/mod.rs")),
            ),
            sym(
                "std::io::stdio::print_to_buffer_if_capture_used",
                Some(&std_file("std/src/io/stdio.rs")),
            ),
        ];
        assert!(is_runtime(&stack, &owners(&stack)));
        // A user crate named `std` with a module `io::stdio`.
        let user = [sym(
            "std::io::stdio::_print",
            Some("/home/u/std/tests/std.rs"),
        )];
        assert!(!is_runtime(&user, &owners(&user)));
    }
}
