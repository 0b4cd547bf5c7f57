//! Live heap profiles of a running program (feature `profile`): the sampled
//! blocks (`track::sample`) still live, grouped by stack, with Go's
//! estimates; snapshots, their difference, and the pprof and text forms.
//! [`endpoint`] serves them as Go's `/debug/pprof/heap` does.
//!
//! Stands on every stage above it: the block table and the samples
//! (`track`), interned stacks and symbols (`stacks`), and the report's
//! public frame type.

pub(crate) mod endpoint;
mod text;

use crate::report::{Frame, Origin};
use crate::stacks::{self, symbols};
use crate::track::sample;
use crate::track::scope::Untracked;
use crate::track::table::{self, Allocator};
use std::collections::HashMap;
use std::fmt;
use std::time::SystemTime;

/// A problem with how profiling was asked for.
///
/// ```
/// let err = leakcheck::set_profile_rate(0).unwrap_err();
/// assert!(err.to_string().contains("0 is not a sampling rate"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProfileError {
    /// A sampling rate of 0, or above 1 TiB.
    InvalidRate {
        /// What was asked for.
        rate: u64,
    },
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileError::InvalidRate { rate } => write!(
                f,
                "leakcheck: {rate} is not a sampling rate: give the mean number of bytes between \
                 samples, from 1 (every block) to {}",
                sample::MAX_RATE
            ),
        }
    }
}

impl std::error::Error for ProfileError {}

/// Sets the heap profile's sampling rate: on average one block per `bytes`
/// allocated gets its stack (1: every block). Call it at start-up, before
/// the allocations you want profiled; it overrides `LEAKCHECK_PROFILE_RATE`.
/// The default is 512 KiB, as in Go.
///
/// ```
/// leakcheck::set_profile_rate(64 * 1024).unwrap();
/// assert_eq!(leakcheck::profile_rate(), 65536);
/// ```
pub fn set_profile_rate(bytes: u64) -> Result<(), ProfileError> {
    if !(1..=sample::MAX_RATE).contains(&bytes) {
        return Err(ProfileError::InvalidRate { rate: bytes });
    }
    sample::set_rate(bytes);
    Ok(())
}

/// The heap profile's sampling rate in bytes: [`set_profile_rate`]'s, else
/// `LEAKCHECK_PROFILE_RATE`'s, else 524288.
///
/// ```
/// assert!(leakcheck::profile_rate() >= 1);
/// ```
pub fn profile_rate() -> u64 {
    sample::rate()
}

/// The blocks of one allocation site in a [`HeapProfile`]: estimated from
/// the samples (exact at rate 1). In a [`HeapProfile::diff`] the figures are
/// what changed.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct HeapSite {
    /// C `malloc` family or Rust's global allocator.
    pub origin: Origin,
    /// The allocating function (`malloc`, `alloc`, ...).
    pub allocator: &'static str,
    /// Blocks allocated here and still live.
    pub inuse_objects: i64,
    /// Their bytes.
    pub inuse_bytes: i64,
    /// Blocks allocated here since the program started.
    pub alloc_objects: i64,
    /// Their bytes.
    pub alloc_bytes: i64,
    /// The allocation stack, the allocating call first, without the
    /// allocator's own plumbing. Empty when no stack was taken: the block
    /// was made in a signal handler, on a thread that did not start
    /// through `pthread_create` while leakcheck was linked, or once the
    /// stack store was full.
    pub stack: Vec<Frame>,
    key: (u32, Allocator),
    estimate: Estimate,
}

/// Unrounded estimates: objects and bytes in use, allocated.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Estimate {
    inuse: (f64, f64),
    alloc: (f64, f64),
}

impl Estimate {
    fn minus(self, earlier: Estimate) -> Estimate {
        Estimate {
            inuse: (
                self.inuse.0 - earlier.inuse.0,
                self.inuse.1 - earlier.inuse.1,
            ),
            alloc: (
                self.alloc.0 - earlier.alloc.0,
                self.alloc.1 - earlier.alloc.1,
            ),
        }
    }
}

/// The program's live heap, C and Rust, by allocation site: a snapshot
/// taken with [`HeapProfile::take`], as a pprof profile
/// ([`to_pprof`](HeapProfile::to_pprof)), as text (`Display`), or compared
/// with an earlier snapshot ([`diff`](HeapProfile::diff)).
///
/// ```
/// let before = leakcheck::HeapProfile::take();
/// let kept: Vec<Box<[u8]>> = (0..256).map(|_| vec![7u8; 64 * 1024].into_boxed_slice()).collect();
/// let after = leakcheck::HeapProfile::take();
/// let grew = after.diff(&before);
/// // 16 MiB more in use, estimated from samples (one per 512 KiB by default).
/// assert!(grew.inuse_bytes() > 8 << 20, "{grew}");
/// let pprof: Vec<u8> = grew.to_pprof(); // gzipped profile.proto, for go tool pprof
/// assert_eq!(&pprof[..2], &[0x1f, 0x8b]);
/// drop(kept);
/// ```
#[derive(Clone, Debug)]
pub struct HeapProfile {
    sites: Vec<HeapSite>,
    rate: u64,
    time: SystemTime,
    /// Seconds between the two snapshots of a difference.
    duration: Option<f64>,
    warnings: Vec<String>,
}

