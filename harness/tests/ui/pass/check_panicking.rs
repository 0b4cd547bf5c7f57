use leakcheck::leak_checked;

#[leak_checked(check_panicking = false)]
#[should_panic(expected = "boom")]
fn unchecked_when_it_panics() {
    panic!("boom");
}

#[leak_checked(check_panicking = true, strict)]
#[should_panic = "boom"]
fn checked_when_it_panics() {
    panic!("boom");
}

fn main() {}
