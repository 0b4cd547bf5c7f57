//! The demo: a Rust wrapper around C code leaks, and leakcheck says where.
//!
//! Run it with `cargo run -p leakcheck-examples --example demo`.

use leakcheck_examples::KvStore;

fn main() {
    println!(
        "Checking a wrapper around a C key-value store whose kv_put() leaks on overwrite...\n"
    );
    let report = leakcheck::check(|| {
        let mut kv = KvStore::new();
        kv.put("lang", "C");
        kv.put("lang", "Rust"); // the C library drops the old value on the floor
        assert_eq!(kv.get("lang").as_deref(), Some("Rust"));
    });
    println!("{report}\n");

    println!("The same code with the fixed C function:\n");
    let fixed = leakcheck::check(|| {
        let mut kv = KvStore::new_fixed();
        kv.put("lang", "C");
        kv.put("lang", "Rust");
        assert_eq!(kv.get("lang").as_deref(), Some("Rust"));
    });
    println!("{fixed}");

    // The demo succeeds when the leak was caught and the fix is clean.
    let caught = report.leaked_blocks() == 1 && report.leaked_bytes() == 2;
    if !(caught && fixed.is_clean()) {
        eprintln!("\ndemo: expected exactly one 2-byte leak and a clean fix");
        std::process::exit(1);
    }
}
