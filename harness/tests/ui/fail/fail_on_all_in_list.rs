use leakcheck::leak_checked;

#[leak_checked(fail_on = "definite,all")]
fn t() {}

#[leak_checked(fail_on = "definite,")]
fn u() {}

#[leak_checked(fail_on = "")]
fn v() {}

fn main() {}
