use leakcheck::leak_checked;

/// Documented test.
#[leak_checked]
fn doc_comment() {
    //! Inner doc comment, kept inside the function.
}

fn main() {}
