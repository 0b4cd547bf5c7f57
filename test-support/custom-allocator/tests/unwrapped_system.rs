//! `#[global_allocator]` is `System`, not wrapped: Rust blocks reach
//! leakcheck only through the C hooks, as `malloc` blocks. The leak is
//! caught, and the report says why it is labelled C.

#[global_allocator]
static ALLOCATOR: std::alloc::System = std::alloc::System;

#[leakcheck::leak_checked]
fn leaks_a_box() {
    std::hint::black_box(Box::leak(Box::new([7u8; 64])));
}
