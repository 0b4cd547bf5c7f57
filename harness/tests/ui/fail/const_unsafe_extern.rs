use leakcheck::leak_checked;

#[leak_checked]
const fn c() {}

#[leak_checked]
unsafe fn u() {}

#[leak_checked]
extern "C" fn e() {}

fn main() {}
