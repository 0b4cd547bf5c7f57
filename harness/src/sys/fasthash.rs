//! A fast hash for small keys of leakcheck's own (stack ids, allocator and
//! kind), where SipHash's resistance to chosen keys buys nothing: the
//! report groups millions of surviving blocks by such keys, and SipHash
//! was most of that time. The multiply-rotate mix of rustc's `FxHasher`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` with [`FastHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// rustc's Fx hash: a word at a time, rotate, xor, multiply.
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        for &byte in chunks.remainder() {
            self.add(u64::from(byte));
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_map_counts_like_a_map() {
        let mut map: FastMap<(u32, u8), usize> = FastMap::default();
        for i in 0..10_000u32 {
            *map.entry((i % 97, (i % 3) as u8)).or_default() += 1;
        }
        assert_eq!(map.len(), 97 * 3);
        assert_eq!(map.values().sum::<usize>(), 10_000);
        assert_eq!(
            map[&(0, 0)],
            (0..10_000).filter(|i| i % 97 == 0 && i % 3 == 0).count()
        );
    }
}
