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
    let resolved: Arc<[Symbol]> = out.into();
    cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(ip, Arc::clone(&resolved));
    resolved
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
        .or_else(|| {
            std::env::current_exe()
                .ok()
                .map(|p| p.display().to_string())
        })
}

#[cfg(unix)]
fn dladdr_name(ip: usize) -> Option<String> {
    dladdr_info(ip).and_then(|info| cstr(info.dli_sname))
}

#[cfg(not(unix))]
fn module_of(_ip: usize) -> Option<String> {
    std::env::current_exe()
        .ok()
        .map(|p| p.display().to_string())
}

#[cfg(not(unix))]
fn dladdr_name(_ip: usize) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn glibc_internal_aliases_are_cleaned() {
        assert_eq!(super::clean_name("__GI___strdup".into()), "strdup");
        assert_eq!(super::clean_name("__GI_memcpy".into()), "memcpy");
        assert_eq!(super::clean_name("fixture_leak".into()), "fixture_leak");
    }
}
