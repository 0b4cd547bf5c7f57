//! The JSON report written by hand: the same text as
//! `serde_json::to_string_pretty` of the report's `Serialize` form (a test
//! compares the two), at a fraction of the cost where it matters. Every
//! check writes one, and in a user's default dev profile serde's generic
//! layers run unoptimised: about 210,000 instructions for a 600-byte clean
//! report, a twentieth of a small test's whole cost under leakcheck. This
//! writer takes about 30,000 there (`String` pushes had left it at 61,000).

use super::misuse::{ErrorList, Misuse};
use super::{Count, Frame, Leak, Report, ReportError, Stats, Summary, SuppressionUse};
use crate::verdict::Kind;
use std::fmt::Write as _;

/// Pretty-printed JSON, two spaces an indent, as serde_json writes it.
///
/// The text goes into `out`'s buffer through [`Writer::put`] alone, its
/// length kept in `written` until [`Writer::finish`]: unoptimised (a
/// user's dev profile), each `String::push_str` was a chain of generic
/// calls and precondition checks, about 400 instructions, and a report is
/// some 140 of them; `put` is a comparison and a `memcpy`.
struct Writer {
    /// Its first `written` bytes are the text so far (UTF-8: only whole
    /// `str`s are put); its length is set by `finish`.
    out: Vec<u8>,
    /// `out`'s buffer and capacity, refreshed whenever it grows.
    base: *mut u8,
    capacity: usize,
    written: usize,
    indent: usize,
    /// Nothing written yet in the innermost open array or object.
    empty: bool,
}

impl Writer {
    fn new(capacity: usize) -> Writer {
        let mut out = Vec::with_capacity(capacity);
        Writer {
            base: out.as_mut_ptr(),
            capacity: out.capacity(),
            out,
            written: 0,
            indent: 0,
            empty: true,
        }
    }

    /// Appends `s`.
    fn put(&mut self, s: &str) {
        let n = s.len();
        if n == 0 {
            return;
        }
        if self.capacity - self.written < n {
            self.grow(n);
        }
        // SAFETY: `base` is `out`'s buffer, which has room for `n` bytes
        // after the `written` ones (grown just now if not), and `s` is
        // another allocation. `wrapping_add`, not `add`: no precondition
        // check unoptimised.
        unsafe {
            libc::memcpy(
                self.base.wrapping_add(self.written).cast(),
                s.as_ptr().cast(),
                n,
            )
        };
        self.written += n;
    }

    #[cold]
    fn grow(&mut self, n: usize) {
        // SAFETY: the first `written` bytes were initialised by `put`.
        unsafe { self.out.set_len(self.written) };
        self.out.reserve(n);
        self.base = self.out.as_mut_ptr();
        self.capacity = self.out.capacity();
    }

    /// The text written.
    fn finish(mut self) -> String {
        // SAFETY: `put` initialised the first `written` bytes, with whole
        // `str`s: UTF-8.
        unsafe {
            self.out.set_len(self.written);
            String::from_utf8_unchecked(self.out)
        }
    }

    fn newline(&mut self) {
        // One put for the usual depths (a report nests five deep).
        const SPACES: &str = "\n                ";
        let mut spaces = 2 * self.indent;
        let now = if spaces < SPACES.len() - 1 {
            spaces
        } else {
            SPACES.len() - 1
        };
        self.put(&SPACES[..1 + now]);
        spaces -= now;
        while spaces > 0 {
            self.put(" ");
            spaces -= 1;
        }
    }

    fn open(&mut self, bracket: &'static str) {
        self.put(bracket);
        self.indent += 1;
        self.empty = true;
    }

    fn close(&mut self, bracket: &'static str) {
        self.indent -= 1;
        if !self.empty {
            self.newline();
        }
        self.put(bracket);
        self.empty = false;
    }

    /// Before an array's element.
    fn element(&mut self) {
        if !self.empty {
            self.put(",");
        }
        self.newline();
        self.empty = false;
    }

