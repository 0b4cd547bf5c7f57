//! The messages of pprof's `profile.proto` (package `perftools.profiles`,
//! github.com/google/pprof, `proto/profile.proto`), written out as
//! `prost` derives so that building needs no `protoc`. Field numbers and
//! types are the published file's; comments are shortened. Fields the file
//! added later (`Line.column`, `Location.is_folded`, …) are included where
//! they are part of the messages pprof reads; anything else a decoder meets
//! is skipped, as protobuf does with unknown fields.

/// A whole profile. Every `i64` that names a string is an index into
/// `string_table`, whose first entry is `""`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Profile {
    /// What each of a sample's values means (`inuse_space`/`bytes`, …).
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    /// The samples.
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    /// The binaries and libraries the locations are in.
    #[prost(message, repeated, tag = "3")]
    pub mapping: Vec<Mapping>,
    /// Program locations (an address and its source lines).
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<Location>,
    /// Functions named by the locations' lines.
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    /// Every string of the profile; `string_table[0]` is `""`.
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
    /// Regexp of frames to drop (string index).
    #[prost(int64, tag = "7")]
    pub drop_frames: i64,
    /// Regexp of frames to keep (string index).
    #[prost(int64, tag = "8")]
    pub keep_frames: i64,
    /// Time of collection, nanoseconds since the Unix epoch.
    #[prost(int64, tag = "9")]
    pub time_nanos: i64,
    /// Duration of the profile, nanoseconds.
    #[prost(int64, tag = "10")]
    pub duration_nanos: i64,
    /// The kind of events between sampled occurrences (`space`/`bytes`).
    #[prost(message, optional, tag = "11")]
    pub period_type: Option<ValueType>,
    /// Events between sampled occurrences.
    #[prost(int64, tag = "12")]
    pub period: i64,
    /// Free-form comments (string indices).
    #[prost(int64, repeated, tag = "13")]
    pub comment: Vec<i64>,
    /// The sample type shown by default (string index).
    #[prost(int64, tag = "14")]
    pub default_sample_type: i64,
}

/// A value's meaning and unit (string indices).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueType {
    /// `inuse_space`, `space`, …
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    /// `bytes`, `count`, …
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

/// Values measured at one stack, with labels.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// Location ids, the leaf first.
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    /// One value per `Profile.sample_type`.
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
    /// Context: string or numeric key/value pairs.
    #[prost(message, repeated, tag = "3")]
    pub label: Vec<Label>,
}

/// A label: `str` or `num` (with `num_unit`) for `key`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    /// String index.
    #[prost(int64, tag = "1")]
    pub key: i64,
    /// String index of a string value.
    #[prost(int64, tag = "2")]
    pub str: i64,
    /// A numeric value.
    #[prost(int64, tag = "3")]
    pub num: i64,
    /// String index of the numeric value's unit.
    #[prost(int64, tag = "4")]
    pub num_unit: i64,
}

/// An object mapped into the process.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Mapping {
    /// Unique, nonzero.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// First address.
    #[prost(uint64, tag = "2")]
    pub memory_start: u64,
    /// One past the last address.
    #[prost(uint64, tag = "3")]
    pub memory_limit: u64,
    /// File offset of `memory_start`.
    #[prost(uint64, tag = "4")]
    pub file_offset: u64,
    /// The object's path (string index).
    #[prost(int64, tag = "5")]
    pub filename: i64,
    /// Build id (string index).
    #[prost(int64, tag = "6")]
    pub build_id: i64,
    /// Locations carry function names.
    #[prost(bool, tag = "7")]
    pub has_functions: bool,
    /// Locations carry file names.
    #[prost(bool, tag = "8")]
    pub has_filenames: bool,
    /// Locations carry line numbers.
    #[prost(bool, tag = "9")]
    pub has_line_numbers: bool,
    /// Locations carry inlined frames.
    #[prost(bool, tag = "10")]
    pub has_inline_frames: bool,
}

/// An address and the source lines it stands for (inlined callees first,
/// the function they were inlined into last).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Location {
    /// Unique, nonzero.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The mapping the address is in.
    #[prost(uint64, tag = "2")]
    pub mapping_id: u64,
    /// The instruction address.
    #[prost(uint64, tag = "3")]
    pub address: u64,
    /// Source lines.
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<Line>,
    /// Several symbols share this address (identical code folding).
    #[prost(bool, tag = "5")]
    pub is_folded: bool,
}

/// A function and line.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Line {
    /// The function's id.
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
    /// Line number, 0 if unknown.
    #[prost(int64, tag = "2")]
    pub line: i64,
    /// Column number, 0 if unknown.
    #[prost(int64, tag = "3")]
    pub column: i64,
}

/// A function.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Function {
    /// Unique, nonzero.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Human-readable name (string index).
    #[prost(int64, tag = "2")]
    pub name: i64,
    /// The name as the system knows it (string index).
    #[prost(int64, tag = "3")]
    pub system_name: i64,
    /// Source file (string index).
    #[prost(int64, tag = "4")]
    pub filename: i64,
    /// First line of the function, 0 if unknown.
    #[prost(int64, tag = "5")]
    pub start_line: i64,
}
