use leakcheck::leak_checked;

#[leak_checked]
#[should_panic(expected = "boom")]
fn should_panic() {
    panic!("boom");
}

fn main() {}
