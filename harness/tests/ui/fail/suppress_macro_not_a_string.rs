leakcheck::suppress!(42);

leakcheck::suppress!(b"leak:sqlite3_initialize");

fn main() {}
