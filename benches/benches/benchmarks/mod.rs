//! One module per topic, each ending in `criterion_group!`.

// Profiling mode changes every allocation: its build measures only it.
#[cfg(not(feature = "profile"))]
pub mod malloc_free;
#[cfg(feature = "profile")]
pub mod profile_mode;
#[cfg(not(feature = "profile"))]
pub mod realloc_grow;
#[cfg(not(feature = "profile"))]
pub mod rust_box;
#[cfg(not(feature = "profile"))]
pub mod verdict;

use criterion::Criterion;
use std::time::Duration;

/// Short enough that the whole suite runs in a few minutes on two cores.
pub fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}
