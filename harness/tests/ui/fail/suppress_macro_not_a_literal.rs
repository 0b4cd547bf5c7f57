leakcheck::suppress!(concat!("leak:", "sqlite3_initialize"));

const TEXT: &str = "leak:sqlite3_initialize";
leakcheck::suppress!(TEXT);

leakcheck::suppress!();

leakcheck::suppress!("leak:a", "leak:b");

fn main() {}
