use leakcheck::leak_checked;

#[leak_checked(suppress "leak:sqlite3_initialize")]
fn t() {}

#[leak_checked(suppress("leak:sqlite3_initialize"))]
fn u() {}

#[leak_checked(suppress)]
fn v() {}

fn main() {}
