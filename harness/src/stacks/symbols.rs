//! Symbolisation of captured stacks, cached for the life of the process.
//!
//! Only what a report needs is symbolised, after the scope has ended and
//! inside an untracked section, so none of it is charged to a test.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One source-level frame: an instruction pointer resolves to one or more of
/// these (inlined calls first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Symbol {
    pub(crate) ip: usize,
    pub(crate) function: Option<String>,
    /// The symbol as the object file spells it (mangled for Rust and C++),
    /// which is what valgrind's suppressions name.
    pub(crate) mangled: Option<String>,
    pub(crate) file: Option<String>,
    pub(crate) line: Option<u32>,
    pub(crate) module: Option<String>,
}

type Cache = HashMap<usize, Arc<[Symbol]>>;

fn cache() -> &'static Mutex<Cache> {
    static CACHE: std::sync::OnceLock<Mutex<Cache>> = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Resolves `ip` (a return address, as captured) to its frames.
pub(crate) fn resolve(ip: usize) -> Arc<[Symbol]> {
    if let Some(hit) = cache().lock().unwrap_or_else(|e| e.into_inner()).get(&ip) {
        return Arc::clone(hit);
    }
    let resolved: Arc<[Symbol]> = resolve_uncached(ip).into();
    let replaced = cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(ip, Arc::clone(&resolved));
    // Another thread resolved the same address meanwhile. Its frames are
    // freed here, with the lock released: freeing may report heap misuse,
    // and that report symbolises.
    drop(replaced);
    resolved
}

/// Resolves `ip` without the shared cache: for a caller whose allocations
/// are not recorded (under the re-entrancy guard), so that none of them
/// ends up in the cache, to be freed later where frees are recorded, and
/// no recorded block of the cache is freed where they are not.
pub(crate) fn resolve_uncached(ip: usize) -> Vec<Symbol> {
    let module = module_of(ip);
    let mut out = Vec::new();
    backtrace::resolve(ip as *mut std::ffi::c_void, |symbol| {
        out.push(Symbol {
            ip,
            function: symbol.name().map(|name| clean_name(format!("{name:#}"))),
            mangled: symbol
                .name()
                .map(|name| String::from_utf8_lossy(name.as_bytes()).into_owned()),
            file: symbol.filename().map(|p| p.display().to_string()),
            line: symbol.lineno(),
            module: module.clone(),
        });
    });
    if out.is_empty() {
        out.push(Symbol {
            ip,
            function: dladdr_name(ip),
            mangled: None,
            file: None,
            line: None,
            module: module.clone(),
        });
    }
    out
}

/// Whose code a frame is, decided by what the compiler recorded for it — the
/// source file in its debug info, the crate in its mangled symbol — and never
/// by the function's name, which a user chooses: a test crate named `core`
/// or a function named `std_io_print` is the user's code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    /// The standard library: std, alloc, core and the crates std vendors.
    Std,
    /// leakcheck's own code, including the `#[global_allocator]` shim the
    /// compiler generates at its static.
    Leakcheck,
    /// Code with a source file that is neither: the user's and their
    /// dependencies' (C with `-g` too).
    Other,
    /// No debug info and no std crate in its symbol: a C library built
    /// without `-g`, code built without debug info, a compiler helper.
    Unknown,
}

/// Where leakcheck's own sources are, as the compiler records them in debug
/// info (cargo passes the same directory it sets as `CARGO_MANIFEST_DIR`).
const OWN_SOURCES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// Where the Rust distribution's build records the sources of std's vendored
/// dependencies (hashbrown behind `HashMap`, …), next to `/rustc/<commit>/`
/// for std's own: a path the toolchain's build chose, not the user.
const STD_VENDORED_SOURCES: &str = "/rust/deps";

/// What std's code looks like in this binary, learned from functions of
/// std, alloc and core whose addresses we take: the directory the compiler
/// recorded std's sources under (`/rustc/<commit>/library`, or the real
/// sysroot with `-Zbuild-std`), and the crate roots (name and disambiguator,
/// unique per crate build) of std's v0-mangled symbols.
struct StdIdentity {
    library: Option<std::path::PathBuf>,
    crate_roots: Vec<String>,
}

