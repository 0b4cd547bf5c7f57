//! A tiny HTTP service that leaks a little on the C side and a little on the
//! Rust side with every request, and serves its live heap profile the way a
//! Go service does, so `go tool pprof` finds both leaks:
//!
//! ```sh
//! cargo run -p leakcheck-examples --example service -- --addr 127.0.0.1:0
//! # listening on http://127.0.0.1:PORT
//! go tool pprof -top http://127.0.0.1:PORT/debug/pprof/heap
//! ```
//!
//! - `GET /work`: one request's work: the C store (`c/kvstore.c`) overwrites
//!   a key, and `kv_put` leaks the old value (1 KiB); the Rust side keeps a
//!   512-byte session record forever.
//! - `GET /debug/pprof/heap`: `leakcheck::pprof_heap`, with Go's
//!   `?seconds=N` and `?debug=1`.
//!
//! HTTP/1.1 by hand over std's `TcpListener`, one thread per connection,
//! `Connection: close`: the endpoint is a function from the query string to
//! a response, so any server (axum, hyper, tiny_http) wires it the same way.
//! Built with `--no-default-features`, the same service does not link
//! leakcheck at all (the baseline of `benches/service_load.sh`).

use leakcheck_examples::KvStore;
use std::io::{BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The C store every request writes to.
static STORE: Mutex<Option<KvStore>> = Mutex::new(None);
/// Session records, never trimmed: the Rust-side leak.
static SESSIONS: Mutex<Vec<Box<[u8]>>> = Mutex::new(Vec::new());
static REQUESTS: AtomicU64 = AtomicU64::new(0);

/// Bytes of the value each request stores in C (plus its NUL).
const C_VALUE: usize = 1024;
/// Bytes of each request's Rust session record.
const SESSION: usize = 512;

fn main() {
    if let Err(message) = run(std::env::args().skip(1)) {
        eprintln!("service: {message}");
        std::process::exit(2);
    }
}

/// Parses `--addr ADDR`, binds, prints `listening on http://ADDR` first and
/// serves until killed.
pub fn run(mut args: impl Iterator<Item = String>) -> Result<(), String> {
    let mut addr = String::from("127.0.0.1:8080");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                addr = args
                    .next()
                    .ok_or("--addr needs a value, such as 127.0.0.1:0")?
            }
            other => {
                return Err(format!(
                    "unknown argument `{other}`; usage: service [--addr HOST:PORT]"
                ))
            }
        }
    }
    let listener = TcpListener::bind(&addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on http://{local}");
    let _ = std::io::stdout().flush();
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                std::thread::spawn(move || {
                    let _ = serve(stream);
                });
            }
            Err(e) => eprintln!("service: accept: {e}"),
        }
    }
    Ok(())
}

/// One request's work: the C call that leaks, and the Rust record kept.
#[inline(never)]
fn work() -> u64 {
    let n = REQUESTS.fetch_add(1, Ordering::Relaxed) + 1;
    let value = format!("{n:0>width$}", width = C_VALUE);
    STORE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(KvStore::new)
        .put("last-request", &value);
    remember_session(n);
    n
}

#[inline(never)]
fn remember_session(n: u64) {
    let mut record = vec![0u8; SESSION].into_boxed_slice();
    record[..8].copy_from_slice(&n.to_le_bytes());
    SESSIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(record);
}

/// Reads one request (head only: GETs have no body) and answers it.
fn serve(mut stream: TcpStream) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > 16 * 1024 {
            return respond(&mut stream, 431, "text/plain", b"request head too large\n");
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.lines().next().unwrap_or("").split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if method != "GET" {
        return respond(&mut stream, 405, "text/plain", b"only GET\n");
    }
    match path {
        "/work" => {
            let n = work();
            respond(
                &mut stream,
                200,
                "text/plain",
                format!("ok {n}\n").as_bytes(),
            )
        }
        "/debug/pprof/heap" => heap(&mut stream, query),
        _ => respond(
            &mut stream,
            404,
            "text/plain",
            b"not found: try /work or /debug/pprof/heap\n",
        ),
    }
}

#[cfg(feature = "profile")]
fn heap(stream: &mut TcpStream, query: &str) -> std::io::Result<()> {
    let response = leakcheck::pprof_heap(query);
    respond(
        stream,
        response.status,
        response.content_type,
        &response.body,
    )
}

#[cfg(not(feature = "profile"))]
fn heap(stream: &mut TcpStream, _query: &str) -> std::io::Result<()> {
    respond(
        stream,
        404,
        "text/plain",
        b"built without leakcheck (the `profile` feature of leakcheck-examples)\n",
    )
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Request Header Fields Too Large",
    };
    let mut out = BufWriter::new(stream);
    write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )?;
    out.write_all(body)?;
    out.flush()
}
