//! The leaked blocks as a pprof heap profile: one sample per leak group and
//! test, through `leakcheck-profile` (the encoder the runtime's
//! `LEAKCHECK_PPROF=1` uses too).

use crate::reports::Frame;
use crate::summary::{selected, Summary};
use leakcheck_profile::{parse_ip, HeapProfile, LeakSample};

/// A report frame as the encoder takes it.
pub fn to_profile_frame(f: &Frame) -> leakcheck_profile::Frame {
    leakcheck_profile::Frame {
        function: f.function.clone(),
        file: f.file.clone(),
        line: f.line,
        module: f.module.clone(),
        ip: parse_ip(&f.ip).unwrap_or(0),
    }
}

pub fn render(summary: &Summary, all: bool) -> Vec<u8> {
    let mut profile = HeapProfile::new();
    if let Some(first) = summary.reports.first() {
        profile.main_binary(&first.binary);
    }
    for report in &summary.reports {
        for leak in selected(report, all) {
            let frames: Vec<_> = leak.stack.iter().map(to_profile_frame).collect();
            profile.add_leak(&LeakSample {
                test: &report.test,
                kind: &leak.kind,
                origin: &leak.origin,
                allocator: &leak.allocator,
                blocks: leak.blocks,
                bytes: leak.bytes,
                frames: &frames,
            });
        }
    }
    profile.to_gzip()
}
