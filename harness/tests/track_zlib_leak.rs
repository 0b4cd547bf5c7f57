//! A leak inside a C library we did not write — zlib, statically linked from
//! libz-sys's vendored sources — is caught: `deflateInit` without
//! `deflateEnd` leaves zlib's state and its four buffers, allocated by zlib's
//! own `zcalloc` under `deflateInit2_`. A full deflate/inflate roundtrip that
//! ends both streams is clean.

mod common;

use common::{assert_clean, assert_ends_at, function, here, render};
use leakcheck::{Origin, Status};
use leakcheck_test_support::{
    zlib_deflate_init_leak, zlib_roundtrip_clean, ZLIB_ALLOC_FN, ZLIB_DEFLATE_INIT_BLOCKS,
    ZLIB_DEFLATE_INIT_FN,
};
use std::hint::black_box;

#[test]
fn deflate_init_without_end_leaks_zlib_state() {
    let mut test_fn = "";
    let report = leakcheck::check(|| {
        test_fn = here!();
        zlib_deflate_init_leak();
        black_box(());
    });

    assert_eq!(report.status(), Status::Leaked, "{report}");
    assert_eq!(report.leaked_blocks(), ZLIB_DEFLATE_INIT_BLOCKS, "{report}");
    let site_bytes: usize = report.leaks().iter().map(|l| l.bytes).sum();
    assert_eq!(report.leaked_bytes(), site_bytes, "{report}");
    // The state plus a 64 KiB window and other buffers, at the default level.
    assert!(report.leaked_bytes() > 4 * 65536, "{report}");
    for leak in report.leaks() {
        let stack = render(&leak.stack);
        assert_eq!(leak.origin, Origin::C, "{report}");
        assert_eq!(leak.allocator, "malloc", "{report}");
        let top_two: Vec<&str> = leak.stack.iter().take(2).map(function).collect();
        assert!(top_two.contains(&ZLIB_DEFLATE_INIT_FN), "{stack}");
        // zcalloc is zlib's malloc wrapper. Optimised (release) zlib calls
        // malloc from it as a tail call, leaving it no frame; at -O0 it is
        // the top frame, in zlib's own sources.
        if cfg!(debug_assertions) {
            assert_eq!(top_two[0], ZLIB_ALLOC_FN, "{stack}");
            let file = leak.stack[0].file.as_deref().unwrap_or("");
            assert!(file.ends_with("/zlib/zutil.c"), "{stack}");
        }
        assert_ends_at(leak, test_fn);
    }
}

#[test]
fn zlib_roundtrip_is_clean() {
    let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let report = leakcheck::check(|| {
        let back = zlib_roundtrip_clean(black_box(&data));
        assert_eq!(back, data);
    });
    // zlib's deflate state and buffers and inflate's state were all seen.
    assert_clean(&report, ZLIB_DEFLATE_INIT_BLOCKS + 1);
    let peak = report.stats().peak_live_bytes;
    assert!(peak > 4 * 65536, "{:?}", report.stats());
}
