//! Source paths as a person recognises them, for the text report (the JSON
//! keeps them absolute). Decided by where cargo and rustc put sources, by
//! the path's structure, never by a crate's name:
//!
//! - `<cargo home>/registry/src/<index dir>/<crate>-<version>/…` (cargo's
//!   checkout of a registry crate) → `<crate>-<version>/…`;
//! - `<cargo home>/git/checkouts/<name>-<hash>/<rev>/…` (a git dependency)
//!   → `<name>@<rev>/…`;
//! - `/rustc/<commit>/library/…` (the toolchain's std, as the official
//!   builds record it) → `std/…`, `core/…`, `alloc/…`; std's vendored
//!   crates under `/rust/deps/<crate>-<version>/…` → `<crate>-<version>/…`;
//! - the workspace's own files → relative to the workspace root (the
//!   nearest `Cargo.toml` with a `[workspace]` table above the test
//!   crate, else the test crate's directory), else to the working directory.
//!
//! The cargo home is `$CARGO_HOME`, else `$HOME/.cargo`, as cargo itself
//! finds it.

use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

/// Where the places above are for this process and test crate.
#[derive(Clone, Debug, Default)]
pub(crate) struct Places {
    cargo_home: Option<PathBuf>,
    workspace: Option<PathBuf>,
    cwd: Option<PathBuf>,
}

impl Places {
    /// The places for a test crate in `crate_dir` (the attribute passes
    /// the crate's `CARGO_MANIFEST_DIR`); without one, the
    /// `CARGO_MANIFEST_DIR` cargo sets when it runs a test binary, else
    /// the working directory.
    pub(crate) fn find(crate_dir: Option<&str>) -> Places {
        let cwd = std::env::current_dir().ok();
        let start = crate_dir
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from))
            .or_else(|| cwd.clone());
        Places {
            cargo_home: cargo_home(
                std::env::var_os("CARGO_HOME").map(PathBuf::from),
                std::env::var_os("HOME").map(PathBuf::from),
            ),
            workspace: start.as_deref().and_then(workspace_root_cached),
            cwd,
        }
    }

    /// `file` as the text report shows it.
    pub(crate) fn show(&self, file: &str) -> String {
        let path = Path::new(file);
        if let Some(short) = toolchain(path) {
            return short;
        }
        if let Some(home) = &self.cargo_home {
            if let Some(short) = registry(path, home).or_else(|| git_checkout(path, home)) {
                return short;
            }
        }
        for base in [&self.workspace, &self.cwd].into_iter().flatten() {
            if let Ok(rel) = path.strip_prefix(base) {
                if rel.as_os_str().is_empty() {
                    continue;
                }
                return rel.display().to_string();
            }
        }
        file.to_owned()
    }
}

/// Cargo's home: `$CARGO_HOME` when set and not empty, else `~/.cargo`.
fn cargo_home(cargo_home: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
    cargo_home
        .filter(|p| !p.as_os_str().is_empty())
        .or_else(|| home.filter(|h| h.is_absolute()).map(|h| h.join(".cargo")))
}

/// The normal components of `rest` as strings, if they all are.
fn parts(rest: &Path) -> Option<Vec<&str>> {
    rest.components()
        .map(|c| match c {
            Component::Normal(part) => part.to_str(),
            _ => None,
        })
        .collect()
}

/// `<home>/registry/src/<index dir>/<crate>-<version>/<file…>`.
fn registry(path: &Path, home: &Path) -> Option<String> {
    let rest = path.strip_prefix(home.join("registry").join("src")).ok()?;
    match parts(rest)?.as_slice() {
        [_index, krate, file @ ..] if !file.is_empty() => {
            Some(format!("{krate}/{}", file.join("/")))
        }
        _ => None,
    }
}

/// `<home>/git/checkouts/<name>-<hash>/<rev>/<file…>` → `<name>@<rev>/<file…>`.
/// cargo names the checkout directory `<name>-<hash of the URL>` (16 hex
/// digits); a directory not named so is shown whole.
fn git_checkout(path: &Path, home: &Path) -> Option<String> {
    let rest = path.strip_prefix(home.join("git").join("checkouts")).ok()?;
    match parts(rest)?.as_slice() {
        [dir, rev, file @ ..] if !file.is_empty() => {
            let name = match dir.rsplit_once('-') {
                Some((name, hash))
                    if !name.is_empty()
                        && hash.len() == 16
                        && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
                {
                    name
                }
                _ => dir,
            };
            Some(format!("{name}@{rev}/{}", file.join("/")))
        }
        _ => None,
    }
}

