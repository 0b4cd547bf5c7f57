//! A leak in a `std::thread` that the test spawns and joins (or scopes) is
//! charged to the test: the stack starts at the thread closure's line and
//! ends at that closure, the thread's base. Threads that free what they
//! allocate are clean.

mod common;

use common::{
    assert_clean, assert_ends_at, assert_fixture_frame, assert_frame, assert_one_site, function,
    here,
};
use leakcheck::Origin;
use leakcheck_test_support::{leak, LEAK_FN};
use std::hint::black_box;
use std::thread;

#[test]
fn rust_leak_in_a_joined_thread_is_caught() {
    let mut site = ("", 0);
    let report = leakcheck::check(|| {
        let handle = thread::spawn(|| {
            let line = line!() + 1; // the allocation is on the next line
            let leaked: &'static mut [u8; 24] = Box::leak(Box::new(black_box([7; 24])));
            black_box(leaked);
            (here!(), line)
        });
        site = handle.join().unwrap();
    });

    let (thread_fn, line) = site;
    let leak = assert_one_site(&report, (1, 24), Origin::Rust, "alloc");
    assert_frame(&leak.stack[0], thread_fn, file!(), line);
    assert_ends_at(leak, thread_fn);
}

#[test]
fn c_leak_in_a_joined_thread_is_caught() {
    let mut thread_fn = "";
    let report = leakcheck::check(|| {
        let handle = thread::spawn(|| {
            leak(black_box(2), black_box(56));
            black_box(here!())
        });
        thread_fn = handle.join().unwrap();
    });

    let leak = assert_one_site(&report, (2, 112), Origin::C, "malloc");
    assert_fixture_frame(&leak.stack[0], LEAK_FN, "leak");
    assert_ends_at(leak, thread_fn);
}

#[test]
fn leak_in_a_scoped_thread_is_caught() {
    let mut thread_fn = "";
    let report = leakcheck::check(|| {
        thread::scope(|s| {
            s.spawn(|| {
                let leaked: &'static mut [u8; 72] = Box::leak(Box::new(black_box([1; 72])));
                black_box(leaked);
                thread_fn = here!();
            });
        });
    });

    let leak = assert_one_site(&report, (1, 72), Origin::Rust, "alloc");
    assert_eq!(function(&leak.stack[0]), thread_fn, "{report}");
    assert_ends_at(leak, thread_fn);
}

#[test]
fn threads_that_free_are_clean() {
    let report = leakcheck::check(|| {
        let handle = thread::spawn(|| {
            let v = black_box(vec![7u8; 24]);
            v.iter().map(|&b| usize::from(b)).sum::<usize>()
        });
        assert_eq!(handle.join().unwrap(), 7 * 24);
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| drop(black_box(Box::new([1u8; 72]))));
            }
        });
    });
    assert_clean(&report, 5);
}
