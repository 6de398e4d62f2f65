//! A peer can never kill the process by sending more than fits in memory. Each test starts a
//! child process (this test binary, running `child_under_a_memory_limit`) that plays one role
//! — a worker, a push server, a session, a broker server — under a real `RLIMIT_AS`: first with
//! room to spare, where a frame up to the 16 MiB cap is received fine, then with 4 MiB left,
//! where the same frame cannot be allocated. The child must survive, report `NoMemory`, and
//! print nothing on stderr (Rust's allocation-failure handler prints there, then aborts).
//!
//! The child runs with glibc's malloc held to one arena and a fixed mmap threshold, so that
//! every large allocation asks the kernel for address space (a thread arena's reserved heap
//! would otherwise hand out memory the limit no longer allows to map).
// Unix only: the memory limit is RLIMIT_AS, with glibc's malloc held to one arena; Windows has
// neither (a port would limit a job object's committed memory instead).
#![cfg(unix)]

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use rp::push::{PushResult, PushSpec, Target, Worker, WorkerOptions};
use rp::session::{CallOptions, Session, SessionListener, Side};
use rp::transport::Endpoint;
use rp::wire::MAX_BODY;
use rp::ErrorKind;

const ROLE_ENV: &str = "RP_NO_MEMORY_ROLE";
const DIR_ENV: &str = "RP_NO_MEMORY_DIR";
/// A payload whose frame is as large as the cap allows.
const LARGEST: usize = MAX_BODY as usize - 64;
const WAIT: Duration = Duration::from_secs(20);

