use leakcheck::leak_checked;

#[leak_checked]
#[ignore = "slow"]
fn ignored() {}

fn main() {}