/// `/rustc/<commit>/library/<file…>` (std, core, alloc as the official
/// toolchains record them) → `<file…>`; `/rust/deps/<crate>/<file…>`
/// (std's vendored dependencies) → `<crate>/<file…>`.
fn toolchain(path: &Path) -> Option<String> {
    if let Ok(rest) = path.strip_prefix("/rustc") {
        return match parts(rest)?.as_slice() {
            [_commit, "library", file @ ..] if !file.is_empty() => Some(file.join("/")),
            _ => None,
        };
    }
    let rest = path.strip_prefix("/rust/deps").ok()?;
    let file = parts(rest)?;
    (file.len() > 1).then(|| file.join("/"))
}

/// The workspace root above `start`: the nearest directory, from `start`
/// up, whose `Cargo.toml` has a `[workspace]` table (cargo's own search);
/// else `start` itself when it holds a `Cargo.toml`. Cached: every report
/// of a test binary asks for the same crate.
fn workspace_root_cached(start: &Path) -> Option<PathBuf> {
    static FOUND: Mutex<Vec<(PathBuf, Option<PathBuf>)>> = Mutex::new(Vec::new());
    let mut found = FOUND.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, root)) = found.iter().find(|(from, _)| from == start) {
        return root.clone();
    }
    let root = workspace_root(start, |manifest| std::fs::read_to_string(manifest).ok());
    found.push((start.to_owned(), root.clone()));
    root
}

fn workspace_root(start: &Path, read: impl Fn(&Path) -> Option<String>) -> Option<PathBuf> {
    let mut package = None;
    for dir in start.ancestors() {
        let Some(manifest) = read(&dir.join("Cargo.toml")) else {
            continue;
        };
        if has_workspace_table(&manifest) {
            return Some(dir.to_owned());
        }
        package.get_or_insert_with(|| dir.to_owned());
    }
    package
}

