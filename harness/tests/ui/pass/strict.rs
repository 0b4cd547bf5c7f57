use leakcheck::leak_checked;

#[leak_checked(strict)]
fn strict() {}

fn main() {}