    /// Before an object's value; `key` is one of the schema's names,
    /// which need no escaping.
    ///
    /// What [`element`](Self::element) and three `put`s would write, with
    /// one room check and three copies: a report has some forty keys, and
    /// unoptimised each `put` is about 90 instructions.
    fn key(&mut self, key: &'static str) {
        // `,` unless first, the newline and its indent (as `newline`, one
        // copy for the usual depths).
        const BREAK: &str = ",\n                ";
        let comma = if self.empty { 0 } else { 1 };
        let spaces = 2 * self.indent;
        if spaces > BREAK.len() - 2 {
            self.element();
            self.put("\"");
            self.put(key);
            self.put("\": ");
            return;
        }
        let lead = comma + 1 + spaces;
        let n = lead + key.len() + 4;
        if self.capacity - self.written < n {
            self.grow(n);
        }
        let at = self.base.wrapping_add(self.written);
        // SAFETY: `base` is `out`'s buffer with room for the `n` bytes
        // after the `written` ones (grown just now if not), the sources
        // are other memory, and the three ranges split those `n` bytes.
        unsafe {
            libc::memcpy(
                at.cast(),
                BREAK.as_ptr().wrapping_add(1 - comma).cast(),
                lead,
            );
            let at = at.wrapping_add(lead);
            libc::memcpy(at.cast(), "\"".as_ptr().cast(), 1);
            libc::memcpy(at.wrapping_add(1).cast(), key.as_ptr().cast(), key.len());
            libc::memcpy(
                at.wrapping_add(1 + key.len()).cast(),
                "\": ".as_ptr().cast(),
                3,
            );
        }
        self.written += n;
        self.empty = false;
    }

    fn string(&mut self, s: &str) {
        self.put("\"");
        // Indexing, not iterator adaptors: this runs unoptimised in a
        // user's dev profile.
        let bytes = s.as_bytes();
        let (mut plain, mut i) = (0, 0);
        while i < bytes.len() {
            let byte = bytes[i];
            if byte >= 0x20 && byte != b'"' && byte != b'\\' {
                i += 1;
                continue;
            }
            self.put(&s[plain..i]);
            match byte {
                b'"' => self.put("\\\""),
                b'\\' => self.put("\\\\"),
                b'\n' => self.put("\\n"),
                b'\r' => self.put("\\r"),
                b'\t' => self.put("\\t"),
                0x08 => self.put("\\b"),
                0x0c => self.put("\\f"),
                _ => {
                    let _ = write!(self, "\\u{byte:04x}");
                }
            }
            i += 1;
            plain = i;
        }
        self.put(&s[plain..]);
        self.put("\"");
    }

    fn number(&mut self, n: impl std::fmt::Display) {
        let _ = write!(self, "{n}");
    }

    fn float(&mut self, x: f64) {
        // serde_json's float form: the shortest digits that round-trip,
        // `null` for what JSON cannot hold. Rust's `{:?}` writes the same
        // text for zero and for 1e-4 <= |x| < 1e16 (a test below compares
        // them), where every duration falls; it is core's code, built
        // optimised, where serde_json's writer runs unoptimised in a dev
        // profile (about 15,000 instructions a report). Elsewhere the two
        // switch to exponents differently: serde_json writes it.
        let magnitude = x.abs();
        if x == 0.0 || (1e-4..1e16).contains(&magnitude) {
            let _ = write!(self, "{x:?}");
            return;
        }
        match serde_json::to_string(&x) {
            Ok(text) => self.put(&text),
            Err(_) => self.put("null"),
        }
    }

    /// Object members that are counts.
    fn counts(&mut self, members: &[(&'static str, usize)]) {
        for &(key, n) in members {
            self.key(key);
            self.number(n);
        }
    }

    fn opt_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.string(s),
            None => self.put("null"),
        }
    }

    fn opt_number(&mut self, n: Option<impl std::fmt::Display>) {
        match n {
            Some(n) => self.number(n),
            None => self.put("null"),
        }
    }

    fn array<T>(&mut self, items: impl IntoIterator<Item = T>, mut each: impl FnMut(&mut Self, T)) {
        self.open("[");
        for item in items {
            self.element();
            each(self, item);
        }
        self.close("]");
    }
}

impl std::fmt::Write for Writer {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.put(s);
        Ok(())
    }
}

/// The JSON text of `report`.
pub(super) fn report(report: &Report) -> String {
    let mut w = Writer::new(1024);
    w.open("{");
    w.key("schema");
    w.string(report.schema);
    w.key("test");
    w.string(&report.test);
    w.key("binary");
    w.string(&report.binary);
    w.key("status");
    w.string(match report.status {
        super::Status::Clean => "clean",
        super::Status::Leaked => "leaked",
        super::Status::Error => "error",
    });
    w.key("summary");
    summary(&mut w, &report.summary);
    w.key("leaks");
    w.array(&report.leaks, leak);
    w.key("suppressions_used");
    w.array(&report.suppressions_used, suppression_use);
    w.key("errors");
    errors(&mut w, &report.error_list);
    w.key("warnings");
    w.array(&report.warnings, error);
    w.key("stats");
    stats(&mut w, &report.stats);
    w.key("fail_on");
    let failing = [
        Kind::DefinitelyLost,
        Kind::IndirectlyLost,
        Kind::PossiblyLost,
        Kind::StillReachable,
    ]
    .into_iter()
    .filter(|k| report.failing.contains(*k));
    w.array(failing, |w, k| w.string(kind(k)));
    w.key("unix_time_ms");
    w.number(report.unix_time_ms);
    w.close("}");
    w.finish()
}

