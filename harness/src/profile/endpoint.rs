//! `/debug/pprof/heap` as Go's `net/http/pprof` serves it, without an HTTP
//! framework: a query string in, a status, a content type and bytes out,
//! for whatever server the program already has.

use super::HeapProfile;
use std::time::Duration;

/// The longest `?seconds=N` delta accepted: the request is answered after
/// that long, so it bounds how long a handler thread is held.
pub const MAX_DELTA_SECONDS: u64 = 300;

/// What to answer an HTTP request with.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PprofResponse {
    /// 200, or 400 for a query it does not accept.
    pub status: u16,
    /// `application/octet-stream` (the gzipped profile, as Go serves it) or
    /// `text/plain; charset=utf-8` (`?debug=1`, and errors).
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

const USAGE: &str = "/debug/pprof/heap takes `seconds=N` (the change over the next N seconds, \
                     1 to 300) and `debug=0|1` (0: gzipped profile.proto, 1: text)";

/// Answers a `GET /debug/pprof/heap` whose query string (what follows `?`,
/// or `""`) is `query`, as Go's `net/http/pprof` does:
///
/// - no query: the live heap as a gzipped `profile.proto` (see
///   [`HeapProfile::to_pprof`]), what `go tool pprof http://ADDR/debug/pprof/heap`
///   fetches;
/// - `seconds=N`: waits N seconds (1 to [`MAX_DELTA_SECONDS`]) and answers
///   with the change over them ([`HeapProfile::delta`]), what `go tool pprof
///   -seconds N` asks for;
/// - `debug=1`: the text form instead (`debug=0`: the profile).
///
/// Any other key, a repeated key or a bad value is a 400 with a message
/// saying what is accepted; nothing else changes, so the caller keeps
/// serving.
///
/// ```
/// let ok = leakcheck::pprof_heap("debug=1");
/// assert_eq!((ok.status, ok.content_type), (200, "text/plain; charset=utf-8"));
/// assert!(String::from_utf8(ok.body).unwrap().starts_with("heap profile: "));
///
/// let bad = leakcheck::pprof_heap("seconds=forever");
/// assert_eq!(bad.status, 400);
/// assert!(String::from_utf8(bad.body).unwrap().contains("`seconds=forever`"));
/// ```
pub fn pprof_heap(query: &str) -> PprofResponse {
    let request = match parse(query) {
        Ok(request) => request,
        Err(message) => {
            return PprofResponse {
                status: 400,
                content_type: TEXT,
                body: format!("{message}\n").into_bytes(),
            }
        }
    };
    let profile = match request.seconds {
        None => HeapProfile::take(),
        Some(seconds) => {
            let before = HeapProfile::take();
            std::thread::sleep(Duration::from_secs(seconds));
            HeapProfile::take().delta(&before)
        }
    };
    if request.debug {
        PprofResponse {
            status: 200,
            content_type: TEXT,
            body: profile.to_string().into_bytes(),
        }
    } else {
        PprofResponse {
            status: 200,
            content_type: "application/octet-stream",
            body: profile.to_pprof(),
        }
    }
}

const TEXT: &str = "text/plain; charset=utf-8";

#[derive(Debug, Default, PartialEq, Eq)]
struct Request {
    seconds: Option<u64>,
    debug: bool,
}

fn parse(query: &str) -> Result<Request, String> {
    let mut request = Request::default();
    let (mut seen_seconds, mut seen_debug) = (false, false);
    for pair in query.strip_prefix('?').unwrap_or(query).split('&') {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let seen = match key {
            "seconds" => &mut seen_seconds,
            "debug" => &mut seen_debug,
            _ => {
                return Err(format!(
                    "unknown query parameter `{key}` in `{pair}`: {USAGE}"
                ))
            }
        };
        if std::mem::replace(seen, true) {
            return Err(format!("`{key}` is given twice: {USAGE}"));
        }
        match key {
            "seconds" => match value.parse::<u64>() {
                Ok(n) if (1..=MAX_DELTA_SECONDS).contains(&n) => request.seconds = Some(n),
                Ok(_) => {
                    return Err(format!(
                        "`{pair}` is out of range: seconds must be from 1 to {MAX_DELTA_SECONDS}"
                    ))
                }
                Err(_) => {
                    return Err(format!(
                        "`{pair}` is not a number of seconds: give a whole number from 1 to \
                         {MAX_DELTA_SECONDS}"
                    ))
                }
            },
            _ => match value {
                "0" => request.debug = false,
                "1" => request.debug = true,
                _ => return Err(format!("`{pair}` is not accepted: debug is 0 or 1")),
            },
        }
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_as_go_accepts_them() {
        assert_eq!(parse(""), Ok(Request::default()));
        assert_eq!(
            parse("?seconds=5&debug=1"),
            Ok(Request {
                seconds: Some(5),
                debug: true
            })
        );
        assert_eq!(parse("debug=0&"), Ok(Request::default()));
    }

    #[test]
    fn bad_queries_say_what_is_accepted() {
        for (query, expected) in [
            ("gc=1", "unknown query parameter `gc` in `gc=1`"),
            ("seconds=abc", "`seconds=abc` is not a number of seconds"),
            ("seconds=", "`seconds=` is not a number of seconds"),
            ("seconds=0", "`seconds=0` is out of range"),
            ("seconds=301", "`seconds=301` is out of range"),
            (
                "seconds=99999999999999999999999",
                "is not a number of seconds",
            ),
            ("debug=2", "`debug=2` is not accepted: debug is 0 or 1"),
            ("debug=1&debug=1", "`debug` is given twice"),
        ] {
            let message = parse(query).unwrap_err();
            assert!(message.contains(expected), "{query}: {message}");
        }
        assert!(parse("gc=1").unwrap_err().contains("takes `seconds=N`"));
    }
}
