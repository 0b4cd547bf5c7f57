//! Errors that are the user's to fix.

use std::fmt;
use std::path::PathBuf;

/// A problem with how leakcheck was set up, reported with what was wrong,
/// where, and how to fix it.
///
/// ```
/// let err = leakcheck::Error::InvalidEnv {
///     var: "LEAKCHECK_STACK_DEPTH",
///     value: "lots".into(),
///     expected: "a whole number from 1 to 256",
/// };
/// assert!(err.to_string().contains(r#"LEAKCHECK_STACK_DEPTH="lots" is not valid"#));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An environment variable has a value leakcheck does not accept.
    InvalidEnv {
        /// The variable.
        var: &'static str,
        /// What it was set to.
        value: String,
        /// What it accepts.
        expected: &'static str,
    },
    /// The JSON report could not be written. The verdict still stands.
    ReportDir {
        /// The directory or file that could not be written.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// More checks are running at once than leakcheck has scopes for (256).
    TooManyScopes,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidEnv { var, value, expected } => {
                write!(f, "leakcheck: {var}={value:?} is not valid: expected {expected}; fix or unset {var}")
            }
            Error::ReportDir { path, source } => write!(
                f,
                "leakcheck: cannot write the JSON report to {}: {source}; set LEAKCHECK_REPORT_DIR to a writable directory",
                path.display()
            ),
            Error::TooManyScopes => {
                write!(f, "leakcheck: more than 256 checks are running at once; run fewer tests in parallel")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::ReportDir { source, .. } => Some(source),
            _ => None,
        }
    }
}
