use leakcheck::leak_checked;

#[leak_checked(fail_on = "definite", fail_on = "possible")]
fn t() {}

fn main() {}
