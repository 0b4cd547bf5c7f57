//! Drives the `service` example over loopback: this test binary runs the
//! example's own code (`examples/service.rs`, compiled in) in a child
//! process at `LEAKCHECK_PROFILE_RATE=1`, makes requests, and reads its
//! `/debug/pprof/heap`: the C function that leaks is there with its line,
//! its bytes grow by exactly what the requests leaked, bad queries are 400s
//! after which the service keeps serving, and `go tool pprof` (where Go is
//! installed) reads the live endpoint and `-base` shows the growth.

#[path = "../examples/service.rs"]
#[allow(dead_code, reason = "the example's main is not this binary's")]
mod service;

use leakcheck_profile::proto::Profile;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const CHILD_ENV: &str = "LEAKCHECK_SERVICE_CHILD";
/// Bytes the C side leaks per request (the old value and its NUL).
const C_LEAK: i64 = 1025;
/// Bytes the Rust side keeps per request.
const RUST_LEAK: i64 = 512;

#[test]
fn service_child() {
    if std::env::var_os(CHILD_ENV).is_some() {
        let args = ["--addr", "127.0.0.1:0"].map(String::from);
        service::run(args.into_iter()).unwrap();
    }
}

/// The service in a child process, killed when dropped.
struct Service {
    child: Child,
    addr: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Service {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "service_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .env("LEAKCHECK_PROFILE_RATE", "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the service child");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // After libtest's `test service_child ... ` on the same line.
            if let Some((_, addr)) = line.split_once("listening on http://") {
                let _ = tx.send(addr.to_owned());
            }
        }
    });
    let mut service = Service {
        child,
        addr: String::new(),
    };
    service.addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the service did not print `listening on http://ADDR` within 60 s");
    service
}

/// `GET path` over a new connection: (status, content type, body).
fn get(addr: &str, path: &str) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Type: "))
        .unwrap_or("")
        .to_owned();
    (status, content_type, response[split + 4..].to_vec())
}

fn requests(addr: &str, n: usize) {
    for _ in 0..n {
        let (status, _, body) = get(addr, "/work");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
}

fn profile(addr: &str) -> (Profile, Vec<u8>) {
    let (status, content_type, body) = get(addr, "/debug/pprof/heap");
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/octet-stream")
    );
    (leakcheck_profile::decode(&body).unwrap(), body)
}

/// In-use bytes of the samples whose stack has `function` (a path's end:
/// here the example is the module `service` of the test crate) at `line`
/// (any line: 0).
fn inuse(p: &Profile, function: &str, line: i64) -> i64 {
    let s = |i: i64| p.string_table[i as usize].as_str();
    p.sample
        .iter()
        .filter(|sample| {
            sample
                .location_id
                .iter()
                .flat_map(|&id| p.location[id as usize - 1].line.iter())
                .any(|l| {
                    s(p.function[l.function_id as usize - 1].name).ends_with(function)
                        && (line == 0 || l.line == line)
                })
        })
        .map(|sample| sample.value[3])
        .sum()
}

/// The line of `source` that contains `marker`.
fn line_of(source: &str, marker: &str) -> i64 {
    source.lines().position(|l| l.contains(marker)).unwrap() as i64 + 1
}

/// The line of `kv_put`'s leaking `strdup` in `c/kvstore.c`.
fn leak_line() -> i64 {
    line_of(
        include_str!("../c/kvstore.c"),
        "BUG: the old value is never freed",
    )
}

/// The line of the session record the example keeps (not the `Vec` of
/// them, which grows too).
fn session_line() -> i64 {
    line_of(
        include_str!("../examples/service.rs"),
        "let mut record = vec![0u8; SESSION]",
    )
}

