// Where leakcheck is a dev-dependency, a library's own tests keep `#[test]`
// and gain the check only in test builds: no warning either way.
#![deny(warnings)]

#[cfg_attr(test, leakcheck::leak_checked)]
#[test]
fn checked_in_test_builds() {
    assert_eq!(1 + 1, 2);
}

fn main() {}