impl HeapProfile {
    /// The live heap now: every sampled block still live, by stack, with
    /// Go's estimates, and every site's allocations since start.
    /// Symbolises the stacks it shows (the first time in a process takes
    /// tens of milliseconds); what it allocates is leakcheck's own and is
    /// never in a profile.
    pub fn take() -> HeapProfile {
        let _own = Untracked::harness();
        let rate = sample::rate();
        let time = SystemTime::now();
        let mut estimates: HashMap<(u32, Allocator), Estimate> = HashMap::new();
        table::for_each_sampled(|b| {
            let w = sample::weight(b.size, rate);
            let e = estimates.entry((b.stack, b.allocator())).or_default();
            e.inuse.0 += w;
            e.inuse.1 += w * b.size as f64;
        });
        sample::for_each_allocated(|stack, allocator, objects, bytes| {
            let e = estimates.entry((stack, allocator)).or_default();
            e.alloc = (objects, bytes);
        });
        let mut ips = Vec::new();
        let mut sites: Vec<HeapSite> = estimates
            .into_iter()
            .map(|(key, estimate)| site(key, estimate, symbolise(key.0, &mut ips)))
            .collect();
        sort(&mut sites);
        let mut warnings = Vec::new();
        if sample::env_invalid() {
            warnings.push(format!(
                "{}={:?} is not a sampling rate (a whole number of bytes from 1 to {}); \
                 sampled at {rate} bytes instead",
                sample::RATE_VAR,
                std::env::var(sample::RATE_VAR).unwrap_or_default(),
                sample::MAX_RATE
            ));
        }
        if table::dropped() > 0 {
            warnings.push(format!(
                "{} blocks were not tracked: the kernel refused memory for the block table",
                table::dropped()
            ));
        }
        HeapProfile {
            sites,
            rate,
            time,
            duration: None,
            warnings,
        }
    }

    /// What grew since `earlier`: the sites whose in-use bytes grew, with
    /// how much (in use and allocated meanwhile). This is `go tool pprof
    /// -base earlier.pb.gz later.pb.gz` as an API: run for a while between
    /// two snapshots, and what is leaking is what grew.
    ///
    /// ```
    /// let before = leakcheck::HeapProfile::take();
    /// let after = leakcheck::HeapProfile::take();
    /// assert!(after.diff(&before).sites().iter().all(|s| s.inuse_bytes > 0));
    /// ```
    pub fn diff(&self, earlier: &HeapProfile) -> HeapProfile {
        let mut delta = self.delta(earlier);
        delta.sites.retain(|s| s.inuse_bytes > 0);
        delta
    }

    /// Every site's change since `earlier`, shrinking ones included (with
    /// negative in-use figures), as Go's `?seconds=N` delta profile.
    ///
    /// ```
    /// let before = leakcheck::HeapProfile::take();
    /// let after = leakcheck::HeapProfile::take();
    /// let _changes = after.delta(&before).sites().len();
    /// ```
    pub fn delta(&self, earlier: &HeapProfile) -> HeapProfile {
        let _own = Untracked::harness();
        let before: HashMap<(u32, Allocator), Estimate> =
            earlier.sites.iter().map(|s| (s.key, s.estimate)).collect();
        let mut sites: Vec<HeapSite> = self
            .sites
            .iter()
            .map(|s| {
                let base = before.get(&s.key).copied().unwrap_or_default();
                site(s.key, s.estimate.minus(base), s.stack.clone())
            })
            .filter(|s| {
                s.inuse_objects != 0
                    || s.inuse_bytes != 0
                    || s.alloc_objects != 0
                    || s.alloc_bytes != 0
            })
            .collect();
        sort(&mut sites);
        let mut warnings = earlier.warnings.clone();
        warnings.extend(
            self.warnings
                .iter()
                .filter(|w| !earlier.warnings.contains(w))
                .cloned(),
        );
        HeapProfile {
            sites,
            rate: self.rate,
            time: self.time,
            duration: Some(
                self.time
                    .duration_since(earlier.time)
                    .unwrap_or_default()
                    .as_secs_f64(),
            ),
            warnings,
        }
    }

    /// The sites, most bytes in use first.
    pub fn sites(&self) -> &[HeapSite] {
        &self.sites
    }

