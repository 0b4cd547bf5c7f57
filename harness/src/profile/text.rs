//! The text form of a heap profile (`/debug/pprof/heap?debug=1`): totals,
//! then the sites with the most bytes in use, each with its stack.

use super::{origin_word, HeapProfile};
use std::fmt;

/// Sites shown; the rest are counted in one line.
const SHOWN: usize = 50;

pub(super) fn write(p: &HeapProfile, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let (alloc_objects, alloc_bytes) = p
        .sites
        .iter()
        .fold((0, 0), |(o, b), s| (o + s.alloc_objects, b + s.alloc_bytes));
    match p.duration {
        None => write!(f, "heap profile: ")?,
        Some(seconds) => write!(f, "heap profile, change over {seconds:.1} s: ")?,
    }
    writeln!(
        f,
        "{} bytes in {} blocks in use, {alloc_bytes} bytes in {alloc_objects} blocks allocated \
         (estimated from one sample per {} bytes allocated), {} sites",
        p.inuse_bytes(),
        p.inuse_objects(),
        p.rate,
        p.sites.len()
    )?;
    for warning in &p.warnings {
        writeln!(f, "warning: {warning}")?;
    }
    for s in p.sites.iter().take(SHOWN) {
        writeln!(
            f,
            "\n{} bytes in {} blocks in use ({} bytes in {} blocks allocated), origin={} allocator={}",
            s.inuse_bytes,
            s.inuse_objects,
            s.alloc_bytes,
            s.alloc_objects,
            origin_word(s.origin),
            s.allocator
        )?;
        if s.stack.is_empty() {
            writeln!(
                f,
                "    (no stack: made in a signal handler, on a thread leakcheck did not see \
                 start, or with the stack store full)"
            )?;
        }
        for frame in &s.stack {
            let function = frame.function.as_deref().unwrap_or(&frame.ip);
            match (&frame.file, frame.line) {
                (Some(file), Some(line)) => writeln!(f, "    at {function} ({file}:{line})")?,
                (Some(file), None) => writeln!(f, "    at {function} ({file})")?,
                _ => match &frame.module {
                    Some(module) => writeln!(f, "    at {function} (in {module})")?,
                    None => writeln!(f, "    at {function}")?,
                },
            }
        }
    }
    if p.sites.len() > SHOWN {
        writeln!(f, "\n... and {} more sites", p.sites.len() - SHOWN)?;
    }
    Ok(())
}
