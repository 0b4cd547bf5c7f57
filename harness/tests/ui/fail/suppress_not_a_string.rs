use leakcheck::leak_checked;

#[leak_checked(suppress = leak::sqlite3_initialize)]
fn t() {}

#[leak_checked(suppress = concat!("leak:", "sqlite3_initialize"))]
fn u() {}

fn main() {}
