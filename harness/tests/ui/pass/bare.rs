// A bare attribute implies `#[test]`.
use leakcheck::leak_checked;

#[leak_checked]
fn bare() {
    assert_eq!(vec![1, 2, 3].len(), 3);
}

fn main() {}
