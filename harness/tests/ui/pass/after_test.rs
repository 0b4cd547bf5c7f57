// `#[leak_checked]` below `#[test]` is accepted. An attribute macro only sees
// the attributes below it, so this order registers the test twice (once for
// the `#[test]` above, once for the one the attribute adds): write
// `#[leak_checked]` first. Outside a test build `#[test]` drops the function
// before `leak_checked` resolves, hence the full path instead of a `use`.
#[test]
#[leakcheck::leak_checked]
fn after_test() {}

fn main() {}
