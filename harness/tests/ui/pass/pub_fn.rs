use leakcheck::leak_checked;

#[leak_checked(strict)]
pub fn pub_fn() {}

fn main() {}
