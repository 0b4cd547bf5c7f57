//! Heap misuse in a report: each error a check's misuse events
//! (`track::misuse`) recorded, symbolised, matched against suppressions,
//! in valgrind's words in the text and as `errors` entries in the JSON.

use super::paths::Places;
#[cfg(leakcheck_interpose)]
use super::{cut_base_frame, to_frame, trim};
use super::{suppress, write_frame, Frame, ReportError};
#[cfg(leakcheck_interpose)]
use crate::stacks;
#[cfg(leakcheck_interpose)]
use crate::stacks::symbols::{self, Owner, Symbol};
use serde::ser::SerializeSeq;
use serde::Serialize;
use std::fmt;
use std::sync::Arc;

/// One heap misuse: a double or invalid free, a free through the other
/// allocator family, a Rust deallocation with another layout, a write past
/// a block's end or to a freed block.
///
/// ```
/// let report = leakcheck::check(|| {
///     let layout = std::alloc::Layout::from_size_align(24, 8).unwrap();
///     // SAFETY (of the example): leakcheck reports the wrong size and
///     // still frees the block, as glibc would.
///     unsafe {
///         let p = std::alloc::alloc(layout);
///         std::alloc::dealloc(p, std::alloc::Layout::from_size_align(16, 8).unwrap());
///     }
/// });
/// # if cfg!(all(target_os = "linux", target_env = "gnu")) {
/// assert_eq!(report.status(), leakcheck::Status::Error);
/// assert_eq!(report.misuse()[0].kind, "layout_mismatch");
/// assert_eq!(report.misuse()[0].size, Some(24));
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Misuse {
    /// `double_free`, `invalid_free`, `mismatched_free`, `layout_mismatch`,
    /// `overrun` or `write_after_free`.
    pub kind: &'static str,
    /// One line: what happened, and where the address is.
    pub message: String,
    /// The pointer passed to the bad call, or the first byte found changed
    /// (`0x…`).
    pub address: String,
    /// The size of the block concerned, where one is known.
    pub size: Option<usize>,
    /// The bad call's stack (empty when found by the verdict).
    pub stack: Vec<Frame>,
    /// Where the block was allocated (empty where unknown).
    pub allocated_at: Vec<Frame>,
    /// Where the block was freed (double free, write after free).
    pub freed_at: Vec<Frame>,
    /// A valgrind suppression that matches it, to paste into a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppression: Option<String>,
}

/// What the engine hands the report about misuse.
#[derive(Default)]
pub(crate) struct MisuseInput {
    #[cfg(leakcheck_interpose)]
    pub(crate) events: Vec<crate::track::misuse::Event>,
    /// Misuse the engine had no room to record.
    pub(crate) dropped: usize,
}

impl MisuseInput {
    /// No misuse, recorded or dropped.
    pub(crate) fn is_empty(&self) -> bool {
        #[cfg(leakcheck_interpose)]
        if !self.events.is_empty() {
            return false;
        }
        self.dropped == 0
    }
}

/// The JSON `errors` list: misuse first, then the other errors.
#[derive(Clone, Debug, Default)]
pub(crate) struct ErrorList {
    pub(crate) misuse: Vec<Misuse>,
    pub(crate) others: Vec<ReportError>,
}

impl Serialize for ErrorList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.misuse.len() + self.others.len()))?;
        for misuse in &self.misuse {
            seq.serialize_element(misuse)?;
        }
        for other in &self.others {
            seq.serialize_element(other)?;
        }
        seq.end()
    }
}

impl Misuse {
    /// As a plain error, for [`crate::Report::errors`].
    pub(crate) fn as_error(&self) -> ReportError {
        ReportError {
            kind: self.kind,
            message: self.message.clone(),
        }
    }
}

/// A stack as the report shows it, and the frames suppressions match.
#[cfg(leakcheck_interpose)]
struct Shown {
    full: Vec<Symbol>,
    /// Where the trimmed stack starts in `full`, and its length.
    start: usize,
    len: usize,
}

#[cfg(leakcheck_interpose)]
impl Shown {
    fn of(stack: u32) -> Shown {
        let mut ips = Vec::new();
        let at_base = stacks::frames(stack, &mut ips);
        let mut full: Vec<Symbol> = ips
            .iter()
            .flat_map(|&ip| symbols::resolve(ip).to_vec())
            .collect();
        if at_base {
            cut_base_frame(&mut full);
        }
        let owners: Vec<Owner> = full.iter().map(symbols::owner).collect();
        let own = owners
            .iter()
            .take_while(|&&o| o == Owner::Leakcheck)
            .count();
        let full: Vec<Symbol> = full.split_off(own);
        let trimmed = trim(&full, &owners[own..]);
        let start = trimmed.as_ptr() as usize - full.as_ptr() as usize;
        let start = start / std::mem::size_of::<Symbol>().max(1);
        let len = trimmed.len();
        Shown { full, start, len }
    }

    fn frames(&self) -> Vec<Frame> {
        self.trimmed().iter().map(to_frame).collect()
    }

    fn trimmed(&self) -> &[Symbol] {
        &self.full[self.start..self.start + self.len]
    }
}

