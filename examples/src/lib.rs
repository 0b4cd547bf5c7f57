//! A safe Rust wrapper around a small C key-value store (`c/kvstore.c`), the
//! shape of a typical `-sys` crate plus its safe layer. The examples and the
//! example tests check it with leakcheck.
//!
//! ```
//! let mut kv = leakcheck_examples::KvStore::new();
//! kv.put("lang", "Rust");
//! assert_eq!(kv.get("lang").as_deref(), Some("Rust"));
//! ```

use std::ffi::{c_char, c_int, CStr, CString};

#[repr(C)]
struct RawStore {
    _private: [u8; 0],
}

extern "C" {
    fn kv_new() -> *mut RawStore;
    fn kv_put(kv: *mut RawStore, key: *const c_char, value: *const c_char) -> c_int;
    fn kv_put_fixed(kv: *mut RawStore, key: *const c_char, value: *const c_char) -> c_int;
    fn kv_get(kv: *mut RawStore, key: *const c_char) -> *const c_char;
    fn kv_free(kv: *mut RawStore);
}

/// An owned C key-value store.
pub struct KvStore {
    raw: *mut RawStore,
    fixed: bool,
}

// SAFETY: the C store has no thread affinity; `&mut self` serialises writes.
unsafe impl Send for KvStore {}

impl KvStore {
    /// A new, empty store using the C library's `kv_put`, which leaks the old
    /// value when a key is overwritten.
    pub fn new() -> KvStore {
        // SAFETY: kv_new has no preconditions; null means out of memory.
        let raw = unsafe { kv_new() };
        assert!(!raw.is_null(), "kv_new: out of memory");
        KvStore { raw, fixed: false }
    }

    /// A new store that uses `kv_put_fixed`, which frees the old value.
    pub fn new_fixed() -> KvStore {
        let mut kv = KvStore::new();
        kv.fixed = true;
        kv
    }

    /// Sets `key` to `value`.
    ///
    /// # Panics
    ///
    /// If either string contains a NUL byte, or C runs out of memory.
    pub fn put(&mut self, key: &str, value: &str) {
        let key = CString::new(key).expect("key without NUL");
        let value = CString::new(value).expect("value without NUL");
        let put = if self.fixed { kv_put_fixed } else { kv_put };
        // SAFETY: `self.raw` is a live store and both strings are valid C
        // strings that the C side copies.
        let rc = unsafe { put(self.raw, key.as_ptr(), value.as_ptr()) };
        assert_eq!(rc, 0, "kv_put: out of memory");
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<String> {
        let key = CString::new(key).ok()?;
        // SAFETY: `self.raw` is a live store, `key` a valid C string.
        let value = unsafe { kv_get(self.raw, key.as_ptr()) };
        if value.is_null() {
            return None;
        }
        // SAFETY: a non-null result points to a NUL-terminated string owned
        // by the store, alive until the next put or free; copied at once.
        let value = unsafe { CStr::from_ptr(value) };
        Some(value.to_string_lossy().into_owned())
    }
}

impl Default for KvStore {
    fn default() -> Self {
        KvStore::new()
    }
}

impl Drop for KvStore {
    fn drop(&mut self) {
        // SAFETY: `self.raw` came from kv_new and is freed exactly once.
        unsafe { kv_free(self.raw) };
    }
}

#[cfg(test)]
mod tests {
    use super::KvStore;
    use leakcheck::leak_checked;

    // `#[leak_checked]` works on unit tests inside a library too.
    #[leak_checked]
    fn a_unit_test_of_the_wrapper_is_checked() {
        let mut kv = KvStore::new_fixed();
        kv.put("k", "v1");
        kv.put("k", "v2");
        assert_eq!(kv.get("k").as_deref(), Some("v2"));
    }

    #[test]
    fn the_buggy_put_is_caught_by_a_unit_test_too() {
        let report = leakcheck::check(|| {
            let mut kv = KvStore::new();
            kv.put("k", "v1");
            kv.put("k", "v2");
        });
        assert_eq!(report.leaked_blocks(), 1, "{report}");
        assert_eq!(report.leaked_bytes(), 3, "{report}");
        let frames: Vec<_> = report.leaks()[0]
            .stack
            .iter()
            .filter_map(|f| f.function.as_deref())
            .collect();
        assert_eq!(frames.get(1), Some(&"kv_put"), "{report}");
    }
}