    /// Estimated bytes in use, all sites together.
    pub fn inuse_bytes(&self) -> i64 {
        self.sites.iter().map(|s| s.inuse_bytes).sum()
    }

    /// Estimated blocks in use, all sites together.
    pub fn inuse_objects(&self) -> i64 {
        self.sites.iter().map(|s| s.inuse_objects).sum()
    }

    /// The sampling rate the estimates were made with (the profile's period).
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// What makes the figures less than trustworthy (a bad
    /// `LEAKCHECK_PROFILE_RATE`, blocks not tracked).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// A gzipped pprof `profile.proto`, as Go's `/debug/pprof/heap` serves:
    /// `alloc_objects`/`count`, `alloc_space`/`bytes`, `inuse_objects`/`count`,
    /// `inuse_space`/`bytes` (Go's order), period type `space`/`bytes`,
    /// period the sampling rate; labels `origin` (`c`/`rust`), `allocator`
    /// and a numeric `bytes` (the average block). `go tool pprof` reads it.
    pub fn to_pprof(&self) -> Vec<u8> {
        let _own = Untracked::harness();
        let mut profile =
            leakcheck_profile::HeapProfile::with_period(i64::try_from(self.rate).unwrap_or(1));
        if let Some(exe) = crate::config::exe() {
            profile.main_binary(&exe.display().to_string());
        }
        if let Ok(since) = self.time.duration_since(std::time::UNIX_EPOCH) {
            profile
                .builder()
                .time_nanos(i64::try_from(since.as_nanos()).unwrap_or(i64::MAX));
        }
        for warning in &self.warnings {
            profile.builder().comment(&format!("leakcheck: {warning}"));
        }
        for s in &self.sites {
            let frames: Vec<leakcheck_profile::Frame> = if s.stack.is_empty() {
                vec![leakcheck_profile::Frame {
                    function: Some("[stack not taken]".into()),
                    ..Default::default()
                }]
            } else {
                s.stack
                    .iter()
                    .map(|f| leakcheck_profile::Frame {
                        function: f.function.clone(),
                        file: f.file.clone(),
                        line: f.line,
                        module: f.module.clone(),
                        ip: leakcheck_profile::parse_ip(&f.ip).unwrap_or(0),
                    })
                    .collect()
            };
            profile.add_live(&leakcheck_profile::LiveSample {
                origin: origin_word(s.origin),
                allocator: s.allocator,
                alloc_objects: s.alloc_objects,
                alloc_bytes: s.alloc_bytes,
                inuse_objects: s.inuse_objects,
                inuse_bytes: s.inuse_bytes,
                frames: &frames,
            });
        }
        profile.to_gzip()
    }
}

impl fmt::Display for HeapProfile {
    /// The text form (`?debug=1`): totals, then the largest sites with
    /// their stacks, `function (file:line)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        text::write(self, f)
    }
}

fn origin_word(origin: Origin) -> &'static str {
    match origin {
        Origin::C => "c",
        Origin::Rust => "rust",
    }
}

fn site(key: (u32, Allocator), estimate: Estimate, stack: Vec<Frame>) -> HeapSite {
    let round = |v: f64| v.round() as i64;
    HeapSite {
        origin: if key.1.is_rust() {
            Origin::Rust
        } else {
            Origin::C
        },
        allocator: key.1.name(),
        inuse_objects: round(estimate.inuse.0),
        inuse_bytes: round(estimate.inuse.1),
        alloc_objects: round(estimate.alloc.0),
        alloc_bytes: round(estimate.alloc.1),
        stack,
        key,
        estimate,
    }
}

fn sort(sites: &mut [HeapSite]) {
    sites.sort_by(|a, b| {
        (b.inuse_bytes, b.alloc_bytes, a.key).cmp(&(a.inuse_bytes, a.alloc_bytes, b.key))
    });
}

/// The frames of stack `id`, symbolised, without the allocator's plumbing
/// on top: std's and leakcheck's frames (the allocator shim, `RawVec`)
/// above the first frame of other code, unless nothing else is there.
fn symbolise(id: u32, ips: &mut Vec<usize>) -> Vec<Frame> {
    stacks::frames(id, ips);
    let resolved: Vec<symbols::Symbol> = ips
        .iter()
        .flat_map(|&ip| symbols::resolve(ip).to_vec())
        .collect();
    let start = resolved
        .iter()
        .position(|s| {
            !matches!(
                symbols::owner(s),
                symbols::Owner::Std | symbols::Owner::Leakcheck
            )
        })
        .unwrap_or(0);
    resolved[start..]
        .iter()
        .map(|s| Frame {
            function: s.function.clone(),
            file: s.file.clone(),
            line: s.line,
            module: s.module.clone(),
            ip: format!("{:#x}", s.ip),
        })
        .collect()
}