/// valgrind's suppression kind line for a misuse kind (`Memcheck:…`).
#[cfg(leakcheck_interpose)]
fn memcheck_kind(kind: &str, size_wrong: bool) -> &'static str {
    match kind {
        "overrun" | "write_after_free" => "Addr1",
        "layout_mismatch" if size_wrong => "SizeMismatch",
        "layout_mismatch" => "AlignMismatch",
        _ => "Free",
    }
}

/// Builds the misuse entries of a report: symbolised, suppressed ones
/// counted in `used` (one block and the block's bytes each) and left out.
pub(crate) fn build(
    input: MisuseInput,
    suppressions: &[Arc<suppress::Entry>],
    used: &mut [(usize, usize)],
    errors: &mut Vec<ReportError>,
) -> Vec<Misuse> {
    if input.dropped > 0 {
        errors.push(ReportError {
            kind: "misuse_dropped",
            message: format!(
                "{} more heap misuse errors of this test were not recorded (more than 4096 \
                 waited for verdicts at once)",
                input.dropped
            ),
        });
    }
    #[cfg(leakcheck_interpose)]
    {
        let mut out: Vec<Misuse> = Vec::new();
        for event in &input.events {
            let stack = Shown::of(event.stack);
            let allocated = Shown::of(event.alloc_stack);
            let freed = Shown::of(event.free_stack);
            let kind = event.kind.name();
            let size_wrong = event.given_size != event.size;
            let memcheck = memcheck_kind(kind, size_wrong);
            // Free-type errors are matched on the bad call's stack, below
            // the function called; writes on the allocation's, below the
            // allocator (leakcheck sees no stack of the write itself).
            let (first, subject) = match memcheck {
                "Addr1" => (
                    super::c_allocator(
                        event
                            .allocator
                            .unwrap_or(crate::track::table::Allocator::Malloc),
                    ),
                    &allocated,
                ),
                _ => (event.call.valgrind_name(), &stack),
            };
            let matching: Vec<_> = subject.full.iter().map(super::match_frame).collect();
            if let Some(i) = suppressions
                .iter()
                .position(|e| e.matches_error(memcheck, first, &matching))
            {
                used[i].0 += 1;
                used[i].1 += if event.size_known() { event.size } else { 0 };
                continue;
            }
            let frames: Vec<_> = subject.trimmed().iter().map(super::match_frame).collect();
            let skipped = subject.start != 0;
            let suppression = suppress::generate_error(memcheck, first, skipped, &frames);
            out.push(Misuse {
                kind,
                message: event.message(),
                address: format!("{:#x}", event.addr),
                size: event.size_known().then_some(event.size),
                stack: stack.frames(),
                allocated_at: allocated.frames(),
                freed_at: freed.frames(),
                suppression: Some(suppression),
            });
        }
        out
    }
    #[cfg(not(leakcheck_interpose))]
    {
        let _ = (suppressions, used);
        Vec::new()
    }
}

/// The lines that introduce each stack in the text, valgrind's way.
fn write_stack(
    f: &mut fmt::Formatter<'_>,
    title: &str,
    stack: &[Frame],
    places: &Places,
) -> fmt::Result {
    if stack.is_empty() {
        return Ok(());
    }
    if !title.is_empty() {
        write!(f, "\n  {title}")?;
    }
    for frame in stack {
        write_frame(f, frame, places)?;
    }
    Ok(())
}

/// The errors section of the text report: each misuse, valgrind's way.
pub(crate) fn write_text(
    f: &mut fmt::Formatter<'_>,
    misuse: &[Misuse],
    places: &Places,
) -> fmt::Result {
    for m in misuse {
        let (headline, address) = m
            .message
            .split_once("; ")
            .unwrap_or((m.message.as_str(), ""));
        write!(f, "\n\n{headline} [{}]", m.kind)?;
        write_stack(f, "", &m.stack, places)?;
        if m.stack.is_empty() {
            write!(f, "\n    (found by the verdict: no stack of the write)")?;
        }
        if !address.is_empty() {
            write!(f, "\n  {address}")?;
        }
        write_stack(f, "freed at:", &m.freed_at, places)?;
        write_stack(f, "Block was alloc'd at:", &m.allocated_at, places)?;
        if let Some(suppression) = &m.suppression {
            write!(f, "\n  suppress it with:")?;
            for line in suppression.lines() {
                write!(f, "\n  {line}")?;
            }
        }
    }
    Ok(())
}

/// The summary line of a report with misuse (and what leaked, if any).
pub(crate) fn write_summary(
    f: &mut fmt::Formatter<'_>,
    test: &str,
    misuse: usize,
    (blocks, bytes): (usize, usize),
) -> fmt::Result {
    write!(
        f,
        "leakcheck: `{test}` misused the heap ({} {})",
        misuse,
        if misuse == 1 { "error" } else { "errors" }
    )?;
    if blocks > 0 {
        write!(
            f,
            " and leaked {blocks} {} ({bytes} {})",
            if blocks == 1 { "block" } else { "blocks" },
            if bytes == 1 { "byte" } else { "bytes" }
        )?;
    }
    Ok(())
}
