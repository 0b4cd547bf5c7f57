use leakcheck::leak_checked;

#[leak_checked]
fn t<T: Default>() {
    let _ = T::default();
}

fn main() {}
