//! A bounded HTTP/1.1 load loop over loopback for `service_load.sh`:
//! `http_load ADDR PATH REQUESTS THREADS` makes REQUESTS `GET PATH`
//! requests (one connection each, as the example service closes them) from
//! THREADS threads and prints `requests/s N`. Every response must be a 200;
//! each request has a 10 s timeout.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn one(addr: &str, path: &str) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    if response.starts_with(b"HTTP/1.1 200 ") {
        Ok(())
    } else {
        Err(format!("not a 200: {}", String::from_utf8_lossy(&response)))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, path, requests, threads] = &args[..] else {
        eprintln!("usage: http_load ADDR PATH REQUESTS THREADS");
        std::process::exit(2);
    };
    let requests: usize = requests.parse().expect("REQUESTS: a whole number");
    let threads: usize = threads.parse().expect("THREADS: a whole number");
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while next.fetch_add(1, Ordering::Relaxed) < requests {
                    if let Err(e) = one(addr, path) {
                        eprintln!("http_load: {e}");
                        std::process::exit(1);
                    }
                }
            });
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    println!("requests/s {:.0}", requests as f64 / seconds);
}
