//! A clean body that does what ordinary tests do — print to stdout and
//! stderr, build `HashMap`s and `format!` strings, spawn and join threads,
//! use `thread::scope`, call C that frees what it allocates — passes: the
//! runtime's own allocations (libtest's output capture, thread bookkeeping
//! in `pthread_create`) are not charged. The same body with one real leak
//! reports exactly that leak. Several copies run in parallel in this binary.

mod common;

use common::{assert_clean, assert_ends_at, assert_frame, assert_one_site, here};
use leakcheck::Origin;
use std::collections::HashMap;
use std::hint::black_box;
use std::thread;

fn busy() {
    println!("hello from a checked body: {}", 42);
    eprintln!("and to stderr");
    let mut map = HashMap::new();
    for i in 0..100 {
        map.insert(i, format!("value {i}"));
    }
    assert_eq!(map[&7], "value 7");
    drop(map);
    let handle = thread::spawn(|| {
        println!("in a spawned thread");
        format!("{:?}", black_box(vec![1, 2, 3])).len()
    });
    assert_eq!(handle.join().unwrap(), 9);
    thread::scope(|s| {
        for i in 0..3 {
            s.spawn(move || {
                println!("scoped thread {i}");
                drop(black_box(vec![0u8; 1000]));
            });
        }
    });
    leakcheck_test_support::churn(black_box(20), black_box(64));
    leakcheck_test_support::thread_clean(black_box(5), black_box(32));
}

fn assert_busy_is_clean() {
    let report = leakcheck::check(busy);
    // The map's 100 strings alone: the work was seen, not skipped.
    assert_clean(&report, 100);
}

#[test]
fn busy_body_is_clean_1() {
    assert_busy_is_clean();
}

#[test]
fn busy_body_is_clean_2() {
    assert_busy_is_clean();
}

#[test]
fn busy_body_is_clean_3() {
    assert_busy_is_clean();
}

#[test]
fn busy_body_is_clean_4() {
    assert_busy_is_clean();
}

#[test]
fn busy_body_with_one_leak_reports_only_it() {
    let (mut test_fn, mut line) = ("", 0);
    let report = leakcheck::check(|| {
        busy();
        test_fn = here!();
        line = line!() + 1; // the allocation is on the next line
        let leaked: &'static mut [u8; 77] = Box::leak(Box::new(black_box([3; 77])));
        black_box(leaked);
        busy();
    });
    let leak = assert_one_site(&report, (1, 77), Origin::Rust, "alloc");
    assert_frame(&leak.stack[0], test_fn, file!(), line);
    assert_ends_at(leak, test_fn);
}
