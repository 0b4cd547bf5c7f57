leakcheck::suppress!("");

leakcheck::suppress!(" \n ");

fn main() {}