#[test]
fn the_heap_endpoint_shows_the_c_and_rust_leaks_growing_with_requests() {
    let service = start();
    let addr = service.addr.as_str();
    requests(addr, 5);
    let (first, first_bytes) = profile(addr);
    let c1 = inuse(&first, "kv_put", leak_line());
    let r1 = inuse(&first, "service::remember_session", session_line());
    assert!(c1 >= 4 * C_LEAK, "{c1}");
    assert!(r1 >= 5 * RUST_LEAK, "{r1}");

    requests(addr, 10);
    let (second, _) = profile(addr);
    let c2 = inuse(&second, "kv_put", leak_line());
    let r2 = inuse(&second, "service::remember_session", session_line());
    assert_eq!(
        c2 - c1,
        10 * C_LEAK,
        "C bytes grow by what 10 requests leaked"
    );
    assert_eq!(
        r2 - r1,
        10 * RUST_LEAK,
        "Rust bytes grow by what 10 requests kept"
    );

    let labels = |p: &Profile, function: &str| -> Vec<String> {
        let s = |i: i64| p.string_table[i as usize].clone();
        p.sample
            .iter()
            .filter(|x| {
                let leaf = &p.location[x.location_id[0] as usize - 1];
                let f = &p.function[leaf.line[0].function_id as usize - 1];
                s(f.name).ends_with(function)
            })
            .flat_map(|x| {
                x.label
                    .iter()
                    .filter(|l| l.str != 0)
                    .map(|l| format!("{}={}", s(l.key), s(l.str)))
            })
            .collect()
    };
    assert!(
        labels(&second, "service::remember_session").contains(&"origin=rust".to_owned()),
        "{:?}",
        labels(&second, "service::remember_session")
    );

    // The text form names the C function and line.
    let (status, content_type, text) = get(addr, "/debug/pprof/heap?debug=1");
    let text = String::from_utf8(text).unwrap();
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/plain; charset=utf-8")
    );
    assert!(
        text.contains(&format!("kvstore.c:{})", leak_line())),
        "{text}"
    );
    assert!(text.contains("origin=c allocator=malloc"), "{text}");

    // A delta over 2 seconds sees what requests made meanwhile leaked.
    let delta_addr = addr.to_owned();
    let delta = std::thread::spawn(move || get(&delta_addr, "/debug/pprof/heap?seconds=2"));
    std::thread::sleep(Duration::from_millis(300));
    requests(addr, 3);
    let (status, _, body) = delta.join().unwrap();
    assert_eq!(status, 200);
    let delta = leakcheck_profile::decode(&body).unwrap();
    assert_eq!(inuse(&delta, "kv_put", leak_line()), 3 * C_LEAK);

    // Go's pprof, against the live endpoint, and with the first profile as
    // the base.
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("service-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.join("first.pb.gz");
    std::fs::write(&base, &first_bytes).unwrap();
    let url = format!("http://{addr}/debug/pprof/heap");
    let Some(top) = leakcheck_test_support::go_tool_pprof(&dir, &[&"-top", &"-lines", &url]) else {
        return;
    };
    let stdout = String::from_utf8_lossy(&top.stdout);
    assert!(
        top.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&top.stderr)
    );
    assert!(stdout.contains("kv_put"), "{stdout}");
    assert!(
        stdout.contains(&format!("kvstore.c:{}", leak_line())),
        "{stdout}"
    );
    let based =
        leakcheck_test_support::go_tool_pprof(&dir, &[&"-top", &"-base", &base, &url]).unwrap();
    let stdout = String::from_utf8_lossy(&based.stdout);
    assert!(
        based.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&based.stderr)
    );
    assert!(stdout.contains("kv_put"), "{stdout}");
    assert!(stdout.contains("service::remember_session"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_queries_are_400s_and_the_service_keeps_serving() {
    let service = start();
    let addr = service.addr.as_str();
    for (query, message) in [
        ("gc=1", "unknown query parameter `gc`"),
        ("seconds=abc", "`seconds=abc` is not a number of seconds"),
        ("seconds=100000", "`seconds=100000` is out of range"),
        ("debug=7", "`debug=7` is not accepted"),
    ] {
        let (status, content_type, body) = get(addr, &format!("/debug/pprof/heap?{query}"));
        let body = String::from_utf8(body).unwrap();
        assert_eq!(
            (status, content_type.as_str()),
            (400, "text/plain; charset=utf-8"),
            "{body}"
        );
        assert!(body.contains(message), "{query}: {body}");
        requests(addr, 1);
    }
    let (status, _, _) = get(addr, "/nowhere");
    assert_eq!(status, 404);
    profile(addr);
}
