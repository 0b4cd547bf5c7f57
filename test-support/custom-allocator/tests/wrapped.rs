//! The crate's own allocator wrapped in `leakcheck::Tracked`: Rust blocks
//! are tracked as Rust, with no error or warning.

#[global_allocator]
static ALLOCATOR: leakcheck::Tracked<leakcheck_custom_allocator_fixture::Mapped> =
    leakcheck::Tracked::new(leakcheck_custom_allocator_fixture::Mapped);

#[leakcheck::leak_checked]
fn leaks_a_box() {
    std::hint::black_box(Box::leak(Box::new([7u8; 64])));
}

#[leakcheck::leak_checked]
fn frees_everything() {
    drop(std::hint::black_box(vec![1u8; 32]));
}
