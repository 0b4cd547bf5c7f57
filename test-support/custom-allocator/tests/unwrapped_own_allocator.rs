//! `#[global_allocator]` is the crate's own, not wrapped: leakcheck sees no
//! Rust allocation, and every verdict must say so rather than be `clean`.

#[global_allocator]
static ALLOCATOR: leakcheck_custom_allocator_fixture::Mapped =
    leakcheck_custom_allocator_fixture::Mapped;

#[leakcheck::leak_checked]
fn leaks_a_box() {
    std::hint::black_box(Box::leak(Box::new([7u8; 64])));
}

#[leakcheck::leak_checked]
fn frees_everything() {
    drop(std::hint::black_box(vec![1u8; 32]));
}
