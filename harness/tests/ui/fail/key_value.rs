use leakcheck::leak_checked;

#[leak_checked(strict = true)]
fn t() {}

fn main() {}