fn std_identity() -> &'static StdIdentity {
    static IDENTITY: std::sync::OnceLock<StdIdentity> = std::sync::OnceLock::new();
    IDENTITY.get_or_init(|| {
        // Non-generic, out-of-line functions: their code is in the
        // precompiled std, alloc and core (v0-mangled there), not a copy in
        // this crate. A generic one over a type of ours is instantiated
        // here, with this crate's debug info: the library's path even when
        // the toolchain's std was shipped without debug info.
        let known: [(usize, &str); 4] = [
            (std::io::stdout as fn() -> std::io::Stdout as usize, "std"),
            (
                std::alloc::handle_alloc_error as fn(std::alloc::Layout) -> ! as usize,
                "alloc",
            ),
            (
                core::fmt::write
                    as fn(&mut dyn core::fmt::Write, core::fmt::Arguments<'_>) -> core::fmt::Result
                    as usize,
                "core",
            ),
            (
                Vec::<Owner>::push as fn(&mut Vec<Owner>, Owner) as usize,
                "alloc",
            ),
        ];
        let mut identity = StdIdentity {
            library: None,
            crate_roots: Vec::new(),
        };
        for (address, krate) in known {
            // `resolve` takes return addresses and looks one byte back.
            backtrace::resolve((address + 1) as *mut std::ffi::c_void, |symbol| {
                if let Some(root) = symbol.name().and_then(|n| v0_crate_root(n.as_bytes())) {
                    identity
                        .crate_roots
                        .push(String::from_utf8_lossy(root).into_owned());
                }
                if identity.library.is_none() {
                    identity.library = symbol.filename().and_then(|file| library_of(file, krate));
                }
            });
        }
        identity
    })
}

/// The directory holding `krate/src/` when `file` is below it:
/// `/rustc/<commit>/library` for `/rustc/<commit>/library/alloc/src/vec/mod.rs`.
fn library_of(file: &std::path::Path, krate: &str) -> Option<std::path::PathBuf> {
    let sources = std::path::Path::new(krate).join("src");
    file.ancestors()
        .skip(1)
        .find(|dir| file.starts_with(dir.join(&sources)))
        .map(std::path::Path::to_path_buf)
}

/// The crate root a v0-mangled symbol's path starts from
/// (`s<disambiguator>_<len><name>` after its `C`, e.g. `sgEmfK2I1SDS_4core`), as bytes
/// of the symbol. The disambiguator is the compiler's hash of the crate, so
/// a user's crate named `core` has another. `None` for legacy-mangled
/// symbols (user crates by default) and for paths that start from a type
/// (`<T as Trait>` items).
fn v0_crate_root(mangled: &[u8]) -> Option<&[u8]> {
    let mut rest = mangled.strip_prefix(b"_R")?;
    let skip_disambiguator = |s: &[u8]| -> Option<usize> {
        match s.first() {
            Some(b's') => s.iter().position(|&c| c == b'_').map(|i| i + 1),
            _ => Some(0),
        }
    };
    loop {
        match *rest.first()? {
            // Nested path: namespace tag, then the parent path.
            b'N' => rest = rest.get(2..)?,
            // Generic arguments follow the path.
            b'I' => rest = &rest[1..],
            // Inherent and trait impls: the path of the module holding them.
            b'M' | b'X' => {
                rest = &rest[1..];
                rest = rest.get(skip_disambiguator(rest)?..)?;
            }
            b'C' => {
                let root = &rest[1..];
                let mut at = skip_disambiguator(root)?;
                let digits = root[at..].iter().take_while(|c| c.is_ascii_digit()).count();
                let len: usize = std::str::from_utf8(&root[at..at + digits])
                    .ok()?
                    .parse()
                    .ok()?;
                at += digits;
                if root.get(at) == Some(&b'_') {
                    at += 1;
                }
                return root.get(..at + len);
            }
            _ => return None,
        }
    }
}

