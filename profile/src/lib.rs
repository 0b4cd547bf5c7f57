//! Heap samples as a pprof profile (`profile.proto`, gzipped): the one
//! encoder leakcheck has, used by `cargo leakcheck summary --pprof` and, with
//! the `pprof` feature, by the runtime's per-test `LEAKCHECK_PPROF=1`
//! profiles.
//!
//! The input is already symbolised: frames with function, file, line,
//! module and address, as the JSON reports carry them. Every location gets
//! a mapping (one per module, spanning the addresses seen in it) and every
//! location a line, so pprof viewers neither reject the profile nor try to
//! symbolise it again.
//!
//! ```
//! use leakcheck_profile::{decode, Frame, HeapProfile, LeakSample};
//!
//! let frames = [Frame {
//!     function: Some("kv_put".into()),
//!     file: Some("examples/c/kvstore.c".into()),
//!     line: Some(39),
//!     module: Some("/target/debug/demo".into()),
//!     ip: 0x55d1_c2a4_f1b3,
//! }];
//! let mut profile = HeapProfile::new();
//! profile.add_leak(&LeakSample {
//!     test: "kv::overwrite",
//!     kind: "definitely_lost",
//!     origin: "c",
//!     allocator: "malloc",
//!     blocks: 1,
//!     bytes: 2,
//!     frames: &frames,
//! });
//! let decoded = decode(&profile.to_gzip()).unwrap();
//! assert_eq!(decoded.sample[0].value, [1, 2, 1, 2]);
//! ```

pub mod proto;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use prost::Message;
use std::collections::HashMap;
use std::io::{Read, Write};

/// One frame of a stack, as leakcheck's JSON reports carry it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Frame {
    /// Demangled function name, if known.
    pub function: Option<String>,
    /// Source file, if known.
    pub file: Option<String>,
    /// Source line, if known.
    pub line: Option<u32>,
    /// The executable or shared object, if known.
    pub module: Option<String>,
    /// The return address.
    pub ip: u64,
}

/// A sample's label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Label<'a> {
    /// `key = "value"`.
    Str {
        /// The key.
        key: &'a str,
        /// The value.
        value: &'a str,
    },
    /// `key = value unit`.
    Num {
        /// The key.
        key: &'a str,
        /// The value.
        value: i64,
        /// Its unit (`bytes`), if any.
        unit: Option<&'a str>,
    },
}

/// Values measured at one stack.
#[derive(Clone, Debug)]
pub struct Sample<'a> {
    /// The stack, leaf first.
    pub frames: &'a [Frame],
    /// One value per sample type.
    pub values: &'a [i64],
    /// Labels.
    pub labels: &'a [Label<'a>],
}

/// A location's identity: mapping id, address, and (function id, line) per
/// inlined frame.
type LocationKey = (u64, u64, Vec<(u64, i64)>);

/// Builds a profile sample by sample; strings, functions, locations and
/// mappings are shared between samples.
#[derive(Debug)]
pub struct ProfileBuilder {
    profile: proto::Profile,
    strings: HashMap<String, i64>,
    functions: HashMap<(String, String), u64>,
    locations: HashMap<LocationKey, u64>,
    /// Per module: (mapping index, lowest address, highest address).
    mappings: HashMap<String, (usize, u64, u64)>,
}

impl ProfileBuilder {
    /// A profile whose samples have one value per `(type, unit)` in
    /// `sample_types`, with the given period type and period.
    pub fn new(sample_types: &[(&str, &str)], period_type: (&str, &str), period: i64) -> Self {
        let mut builder = ProfileBuilder {
            profile: proto::Profile::default(),
            strings: HashMap::new(),
            functions: HashMap::new(),
            locations: HashMap::new(),
            mappings: HashMap::new(),
        };
        builder.string("");
        for &(ty, unit) in sample_types {
            let value_type = builder.value_type(ty, unit);
            builder.profile.sample_type.push(value_type);
        }
        builder.profile.period_type = Some(builder.value_type(period_type.0, period_type.1));
        builder.profile.period = period;
        builder
    }

