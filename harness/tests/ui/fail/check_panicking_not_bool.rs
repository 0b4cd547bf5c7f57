use leakcheck::leak_checked;

#[leak_checked(check_panicking = "no")]
fn not_a_bool() {}

#[leak_checked(check_panicking)]
fn no_value() {}

fn main() {}
