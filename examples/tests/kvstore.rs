//! An example test file to copy: `#[leak_checked]` tests of a wrapper around
//! C code. `cargo test -p leakcheck-examples` runs the clean ones;
//! `cargo test -p leakcheck-examples -- --ignored` shows a caught leak.

use leakcheck::leak_checked;
use leakcheck_examples::KvStore;

#[leak_checked]
fn put_get_and_drop_frees_everything() {
    let mut kv = KvStore::new();
    kv.put("a", "1");
    kv.put("b", "2");
    assert_eq!(kv.get("a").as_deref(), Some("1"));
    assert_eq!(kv.get("missing"), None);
}

#[leak_checked]
fn overwrite_with_the_fixed_function_is_clean() {
    let mut kv = KvStore::new_fixed();
    kv.put("a", "1");
    kv.put("a", "2");
    assert_eq!(kv.get("a").as_deref(), Some("2"));
}

#[leak_checked]
fn threads_and_printing_are_fine() {
    let handles: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let mut kv = KvStore::new_fixed();
                kv.put("thread", &i.to_string());
                println!("thread {i} wrote {:?}", kv.get("thread"));
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
}

/// Fails: `kv_put` leaks the old value. Run with `--ignored` to see the
/// report.
#[leak_checked]
#[ignore = "demonstrates a caught C leak; run with --ignored"]
fn overwrite_leaks_in_c() {
    let mut kv = KvStore::new();
    kv.put("a", "1");
    kv.put("a", "2");
}