    /// Shows `sample_type` by default (pprof otherwise shows the last).
    pub fn default_sample_type(&mut self, sample_type: &str) {
        self.profile.default_sample_type = self.string(sample_type);
    }

    /// Sets the collection time, in nanoseconds since the Unix epoch.
    pub fn time_nanos(&mut self, nanos: i64) {
        self.profile.time_nanos = nanos;
    }

    /// Adds a comment line.
    pub fn comment(&mut self, text: &str) {
        let index = self.string(text);
        self.profile.comment.push(index);
    }

    /// Puts the mapping of `module` (the program's executable) first, where
    /// pprof looks for the main binary (the `File:` it shows).
    pub fn main_binary(&mut self, module: &str) {
        if !self.mappings.contains_key(module) {
            self.new_mapping(module, None);
        }
    }

    /// Adds one sample.
    ///
    /// # Panics
    ///
    /// If `sample.values` does not have one value per sample type.
    pub fn add(&mut self, sample: &Sample<'_>) {
        assert_eq!(
            sample.values.len(),
            self.profile.sample_type.len(),
            "one value per sample type"
        );
        let mut location_id = Vec::new();
        let mut rest = sample.frames;
        while let Some(first) = rest.first() {
            // Frames that share a return address are one physical frame with
            // inlined calls (the callee first): one location with a line each.
            // A repeated function at the same address is recursion, not inlining.
            let mut n = 1;
            while n < rest.len()
                && rest[n].ip == first.ip
                && rest[n].module == first.module
                && !rest[..n].iter().any(|f| f.function == rest[n].function)
            {
                n += 1;
            }
            location_id.push(self.location(&rest[..n]));
            rest = &rest[n..];
        }
        let label = sample
            .labels
            .iter()
            .map(|label| match *label {
                Label::Str { key, value } => proto::Label {
                    key: self.string(key),
                    str: self.string(value),
                    ..Default::default()
                },
                Label::Num { key, value, unit } => proto::Label {
                    key: self.string(key),
                    num: value,
                    num_unit: unit.map_or(0, |u| self.string(u)),
                    ..Default::default()
                },
            })
            .collect();
        self.profile.sample.push(proto::Sample {
            location_id,
            value: sample.values.to_vec(),
            label,
        });
    }

    /// The profile message.
    pub fn build(mut self) -> proto::Profile {
        for &(index, low, high) in self.mappings.values() {
            let mapping = &mut self.profile.mapping[index];
            if low <= high {
                mapping.memory_start = low;
                mapping.memory_limit = high.saturating_add(1);
            }
        }
        self.profile
    }

    /// The profile, protobuf-encoded and gzipped: what `go tool pprof` reads.
    pub fn to_gzip(self) -> Vec<u8> {
        gzip(&self.build().encode_to_vec())
    }

    fn string(&mut self, s: &str) -> i64 {
        if let Some(&index) = self.strings.get(s) {
            return index;
        }
        let index = self.profile.string_table.len() as i64;
        self.profile.string_table.push(s.to_owned());
        self.strings.insert(s.to_owned(), index);
        index
    }

    fn value_type(&mut self, ty: &str, unit: &str) -> proto::ValueType {
        proto::ValueType {
            r#type: self.string(ty),
            unit: self.string(unit),
        }
    }

    fn mapping(&mut self, module: Option<&str>, ip: u64) -> u64 {
        let name = module.unwrap_or("[unknown]");
        if let Some((index, low, high)) = self.mappings.get_mut(name) {
            *low = (*low).min(ip);
            *high = (*high).max(ip);
            return self.profile.mapping[*index].id;
        }
        self.new_mapping(name, Some(ip))
    }

