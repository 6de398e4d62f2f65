//! Round trips of the reference crate (`running-process`), the same shape as the C round trips
//! of `bench/c`: one client, one echo peer in a child process (this program re-run with
//! `--peer`; `taskset` on the parent pins both to the same CPU), 64-byte payloads, a Unix
//! socket in a private temporary directory, `RP_BENCH_ITERATIONS` samples (default 20000) after
//! `RP_BENCH_WARMUP` untimed warm-up round trips (default 2,000). Prints
//! `RESULT name=... p50_us=... p99_us=... n=...` like `bench/c/bench.h`.
//!
//! ```text
//! reference_rtt frameclient   # FrameClient::connect + FrameClient::request
//! reference_rtt bufio         # the same request Frame through write_frame on a BufWriter and
//!                             # read_frame on a BufReader (one write per request)
//! ```
//!
//! Both modes build, encode and decode the same v1 `Frame` per round trip (a REQUEST with the
//! next request id, answered by a RESPONSE echoing it), so they differ only in how the frame
//! reaches the socket: `FrameClient::request` calls `write_frame` on the bare stream, which
//! writes the 5-byte header and the body separately; the buffered loop writes both at once.
//!
//! The peer is as cheap as the raw C echo: it reads whatever has arrived, turns each whole
//! request frame into its response by inserting the `kind = RESPONSE` field (a request has
//! the default kind, so it is absent from its encoding) and writes all of them back at once.

use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prost::Message;
use running_process::broker::backend_sdk::FrameClient;
use running_process::broker::protocol::{read_frame, write_frame, Endpoint, Frame, FrameKind};

const PROTOCOL: u32 = 0x7001;
const MSG: usize = 64;
const WARMUP: usize = 2000;

/// A count from the environment variable `var`, or `default` when it is unset or not a number.
fn env_count(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// The echo peer: binds `path`, accepts one connection and answers every request frame with
/// its response until the client hangs up.
fn peer(path: &str) {
    let listener = UnixListener::bind(path).expect("bind");
    let (mut stream, _) = listener.accept().expect("accept");
    let mut buf = vec![0u8; 65536];
    let mut out = Vec::with_capacity(65536 + 1024);
    let mut have = 0;
    loop {
        let r = match stream.read(&mut buf[have..]) {
            Ok(0) | Err(_) => return,
            Ok(r) => r,
        };
        have += r;
        let mut at = 0;
        out.clear();
        while have - at >= 5 {
            let len = u32::from_le_bytes(buf[at + 1..at + 5].try_into().unwrap()) as usize;
            if have - at < 5 + len {
                break;
            }
            let body = &buf[at + 5..at + 5 + len];
            // A request starts with `envelope_version = 1` (08 01); its response carries
            // `kind = RESPONSE` (10 01) right after it, the rest unchanged.
            assert!(buf[at] == 1 && body.starts_with(&[0x08, 0x01]) && body.get(2) != Some(&0x10));
            out.push(1);
            out.extend_from_slice(&(len as u32 + 2).to_le_bytes());
            out.extend_from_slice(&[0x08, 0x01, 0x10, 0x01]);
            out.extend_from_slice(&body[2..]);
            at += 5 + len;
        }
        if !out.is_empty() && stream.write_all(&out).is_err() {
            return;
        }
        buf.copy_within(at..have, 0);
        have -= at;
    }
}

/// Nearest-rank percentile in microseconds of sorted nanosecond samples (as bench.h).
fn pct_us(sorted: &[u64], p: f64) -> f64 {
    let rank = ((p / 100.0 * sorted.len() as f64) + 0.999999) as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

/// Connects to the peer's socket, retrying while the peer has not bound it yet.
fn connect_with_retry<T>(path: &Path, mut connect: impl FnMut() -> Option<T>) -> T {
    for _ in 0..500 {
        if let Some(c) = connect() {
            return c;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the peer did not listen on {} within 5 s", path.display());
}

/// Checks that `response` answers the request numbered `id` with the 64-byte payload.
fn check(response: &Frame, id: u64) {
    assert!(
        response.request_id == id
            && response.kind == FrameKind::Response as i32
            && response.payload_protocol == PROTOCOL
            && response.payload.len() == MSG,
        "unexpected response {response:?} to request {id}"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "--peer" {
        return peer(&args[2]);
    }
    let mode = args.get(1).map(String::as_str).unwrap_or("");
    let name = match mode {
        "frameclient" => "reference_frameclient",
        "bufio" => "reference_bufio",
        _ => {
            eprintln!("usage: reference_rtt frameclient|bufio");
            std::process::exit(2);
        }
    };
    let n = match env_count("RP_BENCH_ITERATIONS", 20000) {
        0 => 20000,
        n => n,
    };
    let warmup = env_count("RP_BENCH_WARMUP", WARMUP);

    let dir = std::env::temp_dir().join(format!("rp-bench-ref-{}", std::process::id()));
    std::fs::DirBuilder::new().mode(0o700).create(&dir).expect("private temp dir");
    let path = dir.join("ref.sock");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--peer", path.to_str().unwrap()])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn peer");

    let payload = vec![b'x'; MSG];
    let mut samples = Vec::with_capacity(n);
    if mode == "frameclient" {
        let endpoint = Endpoint::unix_socket("bench", path.to_str().unwrap()).unwrap();
        let mut client = connect_with_retry(&path, || FrameClient::connect(&endpoint).ok());
        for i in 0..warmup + n {
            let t0 = Instant::now();
            let id = client.next_request_id();
            let response = client.request(PROTOCOL, payload.clone()).expect("request");
            if i >= warmup {
                samples.push(t0.elapsed().as_nanos() as u64);
            }
            check(&response, id);
        }
    } else {
        let stream = connect_with_retry(&path, || UnixStream::connect(&path).ok());
        let mut writer = BufWriter::new(stream.try_clone().unwrap());
        let mut reader = BufReader::new(stream);
        let mut body = Vec::with_capacity(128);
        for i in 0..warmup + n {
            let t0 = Instant::now();
            let id = i as u64 + 1;
            let frame = Frame::request(PROTOCOL, payload.clone()).with_request_id(id);
            body.clear();
            frame.encode(&mut body).unwrap();
            write_frame(&mut writer, &body).expect("write_frame");
            let response = Frame::decode(read_frame(&mut reader).expect("read_frame").as_slice())
                .expect("decode");
            if i >= warmup {
                samples.push(t0.elapsed().as_nanos() as u64);
            }
            check(&response, id);
        }
        drop(writer);
        drop(reader);
    }
    // The client's socket is closed by now (FrameClient drops at the end of its block): the
    // peer's read returns 0 and it exits.
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    samples.sort_unstable();
    println!(
        "RESULT name={name} p50_us={:.2} p99_us={:.2} n={n}",
        pct_us(&samples, 50.0),
        pct_us(&samples, 99.0)
    );
}
