//! A leak inside a system shared library loaded with `dlopen` (Debian's
//! `libz.so.1`, built without frame pointers or our debug info) is caught:
//! its `malloc` calls resolve to the executable's hooks like everyone else's,
//! and the stack is unwound through it with its DWARF CFI.

use std::ffi::{c_char, c_int, c_void, CStr};

/// `z_stream` on 64-bit Linux: 112 bytes, zeroed so zlib uses its own
/// `malloc`-based allocator.
#[repr(C, align(8))]
struct ZStream([u8; 112]);

type DeflateInit = unsafe extern "C" fn(*mut ZStream, c_int, *const c_char, c_int) -> c_int;
type DeflateEnd = unsafe extern "C" fn(*mut ZStream) -> c_int;

struct Zlib {
    init: DeflateInit,
    end: DeflateEnd,
}

fn load_zlib() -> Zlib {
    // SAFETY: dlopen with a NUL-terminated name; libz has no initialisers
    // with preconditions. Loaded outside any check: the loader's own
    // bookkeeping is not what these tests are about.
    let handle = unsafe { libc::dlopen(c"libz.so.1".as_ptr(), libc::RTLD_NOW) };
    assert!(
        !handle.is_null(),
        "libz.so.1 (Debian's zlib1g, always installed) must load"
    );
    let symbol = |name: &CStr| {
        // SAFETY: looking up a NUL-terminated name in a live handle.
        let address = unsafe { libc::dlsym(handle, name.as_ptr()) };
        assert!(!address.is_null(), "{name:?} missing from libz.so.1");
        address
    };
    let init = symbol(c"deflateInit_");
    let end = symbol(c"deflateEnd");
    Zlib {
        // SAFETY: zlib's documented C signatures for these entry points.
        init: unsafe { std::mem::transmute::<*mut c_void, DeflateInit>(init) },
        // SAFETY: as above.
        end: unsafe { std::mem::transmute::<*mut c_void, DeflateEnd>(end) },
    }
}

fn deflate_init(zlib: &Zlib) -> Box<ZStream> {
    let mut stream = Box::new(ZStream([0; 112]));
    // SAFETY: a zeroed z_stream of the size zlib expects; "1.2.13" matches
    // the library's major version, which is all deflateInit_ checks.
    let rc = unsafe { (zlib.init)(&mut *stream, 6, c"1.2.13".as_ptr(), 112) };
    assert_eq!(rc, 0, "deflateInit_ failed");
    stream
}

#[test]
fn deflate_without_end_leaks_inside_libz() {
    let zlib = load_zlib();
    let report = leakcheck::check(|| {
        let stream = deflate_init(&zlib);
        drop(stream); // the z_stream goes, zlib's internal state stays
    });
    let in_libz: Vec<_> = report
        .leaks()
        .iter()
        .filter(|leak| {
            leak.stack
                .first()
                .and_then(|f| f.module.as_deref())
                .is_some_and(|m| m.contains("libz.so"))
        })
        .collect();
    assert_eq!(report.status(), leakcheck::Status::Leaked, "{report}");
    // deflate_state, window, prev, head and pending_buf.
    let blocks: usize = in_libz.iter().map(|l| l.blocks).sum();
    assert_eq!(blocks, 5, "{report}");
    assert_eq!(report.leaked_blocks(), 5, "nothing else leaked: {report}");
    for leak in &in_libz {
        assert_eq!(leak.origin, leakcheck::Origin::C);
        assert_eq!(
            leak.allocator, "malloc",
            "zlib's zcalloc uses malloc: {report}"
        );
        let functions: Vec<&str> = leak
            .stack
            .iter()
            .filter_map(|f| f.function.as_deref())
            .collect();
        assert!(
            functions.iter().any(|f| f.starts_with("deflateInit")),
            "{functions:?}"
        );
        assert!(
            functions
                .last()
                .is_some_and(|f| f.contains("deflate_without_end_leaks_inside_libz")),
            "the stack ends at the test: {functions:?}"
        );
    }
}

#[test]
fn deflate_with_end_is_clean() {
    let zlib = load_zlib();
    let report = leakcheck::check(|| {
        let mut stream = deflate_init(&zlib);
        // SAFETY: `stream` was initialised by deflateInit_ above.
        assert_eq!(unsafe { (zlib.end)(&mut *stream) }, 0);
    });
    assert!(report.is_clean(), "{report}");
    // The z_stream box and zlib's five blocks were seen and freed.
    let stats = report.stats();
    assert!(stats.allocations >= 6 && stats.frees >= 6, "{stats:?}");
}
