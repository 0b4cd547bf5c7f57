use leakcheck::leak_checked;

#[leak_checked(suppress = "")]
fn t() {}

#[leak_checked(suppress = r#"
   "#)]
fn u() {}

fn main() {}
