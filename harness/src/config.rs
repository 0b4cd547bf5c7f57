//! Settings from the environment, read once per process.

use crate::error::Error;
use crate::stacks::{DEFAULT_DEPTH, MAX_DEPTH};
use crate::verdict::KindSet;
use std::path::PathBuf;
use std::sync::OnceLock;

/// What the environment asks of every check. `LEAKCHECK`, which only the
/// attribute reads, is [`enabled`]'s: a bad value of it must not break a
/// direct [`crate::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    /// `LEAKCHECK_STACK_DEPTH`.
    pub(crate) stack_depth: usize,
    /// `LEAKCHECK_REPORT_DIR`.
    pub(crate) report_dir: Option<PathBuf>,
    /// `LEAKCHECK_SUPPRESSIONS`: one file, or several separated by `:`.
    pub(crate) suppressions: Option<PathBuf>,
    /// `LEAKCHECK_PPROF`: a pprof profile beside each leaking test's report.
    pub(crate) pprof: bool,
    /// `LEAKCHECK_SHOW`: the kinds the text report gives sections of.
    pub(crate) show: Option<KindSet>,
    /// `LEAKCHECK_MAX_SECTIONS`: at most this many sections in the text.
    pub(crate) max_sections: Option<usize>,
}

/// An on/off variable, in any case: unset or empty is `default`.
fn switch(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: bool,
    expected: &'static str,
) -> Result<bool, Error> {
    let Some(raw) = get(var) else {
        return Ok(default);
    };
    match raw.trim().to_ascii_lowercase().as_str() {
        "" => Ok(default),
        "on" | "1" | "true" | "yes" => Ok(true),
        "off" | "0" | "false" | "no" => Ok(false),
        _ => Err(Error::InvalidEnv {
            var,
            value: raw,
            expected,
        }),
    }
}

impl Config {
    pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
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
        let show = match get("LEAKCHECK_SHOW") {
            None => None,
            Some(raw) => Some(KindSet::parse(&raw).map_err(|_| Error::InvalidEnv {
                var: "LEAKCHECK_SHOW",
                value: raw,
                expected: "leak kinds in valgrind's words (its --show-leak-kinds): `definite`, \
                           `indirect`, `possible`, `reachable` separated by commas, or `all`, or \
                           `none`",
            })?),
        };
        let max_sections = match get("LEAKCHECK_MAX_SECTIONS") {
            None => None,
            Some(raw) => Some(raw.trim().parse::<usize>().map_err(|_| Error::InvalidEnv {
                var: "LEAKCHECK_MAX_SECTIONS",
                value: raw,
                expected: "a whole number: at most that many leak sections in a failure message \
                           (0 for none; the JSON report always has every one)",
            })?),
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
        let suppressions = path("LEAKCHECK_SUPPRESSIONS")?;
        if let Some(list) = &suppressions {
            if std::env::split_paths(list).any(|p| p.as_os_str().is_empty()) {
                return Err(Error::InvalidEnv {
                    var: "LEAKCHECK_SUPPRESSIONS",
                    value: list.display().to_string(),
                    expected: "one suppressions file, or several separated by `:`, with no \
                               empty name (a leading, trailing or doubled `:`)",
                });
            }
        }
        Ok(Config {
            stack_depth,
            report_dir: path("LEAKCHECK_REPORT_DIR")?,
            suppressions,
            pprof,
            show,
            max_sections,
        })
    }
}

/// `LEAKCHECK`: whether `#[leak_checked]` checks at all, in any case
/// (`off`, `OFF`, `False`, ...).
fn parse_enabled(value: Option<&str>) -> Result<bool, Error> {
    switch(
        &|_| value.map(str::to_owned),
        "LEAKCHECK",
        true,
        "`off` (or 0/false/no, in any case) to disable checking, `on` (or 1/true/yes) to \
         enable it",
    )
}

/// Whether `LEAKCHECK` lets `#[leak_checked]` check, read once per process.
pub(crate) fn enabled() -> Result<bool, &'static Error> {
    static ENABLED: OnceLock<&'static Result<bool, Error>> = OnceLock::new();
    own_once(&ENABLED, || {
        parse_enabled(std::env::var("LEAKCHECK").ok().as_deref())
    })
    .as_ref()
    .copied()
}

/// The process's configuration, parsed on first use.
pub(crate) fn get() -> Result<&'static Config, &'static Error> {
    static CONFIG: OnceLock<&'static Result<Config, Error>> = OnceLock::new();
    own_once(&CONFIG, || {
        let config = Config::from_lookup(|var| std::env::var(var).ok());
        if let Ok(config) = &config {
            crate::stacks::set_depth(config.stack_depth);
        }
        config
    })
    .as_ref()
}