    /// A mapping for `name`, spanning `ip` (none yet: no addresses).
    fn new_mapping(&mut self, name: &str, ip: Option<u64>) -> u64 {
        let index = self.profile.mapping.len();
        let filename = self.string(name);
        self.profile.mapping.push(proto::Mapping {
            id: index as u64 + 1,
            filename,
            // Every location gets a function (an address stands in for an
            // unknown name), so viewers take the profile as symbolised.
            has_functions: true,
            ..Default::default()
        });
        let (low, high) = ip.map_or((u64::MAX, 0), |ip| (ip, ip));
        self.mappings.insert(name.to_owned(), (index, low, high));
        index as u64 + 1
    }

    fn function(&mut self, frame: &Frame) -> u64 {
        let name = match (&frame.function, &frame.module) {
            (Some(name), _) => name.clone(),
            (None, Some(module)) => {
                let base = module.rsplit('/').next().unwrap_or(module);
                format!("0x{:x} ({base})", frame.ip)
            }
            (None, None) => format!("0x{:x}", frame.ip),
        };
        let file = frame.file.clone().unwrap_or_default();
        let key = (name, file);
        if let Some(&id) = self.functions.get(&key) {
            return id;
        }
        let id = self.profile.function.len() as u64 + 1;
        let name = self.string(&key.0);
        let filename = self.string(&key.1);
        self.profile.function.push(proto::Function {
            id,
            name,
            system_name: name,
            filename,
            start_line: 0,
        });
        self.functions.insert(key, id);
        id
    }

    /// One location for a physical frame: `frames` share an address.
    fn location(&mut self, frames: &[Frame]) -> u64 {
        let ip = frames[0].ip;
        let mapping_id = self.mapping(frames[0].module.as_deref(), ip);
        let lines: Vec<(u64, i64)> = frames
            .iter()
            .map(|f| (self.function(f), f.line.map_or(0, i64::from)))
            .collect();
        let mapping = &mut self.profile.mapping[mapping_id as usize - 1];
        mapping.has_filenames |= frames.iter().any(|f| f.file.is_some());
        mapping.has_line_numbers |= frames.iter().any(|f| f.line.is_some());
        mapping.has_inline_frames |= frames.len() > 1;
        let key = (mapping_id, ip, lines);
        if let Some(&id) = self.locations.get(&key) {
            return id;
        }
        let id = self.profile.location.len() as u64 + 1;
        self.profile.location.push(proto::Location {
            id,
            mapping_id,
            address: ip,
            line: key
                .2
                .iter()
                .map(|&(function_id, line)| proto::Line {
                    function_id,
                    line,
                    column: 0,
                })
                .collect(),
            is_folded: false,
        });
        self.locations.insert(key, id);
        id
    }
}

/// The sample types of a heap profile as Go writes it (`runtime/pprof`), in
/// its order, so `-sample_index=inuse_space` works and the profile merges
/// with a Go heap profile (pprof merges only profiles with the same sample
/// types). For leaked blocks the allocated and the in-use figures are the
/// same blocks.
pub const HEAP_SAMPLE_TYPES: [(&str, &str); 4] = [
    ("alloc_objects", "count"),
    ("alloc_space", "bytes"),
    ("inuse_objects", "count"),
    ("inuse_space", "bytes"),
];

/// A heap profile: Go's sample types, period type `space`/`bytes`,
/// period 1 (every block counted, none sampled), `inuse_space` shown first.
#[derive(Debug)]
pub struct HeapProfile(ProfileBuilder);

/// A leak group of one test: the blocks of one kind from one stack.
#[derive(Clone, Debug)]
pub struct LeakSample<'a> {
    /// The test's name.
    pub test: &'a str,
    /// `definitely_lost`, `still_reachable`, … (the JSON report's word).
    pub kind: &'a str,
    /// `c` or `rust`.
    pub origin: &'a str,
    /// `malloc`, `alloc`, …
    pub allocator: &'a str,
    /// Blocks in the group.
    pub blocks: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The allocation stack, the allocating call first.
    pub frames: &'a [Frame],
}

