use leakcheck::leak_checked;

#[leak_checked("strict")]
fn t() {}

fn main() {}