/// Whether a manifest declares `[workspace]` (or one of its sub-tables,
/// which declares it too, in TOML).
fn has_workspace_table(manifest: &str) -> bool {
    manifest.lines().any(|line| {
        let line = line.trim_start();
        line.strip_prefix("[workspace")
            .is_some_and(|rest| rest.starts_with(']') || rest.starts_with('.'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places() -> Places {
        Places {
            cargo_home: Some(PathBuf::from("/home/u/.cargo")),
            workspace: Some(PathBuf::from("/home/u/src/proj")),
            cwd: Some(PathBuf::from("/home/u/src/proj/crates/ffi")),
        }
    }

    /// Each `(path, shown)`: `path` as the text shows it; `None`: unchanged.
    fn assert_shown(p: &Places, cases: &[(&str, Option<&str>)]) {
        for &(path, shown) in cases {
            assert_eq!(p.show(path), shown.unwrap_or(path), "{path}");
        }
    }

    #[test]
    fn registry_sources_are_crate_and_version() {
        let index = "/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f";
        let sqlite = format!("{index}/libsqlite3-sys-0.38.2/sqlite3/sqlite3.c");
        let bare = format!("{index}/foo-1.0.0");
        assert_shown(
            &places(),
            &[
                (&sqlite, Some("libsqlite3-sys-0.38.2/sqlite3/sqlite3.c")),
                // Another registry's index directory: the same structure.
                (
                    "/home/u/.cargo/registry/src/my-registry-0123456789abcdef/zlib-1.0.0/src/a.rs",
                    Some("zlib-1.0.0/src/a.rs"),
                ),
                // Not below the cargo home: untouched, however it looks.
                ("/opt/registry/src/index-1/foo-1.0.0/src/lib.rs", None),
                // The crate directory alone is not a file.
                (&bare, None),
            ],
        );
    }

    #[test]
    fn git_checkouts_are_name_at_revision() {
        let checkouts = "/home/u/.cargo/git/checkouts";
        let named = format!("{checkouts}/rusqlite-8f1d0b2c3a4e5f60/a1b2c3d/src/lib.rs");
        // A checkout directory cargo did not name `<name>-<hash>`: whole.
        let odd = format!("{checkouts}/odd/a1b2c3d/libsqlite3-sys/build.rs");
        assert_shown(
            &places(),
            &[
                (&named, Some("rusqlite@a1b2c3d/src/lib.rs")),
                (&odd, Some("odd@a1b2c3d/libsqlite3-sys/build.rs")),
            ],
        );
    }

    #[test]
    fn toolchain_sources_start_at_library() {
        let rustc = "/rustc/17067e9ac6d7e98f18d4d4c0b5d5a2e6f7d8c9b0";
        let std = format!("{rustc}/library/std/src/thread/mod.rs");
        let alloc = format!("{rustc}/library/alloc/src/raw_vec/mod.rs");
        // Outside `library/`: untouched.
        let compiler = format!("{rustc}/compiler/x.rs");
        assert_shown(
            &places(),
            &[
                (&std, Some("std/src/thread/mod.rs")),
                (&alloc, Some("alloc/src/raw_vec/mod.rs")),
                (
                    "/rust/deps/hashbrown-0.15.2/src/raw/mod.rs",
                    Some("hashbrown-0.15.2/src/raw/mod.rs"),
                ),
                (&compiler, None),
            ],
        );
    }

    #[test]
    fn workspace_files_are_relative_to_the_workspace_root() {
        let ffi = "/home/u/src/proj/crates/ffi/src/lib.rs";
        assert_shown(
            &places(),
            &[
                (
                    "/home/u/src/proj/test-support/c/fixtures.c",
                    Some("test-support/c/fixtures.c"),
                ),
                (ffi, Some("crates/ffi/src/lib.rs")),
                ("/usr/include/stdio.h", None),
            ],
        );
        // No workspace: relative to the working directory.
        let no_workspace = Places {
            workspace: None,
            ..places()
        };
        assert_shown(&no_workspace, &[(ffi, Some("src/lib.rs"))]);
    }

    #[test]
    fn the_workspace_root_is_the_nearest_manifest_with_a_workspace_table() {
        let files = |list: &'static [(&'static str, &'static str)]| {
            move |p: &Path| {
                list.iter()
                    .find(|(path, _)| Path::new(path) == p)
                    .map(|(_, text)| (*text).to_owned())
            }
        };
        let read = files(&[
            ("/w/Cargo.toml", "[workspace]\nmembers = [\"a\"]\n"),
            ("/w/a/Cargo.toml", "[package]\nname = \"a\"\n"),
            (
                "/w/lints/Cargo.toml",
                "[workspace.lints.rust]\nunsafe_code = \"deny\"\n",
            ),
            (
                "/x/b/Cargo.toml",
                "[package]\nname = \"b\"\n[workspace-not]\n",
            ),
        ]);
        assert_eq!(workspace_root(Path::new("/w/a"), read), Some("/w".into()));
        assert_eq!(
            workspace_root(Path::new("/w/lints"), read),
            Some("/w/lints".into())
        );
        // A package outside any workspace is its own root.
        assert_eq!(workspace_root(Path::new("/x/b"), read), Some("/x/b".into()));
        assert_eq!(workspace_root(Path::new("/y"), read), None);
        // This crate's own workspace, found on disk.
        let here = workspace_root_cached(Path::new(env!("CARGO_MANIFEST_DIR")));
        assert_eq!(
            here.as_deref(),
            Path::new(env!("CARGO_MANIFEST_DIR")).parent()
        );
    }

    #[test]
    fn cargo_home_is_cargo_home_else_dot_cargo() {
        let home = Some(PathBuf::from("/home/u"));
        assert_eq!(
            cargo_home(Some("/c".into()), home.clone()),
            Some("/c".into())
        );
        assert_eq!(
            cargo_home(Some("".into()), home.clone()),
            Some("/home/u/.cargo".into())
        );
        assert_eq!(cargo_home(None, home), Some("/home/u/.cargo".into()));
        assert_eq!(cargo_home(None, None), None);
    }
}