/// The blocks of one allocation site of a live heap, estimated from
/// samples: Go's four heap values.
#[derive(Clone, Debug)]
pub struct LiveSample<'a> {
    /// `c` or `rust`.
    pub origin: &'a str,
    /// `malloc`, `alloc`, …
    pub allocator: &'a str,
    /// Blocks allocated here since start.
    pub alloc_objects: i64,
    /// Their bytes.
    pub alloc_bytes: i64,
    /// Blocks allocated here and still live.
    pub inuse_objects: i64,
    /// Their bytes.
    pub inuse_bytes: i64,
    /// The allocation stack, the allocating call first.
    pub frames: &'a [Frame],
}

impl HeapProfile {
    /// An empty heap profile.
    pub fn new() -> Self {
        HeapProfile::with_period(1)
    }

    /// An empty heap profile of blocks sampled once per `period` bytes, as
    /// Go's `MemProfileRate` (the values are already scaled up).
    ///
    /// ```
    /// let mut profile = leakcheck_profile::HeapProfile::with_period(524288);
    /// profile.add_live(&leakcheck_profile::LiveSample {
    ///     origin: "rust",
    ///     allocator: "alloc",
    ///     alloc_objects: 10,
    ///     alloc_bytes: 10240,
    ///     inuse_objects: 4,
    ///     inuse_bytes: 4096,
    ///     frames: &[],
    /// });
    /// let p = leakcheck_profile::decode(&profile.to_gzip()).unwrap();
    /// assert_eq!((p.period, &p.sample[0].value[..]), (524288, &[10, 10240, 4, 4096][..]));
    /// ```
    pub fn with_period(period: i64) -> Self {
        let mut builder = ProfileBuilder::new(&HEAP_SAMPLE_TYPES, ("space", "bytes"), period);
        builder.default_sample_type("inuse_space");
        if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            builder.time_nanos(i64::try_from(now.as_nanos()).unwrap_or(i64::MAX));
        }
        HeapProfile(builder)
    }

    /// Names the program's executable (see [`ProfileBuilder::main_binary`]).
    pub fn main_binary(&mut self, module: &str) {
        self.0.main_binary(module);
    }

    /// The builder, for samples other than leaks (a live heap).
    pub fn builder(&mut self) -> &mut ProfileBuilder {
        &mut self.0
    }

    /// Adds one sample for a leak group, labelled `test`, `kind`, `origin`,
    /// `allocator` and `bytes` (the size of one block, as Go labels its heap
    /// samples: the group's average where its blocks differ in size).
    pub fn add_leak(&mut self, leak: &LeakSample<'_>) {
        let blocks = i64::try_from(leak.blocks).unwrap_or(i64::MAX);
        let bytes = i64::try_from(leak.bytes).unwrap_or(i64::MAX);
        let per_block = if blocks > 0 { bytes / blocks } else { bytes };
        self.0.add(&Sample {
            frames: leak.frames,
            values: &[blocks, bytes, blocks, bytes],
            labels: &[
                Label::Str {
                    key: "test",
                    value: leak.test,
                },
                Label::Str {
                    key: "kind",
                    value: leak.kind,
                },
                Label::Str {
                    key: "origin",
                    value: leak.origin,
                },
                Label::Str {
                    key: "allocator",
                    value: leak.allocator,
                },
                Label::Num {
                    key: "bytes",
                    value: per_block,
                    unit: Some("bytes"),
                },
            ],
        });
    }

    /// Adds one sample for a site of a live heap, labelled `origin`,
    /// `allocator` and `bytes` (the average block in use, else allocated).
    pub fn add_live(&mut self, live: &LiveSample<'_>) {
        let per_block = match (live.inuse_objects, live.alloc_objects) {
            (n, _) if n > 0 => live.inuse_bytes / n,
            (_, n) if n > 0 => live.alloc_bytes / n,
            _ => 0,
        };
        self.0.add(&Sample {
            frames: live.frames,
            values: &[
                live.alloc_objects,
                live.alloc_bytes,
                live.inuse_objects,
                live.inuse_bytes,
            ],
            labels: &[
                Label::Str {
                    key: "origin",
                    value: live.origin,
                },
                Label::Str {
                    key: "allocator",
                    value: live.allocator,
                },
                Label::Num {
                    key: "bytes",
                    value: per_block,
                    unit: Some("bytes"),
                },
            ],
        });
    }

    /// The profile message.
    pub fn build(self) -> proto::Profile {
        self.0.build()
    }

    /// Gzipped protobuf, for `go tool pprof`.
    pub fn to_gzip(self) -> Vec<u8> {
        self.0.to_gzip()
    }
}

