use leakcheck::leak_checked;

#[leak_checked(fail_on = definite)]
fn t() {}

#[leak_checked(fail_on = ["definite", "possible"])]
fn u() {}

#[leak_checked(fail_on)]
fn v() {}

fn main() {}
