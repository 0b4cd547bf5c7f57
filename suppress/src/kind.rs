//! Leak kinds as suppressions name them, and sets of them as valgrind's
//! `match-leak-kinds:` and `--errors-for-leak-kinds=` write them.

/// A leak kind, with valgrind memcheck's meanings (leakcheck's own `Kind`
/// converts into it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// No pointer to the block exists anywhere.
    DefinitelyLost,
    /// Reachable only from lost blocks.
    IndirectlyLost,
    /// Reachable only through a pointer into its interior.
    PossiblyLost,
    /// Still pointed to from a root.
    StillReachable,
    /// Matched a suppression: never matches another.
    Suppressed,
}

impl Kind {
    /// valgrind's word for the kind in `match-leak-kinds:`: `definite`,
    /// `indirect`, `possible`, `reachable` (`suppressed` is leakcheck's own).
    ///
    /// ```
    /// assert_eq!(leakcheck_suppress::Kind::PossiblyLost.valgrind_word(), "possible");
    /// ```
    pub fn valgrind_word(self) -> &'static str {
        match self {
            Kind::DefinitelyLost => "definite",
            Kind::IndirectlyLost => "indirect",
            Kind::PossiblyLost => "possible",
            Kind::StillReachable => "reachable",
            Kind::Suppressed => "suppressed",
        }
    }

    const ALL: [Kind; 4] = [
        Kind::DefinitelyLost,
        Kind::IndirectlyLost,
        Kind::PossiblyLost,
        Kind::StillReachable,
    ];

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of leak kinds: `definite,indirect,possible,reachable` in any
/// order, or `all`, or `none`.
///
/// ```
/// use leakcheck_suppress::{Kind, KindSet};
/// let set = KindSet::parse("definite, possible").unwrap();
/// assert!(set.contains(Kind::PossiblyLost) && !set.contains(Kind::StillReachable));
/// assert_eq!(set.bits(), 0b0101);
/// assert!(KindSet::parse("definit").unwrap_err().starts_with("unknown leak kind `definit`"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindSet(u8);

impl KindSet {
    /// Every kind valgrind knows.
    pub const ALL: KindSet = KindSet(0b1111);

    /// Whether `kind` is in the set.
    pub fn contains(self, kind: Kind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// One bit a kind, `1 << kind as u8` in [`Kind`]'s order.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Parses valgrind's syntax. The error names the word that is wrong.
    pub fn parse(text: &str) -> Result<KindSet, String> {
        let text = text.trim();
        match text {
            "all" => return Ok(KindSet::ALL),
            "none" => return Ok(KindSet(0)),
            _ => {}
        }
        let mut set = 0;
        for word in text.split(',').map(str::trim) {
            let kind = Kind::ALL
                .into_iter()
                .find(|k| k.valgrind_word() == word)
                .ok_or_else(|| {
                    format!(
                        "unknown leak kind `{word}`; expected `definite`, `indirect`, `possible`, \
                         `reachable` separated by commas, or `all`, or `none`"
                    )
                })?;
            set |= kind.bit();
        }
        Ok(KindSet(set))
    }
}
