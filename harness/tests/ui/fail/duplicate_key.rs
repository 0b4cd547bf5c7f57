use leakcheck::leak_checked;

#[leak_checked(strict, strict)]
fn t() {}

fn main() {}
