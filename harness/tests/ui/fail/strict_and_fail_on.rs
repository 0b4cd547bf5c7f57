use leakcheck::leak_checked;

#[leak_checked(strict, fail_on = "all")]
fn t() {}

#[leak_checked(fail_on = "definite", strict)]
fn u() {}

fn main() {}
