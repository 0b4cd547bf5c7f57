//! Tests of `#[leak_checked]` stacked with the test attributes of real
//! crates (in `tests/`), and, here, a library's own tests checked with
//! `#[cfg_attr(test, leakcheck::leak_checked)]` above a bare `#[test]`
//! outside any `#[cfg(test)]` module: leakcheck is only a dev-dependency,
//! and neither the library nor its test build warns.

/// Doubles `n`: something for the tests below to call.
///
/// ```
/// assert_eq!(leakcheck_conventions::double(2), 4);
/// ```
pub fn double(n: u32) -> u32 {
    n * 2
}

#[cfg_attr(test, leakcheck::leak_checked)]
#[test]
fn doubles() {
    let inputs: Vec<u32> = (0..16).collect();
    assert!(inputs.iter().all(|&n| double(n) == n + n));
}

#[cfg_attr(test, leakcheck::leak_checked)]
#[test]
fn leaks_as_a_child() {
    if std::env::var_os(CHILD).is_some_and(|role| role == "leaks_as_a_child") {
        let leaked: &'static mut [u8; 16] = Box::leak(Box::new(std::hint::black_box([0; 16])));
        std::hint::black_box(leaked);
    }
}

/// The variable that makes this test binary's `leaks_as_a_child` leak.
#[cfg(test)]
const CHILD: &str = "LEAKCHECK_TEST_CHILD";

#[cfg(test)]
mod tests {
    #[test]
    fn the_cfg_attr_test_is_checked() {
        let exe = std::env::current_exe().expect("the test binary");
        let out = std::process::Command::new(exe)
            .args(["--exact", "leaks_as_a_child", "--nocapture"])
            .env(super::CHILD, "leaks_as_a_child")
            .env_remove("LEAKCHECK")
            .env_remove("LEAKCHECK_REPORT_DIR")
            .output()
            .expect("running the test binary");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        let summary =
            "leakcheck: `leaks_as_a_child` leaked 1 block (16 bytes) from 1 allocation site";
        assert_eq!(stderr.lines().next(), Some(summary), "{stderr}");
    }
}
