use leakcheck::leak_checked;

#[leak_checked(show = "definite,indirectly")]
fn t() {}

fn main() {}
