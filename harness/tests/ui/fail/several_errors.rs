// Every mistake is reported at once.
use leakcheck::leak_checked;

#[leak_checked(foo, strict, strict)]
async fn t(x: u32) {
    let _ = x;
}

fn main() {}
