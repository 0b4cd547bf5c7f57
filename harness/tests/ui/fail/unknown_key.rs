use leakcheck::leak_checked;

#[leak_checked(foo)]
fn t() {}

fn main() {}
