//! Push client and server over real Unix sockets (named pipes on Windows).

use std::collections::HashSet;
#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rp::push::proto::Registration;
use rp::push::{
    Worker, PushResult, PushServer, PushSpec, RegistrationDecision, ServerEvent, ServerOptions, Target,
    WorkerOptions,
};
use rp::transport::Endpoint;
use rp::wire::proto::ErrorCode;
use rp::ErrorKind;

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rp-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
    #[cfg(unix)]
    fn endpoint(&self) -> Endpoint {
        Endpoint::Path(self.0.join("push.sock"))
    }
    /// On Windows a pipe named after the directory (which is never created).
    #[cfg(windows)]
    fn endpoint(&self) -> Endpoint {
        Endpoint::Pipe(self.0.file_name().unwrap().to_string_lossy().into_owned())
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn registration(queue: &str) -> Registration {
    Registration {
        identity: format!("test-worker-{queue}"),
        task_queue: queue.into(),
        namespaces: vec!["default".into()],
        activity_types: vec!["echo".into()],
        payload_protocols: vec![0x7001],
        ..Registration::default()
    }
}

fn server(dir: &TempDir) -> PushServer {
    PushServer::bind(ServerOptions::new(dir.endpoint())).expect("bind")
}

fn worker(endpoint: &Endpoint, queue: &str) -> Worker {
    Worker::connect(WorkerOptions::new(endpoint.clone(), registration(queue))).expect("connect")
}

fn spec(payload: &[u8]) -> PushSpec {
    PushSpec { payload_protocol: 0x7001, payload: payload.to_vec(), ..PushSpec::default() }
}

/// Answers pushes with "echo:" + payload until the connection ends.
fn echo_worker(client: Arc<Worker>) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        let mut n = 0;
        while let Ok(job) = client.recv(None) {
            let mut reply = b"echo:".to_vec();
            reply.extend_from_slice(&job.payload);
            if client.reply(job.correlation_id, &reply).is_err() {
                break;
            }
            n += 1;
        }
        n
    })
}

#[test]
fn socket_is_owner_only_and_round_trip_works() {
    let dir = TempDir::new("roundtrip");
    let server = server(&dir);
    let sock = dir.0.join("push.sock");
    #[cfg(unix)]
    assert_eq!(std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777, 0o600);
    #[cfg(unix)]
    assert_eq!(std::fs::metadata(&dir.0).unwrap().permissions().mode() & 0o777, 0o700);

    let client = Arc::new(worker(server.endpoint(), "q"));
    assert_eq!(client.negotiated().negotiated_protocol, 1);
    assert_eq!(client.negotiated().keepalive_interval_secs, 1800);
    let workers = server.workers();
    assert_eq!(workers.len(), 1);
    assert_eq!(workers[0].id, client.worker_id());
    assert_eq!(workers[0].registration, registration("q"));
    assert_eq!(workers[0].peer.unwrap().pid, std::process::id());

    let answering = echo_worker(Arc::clone(&client));
    let traced = PushSpec {
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        ..spec(b"hi")
    };
    let out = server.push_wait(Target::TaskQueue("q".into()), traced, Duration::from_secs(5)).unwrap();
    assert_eq!(out, PushResult::Reply(b"echo:hi".to_vec()));
    let out = server.push_wait(Target::Protocol(0x7001), spec(b"p"), Duration::from_secs(5)).unwrap();
    assert_eq!(out, PushResult::Reply(b"echo:p".to_vec()));
    let out = server.push_wait(Target::Worker(client.worker_id()), spec(b"w"), Duration::from_secs(5)).unwrap();
    assert_eq!(out, PushResult::Reply(b"echo:w".to_vec()));
    let missing = server.push_wait(Target::TaskQueue("nobody".into()), spec(b"x"), Duration::from_secs(1));
    assert_eq!(missing.unwrap_err().kind(), ErrorKind::NotFound);

    client.close();
    assert_eq!(answering.join().unwrap(), 3);
    drop(server);
    assert!(!sock.exists(), "socket file removed when the server stops");
}

