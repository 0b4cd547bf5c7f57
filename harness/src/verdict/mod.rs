//! The verdict: what a check left live, classified the way memcheck does.
//!
//! [`classify`] follows pointers from the roots (loaded objects' data, the
//! threads that can hold the test's data) through the heap and gives each
//! surviving block its [`Kind`]; [`memscan`] reads memory that may vanish
//! under it without faulting the process. Imports go down only: to `track`
//! and `sys`.

#[cfg(target_os = "linux")]
pub(crate) mod classify;
mod kind;
pub(crate) mod memscan;
#[cfg(target_os = "linux")]
mod sort;
mod survivors;

pub use kind::Kind;
pub(crate) use kind::KindSet;
pub(crate) use survivors::Survivors;