impl Default for HeapProfile {
    fn default() -> Self {
        HeapProfile::new()
    }
}

/// Parses `0x…` (the JSON reports' `ip`) into an address.
pub fn parse_ip(text: &str) -> Option<u64> {
    let hex = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))?;
    u64::from_str_radix(hex, 16).ok()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    // Writing into a Vec cannot fail.
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .unwrap_or_default()
}

/// Why a profile could not be read back.
#[derive(Debug)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not gzip, or truncated.
    Gzip(std::io::Error),
    /// Not a `profile.proto` message.
    Protobuf(prost::DecodeError),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Gzip(e) => write!(f, "not a gzipped profile: {e}"),
            DecodeError::Protobuf(e) => write!(f, "not a profile.proto message: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Reads a gzipped (or plain) `profile.proto` back.
pub fn decode(bytes: &[u8]) -> Result<proto::Profile, DecodeError> {
    let raw = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut raw = Vec::new();
        GzDecoder::new(bytes)
            .read_to_end(&mut raw)
            .map_err(DecodeError::Gzip)?;
        raw
    } else {
        bytes.to_vec()
    };
    proto::Profile::decode(raw.as_slice()).map_err(DecodeError::Protobuf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, line: u32, module: &str, ip: u64) -> Frame {
        Frame {
            function: Some(function.to_owned()),
            file: Some(format!("{function}.c")),
            line: Some(line),
            module: Some(module.to_owned()),
            ip,
        }
    }

    fn string(p: &proto::Profile, index: i64) -> &str {
        &p.string_table[index as usize]
    }

    #[test]
    fn heap_profile_round_trips_with_shared_locations_and_labels() {
        let a = [
            frame("leaf", 10, "/bin/t", 0x1010),
            frame("caller", 20, "/bin/t", 0x1020),
        ];
        let b = [
            frame("leaf", 10, "/bin/t", 0x1010),
            frame("other", 30, "/lib/libc.so.6", 0x7000),
        ];
        let mut profile = HeapProfile::new();
        for (test, frames, blocks, bytes) in [("t::a", &a, 3, 144), ("t::b", &b, 1, 7)] {
            profile.add_leak(&LeakSample {
                test,
                kind: "definitely_lost",
                origin: "c",
                allocator: "malloc",
                blocks,
                bytes,
                frames,
            });
        }
        let p = decode(&profile.to_gzip()).unwrap();
        assert_eq!(string(&p, 0), "");
        let types: Vec<_> = p
            .sample_type
            .iter()
            .map(|t| (string(&p, t.r#type), string(&p, t.unit)))
            .collect();
        assert_eq!(types, HEAP_SAMPLE_TYPES);
        let period = p.period_type.as_ref().unwrap();
        assert_eq!(
            (string(&p, period.r#type), string(&p, period.unit), p.period),
            ("space", "bytes", 1)
        );
        assert_eq!(string(&p, p.default_sample_type), "inuse_space");
        assert_eq!(p.sample[0].value, [3, 144, 3, 144]);
        assert_eq!(p.sample[1].value, [1, 7, 1, 7]);
        // The shared leaf is one location; three locations, three functions.
        assert_eq!(p.sample[0].location_id[0], p.sample[1].location_id[0]);
        assert_eq!(p.location.len(), 3);
        assert_eq!(p.function.len(), 3);
        let labels: Vec<_> = p.sample[0]
            .label
            .iter()
            .map(|l| (string(&p, l.key), string(&p, l.str), l.num))
            .collect();
        assert_eq!(
            labels,
            [
                ("test", "t::a", 0),
                ("kind", "definitely_lost", 0),
                ("origin", "c", 0),
                ("allocator", "malloc", 0),
                ("bytes", "", 48),
            ]
        );
        assert_eq!(string(&p, p.sample[0].label[4].num_unit), "bytes");
        // Every location has a mapping that contains its address.
        for location in &p.location {
            let mapping = &p.mapping[location.mapping_id as usize - 1];
            assert_eq!(mapping.id, location.mapping_id);
            assert!(mapping.memory_start <= location.address);
            assert!(location.address < mapping.memory_limit);
            assert!(mapping.has_functions && mapping.has_line_numbers);
        }
        let names: Vec<_> = p.mapping.iter().map(|m| string(&p, m.filename)).collect();
        assert_eq!(names, ["/bin/t", "/lib/libc.so.6"]);
    }

    #[test]
    fn the_main_binary_is_the_first_mapping() {
        let frames = [
            frame("strdup", 1, "/lib/libc.so.6", 0x7000),
            frame("main", 2, "/bin/t", 0x1000),
        ];
        let mut builder = ProfileBuilder::new(&[("space", "bytes")], ("space", "bytes"), 1);
        builder.main_binary("/bin/t");
        builder.add(&Sample {
            frames: &frames,
            values: &[8],
            labels: &[],
        });
        let p = builder.build();
        let names: Vec<_> = p.mapping.iter().map(|m| string(&p, m.filename)).collect();
        assert_eq!(names, ["/bin/t", "/lib/libc.so.6"]);
        assert_eq!(
            (p.mapping[0].memory_start, p.mapping[0].memory_limit),
            (0x1000, 0x1001)
        );
    }

    #[test]
    fn inlined_frames_become_one_location_and_unknown_functions_get_an_address() {
        let frames = [
            frame("inlined_callee", 5, "/bin/t", 0x40),
            frame("outer", 9, "/bin/t", 0x40),
            Frame {
                module: Some("/usr/lib/libz.so.1".to_owned()),
                ip: 0x7f00,
                ..Frame::default()
            },
        ];
        let mut builder = ProfileBuilder::new(&[("space", "bytes")], ("space", "bytes"), 1);
        builder.add(&Sample {
            frames: &frames,
            values: &[8],
            labels: &[],
        });
        let p = builder.build();
        assert_eq!(p.sample[0].location_id, [1, 2]);
        let first = &p.location[0];
        let lines: Vec<_> = first
            .line
            .iter()
            .map(|l| {
                let f = &p.function[l.function_id as usize - 1];
                (string(&p, f.name), l.line)
            })
            .collect();
        assert_eq!(lines, [("inlined_callee", 5), ("outer", 9)]);
        assert!(p.mapping[0].has_inline_frames);
        let unknown = &p.function[p.location[1].line[0].function_id as usize - 1];
        assert_eq!(string(&p, unknown.name), "0x7f00 (libz.so.1)");
        assert!(!p.mapping[1].has_line_numbers);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(matches!(
            decode(&[0x1f, 0x8b, 1, 2]),
            Err(DecodeError::Gzip(_))
        ));
        assert!(matches!(decode(&[0xff; 4]), Err(DecodeError::Protobuf(_))));
        assert_eq!(parse_ip("0x1f"), Some(31));
        assert_eq!(parse_ip("1f"), None);
    }
}
