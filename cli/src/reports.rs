//! Reading the JSON reports (`leakcheck/v1`) from files and directories,
//! and keeping one report per test: the later one.

use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// The schema of the reports this tool reads.
pub const REPORT_SCHEMA: &str = "leakcheck/v1";

/// A test's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nothing failed.
    Clean,
    /// Blocks leaked.
    Leaked,
    /// The verdict cannot be trusted.
    Error,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Clean => "clean",
            Status::Leaked => "leaked",
            Status::Error => "error",
        }
    }
}

/// One frame, as the report has it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
pub struct Frame {
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub module: Option<String>,
    pub ip: String,
}

/// One leak group of a test.
#[derive(Clone, Debug, Deserialize)]
pub struct Leak {
    pub kind: String,
    pub origin: String,
    pub allocator: String,
    pub blocks: u64,
    pub bytes: u64,
    pub stack: Vec<Frame>,
    #[serde(default)]
    pub suppressed_by: Option<String>,
}

/// An error or warning of a report.
#[derive(Clone, Debug, Deserialize)]
pub struct Problem {
    pub kind: String,
    pub message: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Counts {
    pub leaked_blocks: u64,
    pub leaked_bytes: u64,
}

/// What fails a test when the report does not say (reports written before
/// `fail_on` was added): leakcheck's default.
const DEFAULT_FAIL_ON: [&str; 3] = ["definitely_lost", "indirectly_lost", "possibly_lost"];

/// One test's report.
#[derive(Clone, Debug, Deserialize)]
pub struct Report {
    pub test: String,
    pub binary: String,
    pub status: Status,
    pub summary: Counts,
    pub leaks: Vec<Leak>,
    #[serde(default)]
    pub errors: Vec<Problem>,
    #[serde(default)]
    pub warnings: Vec<Problem>,
    #[serde(default)]
    fail_on: Option<Vec<String>>,
    #[serde(default)]
    unix_time_ms: Option<u64>,
    /// Where it was read from.
    #[serde(skip)]
    pub path: PathBuf,
}

impl Report {
    /// Whether a group of this kind fails this test.
    pub fn fails(&self, kind: &str) -> bool {
        match &self.fail_on {
            Some(kinds) => kinds.iter().any(|k| k == kind),
            None => DEFAULT_FAIL_ON.contains(&kind),
        }
    }

    /// The test binary's file name (cargo's hash included): with the test
    /// name, what identifies a test across shards and reruns.
    pub fn binary_name(&self) -> &str {
        Path::new(&self.binary)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(&self.binary)
    }

    /// The binary's name without cargo's `-<16 hex digits>` hash, for people.
    pub fn binary_short(&self) -> &str {
        let name = self.binary_name();
        match name.rsplit_once('-') {
            Some((stem, hash))
                if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                stem
            }
            _ => name,
        }
    }
}

/// Why reading reports failed: the file and what is wrong with it.
#[derive(Debug)]
pub struct ReadError {
    pub path: PathBuf,
    pub what: String,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.what)
    }
}

/// The reports read, one per test.
#[derive(Debug, Default)]
pub struct Reports {
    /// One per (binary, test), in the order first seen.
    pub tests: Vec<Report>,
    /// Report files read.
    pub files: usize,
    /// Reports of a test seen before, dropped for the later one (one line
    /// each: the dropped file and the one counted).
    pub superseded: Vec<(PathBuf, PathBuf)>,
}

/// Reads every report under `paths` (files, or directories searched
/// recursively for `*.json`). Of two reports of one test (the same binary
/// file name and test name) the later wins: the one whose check finished
/// later (`unix_time_ms` in the report, which copying an artifact keeps),
/// else the one whose file was modified later, else the one read later.
pub fn read(paths: &[PathBuf]) -> Result<Reports, ReadError> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| ReadError {
            path: path.clone(),
            what: format!("cannot read it: {e}"),
        })?;
        if meta.is_dir() {
            collect(path, &mut files)?;
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        let path = paths.first().cloned().unwrap_or_default();
        return Err(ReadError {
            path,
            what: "no leakcheck JSON reports found (did `#[leak_checked]` tests run, with \
                   LEAKCHECK_REPORT_DIR pointing here?)"
                .to_owned(),
        });
    }
    let mut reports = Reports::default();
    let mut index: HashMap<(String, String), (usize, (u64, u64))> = HashMap::new();
    for (order, path) in files.into_iter().enumerate() {
        let report = parse(&path)?;
        reports.files += 1;
        let mtime = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as u64);
        let when = (report.unix_time_ms.unwrap_or(mtime), order as u64);
        let key = (report.binary_name().to_owned(), report.test.clone());
        match index.get_mut(&key) {
            None => {
                index.insert(key, (reports.tests.len(), when));
                reports.tests.push(report);
            }
            Some((at, seen)) => {
                let old = &mut reports.tests[*at];
                if when > *seen {
                    *seen = when;
                    reports
                        .superseded
                        .push((old.path.clone(), report.path.clone()));
                    *old = report;
                } else {
                    reports
                        .superseded
                        .push((report.path.clone(), old.path.clone()));
                }
            }
        }
    }
    Ok(reports)
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), ReadError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ReadError {
        path: dir.to_owned(),
        what: format!("cannot read the directory: {e}"),
    })?;
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ReadError {
            path: dir.to_owned(),
            what: format!("cannot read the directory: {e}"),
        })?;
        paths.push(entry.path());
    }
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    Ok(())
}

fn parse(path: &Path) -> Result<Report, ReadError> {
    let failed = |what: String| ReadError {
        path: path.to_owned(),
        what,
    };
    let text = std::fs::read_to_string(path).map_err(|e| failed(format!("cannot read it: {e}")))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| failed(format!("not JSON: {e}")))?;
    match value.get("schema").and_then(|s| s.as_str()) {
        Some(REPORT_SCHEMA) => {}
        Some(other) => {
            return Err(failed(format!(
                "schema `{other}` is not one this cargo-leakcheck reads (`{REPORT_SCHEMA}`); \
                 update cargo-leakcheck, or keep other JSON out of the report directory"
            )))
        }
        None => {
            return Err(failed(format!(
                "no `schema` field: not a leakcheck report (`{REPORT_SCHEMA}`)"
            )))
        }
    }
    let mut report: Report = serde_json::from_value(value)
        .map_err(|e| failed(format!("not a valid `{REPORT_SCHEMA}` report: {e}")))?;
    report.path = path.to_owned();
    Ok(report)
}
