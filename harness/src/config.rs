//! Settings from the environment, read once per process.

use crate::error::Error;
use crate::stacks::{DEFAULT_DEPTH, MAX_DEPTH};
use std::path::PathBuf;
use std::sync::OnceLock;

/// What the environment asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    /// `LEAKCHECK=off` turns the attribute into a plain test.
    pub(crate) enabled: bool,
    /// `LEAKCHECK_STACK_DEPTH`.
    pub(crate) stack_depth: usize,
    /// `LEAKCHECK_REPORT_DIR`.
    pub(crate) report_dir: Option<PathBuf>,
    /// `LEAKCHECK_SUPPRESSIONS`: one file, or several separated by `:`.
    pub(crate) suppressions: Option<PathBuf>,
    /// `LEAKCHECK_PPROF`: a pprof profile beside each leaking test's report.
    pub(crate) pprof: bool,
}

/// An on/off variable: unset or empty is `default`.
fn switch(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: bool,
    expected: &'static str,
) -> Result<bool, Error> {
    match get(var).as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some("on") | Some("1") | Some("true") | Some("yes") => Ok(true),
        Some("off") | Some("0") | Some("false") | Some("no") => Ok(false),
        Some(other) => Err(Error::InvalidEnv {
            var,
            value: other.to_owned(),
            expected,
        }),
    }
}

impl Config {
    pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let enabled = switch(
            &get,
            "LEAKCHECK",
            true,
            "`off` (or 0/false/no) to disable checking, `on` (or 1/true/yes) to enable it",
        )?;
        let pprof = switch(
            &get,
            "LEAKCHECK_PPROF",
            false,
            "`1` (or on/true/yes) to write a pprof profile beside each leaking test's report, `0` \
             (or off/false/no) not to",
        )?;
        let stack_depth = match get("LEAKCHECK_STACK_DEPTH") {
            None => DEFAULT_DEPTH,
            Some(raw) => match raw.trim().parse::<usize>() {
                Ok(n) if (1..=MAX_DEPTH).contains(&n) => n,
                _ => {
                    return Err(Error::InvalidEnv {
                        var: "LEAKCHECK_STACK_DEPTH",
                        value: raw,
                        expected: "a whole number from 1 to 256",
                    })
                }
            },
        };
        let path = |var: &'static str| -> Result<Option<PathBuf>, Error> {
            match get(var) {
                None => Ok(None),
                Some(raw) if raw.trim().is_empty() => Err(Error::InvalidEnv {
                    var,
                    value: raw,
                    expected: "a path (or leave the variable unset)",
                }),
                Some(raw) => Ok(Some(PathBuf::from(raw))),
            }
        };
        Ok(Config {
            enabled,
            stack_depth,
            report_dir: path("LEAKCHECK_REPORT_DIR")?,
            suppressions: path("LEAKCHECK_SUPPRESSIONS")?,
            pprof,
        })
    }
}

/// The process's configuration, parsed on first use.
pub(crate) fn get() -> Result<&'static Config, &'static Error> {
    static CONFIG: OnceLock<Result<Config, Error>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let config = Config::from_lookup(|var| std::env::var(var).ok());
            if let Ok(config) = &config {
                crate::stacks::set_depth(config.stack_depth);
            }
            config
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, Error> {
        Config::from_lookup(|var| {
            vars.iter()
                .find(|(k, _)| *k == var)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults() {
        let c = parse(&[]).unwrap();
        assert!(c.enabled);
        assert_eq!(c.stack_depth, DEFAULT_DEPTH);
        assert_eq!(c.report_dir, None);
    }

    #[test]
    fn accepts_documented_values() {
        assert!(!parse(&[("LEAKCHECK", "off")]).unwrap().enabled);
        assert!(parse(&[("LEAKCHECK", "on")]).unwrap().enabled);
        assert!(!parse(&[]).unwrap().pprof);
        assert!(parse(&[("LEAKCHECK_PPROF", "1")]).unwrap().pprof);
        assert!(!parse(&[("LEAKCHECK_PPROF", "off")]).unwrap().pprof);
        assert_eq!(
            parse(&[("LEAKCHECK_STACK_DEPTH", "64")])
                .unwrap()
                .stack_depth,
            64
        );
        assert_eq!(
            parse(&[("LEAKCHECK_REPORT_DIR", "/tmp/x")])
                .unwrap()
                .report_dir,
            Some(PathBuf::from("/tmp/x"))
        );
    }

    #[test]
    fn rejects_bad_values_with_the_variable_and_what_is_accepted() {
        let err = parse(&[("LEAKCHECK", "maybe")]).unwrap_err().to_string();
        assert!(err.contains("LEAKCHECK=\"maybe\" is not valid"), "{err}");
        assert!(err.contains("`off`"), "{err}");
        let err = parse(&[("LEAKCHECK_PPROF", "gz")]).unwrap_err().to_string();
        assert!(err.contains("LEAKCHECK_PPROF=\"gz\""), "{err}");
        let err = parse(&[("LEAKCHECK_STACK_DEPTH", "0")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("LEAKCHECK_STACK_DEPTH=\"0\""), "{err}");
        assert!(err.contains("1 to 256"), "{err}");
        let err = parse(&[("LEAKCHECK_STACK_DEPTH", "999")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("999"), "{err}");
        let err = parse(&[("LEAKCHECK_REPORT_DIR", "")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("LEAKCHECK_REPORT_DIR"), "{err}");
    }
}
