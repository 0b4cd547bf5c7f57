//! 200 small tests of the kind a `-sys` crate has: a little Rust and C work
//! each, nothing leaked. With the `leakcheck` feature every one is
//! `#[leak_checked]`; without it, a plain `#[test]`. run.py times the suite
//! both ways under `cargo test` and `cargo nextest run`.

use std::collections::HashMap;
use std::hint::black_box;

extern "C" {
    fn compare_c_loop(iterations: usize, leaks: usize) -> u64;
    fn compare_c_tree(nodes: usize, passes: usize) -> u64;
}

/// What each test does: a map of strings, a C loop and a small C tree.
fn work(seed: usize) {
    let map: HashMap<String, Vec<u8>> = (0..64)
        .map(|i| (format!("key-{seed}-{i}"), vec![i as u8; 32 + i]))
        .collect();
    assert_eq!(map.len(), 64);
    // SAFETY: plain C functions over their own allocations, nothing leaked.
    let sum = unsafe { compare_c_loop(200, 0) + compare_c_tree(100, 1) };
    black_box(sum);
}

macro_rules! tests {
    ($module:ident: $($name:ident)*) => {
        mod $module {
            $(
                #[cfg_attr(feature = "leakcheck", leakcheck::leak_checked)]
                #[cfg_attr(not(feature = "leakcheck"), test)]
                fn $name() {
                    super::work(line!() as usize);
                }
            )*
        }
    };
}

macro_rules! modules {
    ($($module:ident)*) => {
        $(tests!($module: t0 t1 t2 t3 t4 t5 t6 t7 t8 t9);)*
    };
}

modules!(m00 m01 m02 m03 m04 m05 m06 m07 m08 m09 m10 m11 m12 m13 m14 m15 m16 m17 m18 m19);
