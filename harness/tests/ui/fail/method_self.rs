use leakcheck::leak_checked;

struct S;

impl S {
    #[leak_checked]
    fn t(&self) {}
}

fn main() {}
