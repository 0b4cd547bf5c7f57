use leakcheck::leak_checked;

#[leak_checked(max_sections = "5")]
fn t() {}

fn main() {}
