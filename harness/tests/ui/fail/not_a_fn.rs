use leakcheck::leak_checked;

#[leak_checked]
struct NotATest;

fn main() {}