#[test]
fn trace_context_and_deadline_reach_the_worker() {
    let dir = TempDir::new("trace");
    let server = server(&dir);
    let client = worker(server.endpoint(), "q");
    let deadline = rp_now_ms() + 60_000;
    let ticket = server
        .push(
            Target::TaskQueue("q".into()),
            PushSpec {
                deadline_unix_ms: deadline,
                traceparent: "00-aa-bb-01".into(),
                tracestate: "k=v".into(),
                ..spec(b"job")
            },
        )
        .unwrap();
    let job = client.recv(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(job.correlation_id, ticket.correlation_id());
    assert_eq!(job.payload_protocol, 0x7001);
    assert_eq!(job.payload, b"job");
    assert_eq!(job.deadline_unix_ms, deadline);
    assert_eq!((job.traceparent.as_str(), job.tracestate.as_str()), ("00-aa-bb-01", "k=v"));
    client.reply_error(job.correlation_id, 1001, "could not do it").unwrap();
    assert_eq!(
        ticket.wait(Some(Duration::from_secs(5))).unwrap(),
        PushResult::WorkerFailure { code: 1001, message: "could not do it".into() }
    );
    // A second answer to the same push is refused locally.
    assert_eq!(client.reply(job.correlation_id, b"again").unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn refusals_carry_code_and_reason() {
    let dir = TempDir::new("refuse");
    let server = server(&dir);
    let mut opts = WorkerOptions::new(server.endpoint().clone(), registration("q"));
    opts.service_name = "something-else".into();
    let err = Worker::connect(opts).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused);
    let refusal = err.refusal().unwrap();
    assert_eq!(refusal.code, ErrorCode::ServiceUnknown as i32);
    assert_eq!(refusal.reason, "service is not registered");
}

#[test]
fn registration_decided_by_the_application() {
    let dir = TempDir::new("decide");
    let mut opts = ServerOptions::new(dir.endpoint());
    opts.decide_registrations = true;
    let server = Arc::new(PushServer::bind(opts).unwrap());
    let deciding = {
        let server = Arc::clone(&server);
        thread::spawn(move || {
            let mut connected = Vec::new();
            for _ in 0..3 {
                match server.next_event(Some(Duration::from_secs(5))).unwrap() {
                    ServerEvent::RegistrationRequest { worker_id, registration, peer, .. } => {
                        assert_eq!(peer.unwrap().pid, std::process::id());
                        let d = if registration.task_queue == "banned" {
                            RegistrationDecision::Reject("queue banned is closed".into())
                        } else {
                            RegistrationDecision::Accept
                        };
                        server.decide(worker_id, d).unwrap();
                    }
                    ServerEvent::WorkerConnected(info) => connected.push(info.registration.task_queue),
                    other => panic!("unexpected {other:?}"),
                }
            }
            connected
        })
    };
    let err = Worker::connect(WorkerOptions::new(server.endpoint().clone(), registration("banned"))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert!(err.to_string().contains("queue banned is closed"), "{err}");
    let ok = worker(server.endpoint(), "good");
    let good_id = ok.worker_id();
    assert_eq!(deciding.join().unwrap(), vec!["good".to_string()]);
    drop(ok);
    // The departure names the worker as it registered, with the peer the kernel reported.
    match server.next_event(Some(Duration::from_secs(5))).unwrap() {
        ServerEvent::WorkerDisconnected { worker, reason } => {
            assert_eq!(worker.id, good_id);
            assert_eq!(worker.registration, registration("good"));
            assert_eq!(worker.peer.unwrap().pid, std::process::id());
            assert_eq!(worker.in_flight, 0);
            assert!(!reason.is_empty());
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn ten_thousand_pushes_across_ten_workers_each_answered_once() {
    let dir = TempDir::new("load");
    let server = server(&dir);
    let clients: Vec<Arc<Worker>> = (0..10).map(|_| Arc::new(worker(server.endpoint(), "load"))).collect();
    let answering: Vec<_> = clients.iter().map(|c| echo_worker(Arc::clone(c))).collect();
    let mut tickets = Vec::new();
    for i in 0..10_000u32 {
        tickets.push((i, server.push(Target::TaskQueue("load".into()), spec(&i.to_le_bytes())).unwrap()));
    }
    let mut seen = HashSet::new();
    for (i, t) in &tickets {
        let out = t.wait(Some(Duration::from_secs(30))).unwrap();
        let mut want = b"echo:".to_vec();
        want.extend_from_slice(&i.to_le_bytes());
        assert_eq!(out, PushResult::Reply(want));
        assert!(seen.insert(t.correlation_id()), "correlation ids are unique");
    }
    for c in &clients {
        c.close();
    }
    let per_worker: Vec<usize> = answering.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(per_worker.iter().sum::<usize>(), 10_000);
    assert!(per_worker.iter().filter(|&&n| n > 0).count() >= 5, "load spread: {per_worker:?}");
}

#[test]
fn a_push_past_its_deadline_times_out_and_is_withdrawn() {
    let dir = TempDir::new("deadline");
    let server = server(&dir);
    let client = worker(server.endpoint(), "slow");
    let started = Instant::now();
    let result = server.push_wait(Target::TaskQueue("slow".into()), spec(b"late"), Duration::from_millis(200));
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(2));
    // The worker never took it; the server's CANCEL withdrew it from the inbox.
    thread::sleep(Duration::from_millis(100));
    assert_eq!(client.recv(Some(Duration::ZERO)).unwrap_err().kind(), ErrorKind::Timeout);
}

#[test]
fn losing_a_worker_fails_only_its_pushes() {
    let dir = TempDir::new("lost");
    let server = server(&dir);
    let doomed = worker(server.endpoint(), "doomed");
    let healthy = Arc::new(worker(server.endpoint(), "healthy"));
    let answering = echo_worker(Arc::clone(&healthy));
    let doomed_tickets: Vec<_> =
        (0..5).map(|_| server.push(Target::TaskQueue("doomed".into()), spec(b"x")).unwrap()).collect();
    let _taken = doomed.recv(Some(Duration::from_secs(5))).unwrap();
    // All five are on their way to the doomed worker before it dies (a push dispatched after
    // its worker left would rightly fail with NotFound instead).
    let doomed_id = doomed.worker_id();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.workers().iter().find(|w| w.id == doomed_id).map(|w| w.in_flight) != Some(5) {
        assert!(Instant::now() < deadline, "pushes never reached the doomed worker");
        thread::sleep(Duration::from_millis(5));
    }
    drop(doomed); // dies mid-push
    for t in &doomed_tickets {
        assert_eq!(t.wait(Some(Duration::from_secs(5))).unwrap_err().kind(), ErrorKind::Closed);
    }
    for _ in 0..20 {
        let out = server.push_wait(Target::TaskQueue("healthy".into()), spec(b"ok"), Duration::from_secs(5));
        assert_eq!(out.unwrap(), PushResult::Reply(b"echo:ok".to_vec()));
    }
    assert_eq!(server.workers().len(), 1);
    healthy.close();
    answering.join().unwrap();
}

#[test]
fn server_shutdown_wakes_a_waiting_worker() {
    let dir = TempDir::new("shutdown");
    let server = server(&dir);
    let client = Arc::new(worker(server.endpoint(), "q"));
    let waiting = {
        let c = Arc::clone(&client);
        thread::spawn(move || {
            let t = Instant::now();
            (c.recv(None).unwrap_err().kind(), t.elapsed())
        })
    };
    thread::sleep(Duration::from_millis(100));
    server.shutdown();
    let (kind, waited) = waiting.join().unwrap();
    assert_eq!(kind, ErrorKind::Closed);
    assert!(waited < Duration::from_secs(2), "{waited:?}");
}

#[test]
fn close_from_another_thread_wakes_recv() {
    let dir = TempDir::new("close");
    let server = server(&dir);
    let client = Arc::new(worker(server.endpoint(), "q"));
    let waiting = {
        let c = Arc::clone(&client);
        thread::spawn(move || c.recv(Some(Duration::from_secs(30))).unwrap_err())
    };
    thread::sleep(Duration::from_millis(50));
    client.close();
    let err = waiting.join().unwrap();
    assert_eq!(err.kind(), ErrorKind::Closed);
    assert!(err.to_string().contains("closed locally"));
    drop(server);
}

#[test]
fn pollable_fd_is_readable_exactly_while_a_push_waits() {
    let dir = TempDir::new("pollfd");
    let server = server(&dir);
    let client = worker(server.endpoint(), "q");
    #[cfg(unix)]
    let readable = |ms: i32| {
        let mut pfd = libc::pollfd { fd: client.pollable_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        #[allow(unsafe_code)]
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        n == 1
    };
    // On Windows the descriptor is an event: set while a push waits.
    #[cfg(windows)]
    let readable = |ms: i32| {
        rp::transport::wait_readable(client.pollable_fd(), Some(Duration::from_millis(ms as u64))).unwrap()
    };
    assert!(!readable(0));
    let t = server.push(Target::TaskQueue("q".into()), spec(b"1")).unwrap();
    assert!(readable(5000));
    let job = client.recv(Some(Duration::ZERO)).unwrap();
    assert!(!readable(0), "drained after the only push was taken");
    client.reply(job.correlation_id, b"r").unwrap();
    assert_eq!(t.wait(Some(Duration::from_secs(5))).unwrap(), PushResult::Reply(b"r".to_vec()));
    server.shutdown();
    assert!(readable(5000), "readable once the connection ended");
}

#[test]
fn malformed_frame_from_a_worker_ends_only_that_connection() {
    use std::io::{Read, Write};
    let dir = TempDir::new("malformed");
    let server = server(&dir);
    let good = Arc::new(worker(server.endpoint(), "q"));
    let answering = echo_worker(Arc::clone(&good));
    // A raw peer that speaks garbage after connecting.
    let mut raw = rp::transport::connect(server.endpoint(), Duration::from_secs(5)).unwrap();
    raw.write_all(&[1, 3, 0, 0, 0, 0xff, 0xff, 0xff]).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(raw.read(&mut buf).unwrap_or(0), 0, "server closed the malformed connection");
    // A foreign first byte gets a Refused VERSION_UNSUPPORTED, then the close.
    let mut http = rp::transport::connect(server.endpoint(), Duration::from_secs(5)).unwrap();
    http.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    http.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reply = Vec::new();
    http.read_to_end(&mut reply).unwrap();
    let expected = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/hello_reply_refused_bad_framing.hex"
    ))
    .unwrap();
    let hex: String = reply.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, expected.trim(), "byte-identical to the reference broker's answer");
    // The good worker carries on.
    let out = server.push_wait(Target::TaskQueue("q".into()), spec(b"still"), Duration::from_secs(5)).unwrap();
    assert_eq!(out, PushResult::Reply(b"echo:still".to_vec()));
    good.close();
    answering.join().unwrap();
}

#[test]
fn a_worker_that_does_not_keep_up_gets_backpressure_not_unbounded_memory() {
    let dir = TempDir::new("backpressure");
    let mut opts = ServerOptions::new(dir.endpoint());
    opts.max_send_buffer = 256 * 1024;
    let server = PushServer::bind(opts).unwrap();
    let client = Worker::connect(WorkerOptions::new(server.endpoint().clone(), registration("q"))).unwrap();
    let payload = vec![7u8; 64 * 1024];
    let mut again = 0;
    let mut tickets = Vec::new();
    for _ in 0..200 {
        let t = server.push(Target::TaskQueue("q".into()), spec(&payload)).unwrap();
        tickets.push(t);
    }
    for t in &tickets {
        if let Err(e) = t.wait(Some(Duration::from_millis(200))) {
            if e.kind() == ErrorKind::Again {
                again += 1;
            }
        }
    }
    assert!(again > 0, "pushes beyond the worker's buffers fail with Again");
    assert!(client.queued() <= 4, "the worker's inbox stays within its limit");
}

fn rp_now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

#[test]
fn workers_connecting_at_the_same_moment_all_register() {
    let dir = TempDir::new("concurrent");
    let server = server(&dir);
    for round in 0..20 {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let ep = server.endpoint().clone();
                thread::spawn(move || {
                    Worker::connect(WorkerOptions::new(ep, registration(&format!("q{i}"))))
                        .map(|c| c.worker_id())
                })
            })
            .collect();
        let ids: Vec<u64> = handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap_or_else(|e| panic!("round {round}: {e}")))
            .collect();
        let unique: HashSet<u64> = ids.iter().copied().collect();
        assert_eq!(unique.len(), 8, "round {round}: ids {ids:?}");
        assert!(!ids.contains(&0));
    }
}

