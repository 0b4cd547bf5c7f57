use leakcheck::leak_checked;

#[leak_checked(strict,)]
#[test]
fn strict_trailing_comma() {}

fn main() {}
