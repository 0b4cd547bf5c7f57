// A test returning `Result`, with `?` in the body.
use leakcheck::leak_checked;

#[leak_checked]
fn result() -> Result<(), std::num::ParseIntError> {
    let n: u8 = "42".parse()?;
    assert_eq!(n, 42);
    Ok(())
}

fn main() {}
