use leakcheck::leak_checked;

#[leak_checked]
fn t(x: u32) {
    let _ = x;
}

fn main() {}