/// [`v0_crate_root`] as a string, for the report's tests.
#[cfg(test)]
pub(crate) fn v0_crate_root_for_test(mangled: &str) -> Option<String> {
    v0_crate_root(mangled.as_bytes()).map(|r| String::from_utf8_lossy(r).into_owned())
}

/// Whose code `symbol` is (see [`Owner`]).
pub(crate) fn owner(symbol: &Symbol) -> Owner {
    let identity = std_identity();
    if let Some(file) = symbol.file.as_deref().map(std::path::Path::new) {
        let in_std = identity
            .library
            .as_deref()
            .is_some_and(|dir| file.starts_with(dir))
            || file.starts_with(STD_VENDORED_SOURCES);
        return if in_std {
            Owner::Std
        } else if file.starts_with(OWN_SOURCES) {
            Owner::Leakcheck
        } else {
            Owner::Other
        };
    }
    let root = symbol
        .mangled
        .as_deref()
        .and_then(|m| v0_crate_root(m.as_bytes()));
    match root {
        Some(root) if identity.crate_roots.iter().any(|r| r.as_bytes() == root) => Owner::Std,
        _ => Owner::Unknown,
    }
}

/// glibc's debug info names its internal aliases (`__GI___strdup`); show
/// the name callers know.
fn clean_name(name: String) -> String {
    match name.strip_prefix("__GI_") {
        Some(rest) => rest
            .strip_prefix("__")
            .filter(|r| !r.is_empty())
            .unwrap_or(rest)
            .to_owned(),
        None => name,
    }
}

#[cfg(unix)]
fn dladdr_info(ip: usize) -> Option<libc::Dl_info> {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY: dladdr only reads `ip` as an address and writes `info`.
    let found = unsafe {
        libc::dladdr(
            (ip.saturating_sub(1)) as *const libc::c_void,
            info.as_mut_ptr(),
        )
    };
    // SAFETY: zero-initialised and, when found, filled in by dladdr.
    (found != 0).then(|| unsafe { info.assume_init() })
}

#[cfg(unix)]
fn cstr(p: *const libc::c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: dladdr's strings are NUL-terminated and live as long as the
    // object stays loaded; we copy them out at once.
    let s = unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned();
    (!s.is_empty()).then_some(s)
}

/// The path of the loaded object containing `ip`.
#[cfg(unix)]
fn module_of(ip: usize) -> Option<String> {
    let info = dladdr_info(ip)?;
    cstr(info.dli_fname)
        .filter(|name| name.starts_with('/'))
        .or_else(|| crate::config::exe().map(|p| p.display().to_string()))
}

#[cfg(unix)]
fn dladdr_name(ip: usize) -> Option<String> {
    dladdr_info(ip).and_then(|info| cstr(info.dli_sname))
}

#[cfg(not(unix))]
fn module_of(_ip: usize) -> Option<String> {
    crate::config::exe().map(|p| p.display().to_string())
}

#[cfg(not(unix))]
fn dladdr_name(_ip: usize) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_library_is_the_directory_above_the_crates_sources() {
        let library = |file: &str, krate| super::library_of(std::path::Path::new(file), krate);
        assert_eq!(
            library("/rustc/5980/library/alloc/src/vec/mod.rs", "alloc"),
            Some("/rustc/5980/library".into())
        );
        assert_eq!(
            library(
                "/home/u/.rustup/lib/rustlib/src/rust/library/std/src/io/stdio.rs",
                "std"
            ),
            Some("/home/u/.rustup/lib/rustlib/src/rust/library".into())
        );
        assert_eq!(library("/home/u/alloc/tests/alloc.rs", "alloc"), None);
    }

    #[test]
    fn glibc_internal_aliases_are_cleaned() {
        assert_eq!(super::clean_name("__GI___strdup".into()), "strdup");
        assert_eq!(super::clean_name("__GI_memcpy".into()), "memcpy");
        assert_eq!(super::clean_name("fixture_leak".into()), "fixture_leak");
    }
}
