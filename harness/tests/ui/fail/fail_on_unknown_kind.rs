use leakcheck::leak_checked;

#[leak_checked(fail_on = "definite,posible")]
fn t() {}

fn main() {}
