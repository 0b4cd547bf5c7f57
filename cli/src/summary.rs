//! The merged verdict: counts per status, and leak sites across tests.

use crate::reports::{Frame, Leak, Report, Reports, Status};
use std::collections::HashMap;

/// Tests per status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub checked: usize,
    pub clean: usize,
    pub leaked: usize,
    pub error: usize,
}

/// Where a site was seen: one test's group.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Index into [`Summary::reports`].
    pub report: usize,
    pub blocks: u64,
    pub bytes: u64,
    /// The group fails that test.
    pub fails: bool,
}

/// Leak groups of every test with the same kind, origin, allocator and
/// stack above the test's own frame.
#[derive(Clone, Debug)]
pub struct Site {
    pub kind: String,
    pub origin: String,
    pub allocator: String,
    /// The stack above the test: the allocating call first.
    pub stack: Vec<Frame>,
    pub blocks: u64,
    pub bytes: u64,
    pub seen: Vec<Seen>,
}

impl Site {
    /// Fails at least one of the tests it is in.
    pub fn fails(&self) -> bool {
        self.seen.iter().any(|s| s.fails)
    }
}

/// What `summary` prints, in every form.
#[derive(Debug)]
pub struct Summary {
    pub reports: Vec<Report>,
    pub files: usize,
    pub superseded: usize,
    pub counts: Counts,
    /// What failed first, then (with `--all`) what did not; each largest
    /// bytes first.
    pub sites: Vec<Site>,
}

impl Summary {
    /// Merges `reports`; `all` keeps still-reachable and suppressed groups
    /// (every group that does not fail its test).
    pub fn new(reports: Reports, all: bool) -> Summary {
        let mut counts = Counts::default();
        for report in &reports.tests {
            counts.checked += 1;
            match report.status {
                Status::Clean => counts.clean += 1,
                Status::Leaked => counts.leaked += 1,
                Status::Error => counts.error += 1,
            }
        }
        let mut sites: Vec<Site> = Vec::new();
        let mut index: HashMap<SiteKey, usize> = HashMap::new();
        for (at, report) in reports.tests.iter().enumerate() {
            for leak in selected(report, all) {
                let stack = above_test(&leak.stack);
                let key = SiteKey {
                    kind: leak.kind.clone(),
                    origin: leak.origin.clone(),
                    allocator: leak.allocator.clone(),
                    frames: stack.iter().map(FrameKey::of).collect(),
                };
                let i = *index.entry(key).or_insert_with(|| {
                    sites.push(Site {
                        kind: leak.kind.clone(),
                        origin: leak.origin.clone(),
                        allocator: leak.allocator.clone(),
                        stack: stack.to_vec(),
                        blocks: 0,
                        bytes: 0,
                        seen: Vec::new(),
                    });
                    sites.len() - 1
                });
                let site = &mut sites[i];
                site.blocks += leak.blocks;
                site.bytes += leak.bytes;
                let fails = report.fails(&leak.kind);
                match site.seen.iter_mut().find(|s| s.report == at) {
                    Some(seen) => {
                        seen.blocks += leak.blocks;
                        seen.bytes += leak.bytes;
                        seen.fails |= fails;
                    }
                    None => site.seen.push(Seen {
                        report: at,
                        blocks: leak.blocks,
                        bytes: leak.bytes,
                        fails,
                    }),
                }
            }
        }
        for site in &mut sites {
            let reports = &reports.tests;
            site.seen.sort_by(|a, b| {
                let (a, b) = (&reports[a.report], &reports[b.report]);
                (&a.test, a.binary_name()).cmp(&(&b.test, b.binary_name()))
            });
        }
        sites.sort_by(|a, b| {
            b.fails()
                .cmp(&a.fails())
                .then(b.bytes.cmp(&a.bytes))
                .then(b.blocks.cmp(&a.blocks))
                .then(a.kind.cmp(&b.kind))
        });
        Summary {
            reports: reports.tests,
            files: reports.files,
            superseded: reports.superseded.len(),
            counts,
            sites,
        }
    }

    /// 0 when nothing failed, 1 when a test leaked or erred.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.counts.leaked + self.counts.error > 0)
    }
}

/// The groups of `report` to show: those that fail it, or all with `all`.
pub fn selected(report: &Report, all: bool) -> impl Iterator<Item = &Leak> {
    report
        .leaks
        .iter()
        .filter(move |l| all || report.fails(&l.kind))
}

/// The stack without the test's own frame: the report's stack ends at the
/// test body (the harness stops capture there), and that physical frame —
/// the last address, with whatever was inlined into it — is the one part
/// that differs between tests calling the same leaking code. Kept when
/// nothing else is left (the test itself allocated).
pub fn above_test(stack: &[Frame]) -> &[Frame] {
    let Some(last) = stack.last() else {
        return stack;
    };
    let cut = stack
        .iter()
        .rposition(|f| f.ip != last.ip || f.module != last.module)
        .map_or(0, |i| i + 1);
    if cut == 0 {
        stack
    } else {
        &stack[..cut]
    }
}

#[derive(PartialEq, Eq, Hash)]
struct SiteKey {
    kind: String,
    origin: String,
    allocator: String,
    frames: Vec<FrameKey>,
}

/// A frame as sites compare it: by source position where it is known
/// (addresses differ between processes), else by module and address.
#[derive(PartialEq, Eq, Hash)]
enum FrameKey {
    Source(String, Option<String>, Option<u32>),
    Address(Option<String>, String),
}

impl FrameKey {
    fn of(frame: &Frame) -> FrameKey {
        match &frame.function {
            Some(function) => FrameKey::Source(function.clone(), frame.file.clone(), frame.line),
            None => FrameKey::Address(frame.module.clone(), frame.ip.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, ip: &str) -> Frame {
        Frame {
            function: Some(function.to_owned()),
            file: None,
            line: None,
            module: Some("/t".to_owned()),
            ip: ip.to_owned(),
        }
    }

    #[test]
    fn the_test_frame_and_what_is_inlined_into_it_are_cut() {
        let stack = [
            frame("leaf", "0x1"),
            frame("helper", "0x2"),
            frame("inlined", "0x3"),
            frame("t::{{closure}}", "0x3"),
        ];
        let names: Vec<_> = above_test(&stack)
            .iter()
            .map(|f| f.function.as_deref().unwrap())
            .collect();
        assert_eq!(names, ["leaf", "helper"]);
        let alone = [frame("t::{{closure}}", "0x3")];
        assert_eq!(above_test(&alone).len(), 1);
        assert!(above_test(&[]).is_empty());
    }
}
