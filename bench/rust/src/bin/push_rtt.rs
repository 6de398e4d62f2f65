//! librp push round trip through the Rust API, the same shape as `bench/c/push_rtt.c`: the
//! server pushes 64 bytes to a worker in a child process (this program re-run with `--worker`),
//! the worker replies with them, and `PushServer::push_wait_ref` returns the reply. Prints
//! `RESULT name=librp_push_rtt_rust p50_us=... p99_us=... n=...` like bench/c/bench.h.
//!
//! Over a Unix socket, or a named pipe on Windows (where it also builds and runs, under Wine
//! here: `cargo build --release --target x86_64-pc-windows-gnu --bin push_rtt`).
//! `RP_BENCH_WORKER_WAIT_MS` makes the worker wait for each push with that timeout instead of
//! without one (a wait for readability before the read, rather than one blocking read).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rp::push::{
    Worker, PushResult, PushServer, PushSpec, ServerOptions, Target, WorkerOptions,
};
use rp::transport::Endpoint;

const PROTOCOL: u32 = 0x7001;
const WARMUP: usize = 2000;

/// The worker: registers for [`PROTOCOL`] and echoes every push until the server hangs up.
fn worker(endpoint: &str) {
    let registration = rp::push::proto::Registration {
        identity: "bench-worker".into(),
        task_queue: "bench".into(),
        payload_protocols: vec![PROTOCOL],
        ..Default::default()
    };
    let opts = WorkerOptions::new(Endpoint::parse(endpoint).unwrap(), registration);
    let client = Worker::connect(opts).expect("connect");
    let wait = std::env::var("RP_BENCH_WORKER_WAIT_MS").ok().and_then(|s| s.parse().ok()).map(Duration::from_millis);
    while let Ok(job) = client.recv(wait) {
        if client.reply(job.correlation_id, &job.payload).is_err() {
            break;
        }
    }
}

/// Nearest-rank percentile in microseconds of sorted nanosecond samples (as bench.h).
fn pct_us(sorted: &[u64], p: f64) -> f64 {
    let rank = ((p / 100.0 * sorted.len() as f64) + 0.999999) as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "--worker" {
        return worker(&args[2]);
    }
    let n: usize = std::env::var("RP_BENCH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(20000);
    let dir = std::env::temp_dir().join(format!("rp-bench-rust-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    #[cfg(unix)]
    let endpoint = dir.join("push.sock").to_str().unwrap().to_owned();
    #[cfg(windows)]
    let endpoint = format!(r"\\.\pipe\rp-bench-rust-{}", std::process::id());
    let server = PushServer::bind(ServerOptions::new(Endpoint::parse(&endpoint).unwrap())).expect("bind");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--worker", &endpoint])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn worker");
    let mut ready = false;
    for _ in 0..500 {
        if !server.workers().is_empty() {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(ready, "worker did not register");

    // As rp_push_request_new builds it: target by protocol, payload, nothing else.
    let spec = PushSpec {
        payload_protocol: PROTOCOL,
        payload: vec![b'x'; 64],
        ..PushSpec::default()
    };
    let target = Target::Protocol(PROTOCOL);
    let mut samples = Vec::with_capacity(n);
    for i in 0..WARMUP + n {
        let t0 = Instant::now();
        // Borrowed target and job, as rp_push_server_push_wait passes them.
        let outcome = server
            .push_wait_ref(&target, &spec, Duration::from_millis(5000))
            .expect("push");
        let elapsed = t0.elapsed().as_nanos() as u64;
        match outcome {
            PushResult::Reply(p) if p.len() == 64 => {}
            other => panic!("unexpected outcome {other:?}"),
        }
        if i >= WARMUP {
            samples.push(elapsed);
        }
    }
    drop(server); // closes the worker's connection: it exits
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    samples.sort_unstable();
    println!(
        "RESULT name=librp_push_rtt_rust p50_us={:.2} p99_us={:.2} n={}",
        pct_us(&samples, 50.0),
        pct_us(&samples, 99.0),
        samples.len()
    );
}
