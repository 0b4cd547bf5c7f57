//! The pprof form of a report (feature `pprof`): the groups that fail the
//! test as a heap profile, through `leakcheck-profile`, the encoder
//! `cargo leakcheck summary --pprof` uses too.

use super::{Origin, Report};

/// The failing groups of `report` as a gzipped `profile.proto`, or `None`
/// when nothing failed.
pub(crate) fn to_pprof(report: &Report) -> Option<Vec<u8>> {
    let mut profile = leakcheck_profile::HeapProfile::new();
    profile.main_binary(&report.binary);
    let mut any = false;
    for leak in report
        .leaks
        .iter()
        .filter(|l| report.failing.contains(l.kind))
    {
        let frames: Vec<leakcheck_profile::Frame> = leak
            .stack
            .iter()
            .map(|f| leakcheck_profile::Frame {
                function: f.function.clone(),
                file: f.file.clone(),
                line: f.line,
                module: f.module.clone(),
                ip: leakcheck_profile::parse_ip(&f.ip).unwrap_or(0),
            })
            .collect();
        // The JSON's word for the kind, from the one place that defines it.
        let kind = serde_json::to_value(leak.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        profile.add_leak(&leakcheck_profile::LeakSample {
            test: &report.test,
            kind: &kind,
            origin: match leak.origin {
                Origin::C => "c",
                Origin::Rust => "rust",
            },
            allocator: leak.allocator,
            blocks: leak.blocks as u64,
            bytes: leak.bytes as u64,
            frames: &frames,
        });
        any = true;
    }
    any.then(|| profile.to_gzip())
}
