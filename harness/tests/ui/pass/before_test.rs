// `#[leak_checked]` above `#[test]`: the test attribute is kept, not doubled.
use leakcheck::leak_checked;

#[leak_checked]
#[test]
fn before_test() {}

fn main() {}
