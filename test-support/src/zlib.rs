//! zlib, a C library we did not write, statically linked from libz-sys's
//! vendored sources, so its `malloc` calls resolve to the test binary's.
//!
//! Streams are set up with `zalloc` and `zfree` NULL, so zlib allocates
//! through its own default `zcalloc` (`malloc`), as C callers usually leave it.

use std::ffi::c_int;
use std::mem::{size_of, MaybeUninit};

use libz_sys::{
    deflate, deflateBound, deflateEnd, deflateInit_, inflate, inflateEnd, inflateInit_, uInt,
    uLong, z_stream, zlibVersion, Z_DEFAULT_COMPRESSION, Z_FINISH, Z_OK, Z_STREAM_END,
};

/// What zlib's `*Init_` functions check the caller's `z_stream` layout against.
const STREAM_SIZE: c_int = size_of::<z_stream>() as c_int;

/// Starts a deflate stream and never calls `deflateEnd`: zlib's state and its
/// four buffers leak ([`ZLIB_DEFLATE_INIT_BLOCKS`](crate::ZLIB_DEFLATE_INIT_BLOCKS)
/// blocks, one definitely lost, the rest indirectly), allocated by
/// [`ZLIB_ALLOC_FN`](crate::ZLIB_ALLOC_FN) inside zlib.
pub fn zlib_deflate_init_leak() {
    let mut slot = MaybeUninit::zeroed();
    init_stream(&mut slot, "deflateInit_", |strm| {
        // SAFETY: `strm` points to a zeroed, writable z_stream, and the
        // version and size are those of the zlib linked in.
        unsafe { deflateInit_(strm, Z_DEFAULT_COMPRESSION, zlibVersion(), STREAM_SIZE) }
    });
}

/// Compresses `data` with deflate and decompresses it with inflate, ending
/// both streams: everything zlib allocates is freed. Returns the decompressed
/// bytes, equal to `data`.
pub fn zlib_roundtrip_clean(data: &[u8]) -> Vec<u8> {
    let compressed = compress(data);
    decompress(&compressed, data.len())
}

fn compress(data: &[u8]) -> Vec<u8> {
    let mut slot = MaybeUninit::zeroed();
    let strm = init_stream(&mut slot, "deflateInit_", |strm| {
        // SAFETY: as in `zlib_deflate_init_leak`.
        unsafe { deflateInit_(strm, Z_DEFAULT_COMPRESSION, zlibVersion(), STREAM_SIZE) }
    });
    let len = uLong::try_from(data.len()).expect("input too large for zlib");
    // SAFETY: `strm` is an initialised deflate stream.
    let bound = unsafe { deflateBound(strm, len) };
    let mut out = vec![0; usize::try_from(bound).expect("deflateBound fits in memory")];
    set_buffers(strm, data, &mut out);
    // SAFETY: the stream is initialised and its buffers are `data` and `out`,
    // both live until `deflateEnd`.
    let status = unsafe { deflate(strm, Z_FINISH) };
    // SAFETY: the stream is initialised and ended only here.
    let end = unsafe { deflateEnd(strm) };
    assert_eq!(status, Z_STREAM_END, "deflate did not finish in one call");
    assert_eq!(end, Z_OK, "deflateEnd");
    out.truncate(usize::try_from(strm.total_out).expect("total_out fits in memory"));
    out
}

fn decompress(compressed: &[u8], len: usize) -> Vec<u8> {
    let mut slot = MaybeUninit::zeroed();
    let strm = init_stream(&mut slot, "inflateInit_", |strm| {
        // SAFETY: `strm` points to a zeroed, writable z_stream, and the
        // version and size are those of the zlib linked in.
        unsafe { inflateInit_(strm, zlibVersion(), STREAM_SIZE) }
    });
    let mut out = vec![0; len];
    set_buffers(strm, compressed, &mut out);
    // SAFETY: the stream is initialised and its buffers are `compressed` and
    // `out`, both live until `inflateEnd`.
    let status = unsafe { inflate(strm, Z_FINISH) };
    // SAFETY: the stream is initialised and ended only here.
    let end = unsafe { inflateEnd(strm) };
    assert_eq!(status, Z_STREAM_END, "inflate did not finish in one call");
    assert_eq!(end, Z_OK, "inflateEnd");
    out
}

/// Runs a zlib `*Init_` function on `slot`, zeroed, and returns the stream it
/// initialised, in place.
///
/// Zeroed, `zalloc` and `zfree` are NULL: zlib then installs its own
/// allocator. That is not a valid Rust `z_stream` (libz-sys types them as
/// non-null function pointers), so the stream is only ever a raw pointer until
/// zlib has filled them in. And it must not move afterwards: zlib's state
/// points back at it and rejects a stream found anywhere else.
fn init_stream<'a>(
    slot: &'a mut MaybeUninit<z_stream>,
    what: &str,
    init: impl FnOnce(*mut z_stream) -> c_int,
) -> &'a mut z_stream {
    let status = init(slot.as_mut_ptr());
    assert_eq!(status, Z_OK, "{what}");
    // SAFETY: on Z_OK zlib has set zalloc and zfree to its defaults; every
    // other field is an integer or raw pointer, valid zeroed or as zlib set it.
    unsafe { slot.assume_init_mut() }
}

fn set_buffers(strm: &mut z_stream, input: &[u8], output: &mut [u8]) {
    // zlib declares next_in `z_const`: it never writes through it.
    strm.next_in = input.as_ptr().cast_mut();
    strm.avail_in = uInt::try_from(input.len()).expect("input too large for one zlib call");
    strm.next_out = output.as_mut_ptr();
    strm.avail_out = uInt::try_from(output.len()).expect("output too large for one zlib call");
}
