//! Sorting by address in place: most-significant-digit radix sort
//! (American flag sort), 11 bits a level, a comparison sort for the small
//! buckets at the bottom.
//!
//! The classifier sorts millions of blocks: a comparison sort spent more
//! than the rest of the verdict on them, and a least-significant-digit
//! radix sort needs a second array as large as the first (fresh pages to
//! fault in). This one needs two 2,048-entry count arrays on the stack per
//! level, and a level consumes 11 bits of the spread of the addresses in
//! its bucket, so five levels at most for 48-bit addresses.

const BITS: u32 = 8;
const BUCKETS: usize = 1 << BITS;
/// Buckets this small are sorted by comparison.
const SMALL: usize = 64;

/// Sorts `items` by `addr` (distinct keys; ties stay in any order).
pub(crate) fn by_address<T: Copy>(items: &mut [T], addr: impl Fn(&T) -> usize + Copy) {
    if items.len() <= SMALL {
        items.sort_unstable_by_key(addr);
        return;
    }
    let (mut low, mut high) = (usize::MAX, 0);
    for item in items.iter() {
        let a = addr(item);
        low = low.min(a);
        high = high.max(a);
    }
    let spread = high - low;
    if spread == 0 {
        return;
    }
    // The top BITS bits of the spread pick the bucket.
    let width = usize::BITS - spread.leading_zeros();
    let shift = width.saturating_sub(BITS);
    let digit = |item: &T| (addr(item) - low) >> shift;
    let mut end = [0usize; BUCKETS];
    for item in items.iter() {
        end[digit(item)] += 1;
    }
    let mut next = [0usize; BUCKETS];
    let mut at = 0;
    for b in 0..BUCKETS {
        next[b] = at;
        at += end[b];
        end[b] = at;
    }
    let starts = next;
    // Each bucket in turn: swap every item that belongs elsewhere to the
    // next free place of its own bucket until this place holds one of ours.
    for b in 0..BUCKETS {
        while next[b] < end[b] {
            let mut item = items[next[b]];
            let mut d = digit(&item);
            while d != b {
                std::mem::swap(&mut item, &mut items[next[d]]);
                next[d] += 1;
                d = digit(&item);
            }
            items[next[b]] = item;
            next[b] += 1;
        }
    }
    if shift == 0 {
        // Every bucket holds one address.
        return;
    }
    for b in 0..BUCKETS {
        let bucket = &mut items[starts[b]..end[b]];
        if bucket.len() > 1 {
            by_address(bucket, addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(mut keys: Vec<usize>) {
        let mut expected = keys.clone();
        expected.sort_unstable();
        by_address(&mut keys, |&k| k);
        assert_eq!(keys, expected);
    }

    #[test]
    fn sorts_dense_sparse_and_clustered_addresses() {
        // A scrambled dense heap, as the block table hands it out.
        let dense: Vec<usize> = (0..100_000usize)
            .map(|i| 0x5555_0000_0000 + (i.wrapping_mul(7919) % 100_000) * 32)
            .collect();
        check(dense);
        // Two arenas far apart, plus mmapped blocks.
        let mut clustered: Vec<usize> = (0..50_000usize)
            .map(|i| 0x5555_0000_0000 + (i * 48271 % 50_000) * 16)
            .collect();
        clustered.extend((0..50_000usize).map(|i| 0x7f00_0000_0000 + (i * 16807 % 50_000) * 64));
        clustered.extend((0..100usize).map(|i| 0x7fff_0000_0000 - i * 0x10_0000));
        check(clustered);
        check((0..SMALL + 1).rev().collect());
        check(vec![3, 1, 2]);
        check(Vec::new());
    }
}
