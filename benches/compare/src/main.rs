//! The comparison's workloads (see `run.py` beside this crate), one per
//! command line:
//!
//! ```text
//! compare-workload c-loop ITERATIONS     malloc/free pairs in C, 10 blocks leaked
//! compare-workload rust-loop ITERATIONS  the same with Rust allocations
//! compare-workload zlib MEGABYTES        deflate + inflate through libz-sys
//! compare-workload c-tree NODES          a tree of small live C blocks
//! ```
//!
//! Built without the `leakcheck` feature the binary is uninstrumented, for
//! the baseline and for the external tools. With it, the workload runs
//! inside `leakcheck::check` and the binary prints one line saying what the
//! verdict found: `leakcheck: leaked BLOCKS blocks BYTES bytes, stack: yes|no`.

use std::hint::black_box;
use std::process::ExitCode;

/// How many blocks the two loops leak.
const LEAKS: usize = 10;

extern "C" {
    fn compare_c_loop(iterations: usize, leaks: usize) -> u64;
    fn compare_c_tree(nodes: usize, passes: usize) -> u64;
}

/// One leaked Rust block of 100 bytes: the pointer is forgotten.
#[inline(never)]
fn rust_leak_one() {
    std::mem::forget(black_box(Box::new([0x5au8; 100])));
}

fn rust_loop(iterations: usize) -> u64 {
    let every = iterations / LEAKS;
    let mut sum = 0u64;
    let mut leaked = 0;
    for i in 0..iterations {
        let size = 16 + (i * 37) % 496;
        let mut v = black_box(vec![0u8; size]);
        v[0] = i as u8;
        v[size - 1] = 1;
        sum += u64::from(v[0]) + u64::from(v[size - 1]);
        drop(v);
        if every != 0 && i % every == every - 1 && leaked < LEAKS {
            rust_leak_one();
            leaked += 1;
        }
    }
    sum
}

#[inline(never)]
fn c_loop(iterations: usize) -> u64 {
    // SAFETY: a plain C function over its own allocations.
    unsafe { compare_c_loop(iterations, LEAKS) }
}

#[inline(never)]
fn c_tree(nodes: usize) -> u64 {
    // SAFETY: a plain C function over its own allocations.
    unsafe { compare_c_tree(nodes, 3) }
}

/// Compresses and decompresses `megabytes` MB of text-like data with zlib.
fn zlib(megabytes: usize) -> u64 {
    let input: Vec<u8> = (0..megabytes << 20)
        .map(|i| b"leakcheck compares tools on zlib "[(i * 7 + i / 64) % 33])
        .collect();
    let compressed = zlib_call(&input, true, input.len() + 1024);
    let output = zlib_call(&compressed, false, input.len());
    assert!(output == input, "zlib round trip changed the data");
    compressed.len() as u64
}

/// One whole-buffer deflate (`compress`) or inflate through a z_stream, so
/// zlib allocates its state and window through malloc as a real user does.
fn zlib_call(input: &[u8], compress: bool, capacity: usize) -> Vec<u8> {
    use libz_sys as z;
    let mut out = vec![0u8; capacity];
    // All-zero is z_stream's documented initial state (zalloc/zfree null
    // means malloc/free); it is only read through C after the init call.
    let mut slot = std::mem::MaybeUninit::<z::z_stream>::zeroed();
    let stream = slot.as_mut_ptr();
    // SAFETY: zlibVersion returns a pointer to a static string.
    let version = unsafe { z::zlibVersion() };
    let size = std::mem::size_of::<z::z_stream>() as i32;
    // SAFETY: `stream` points to a zeroed, writable z_stream that the init
    // call sets up before any other use; next_in/next_out point into live
    // buffers of the stated lengths, and the stream is ended before they go
    // out of scope.
    unsafe {
        let init = if compress {
            z::deflateInit_(stream, 6, version, size)
        } else {
            z::inflateInit_(stream, version, size)
        };
        assert_eq!(init, z::Z_OK, "zlib init");
        (*stream).next_in = input.as_ptr() as *mut u8;
        (*stream).avail_in = input.len() as u32;
        (*stream).next_out = out.as_mut_ptr();
        (*stream).avail_out = out.len() as u32;
        let status = if compress {
            z::deflate(stream, z::Z_FINISH)
        } else {
            z::inflate(stream, z::Z_FINISH)
        };
        assert_eq!(status, z::Z_STREAM_END, "zlib did not finish");
        out.truncate((*stream).total_out as usize);
        if compress {
            z::deflateEnd(stream);
        } else {
            z::inflateEnd(stream);
        }
    }
    out
}

fn run(workload: &str, size: usize) -> Result<u64, String> {
    match workload {
        "c-loop" => Ok(c_loop(size)),
        "rust-loop" => Ok(rust_loop(size)),
        "zlib" => Ok(zlib(size)),
        "c-tree" => Ok(c_tree(size)),
        other => Err(format!(
            "unknown workload `{other}`: expected c-loop, rust-loop, zlib or c-tree"
        )),
    }
}

/// The frame each leaking workload's stacks must show, with `main`'s caller
/// chain above it, for "a full stack".
#[cfg(feature = "leakcheck")]
fn leaking_function(workload: &str) -> Option<&'static str> {
    match workload {
        "c-loop" => Some("compare_c_leak_one"),
        "rust-loop" => Some("rust_leak_one"),
        _ => None,
    }
}

#[cfg(feature = "leakcheck")]
fn measure(workload: &str, size: usize) -> Result<u64, String> {
    let mut result = Ok(0);
    let report = leakcheck::check(|| result = run(workload, size));
    // The stack is full when it runs from the leaking function out to the
    // Rust code that called into the workload.
    let full = |leak: &leakcheck::Leak| {
        let has = |name: &str| {
            leak.stack
                .iter()
                .any(|f| f.function.as_deref().is_some_and(|s| s.contains(name)))
        };
        leaking_function(workload).is_some_and(has) && has("compare_workload::")
    };
    let stacks = !report.leaks().is_empty() && report.leaks().iter().all(full);
    println!(
        "leakcheck: leaked {} blocks {} bytes, stack: {}",
        report.leaked_blocks(),
        report.leaked_bytes(),
        if stacks { "yes" } else { "no" }
    );
    result
}

#[cfg(not(feature = "leakcheck"))]
fn measure(workload: &str, size: usize) -> Result<u64, String> {
    run(workload, size)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [workload, size] = args.as_slice() else {
        eprintln!("usage: compare-workload c-loop|rust-loop|zlib|c-tree SIZE");
        return ExitCode::from(2);
    };
    let Ok(size) = size.parse::<usize>() else {
        eprintln!("compare-workload: SIZE `{size}` is not a whole number");
        return ExitCode::from(2);
    };
    match measure(workload, size) {
        Ok(sum) => {
            println!("checksum {sum}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("compare-workload: {message}");
            ExitCode::from(2)
        }
    }
}