/// The running executable's path (`None` if the kernel does not say),
/// read once: it does not move while the process runs, and reading it at
/// every report made a `readlink` a check. Reports, profiles and the report
/// directory all take it from here.
pub(crate) fn exe() -> Option<&'static std::path::Path> {
    static EXE: OnceLock<&'static Option<std::path::PathBuf>> = OnceLock::new();
    own_once(&EXE, || std::env::current_exe().ok()).as_deref()
}

/// The value `cell` was set to, computed by `init` the first time, in a
/// block of leakcheck's own (an `Untracked::harness` section): the static
/// holds only its address. A static `OnceLock<Result<T, Error>>` keeps the
/// bytes that the variant in use leaves unused as they were on the stack
/// that set it, and the data segments are roots of every verdict: a stale
/// heap address there (`enabled`'s, in a release build) made a test's block
/// that later got that address possibly lost or still reachable, in one
/// run of `tests/report_folded.rs` in fifteen. leakcheck's own blocks are
/// never roots nor followed.
fn own_once<T: Send + Sync>(
    cell: &'static OnceLock<&'static T>,
    init: impl FnOnce() -> T,
) -> &'static T {
    cell.get_or_init(|| {
        let _own = crate::track::scope::Untracked::harness();
        Box::leak(Box::new(init()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_wide_value_lives_in_a_block_of_leakcheck_own() {
        static CELL: OnceLock<&'static Result<bool, Error>> = OnceLock::new();
        let value = own_once(&CELL, || Ok(true));
        assert_eq!(value.as_ref().copied().ok(), Some(true));
        assert!(
            std::ptr::eq(value, own_once(&CELL, || Ok(false))),
            "set once"
        );
        // The static holds an address only, and the block there is
        // leakcheck's own, in its own heap and not in the block table:
        // never a root, never followed.
        assert_eq!(std::mem::size_of_val(&CELL), 16);
        #[cfg(leakcheck_interpose)]
        {
            assert!(crate::track::own_heap::contains(
                std::ptr::from_ref(value).cast()
            ));
            #[cfg(feature = "global-allocator")]
            assert!(crate::track::table::get(std::ptr::from_ref(value) as usize).is_none());
        }
    }

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
        assert!(parse_enabled(None).unwrap());
        assert_eq!(c.stack_depth, DEFAULT_DEPTH);
        assert_eq!(c.report_dir, None);
        assert_eq!((c.show, c.max_sections), (None, None));
    }

    #[test]
    fn show_and_max_sections() {
        let c = parse(&[
            ("LEAKCHECK_SHOW", "definite,indirect"),
            ("LEAKCHECK_MAX_SECTIONS", " 12 "),
        ])
        .unwrap();
        let show = c.show.unwrap();
        assert!(show.contains(crate::Kind::IndirectlyLost));
        assert!(!show.contains(crate::Kind::StillReachable));
        assert_eq!(c.max_sections, Some(12));
        assert_eq!(
            parse(&[("LEAKCHECK_SHOW", "all")]).unwrap().show,
            Some(KindSet::ALL)
        );
        let err = parse(&[("LEAKCHECK_SHOW", "definite,lost")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("LEAKCHECK_SHOW=\"definite,lost\""), "{err}");
        assert!(err.contains("`indirect`"), "{err}");
        for bad in ["", "-1", "five", "2.5"] {
            let err = parse(&[("LEAKCHECK_MAX_SECTIONS", bad)])
                .unwrap_err()
                .to_string();
            assert!(err.contains("LEAKCHECK_MAX_SECTIONS"), "{err}");
            assert!(err.contains("a whole number"), "{err}");
        }
    }

    #[test]
    fn accepts_documented_values() {
        for off in ["off", "OFF", "Off", "FALSE", "0", "no", " No "] {
            assert!(!parse_enabled(Some(off)).unwrap(), "{off}");
        }
        for on in ["on", "On", "TRUE", "1", "yes", ""] {
            assert!(parse_enabled(Some(on)).unwrap(), "{on}");
        }
        // Only the attribute reads LEAKCHECK: the other settings parse.
        assert!(parse(&[("LEAKCHECK", "bogus")]).is_ok());
        assert!(!parse(&[]).unwrap().pprof);
        assert!(parse(&[("LEAKCHECK_PPROF", "1")]).unwrap().pprof);
        assert!(parse(&[("LEAKCHECK_PPROF", "ON")]).unwrap().pprof);
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
        let err = parse_enabled(Some("maybe")).unwrap_err().to_string();
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
        for list in ["::", ":a.supp", "a.supp:", "a.supp::b.supp"] {
            let err = parse(&[("LEAKCHECK_SUPPRESSIONS", list)])
                .unwrap_err()
                .to_string();
            assert!(err.contains("LEAKCHECK_SUPPRESSIONS"), "{err}");
            assert!(err.contains("no empty name"), "{err}");
        }
        assert!(parse(&[("LEAKCHECK_SUPPRESSIONS", "a.supp:b.supp")]).is_ok());
    }
}
