// The arguments together, and with `#[should_panic]`, `#[test]` and `Result`.
use leakcheck::leak_checked;

#[leak_checked(strict, suppress = "leak:init")]
fn strict_and_suppress() {}

#[leak_checked(suppress = "leak:a", fail_on = "definite,indirect", suppress = "leak:b")]
fn fail_on_between_suppressions() {}

#[leak_checked(fail_on = "all", suppress = "leak:init")]
#[should_panic(expected = "boom")]
fn should_panic() {
    panic!("boom");
}

#[leak_checked(fail_on = "none", suppress = "leak:init")]
#[test]
fn before_test() {}

#[leak_checked(strict, suppress = "leak:init")]
fn result() -> Result<(), Box<dyn std::error::Error>> {
    let n: u8 = "7".parse()?;
    assert_eq!(n, 7);
    Ok(())
}

fn main() {}
