//! The hash of a captured stack, for the stack store's index. A file of
//! its own: like `walk_core.rs`, it is also compiled into the optimised
//! object of unoptimised builds (`walk_object.rs`), and it needs only
//! `core`.

/// FNV-style mixing of every frame, then murmur3's finaliser.
pub(crate) fn stack_hash(ips: &[usize]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ ips.len() as u64;
    for &ip in ips {
        h = (h ^ ip as u64)
            .wrapping_mul(0x0100_0000_01b3)
            .rotate_left(23);
    }
    // murmur3's finaliser: without it, stacks that differ in one frame by
    // a few bytes (one function's call sites) clustered in the low bits,
    // and linear probing of the index went from under one probe to
    // thousands.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}
