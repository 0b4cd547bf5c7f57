use leakcheck::leak_checked;

#[leak_checked]
async fn t() {}

fn main() {}
