// `#[leak_checked]` builds tokio's runtime itself; any other runtime's test
// attribute goes above it.
use leakcheck::leak_checked;

#[leak_checked]
#[async_std::test]
async fn other_runtime() {}

fn main() {}