fn vm_size_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// Sets RLIMIT_AS to the address space in use now plus `headroom` bytes.
fn limit_address_space(headroom: u64) {
    let lim = libc::rlimit { rlim_cur: vm_size_bytes() + headroom, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: setrlimit with a valid rlimit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
}

/// Room to receive a maximal frame (its buffer and its payload's copy) and more.
const ROOM: u64 = 96 << 20;
/// Too little room for a maximal frame.
const TIGHT: u64 = 4 << 20;

/// Runs `role` in a child process under a memory limit; returns its stdout once it has
/// exited, after checking that it succeeded and wrote nothing on stderr.
fn run_child(role: &str, dir: &TempDir, parent: impl FnOnce()) -> String {
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["child_under_a_memory_limit", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role)
        .env(DIR_ENV, &dir.0)
        .env("GLIBC_TUNABLES", "glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=131072")
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let watchdog = thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(90) {
            thread::sleep(Duration::from_millis(100));
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
        }
        // SAFETY: kill on the pid of our own child, which has not been reaped yet.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    });
    parent();
    let out = child.wait_with_output().unwrap();
    watchdog.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the {role} child failed: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    assert!(stderr.is_empty(), "the {role} child wrote on stderr:\n{stderr}");
    let result = stdout.split("RESULT ").nth(1).and_then(|r| r.lines().next());
    let result = result.unwrap_or_else(|| panic!("no result from the {role} child:\n{stdout}")).to_owned();
    println!("{role}: {result}");
    result
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < WAIT, "waited too long for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

fn spec(payload: &[u8]) -> PushSpec {
    PushSpec { payload_protocol: 0x7001, payload: payload.to_vec(), ..PushSpec::default() }
}

/// The child: plays the role the parent named, and prints one `RESULT` line.
#[test]
#[ignore = "run by the tests of this file, in a child process"]
fn child_under_a_memory_limit() {
    let Ok(role) = std::env::var(ROLE_ENV) else { return };
    let dir = TempDir(std::env::var(DIR_ENV).unwrap().into());
    let result = match role.as_str() {
        "worker" => {
            let client = Worker::connect(WorkerOptions::new(dir.endpoint(), registration("big"))).unwrap();
            // A second connection, whose read buffer has never grown.
            let fresh = Worker::connect(WorkerOptions::new(dir.endpoint(), registration("fresh"))).unwrap();
            limit_address_space(ROOM);
            let job = client.recv(Some(WAIT)).unwrap();
            let first = job.payload.len();
            client.reply(job.correlation_id, b"ok").unwrap();
            drop(job);
            limit_address_space(TIGHT);
            let second = client.recv(Some(WAIT)).unwrap_err();
            let third = fresh.recv(Some(WAIT)).unwrap_err();
            format!("first={first} second={:?} third={:?} ({second}; {third})", second.kind(), third.kind())
        }
        "push-server" => {
            let server = server_with(&dir, |_| {});
            std::fs::write(dir.0.join("ready"), b"").unwrap();
            wait_for("two workers", || server.workers().len() == 2);
            limit_address_space(ROOM);
            let first = match server.push_wait(Target::TaskQueue("a".into()), spec(b"job"), WAIT).unwrap() {
                PushResult::Reply(r) => r.len(),
                other => panic!("{other:?}"),
            };
            limit_address_space(TIGHT);
            let waited = server.push_wait(Target::TaskQueue("a".into()), spec(b"job"), WAIT).unwrap_err();
            let ticket = server.push(Target::TaskQueue("b".into()), spec(b"job")).unwrap();
            let looped = ticket.wait(Some(WAIT)).unwrap_err();
            format!("first={first} second={:?} third={:?} ({waited}; {looped})", waited.kind(), looped.kind())
        }
        "session" => {
            let conn = rp::session::connect(&Endpoint::Path(dir.0.join("session.sock")), WAIT).unwrap();
            let session = Session::new(conn, Side::Connecting, false).unwrap();
            limit_address_space(ROOM);
            let first = session.call(0x7001, b"ask", &CallOptions::default(), Some(WAIT)).unwrap().len();
            limit_address_space(TIGHT);
            let err = session.call(0x7001, b"ask", &CallOptions::default(), Some(WAIT)).unwrap_err();
            format!("first={first} second={:?} ({err})", err.kind())
        }
        "broker-server" => {
            let opts = rp::broker::BrokerServerOptions::new(dir.endpoint(), Vec::new());
            let _server = rp::broker::BrokerServer::bind(opts).unwrap();
            limit_address_space(TIGHT);
            std::fs::write(dir.0.join("ready"), b"").unwrap();
            wait_for("the parent", || dir.0.join("done").exists());
            "served".to_owned()
        }
        other => panic!("unknown role {other}"),
    };
    println!("RESULT {result}");
}

fn big_reply_worker(endpoint: &Endpoint, queue: &str) -> thread::JoinHandle<()> {
    let client = Worker::connect(WorkerOptions::new(endpoint.clone(), registration(queue))).unwrap();
    thread::spawn(move || {
        let big = vec![7u8; LARGEST];
        while let Ok(job) = client.recv(Some(WAIT)) {
            if client.reply(job.correlation_id, &big).is_err() {
                return;
            }
        }
    })
}

#[test]
fn a_worker_out_of_memory_for_a_push_survives_and_reports_no_memory() {
    let dir = TempDir::new("nomem-worker");
    let server = server_with(&dir, |_| {});
    let mut outcomes = Vec::new();
    let result = run_child("worker", &dir, || {
        wait_for("the workers", || server.workers().len() == 2);
        let big = vec![7u8; LARGEST];
        for queue in ["big", "big", "fresh"] {
            outcomes.push(server.push_wait(Target::TaskQueue(queue.into()), spec(&big), WAIT));
        }
    });
    assert!(result.contains(&format!("first={LARGEST} second=NoMemory third=NoMemory")), "{result}");
    assert_eq!(outcomes[0].as_ref().unwrap(), &PushResult::Reply(b"ok".to_vec()));
    for failed in &outcomes[1..] {
        let e = failed.as_ref().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Closed, "{e}");
    }
}

#[test]
fn a_push_server_out_of_memory_for_a_reply_survives_and_reports_no_memory() {
    let dir = TempDir::new("nomem-server");
    std::fs::create_dir_all(&dir.0).unwrap();
    let result = run_child("push-server", &dir, || {
        wait_for("the server", || dir.0.join("ready").exists());
        let workers = [big_reply_worker(&dir.endpoint(), "a"), big_reply_worker(&dir.endpoint(), "b")];
        for w in workers {
            w.join().unwrap();
        }
    });
    assert!(result.contains(&format!("first={LARGEST} second=NoMemory third=NoMemory")), "{result}");
}

#[test]
fn a_session_out_of_memory_for_an_answer_survives_and_reports_no_memory() {
    let dir = TempDir::new("nomem-session");
    std::fs::create_dir_all(&dir.0).unwrap();
    let listener = SessionListener::bind(&Endpoint::Path(dir.0.join("session.sock"))).unwrap();
    let result = run_child("session", &dir, || {
        let conn = listener.accept(Some(WAIT)).unwrap();
        let session = Arc::new(Session::new(conn, Side::Accepting, true).unwrap());
        let big = vec![7u8; LARGEST];
        while let Ok(req) = session.next_request(Some(WAIT)) {
            if req.respond(&big).is_err() {
                break;
            }
        }
    });
    assert!(result.contains(&format!("first={LARGEST} second=NoMemory")), "{result}");
}

/// The broker server never buffers more than a Hello (64 KiB): under a tight limit, peers
/// announcing 16 MiB frames and peers sending maximal Hellos of garbage end only their own
/// connections, and a real client is still answered.
#[test]
fn a_broker_server_under_a_tight_memory_limit_survives_large_and_hostile_frames() {
    let dir = TempDir::new("nomem-broker");
    std::fs::create_dir_all(&dir.0).unwrap();
    let result = run_child("broker-server", &dir, || {
        wait_for("the broker", || dir.0.join("ready").exists());
        let mut held = Vec::new();
        for i in 0..64 {
            let mut s = UnixStream::connect(dir.sock()).unwrap();
            let mut bytes = vec![1u8];
            if i % 2 == 0 {
                bytes.extend_from_slice(&MAX_BODY.to_le_bytes());
            } else {
                bytes.extend_from_slice(&rp::wire::HELLO_MAX_BODY.to_le_bytes());
                bytes.extend(std::iter::repeat_n(0xffu8, rp::wire::HELLO_MAX_BODY as usize));
            }
            let _ = s.write_all(&bytes);
            held.push(s);
        }
        let mut client = UnixStream::connect(dir.sock()).unwrap();
        client.write_all(&hello_bytes()).unwrap();
        let reply = read_hello_reply(&client).expect("the broker answers a Hello");
        assert!(matches!(reply, rp::wire::proto::hello_reply::Result::Refused(_)), "{reply:?}");
        let _ = wait_closed(&mut client, Duration::from_secs(5));
        std::fs::write(dir.0.join("done"), b"").unwrap();
    });
    assert!(result.contains("served"), "{result}");
}
