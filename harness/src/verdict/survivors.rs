//! A check's surviving blocks with their kinds, as two arrays in mapped
//! pages: the blocks as collected (sorted by address once classified) and
//! one kind per block, in the same order.
//!
//! Pairing them into one heap vector of `(Block, Kind)` cost more than the
//! whole classification at millions of blocks: 40 bytes of fresh memory a
//! block, faulted in and copied. The report reads the pairs through
//! [`Survivors::iter`] (or `for (block, kind) in &survivors`) instead.

use crate::sys::fasthash::FastMap;
use crate::sys::mapvec::MapVec;
use crate::track::table::Block;
use crate::verdict::Kind;

/// In [`Survivors`]' roots: the block hangs off no other.
pub(crate) const NO_ROOT: u32 = u32::MAX;

/// The blocks a check left live, the kind of each, and for an indirectly
/// lost block the definitely lost one it hangs off.
#[derive(Default)]
pub(crate) struct Survivors {
    blocks: MapVec<Block>,
    kinds: MapVec<Kind>,
    /// Empty, or `roots[i]` is the index in `blocks` of the block whose
    /// flood took `blocks[i]` ([`NO_ROOT`]: none).
    roots: MapVec<u32>,
}

impl Survivors {
    /// `kinds[i]` is the kind of `blocks[i]`, both the same length; `roots`
    /// is empty or as long, as the classifier returns it.
    pub(crate) fn new(blocks: MapVec<Block>, kinds: MapVec<Kind>, roots: MapVec<u32>) -> Survivors {
        debug_assert_eq!(blocks.len(), kinds.len());
        debug_assert!(roots.is_empty() || roots.len() == blocks.len());
        Survivors {
            blocks,
            kinds,
            roots,
        }
    }

    /// Every block with the one kind `kind` (classification not done or
    /// failed). Empty if no memory for the kinds: the caller reports that.
    pub(crate) fn all(blocks: MapVec<Block>, kind: Kind) -> Option<Survivors> {
        let mut kinds = MapVec::new();
        if !kinds.resize(blocks.len(), kind) {
            return None;
        }
        Some(Survivors {
            blocks,
            kinds,
            roots: MapVec::new(),
        })
    }

    /// The address of the definitely lost block that the `i`th block, if
    /// indirectly lost, hangs off.
    fn root(&self, i: usize) -> Option<usize> {
        if self.kinds.get(i) != Some(&Kind::IndirectlyLost) {
            return None;
        }
        match self.roots.get(i).copied() {
            None | Some(NO_ROOT) => None,
            Some(r) => self.blocks.get(r as usize).map(|b| b.addr),
        }
    }

    /// Each block with its kind and, for an indirectly lost block, the
    /// address of the block it hangs off.
    pub(crate) fn with_roots(&self) -> impl Iterator<Item = (&Block, Kind, Option<usize>)> + '_ {
        self.iter()
            .enumerate()
            .map(|(i, (block, &kind))| (block, kind, self.root(i)))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// How many blocks, and how many bytes, each `key` has: the grouping
    /// of millions of blocks. Neighbours usually share a key (blocks made
    /// by one loop), so a run of them costs one comparison, not one hash
    /// look-up each (which the dev profile, where this is unoptimised code,
    /// feels most).
    pub(crate) fn tally<K: std::hash::Hash + Eq + Copy>(
        &self,
        key: impl Fn(&Block, Kind) -> K,
    ) -> FastMap<K, (usize, usize)> {
        let mut groups = FastMap::default();
        let mut run: Option<(K, usize, usize)> = None;
        for (block, &kind) in self.iter() {
            let k = key(block, kind);
            match &mut run {
                Some((current, count, bytes)) if *current == k => {
                    *count += 1;
                    *bytes += block.size;
                }
                _ => {
                    if let Some((current, count, bytes)) = run.replace((k, 1, block.size)) {
                        let entry: &mut (usize, usize) = groups.entry(current).or_default();
                        entry.0 += count;
                        entry.1 += bytes;
                    }
                }
            }
        }
        if let Some((current, count, bytes)) = run {
            let entry = groups.entry(current).or_default();
            entry.0 += count;
            entry.1 += bytes;
        }
        groups
    }

    /// Each block with its kind.
    pub(crate) fn iter(&self) -> Pairs<'_> {
        self.blocks.iter().zip(self.kinds.iter())
    }
}

/// The iterator of [`Survivors::iter`].
pub(crate) type Pairs<'a> = std::iter::Zip<std::slice::Iter<'a, Block>, std::slice::Iter<'a, Kind>>;

impl<'a> IntoIterator for &'a Survivors {
    type Item = (&'a Block, &'a Kind);
    type IntoIter = Pairs<'a>;

    fn into_iter(self) -> Pairs<'a> {
        self.iter()
    }
}