/// A kind's JSON name (its `serde` snake-case name).
fn kind(kind: Kind) -> &'static str {
    match kind {
        Kind::DefinitelyLost => "definitely_lost",
        Kind::IndirectlyLost => "indirectly_lost",
        Kind::PossiblyLost => "possibly_lost",
        Kind::StillReachable => "still_reachable",
        Kind::Suppressed => "suppressed",
    }
}

fn summary(w: &mut Writer, summary: &Summary) {
    w.open("{");
    w.counts(&[
        ("leaked_blocks", summary.leaked_blocks),
        ("leaked_bytes", summary.leaked_bytes),
    ]);
    w.key("kinds");
    w.open("{");
    for (&k, count) in &summary.kinds {
        w.key(kind(k));
        blocks_and_bytes(w, count);
    }
    w.close("}");
    w.close("}");
}

fn blocks_and_bytes(w: &mut Writer, count: &Count) {
    w.open("{");
    w.counts(&[("blocks", count.blocks), ("bytes", count.bytes)]);
    w.close("}");
}

fn frame(w: &mut Writer, frame: &Frame) {
    w.open("{");
    w.key("function");
    w.opt_string(frame.function.as_deref());
    w.key("file");
    w.opt_string(frame.file.as_deref());
    w.key("line");
    w.opt_number(frame.line);
    w.key("module");
    w.opt_string(frame.module.as_deref());
    w.key("ip");
    w.string(&frame.ip);
    w.close("}");
}

fn leak(w: &mut Writer, leak: &Leak) {
    w.open("{");
    w.key("kind");
    w.string(kind(leak.kind));
    w.key("origin");
    w.string(match leak.origin {
        super::Origin::C => "c",
        super::Origin::Rust => "rust",
    });
    w.key("allocator");
    w.string(leak.allocator);
    w.counts(&[("blocks", leak.blocks), ("bytes", leak.bytes)]);
    if let Some(blocks) = leak.indirect_blocks {
        w.key("indirect_blocks");
        w.number(blocks);
    }
    if let Some(bytes) = leak.indirect_bytes {
        w.key("indirect_bytes");
        w.number(bytes);
    }
    w.key("stack");
    w.array(&leak.stack, frame);
    if let Some(by) = &leak.suppressed_by {
        w.key("suppressed_by");
        w.string(by);
    }
    if let Some(text) = &leak.suppression {
        w.key("suppression");
        w.string(text);
    }
    w.close("}");
}

fn suppression_use(w: &mut Writer, used: &SuppressionUse) {
    w.open("{");
    w.key("name");
    w.string(&used.name);
    w.key("location");
    w.string(&used.location);
    w.counts(&[("blocks", used.blocks), ("bytes", used.bytes)]);
    w.close("}");
}

fn error(w: &mut Writer, error: &ReportError) {
    w.open("{");
    w.key("kind");
    w.string(error.kind);
    w.key("message");
    w.string(&error.message);
    w.close("}");
}

fn misuse(w: &mut Writer, misuse: &Misuse) {
    w.open("{");
    w.key("kind");
    w.string(misuse.kind);
    w.key("message");
    w.string(&misuse.message);
    w.key("address");
    w.string(&misuse.address);
    w.key("size");
    w.opt_number(misuse.size);
    w.key("stack");
    w.array(&misuse.stack, frame);
    w.key("allocated_at");
    w.array(&misuse.allocated_at, frame);
    w.key("freed_at");
    w.array(&misuse.freed_at, frame);
    if let Some(text) = &misuse.suppression {
        w.key("suppression");
        w.string(text);
    }
    w.close("}");
}

fn errors(w: &mut Writer, list: &ErrorList) {
    w.open("[");
    for m in &list.misuse {
        w.element();
        misuse(w, m);
    }
    for other in &list.others {
        w.element();
        error(w, other);
    }
    w.close("]");
}

