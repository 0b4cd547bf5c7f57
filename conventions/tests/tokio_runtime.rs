//! `#[leak_checked]` with `#[tokio::test]`, in both orders, with the
//! current-thread and the multi-thread runtime: the runtime is built and
//! shut down inside the check (its worker threads are the test's, and are
//! joined before the verdict, so a clean test is clean), and a leak in a
//! task spawned onto a worker is caught with the task's stack.

mod support;

use leakcheck::leak_checked;
use leakcheck_test_support::{leak, LEAK_FN};
use std::hint::black_box;
use support::{is_child, run_leaking};

/// Spawns `n` tasks that each allocate and free, and awaits them.
async fn churn(n: usize) {
    let tasks: Vec<_> = (0..n)
        .map(|i| tokio::spawn(async move { vec![i as u8; 64 + i].len() }))
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap(), 64 + i);
    }
}

#[leak_checked]
#[tokio::test]
async fn current_thread_below_is_clean() {
    churn(4).await;
    tokio::task::yield_now().await;
}

#[leak_checked]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_below_is_clean() {
    churn(16).await;
    let body = std::thread::current().id();
    let worker = tokio::spawn(async { std::thread::current().id() });
    assert_ne!(worker.await.unwrap(), body, "the task ran on a worker");
}

#[tokio::test]
#[leak_checked]
async fn current_thread_above_is_clean() {
    churn(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[leak_checked]
async fn multi_thread_above_is_clean() {
    churn(16).await;
}

#[leak_checked(strict)]
#[tokio::test(flavor = "multi_thread")]
async fn multi_thread_default_workers_strict_is_clean() {
    churn(8).await;
}

#[leak_checked]
#[tokio::test]
async fn returns_a_result() -> Result<(), std::num::ParseIntError> {
    let n: u32 = "42".parse()?;
    assert_eq!(n, 42);
    Ok(())
}

#[leak_checked]
#[tokio::test]
#[should_panic(expected = "async boom")]
async fn should_panic_in_an_async_test() {
    churn(2).await;
    panic!("async boom {}", black_box(1));
}

/// Leaks 2 blocks of 40 bytes from C in a task on a worker thread.
async fn leak_on_a_worker() {
    let body = std::thread::current().id();
    let task = tokio::spawn(async move {
        assert_ne!(std::thread::current().id(), body, "not on a worker");
        leak(black_box(2), black_box(40));
        black_box(());
    });
    task.await.unwrap();
}

#[leak_checked]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaks_in_a_worker_task_below() {
    if is_child("leaks_in_a_worker_task_below") {
        leak_on_a_worker().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[leak_checked]
async fn leaks_in_a_worker_task_above() {
    if is_child("leaks_in_a_worker_task_above") {
        leak_on_a_worker().await;
    }
}

#[leak_checked]
#[tokio::test]
async fn leaks_rust_on_the_current_thread() {
    if is_child("leaks_rust_on_the_current_thread") {
        let leaked: &'static mut [u8; 24] = Box::leak(Box::new(black_box([0; 24])));
        black_box(leaked);
    }
}

#[test]
fn a_leak_in_a_worker_task_is_caught_with_its_stack() {
    for test in [
        "leaks_in_a_worker_task_below",
        "leaks_in_a_worker_task_above",
    ] {
        let caught = run_leaking(test, test, &[]);
        caught.assert_leaked(test, (2, 80), LEAK_FN, "tokio_runtime::leak_on_a_worker::");
    }
}

#[test]
fn a_leak_on_the_current_thread_runtime_is_caught() {
    let test = "leaks_rust_on_the_current_thread";
    let caught = run_leaking(test, test, &[]);
    caught.assert_leaked(
        test,
        (1, 24),
        "tokio_runtime::leaks_rust_on_the_current_thread::{{closure}}::leaks_rust_on_the_current_thread::{{closure}}",
        "tokio_runtime::leaks_rust_on_the_current_thread::",
    );
}
