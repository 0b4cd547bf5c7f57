//! Leak kinds, with valgrind memcheck's meanings, and sets of them as
//! valgrind's options write them: what the classifier decides, what
//! suppressions match and what fails a test.

use serde::Serialize;

/// How a leaked block was classified, with valgrind memcheck's meanings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Kind {
    /// No pointer to the block exists anywhere.
    DefinitelyLost,
    /// Reachable only from lost blocks.
    IndirectlyLost,
    /// Reachable only through a pointer into its interior.
    PossiblyLost,
    /// Still pointed to from a root: a cache or global, not a leak unless
    /// `strict`.
    StillReachable,
    /// Matched a suppression.
    Suppressed,
}

impl Kind {
    /// valgrind's words for the kind.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::DefinitelyLost => "definitely lost",
            Kind::IndirectlyLost => "indirectly lost",
            Kind::PossiblyLost => "possibly lost",
            Kind::StillReachable => "still reachable",
            Kind::Suppressed => "suppressed",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of leak kinds, written the way valgrind's `match-leak-kinds:` and
/// `--errors-for-leak-kinds=` take it: `definite,indirect,possible,reachable`
/// in any order, or `all`, or `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KindSet(u8);

impl KindSet {
    /// What fails a test by default: every lost kind.
    pub(crate) const DEFAULT_FAILING: KindSet = KindSet(0b0111);
    /// Every kind valgrind knows.
    pub(crate) const ALL: KindSet = KindSet(0b1111);
    /// What the text report gives sections of by default (valgrind's
    /// `--show-leak-kinds` default): definitely and possibly lost.
    pub(crate) const DEFAULT_SHOWN: KindSet = KindSet(0b0101);

    /// This set and `kind`.
    pub(crate) fn with(self, kind: Kind) -> KindSet {
        KindSet(self.0 | kind.bit())
    }

    pub(crate) fn contains(self, kind: Kind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// Parses valgrind's syntax. The error names the word that is wrong.
    pub(crate) fn parse(text: &str) -> Result<KindSet, String> {
        leakcheck_suppress::KindSet::parse(text).map(|set| KindSet(set.bits()))
    }
}

/// The same kind, as suppressions match it.
impl From<Kind> for leakcheck_suppress::Kind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::DefinitelyLost => leakcheck_suppress::Kind::DefinitelyLost,
            Kind::IndirectlyLost => leakcheck_suppress::Kind::IndirectlyLost,
            Kind::PossiblyLost => leakcheck_suppress::Kind::PossiblyLost,
            Kind::StillReachable => leakcheck_suppress::Kind::StillReachable,
            Kind::Suppressed => leakcheck_suppress::Kind::Suppressed,
        }
    }
}