fn stats(w: &mut Writer, stats: &Stats) {
    w.open("{");
    w.counts(&[
        ("allocations", stats.allocations),
        ("frees", stats.frees),
        ("peak_live_bytes", stats.peak_live_bytes),
    ]);
    w.key("duration_ms");
    w.float(stats.duration_ms);
    w.close("}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::suppress::inline::Suppression;
    use crate::run::{check_with, Options};

    #[inline(never)]
    fn leaky_helper() {
        std::hint::black_box(Box::leak(Box::new([0u8; 32])));
    }

    struct Node {
        _next: Option<Box<Node>>,
        _payload: [u64; 3],
    }

    /// Byte for byte what `serde_json::to_string_pretty` writes, for
    /// reports of every shape: clean, leaks of C and Rust with indirect
    /// ones, suppressed, misuse, warnings where the platform gives one.
    #[test]
    fn reports_are_the_text_serde_json_writes() {
        static SUPPRESS: [Suppression; 1] = [Suppression {
            text: "leak:leaky_helper",
            file: file!(),
            line: line!(),
        }];
        let reports = [
            crate::check(|| drop(vec![1u8; 100])),
            crate::check(|| {
                let tail = Box::new(Node {
                    _next: None,
                    _payload: [0; 3],
                });
                std::hint::black_box(Box::leak(Box::new(Node {
                    _next: Some(tail),
                    _payload: [0; 3],
                })));
                // SAFETY: a plain C allocation, leaked on purpose.
                std::hint::black_box(unsafe { libc::malloc(24) });
            }),
            check_with(Options::new().suppress(&SUPPRESS), || {
                leaky_helper();
                leaky_helper();
                std::hint::black_box(());
            }),
            crate::check(|| {
                let layout = std::alloc::Layout::from_size_align(24, 8).unwrap();
                // SAFETY: leakcheck reports the wrong layout and still
                // frees the block.
                unsafe {
                    // Seen by the optimiser as escaping: an allocation
                    // freed at once may be elided in release.
                    let p = std::hint::black_box(std::alloc::alloc(layout));
                    std::alloc::dealloc(p, std::alloc::Layout::from_size_align(16, 8).unwrap());
                }
            }),
        ];
        let mut shapes = (false, false, false);
        for report in &reports {
            let ours = report.to_json();
            let serde = serde_json::to_string_pretty(report).unwrap();
            assert_eq!(ours, serde);
            shapes.0 |= ours.contains("\"indirect_bytes\"");
            shapes.1 |= ours.contains("\"suppressed_by\"") || ours.contains("\"location\"");
            // The wrong layout is only seen through leakcheck's global
            // allocator; without it the dealloc is a plain, matching `free`.
            shapes.2 |= ours.contains("\"allocated_at\"")
                || !cfg!(leakcheck_interpose)
                || !cfg!(feature = "global-allocator");
        }
        // With neither the C hooks nor the global allocator nothing is
        // tracked: every report is clean.
        let tracked = cfg!(leakcheck_interpose) || cfg!(feature = "global-allocator");
        assert_eq!(
            shapes,
            (tracked, tracked, true),
            "not every shape was written"
        );
    }

    /// Keys at every depth, beyond the indent `key` copies in one piece
    /// (reports nest five deep; the writer must not depend on it), first
    /// and later in their object: the text serde_json writes.
    #[test]
    fn keys_at_any_depth_are_the_text_serde_json_writes() {
        // serde_json's map sorts its keys: these are in that order.
        const DEPTH: usize = 12;
        let mut w = Writer::new(16);
        let mut value = serde_json::json!({ "last": 0 });
        for _ in 0..DEPTH {
            w.open("{");
            w.key("a_first");
            w.number(1);
            w.key("b_inner");
        }
        w.open("{");
        w.key("last");
        w.number(0);
        w.close("}");
        for _ in 0..DEPTH {
            w.key("c_after");
            w.string("x");
            w.close("}");
            value = serde_json::json!({ "a_first": 1, "b_inner": value, "c_after": "x" });
        }
        assert_eq!(w.finish(), serde_json::to_string_pretty(&value).unwrap());
    }

    #[test]
    fn floats_are_the_text_serde_json_writes() {
        let mut values = vec![
            0.0,
            -0.0,
            1e-4,
            9.99e-5,
            1e16,
            9.999e15,
            2.0,
            0.5,
            95.98168799999999,
        ];
        values.extend([f64::NAN, f64::INFINITY, 1e-300, 5e-324, f64::MAX, -1.5e-7]);
        // Every decade between the two edges, at several mantissas.
        let mut decade = 1e-6;
        while decade < 1e18 {
            for mantissa in [1.0, 1.2345678901234567, 3.0, 9.999999999999998] {
                values.push(mantissa * decade);
                values.push(-mantissa * decade);
            }
            decade *= 10.0;
        }
        for x in values {
            let mut w = Writer::new(0);
            w.float(x);
            let serde = serde_json::to_string(&x).unwrap_or_else(|_| "null".into());
            assert_eq!(w.finish(), serde, "{x:?}");
        }
    }

    #[test]
    fn strings_escape_as_serde_json_does() {
        for s in [
            "",
            "plain",
            "quote \" backslash \\ slash /",
            "lines\nand\ttabs\r",
            "\u{0}\u{1}\u{8}\u{c}\u{1f}\u{7f}",
            "ünïcödé → ✓ 🦀",
        ] {
            let mut w = Writer::new(0);
            w.string(s);
            assert_eq!(w.finish(), serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }
}
