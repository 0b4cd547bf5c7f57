//! Whether a suppression matches a leak: a valgrind block's frame patterns
//! against `[allocator, stack…]`, a LeakSanitizer pattern against any
//! frame's function, file or module.

use crate::{Entry, FramePat, MatchFrame, Rule};
use crate::{Kind, KindSet};

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
/// [`Glob::matches`](super::glob::Glob::matches), with an implicit `...` at the end.
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
    ///
    /// ```
    /// let origin = leakcheck_suppress::Origin { path: "a.supp".into(), first_line: 1 };
    /// let entries = leakcheck_suppress::parse("leak:init\n", &origin).unwrap();
    /// assert_eq!(entries[0].name(), "leak:init");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this entry suppresses a block of `kind` allocated by the C
    /// function `allocator` (`malloc`, `calloc`, `realloc`, `posix_memalign`,
    /// …: what valgrind shows as the first frame) with `stack` below it.
    ///
    /// ```
    /// use leakcheck_suppress::{parse, Kind, MatchFrame, Origin};
    /// let origin = Origin { path: "a.supp".into(), first_line: 1 };
    /// let text = "{\n name\n Memcheck:Leak\n match-leak-kinds: definite\n fun:malloc\n fun:f\n}";
    /// let entry = &parse(text, &origin).unwrap()[0];
    /// let f = MatchFrame { function: Some("f"), ..MatchFrame::default() };
    /// assert!(entry.matches(Kind::DefinitelyLost, "malloc", &[f]));
    /// assert!(!entry.matches(Kind::StillReachable, "malloc", &[f]));
    /// ```
    pub fn matches(
        &self,
        kind: impl Into<Kind>,
        allocator: &str,
        stack: &[MatchFrame<'_>],
    ) -> bool {
        let kind = kind.into();
        match &self.rule {
            Rule::Never | Rule::Error { .. } => false,
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

impl Entry {
    /// Whether this entry suppresses a heap misuse of Memcheck kind
    /// `memcheck` (`Free`, `Addr1`, `SizeMismatch`, …) whose first frame is
    /// `first` (`free`, `realloc`, or the allocator for a write) with
    /// `stack` below it. A LeakSanitizer line matches none: its `leak:`
    /// type is about leaks.
    pub fn matches_error(&self, memcheck: &str, first: &str, stack: &[MatchFrame<'_>]) -> bool {
        match &self.rule {
            Rule::Error { kind, frames } => {
                super::valgrind::error_family(memcheck) == Some(*kind)
                    && frames_match(frames, first, stack)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;

    #[test]
    fn misuse_blocks_match_their_kind_only() {
        let free = one("{\n n\n Memcheck:Free\n fun:free\n fun:f\n}");
        let addr = one("{\n n\n Memcheck:Addr4\n fun:malloc\n ...\n fun:g\n}");
        let size = one("{\n n\n Memcheck:SizeMismatch\n fun:free\n}");
        let stack = [c("f"), c("g")];
        assert!(free.matches_error("Free", "free", &stack));
        assert!(!free.matches_error("Free", "realloc", &stack));
        assert!(!free.matches_error("Addr1", "free", &stack));
        assert!(!free.matches(DEF, "free", &stack), "never a leak");
        assert!(addr.matches_error("Addr1", "malloc", &stack));
        assert!(!addr.matches_error("Free", "malloc", &stack));
        assert!(size.matches_error("SizeMismatch", "free", &stack));
        assert!(!size.matches_error("AlignMismatch", "free", &stack));
        let lsan = one("leak:f");
        assert!(!lsan.matches_error("Free", "free", &stack));
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
}
