//! Which suppressions apply to a check: `LEAKCHECK_SUPPRESSIONS` files, the
//! crate's `leakcheck.supp`, the binary's `suppress!`es and the attribute's
//! own, each parsed once per process.

use super::{parse, Entry, Origin, Suppression};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The file looked for next to the test crate's `Cargo.toml`.
pub(crate) const CRATE_FILE: &str = "leakcheck.supp";

type Parsed = Result<Vec<Arc<Entry>>, String>;

/// Every suppression in force for one check, in the order they are tried:
/// `LEAKCHECK_SUPPRESSIONS` files, the crate's `leakcheck.supp`, the
/// binary's `suppress!`es, the attribute's own. Files and `suppress!` text
/// are parsed once per process. Each malformed source gives one error
/// message (`path:line: what was expected`); the others still apply.
pub(crate) fn for_check(
    env_files: Option<&std::path::Path>,
    crate_dir: Option<&str>,
    attribute: &[Suppression],
) -> (Vec<Arc<Entry>>, Vec<String>) {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let mut take = |parsed: &Parsed| match parsed {
        Ok(found) => entries.extend(found.iter().cloned()),
        Err(message) => errors.push(message.clone()),
    };
    if let Some(list) = env_files {
        for path in std::env::split_paths(list) {
            take(&file(&path, true));
        }
    }
    if let Some(parsed) = crate_file(crate_dir) {
        take(&parsed);
    }
    static IN_CODE: OnceLock<Vec<Parsed>> = OnceLock::new();
    for parsed in IN_CODE.get_or_init(|| super::inline::registered().map(in_code).collect()) {
        take(parsed);
    }
    for suppression in attribute {
        take(&in_code(suppression));
    }
    (entries, errors)
}

/// The crate's `leakcheck.supp` in `crate_dir` (the attribute's), else in
/// `CARGO_MANIFEST_DIR`; `None` without either. The last directory's
/// answer is kept: every check of a test binary asks for the same one, and
/// unoptimised (a user's dev profile) the path's join and its hash in
/// [`file`]'s map were 27,000 instructions a check. [`file`] reads each
/// file once either way.
fn crate_file(crate_dir: Option<&str>) -> Option<Parsed> {
    static LAST: Mutex<Option<(std::ffi::OsString, Parsed)>> = Mutex::new(None);
    let from_env;
    let dir = match crate_dir {
        Some(dir) => std::ffi::OsStr::new(dir),
        None => {
            from_env = std::env::var_os("CARGO_MANIFEST_DIR")?;
            from_env.as_os_str()
        }
    };
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((seen, parsed)) = last.as_ref() {
        // Compared borrowed: the attribute's directory is a `&'static str`,
        // copied only when it changes.
        if seen.as_os_str() == dir {
            return Some(parsed.clone());
        }
    }
    let dir = dir.to_owned();
    let parsed = file(&std::path::Path::new(&dir).join(CRATE_FILE), false);
    *last = Some((dir, parsed.clone()));
    Some(parsed)
}

fn in_code(suppression: &Suppression) -> Parsed {
    let origin = Origin {
        path: suppression.file.to_owned(),
        first_line: suppression.line,
    };
    parse(suppression.text, &origin)
        .map(|found| found.into_iter().map(Arc::new).collect())
        .map_err(|e| format!("malformed suppression: {e}"))
}

/// A suppressions file, parsed once per process. A missing file is an
/// error only if it was asked for (`required`).
fn file(path: &std::path::Path, required: bool) -> Parsed {
    static FILES: OnceLock<Mutex<HashMap<std::path::PathBuf, Parsed>>> = OnceLock::new();
    let files = FILES.get_or_init(Default::default);
    if let Some(hit) = files.lock().unwrap_or_else(|e| e.into_inner()).get(path) {
        return hit.clone();
    }
    let parsed = match std::fs::read(path).map(|bytes| text_of(path, bytes)) {
        Ok(Err(not_text)) => Err(not_text),
        Ok(Ok(text)) => {
            let origin = Origin {
                path: path.display().to_string(),
                first_line: 1,
            };
            parse(&text, &origin)
                .map(|found| found.into_iter().map(Arc::new).collect())
                .map_err(|e| format!("malformed suppressions file: {e}"))
        }
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!(
            "cannot read the suppressions file {} named by LEAKCHECK_SUPPRESSIONS: {e}",
            path.display()
        )),
    };
    files
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(path.to_owned(), parsed.clone());
    parsed
}

/// A file's bytes as text, or the message that says where it stops being
/// UTF-8 (a binary file named by mistake, a file in another encoding).
fn text_of(path: &std::path::Path, bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
        let column = 1 + valid.iter().rev().take_while(|&&b| b != b'\n').count();
        format!(
            "malformed suppressions file: {}:{line}: byte {column} of the line is not UTF-8 \
             text; a suppressions file is text (valgrind blocks, `leak:` lines)",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_file_is_named_with_its_line() {
        let path = std::path::Path::new("x.supp");
        assert_eq!(text_of(path, b"leak:a\n".to_vec()).unwrap(), "leak:a\n");
        let err = text_of(path, b"leak:a\nleak:\xff\xfe\n".to_vec()).unwrap_err();
        assert!(
            err.contains("x.supp:2: byte 6 of the line is not UTF-8"),
            "{err}"
        );
        let err = text_of(path, vec![0x7f, b'E', b'L', b'F', 0x02, 0x80]).unwrap_err();
        assert!(err.contains("x.supp:1: byte 6 "), "{err}");
    }
}
