//! Tracking: every allocation of the process, as it happens.
//!
//! The front ends — the interposed C `malloc` family ([`hooks`]) and the
//! tracking global allocator ([`global`]) — hand each call to [`record`],
//! which files the block in the process-wide [`table`] under the check
//! ([`scope`]) running on the thread, with its stack. [`threads`] keeps
//! every thread's stack and thread pointer for the verdict's roots.
//! Imports go down only: to `stacks` and `sys`.

pub(crate) mod cache;
pub(crate) mod global;
#[cfg(leakcheck_interpose)]
pub(crate) mod hooks;
#[cfg(not(leakcheck_interpose))]
#[path = "hooks_unsupported.rs"]
pub(crate) mod hooks;
#[cfg(leakcheck_interpose)]
pub(crate) mod misuse;
#[cfg(leakcheck_interpose)]
pub(crate) mod own_heap;
#[cfg(leakcheck_interpose)]
pub(crate) mod quarantine;
#[cfg(leakcheck_interpose)]
#[cfg_attr(leakcheck_prebuilt_walk, allow(dead_code))]
mod quarantine_core;
pub(crate) mod record;
#[cfg(feature = "profile")]
pub(crate) mod sample;
pub(crate) mod scope;
#[cfg_attr(leakcheck_prebuilt_walk, allow(dead_code))]
mod shard_core;
pub(crate) mod table;
#[cfg(target_os = "linux")]
pub(crate) mod threads;
