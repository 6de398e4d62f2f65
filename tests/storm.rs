//! A push storm while worker processes are killed at random (SIGKILL; TerminateProcess on
//! Windows): nothing hangs, every push ends exactly once with its own reply or with CLOSED /
//! TIMEOUT (or NOT_FOUND / AGAIN while no worker is registered), and no reply is delivered for
//! the wrong push. Over a Unix socket; on Windows over a named pipe.
//!
//! Workers are this test binary re-executed (`storm_worker_child`, ignored unless the endpoint
//! is in the environment), so they are real processes that can be killed.

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use rp::push::{PushResult, PushSpec, Target};
use rp::transport::Endpoint;
use rp::ErrorKind;

const ENV: &str = "RP_STORM_ENDPOINT";

/// The worker process: echoes every push until killed.
#[test]
#[ignore = "run by push_storm_with_workers_killed_at_random as a child process"]
fn storm_worker_child() {
    let Ok(endpoint) = std::env::var(ENV) else { return };
    let client = worker(&Endpoint::parse(&endpoint).unwrap(), "storm");
    while let Ok(job) = client.recv(None) {
        let mut reply = b"echo:".to_vec();
        reply.extend_from_slice(&job.payload);
        if client.reply(job.correlation_id, &reply).is_err() {
            break;
        }
    }
}

fn spawn_worker(endpoint: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "storm_worker_child", "--ignored", "--nocapture", "--test-threads=1"])
        .env(ENV, endpoint)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
#[ignore = "heavy (8 s storm): run by scripts/test.sh in release with --ignored"]
fn push_storm_with_workers_killed_at_random() {
    const WORKERS: usize = 4;
    const PUSHERS: usize = 4;
    const STORM: Duration = Duration::from_secs(8);
    let dir = TempDir::new("storm");
    let server = Arc::new(server_with(&dir, |_| {}));
    let endpoint = dir.endpoint().to_string();
    let children = Arc::new(Mutex::new((0..WORKERS).map(|_| spawn_worker(&endpoint)).collect::<Vec<_>>()));
    let start = Instant::now();
    while server.workers().len() < WORKERS {
        assert!(start.elapsed() < Duration::from_secs(20), "workers did not register");
        thread::sleep(Duration::from_millis(10));
    }
    let done = Arc::new(AtomicBool::new(false));
    let kills = {
        let (children, done, endpoint) = (Arc::clone(&children), Arc::clone(&done), endpoint.clone());
        thread::spawn(move || {
            let mut kills = 0u32;
            let mut seed = 0x9e3779b97f4a7c15u64;
            while !done.load(Ordering::Acquire) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                thread::sleep(Duration::from_millis(20 + seed % 80));
                let mut c = children.lock().unwrap();
                let i = (seed >> 8) as usize % c.len();
                let _ = c[i].kill(); // SIGKILL; TerminateProcess on Windows
                let _ = c[i].wait();
                c[i] = spawn_worker(&endpoint);
                kills += 1;
            }
            kills
        })
    };
    let pushers: Vec<_> = (0..PUSHERS)
        .map(|p| {
            let server = Arc::clone(&server);
            thread::spawn(move || {
                let mut tally: HashMap<&'static str, usize> = HashMap::new();
                let storm_start = Instant::now();
                let mut i = 0u64;
                while storm_start.elapsed() < STORM {
                    i += 1;
                    let payload = format!("{p}-{i}");
                    let spec = PushSpec { payload_protocol: 0x7001, payload: payload.clone().into_bytes(), ..PushSpec::default() };
                    let started = Instant::now();
                    let out = server.push_wait(Target::TaskQueue("storm".into()), spec, Duration::from_secs(2));
                    assert!(started.elapsed() < Duration::from_secs(5), "a push hung for {:?}", started.elapsed());
                    let key = match out {
                        Ok(PushResult::Reply(r)) => {
                            assert_eq!(r, format!("echo:{payload}").into_bytes(), "a reply for another push");
                            "reply"
                        }
                        Ok(other) => panic!("unexpected outcome {other:?}"),
                        Err(e) => match e.kind() {
                            ErrorKind::Closed => "closed",
                            ErrorKind::Timeout => "timeout",
                            ErrorKind::NotFound => "no worker",
                            ErrorKind::Again => "again",
                            k => panic!("unexpected failure {k:?}: {e}"),
                        },
                    };
                    *tally.entry(key).or_default() += 1;
                    if key == "no worker" {
                        thread::sleep(Duration::from_millis(2));
                    }
                }
                tally
            })
        })
        .collect();
    let mut total: HashMap<&'static str, usize> = HashMap::new();
    for p in pushers {
        for (k, v) in p.join().unwrap() {
            *total.entry(k).or_default() += v;
        }
    }
    done.store(true, Ordering::Release);
    let kills = kills.join().unwrap();
    for mut c in children.lock().unwrap().drain(..) {
        let _ = c.kill();
        let _ = c.wait();
    }
    let pushes: usize = total.values().sum();
    assert!(pushes > 1000, "only {pushes} pushes in {STORM:?}");
    assert!(kills > 20, "only {kills} workers killed");
    assert!(total.get("reply").copied().unwrap_or(0) > pushes / 2, "too few replies: {total:?}");
    let mut t: Vec<_> = total.into_iter().collect();
    t.sort();
    println!("push storm: {pushes} pushes, {kills} killed workers in {:?}: {t:?}", start.elapsed());
}