/// The worker list counts each worker's pushes in flight: up while a push waits for its reply,
/// down once it is answered or has timed out, and a synchronous push leaves nothing behind.
#[test]
fn the_worker_list_counts_pushes_in_flight() {
    let dir = TempDir::new("in-flight");
    let server = server(&dir);
    let client = worker(server.endpoint(), "q");
    let wait_for = |n: usize| {
        let until = Instant::now() + Duration::from_secs(5);
        while server.workers().first().map(|w| w.in_flight) != Some(n) {
            assert!(Instant::now() < until, "in flight: {:?}, wanted {n}", server.workers().first().map(|w| w.in_flight));
            thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for(0);
    let first = server.push(Target::TaskQueue("q".into()), spec(b"1")).expect("push");
    let second = server.push(Target::TaskQueue("q".into()), spec(b"2")).expect("push");
    wait_for(2);
    let job = client.recv(Some(Duration::from_secs(5))).expect("recv");
    client.reply(job.correlation_id, b"one").expect("reply");
    assert_eq!(first.wait(Some(Duration::from_secs(5))).expect("reply"), PushResult::Reply(b"one".to_vec()));
    wait_for(1);
    let job = client.recv(Some(Duration::from_secs(5))).expect("recv");
    client.reply(job.correlation_id, b"two").expect("reply");
    assert_eq!(second.wait(Some(Duration::from_secs(5))).expect("reply"), PushResult::Reply(b"two".to_vec()));
    wait_for(0);
    // A push nobody answers counts until its deadline passes.
    let late = PushSpec { deadline_unix_ms: rp_now_ms() + 200, ..spec(b"3") };
    let silent = server.push(Target::TaskQueue("q".into()), late).expect("push");
    wait_for(1);
    assert_eq!(silent.wait(Some(Duration::from_secs(5))).unwrap_err().kind(), ErrorKind::Timeout);
    wait_for(0);
    // Synchronous pushes, answered by a thread, reuse their tickets and leave none behind.
    let echo = echo_worker(Arc::new(client));
    for i in 0..100u32 {
        let reply = server.push_wait(Target::TaskQueue("q".into()), spec(&i.to_le_bytes()), Duration::from_secs(5));
        let mut want = b"echo:".to_vec();
        want.extend_from_slice(&i.to_le_bytes());
        assert_eq!(reply.expect("push_wait"), PushResult::Reply(want));
    }
    wait_for(0);
    assert_eq!(server.stats().pushes_in_flight, 0);
    drop(server);
    assert!(echo.join().unwrap() >= 100);
}

/// `push_wait` keeps its worker's socket out of the event loop's epoll set between calls: the
/// event loop must still read the replies to async pushes at once (alone and interleaved with
/// `push_wait`s), and notice the worker leaving after the last `push_wait` without another push.
#[test]
fn a_worker_served_by_push_wait_is_still_watched_by_the_event_loop() {
    let dir = TempDir::new("parked");
    let server = PushServer::bind(ServerOptions { events: true, ..ServerOptions::new(dir.endpoint()) }).expect("bind");
    let client = Arc::new(worker(server.endpoint(), "q"));
    let answering = echo_worker(Arc::clone(&client));
    let wait = Duration::from_secs(5);
    assert!(matches!(server.next_event(Some(wait)), Ok(ServerEvent::WorkerConnected(_))));
    let target = || Target::TaskQueue("q".into());
    for i in 0..2000 {
        let payload = format!("p{i}");
        let expected = PushResult::Reply(format!("echo:{payload}").into_bytes());
        if i % 3 == 2 {
            let ticket = server.push(target(), spec(payload.as_bytes())).unwrap();
            assert_eq!(ticket.wait(Some(wait)).unwrap(), expected, "async push {i}");
        } else {
            assert_eq!(server.push_wait(target(), spec(payload.as_bytes()), wait).unwrap(), expected, "push_wait {i}");
        }
    }
    // Several async pushes in flight while a push_wait reads the same worker.
    let tickets: Vec<_> = (0..10).map(|_| server.push(target(), spec(b"a")).unwrap()).collect();
    assert_eq!(server.push_wait(target(), spec(b"w"), wait).unwrap(), PushResult::Reply(b"echo:w".to_vec()));
    for t in &tickets {
        assert_eq!(t.wait(Some(wait)).unwrap(), PushResult::Reply(b"echo:a".to_vec()));
    }
    assert_eq!(server.push_wait(target(), spec(b"last"), wait).unwrap(), PushResult::Reply(b"echo:last".to_vec()));
    let id = client.worker_id();
    client.close();
    answering.join().unwrap();
    let started = Instant::now();
    loop {
        match server.next_event(Some(wait)) {
            Ok(ServerEvent::WorkerDisconnected { worker, .. }) if worker.id == id => break,
            Ok(_) => {}
            Err(e) => panic!("the worker's departure went unnoticed: {e}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(1), "noticed after {:?}", started.elapsed());
    assert!(server.workers().is_empty());
}

/// A `push_wait` whose worker took the push and never answers ends with `Timeout` at its
/// deadline (not before, not long after), and the worker is told to drop it.
#[test]
fn push_wait_on_a_silent_worker_times_out_at_its_deadline() {
    let dir = TempDir::new("silent");
    let server = Arc::new(server(&dir));
    let client = worker(server.endpoint(), "q");
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let waiting = {
        let s = Arc::clone(&server);
        thread::spawn(move || s.push_wait(Target::TaskQueue("q".into()), spec(b"held"), timeout))
    };
    let job = client.recv(Some(Duration::from_secs(5))).unwrap();
    let result = waiting.join().unwrap();
    let elapsed = started.elapsed();
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Timeout);
    assert!(elapsed >= timeout && elapsed < Duration::from_secs(1), "returned after {elapsed:?}");
    // The cancel that withdrew it arrives: the push is no longer outstanding.
    let deadline = Instant::now() + Duration::from_secs(5);
    while client.is_outstanding(job.correlation_id) {
        assert!(Instant::now() < deadline, "no cancel reached the worker");
        let _ = client.recv(Some(Duration::from_millis(10)));
    }
}

/// A push larger than the socket buffers, sent by `push_wait`, is written out while the caller
/// waits for its reply (the caller's link is out of the event loop's set while it reads). The
/// deadline is generous: under ThreadSanitizer's debug build on a loaded 2-core machine an
/// 8 MiB round trip takes about 9 s; the bug this guards against stalls until the deadline.
#[test]
fn push_wait_delivers_a_push_larger_than_the_socket_buffers() {
    let dir = TempDir::new("bigpushwait");
    let server = server(&dir);
    let client = Arc::new(worker(server.endpoint(), "big"));
    let answering = echo_worker(Arc::clone(&client));
    for len in [8 << 20, 64, 12 << 20] {
        let payload = vec![5u8; len];
        let out = server.push_wait(Target::TaskQueue("big".into()), spec(&payload), Duration::from_secs(120)).unwrap();
        let PushResult::Reply(reply) = out else { panic!("{out:?}") };
        assert_eq!(reply.len(), len + 5);
    }
    client.close();
    answering.join().unwrap();
}
