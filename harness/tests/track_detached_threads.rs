//! A thread the test starts and does not join, which finishes at once, is
//! waited for: the verdict must not race the new thread's first steps and
//! report std's spawn bookkeeping (its `Thread` and `Packet`, the boxed
//! closure) as leaks. A thread that is still running later is a different
//! matter (its blocks are live).

#[test]
fn unjoined_threads_that_finish_at_once_leave_the_check_clean() {
    let mut dirty = Vec::new();
    for _ in 0..200 {
        let report = leakcheck::check(|| {
            std::thread::spawn(|| {
                std::hint::black_box(1);
            });
        });
        // std's spawn allocates its Thread, Packet and closure: if the hooks
        // saw nothing, "clean" would mean nothing.
        assert!(report.stats().allocations >= 3, "{:?}", report.stats());
        if !report.is_clean() {
            dirty.push(report.to_string());
        }
    }
    assert!(
        dirty.is_empty(),
        "{} of 200 checks not clean; first:\n{}",
        dirty.len(),
        dirty[0]
    );
}
