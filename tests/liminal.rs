//! The liminal dialect of the push worker against a scripted liminal server on a real TCP
//! socket: every frame the worker sends is checked byte for byte, every frame the server sends
//! is the wire's own bytes (docs/PROTOCOL.md, "The liminal dialect").

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use rp::push::proto::Registration;
use rp::push::{ActivityDescriptor, Dialect, Worker, WorkerOptions};
use rp::ErrorKind;

/// A frame as the wire writes it: type, flags, stream, then the payload with its length.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn bytes_field(b: &[u8]) -> Vec<u8> {
    let mut out = (b.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(b);
    out
}

fn connect_ack(major: u16, minor: u16) -> Vec<u8> {
    let mut p = major.to_be_bytes().to_vec();
    p.extend_from_slice(&minor.to_be_bytes());
    p.extend_from_slice(&0u32.to_be_bytes());
    frame(0x02, 0, 0, &p)
}

fn push(correlation_id: u64, payload: &[u8]) -> Vec<u8> {
    let mut p = correlation_id.to_be_bytes().to_vec();
    p.extend_from_slice(&bytes_field(payload));
    frame(0x15, 0, 1, &p)
}

/// The scripted server's side of one connection.
struct Peer(TcpStream);

impl Peer {
    fn read_frame(&mut self) -> (u8, u8, u32, Vec<u8>) {
        let mut head = [0u8; 10];
        self.0.read_exact(&mut head).expect("frame header from the worker");
        let len = u32::from_be_bytes(head[6..10].try_into().unwrap()) as usize;
        let mut payload = vec![0u8; len];
        self.0.read_exact(&mut payload).expect("frame payload from the worker");
        (head[0], head[1], u32::from_be_bytes(head[2..6].try_into().unwrap()), payload)
    }

    fn read_raw(&mut self) -> Vec<u8> {
        let (kind, flags, stream, payload) = self.read_frame();
        frame(kind, flags, stream, &payload)
    }

    fn send(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).expect("write to the worker");
    }
}

/// Listens on loopback; `script` runs the server's side of the first connection.
fn server(script: impl FnOnce(Peer) + Send + 'static) -> (String, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("liminal+tcp://{}", listener.local_addr().unwrap());
    let handle = thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        script(Peer(sock));
    });
    (endpoint, handle)
}

fn registration() -> Registration {
    Registration {
        identity: "raw-c-like-worker".into(),
        task_queue: "raw.echo".into(),
        namespaces: vec!["raw".into()],
        activity_types: vec!["raw.echo".into()],
        ..Default::default()
    }
}

fn options(endpoint: &str) -> WorkerOptions {
    let mut o = WorkerOptions::for_endpoint(endpoint, registration()).unwrap();
    o.connect_timeout = Duration::from_secs(5);
    o
}

/// Connect offering 1.0-1.3 with `token`.
fn expected_connect(token: &[u8]) -> Vec<u8> {
    let mut p = vec![0, 1, 0, 0, 0, 1, 0, 3];
    p.extend_from_slice(&bytes_field(token));
    frame(0x01, 0, 0, &p)
}

/// The WorkerRegister of [`registration`], as seen live (no node, no descriptors).
fn expected_register() -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&1u32.to_be_bytes());
    p.extend_from_slice(&bytes_field(b"raw"));
    p.extend_from_slice(&bytes_field(b"raw.echo"));
    p.push(0);
    p.extend_from_slice(&1u32.to_be_bytes());
    p.extend_from_slice(&bytes_field(b"raw.echo"));
    p.extend_from_slice(&bytes_field(b"raw-c-like-worker"));
    frame(0x17, 0, 0, &p)
}

/// Admits the worker (selecting 1.2) and accepts its registration.
fn admit(peer: &mut Peer) {
    assert_eq!(peer.read_raw(), expected_connect(b""));
    peer.send(&connect_ack(1, 2));
    assert_eq!(peer.read_raw(), expected_register());
    peer.send(&frame(0x18, 0, 0, &[0]));
}

#[test]
fn the_handshake_pushes_and_replies_are_the_wire_bytes() {
    let (endpoint, srv) = server(|mut peer| {
        admit(&mut peer);
        // A push, an unknown frame type (skipped by its length), a Ping, another push.
        let mut burst = push(2, br#"{"activity":"from-raw"}"#);
        burst.extend_from_slice(&frame(0x7E, 0, 9, b"skip me"));
        burst.extend_from_slice(&frame(0x13, 0, 0, b""));
        burst.extend_from_slice(&push(3, b"second"));
        peer.send(&burst);
        assert_eq!(peer.read_raw(), frame(0x14, 0, 0, b""), "a Ping is answered with a Pong");
        let mut want = 2u64.to_be_bytes().to_vec();
        want.extend_from_slice(&bytes_field(br#"{"activity":"reply-of-from-raw"}"#));
        assert_eq!(peer.read_raw(), frame(0x16, 0, 1, &want));
        let mut want = 3u64.to_be_bytes().to_vec();
        want.extend_from_slice(&bytes_field(br#"{"code":"busy","words":"raw worker is busy"}"#));
        assert_eq!(peer.read_raw(), frame(0x16, 0x01, 1, &want));
        peer.send(&frame(0x04, 0, 0, b""));
        // The worker hangs up after the Disconnect.
        let mut rest = Vec::new();
        let _ = peer.0.read_to_end(&mut rest);
    });
    let worker = Worker::connect(options(&endpoint)).unwrap();
    assert_eq!(worker.dialect(), Dialect::Liminal);
    assert_eq!(worker.worker_id(), 0);
    assert_eq!(worker.negotiated().daemon_version, "1.2");
    let first = worker.recv(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(first.correlation_id, 2);
    assert_eq!(first.payload, br#"{"activity":"from-raw"}"#);
    assert_eq!((first.payload_protocol, first.deadline_unix_ms), (0, 0));
    assert!(first.traceparent.is_empty() && first.tracestate.is_empty());
    let second = worker.recv(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(second.payload, b"second");
    worker.reply(2, br#"{"activity":"reply-of-from-raw"}"#).unwrap();
    worker.reply_error(3, ErrorKind::Again.code(), "raw worker is busy").unwrap();
    let end = worker.recv(Some(Duration::from_secs(5))).unwrap_err();
    assert_eq!(end.kind(), ErrorKind::Closed, "{end}");
    assert!(end.to_string().contains("disconnected"), "{end}");
    drop(worker);
    srv.join().unwrap();
}

#[test]
fn the_token_node_and_activity_descriptors_go_into_connect_and_register() {
    let (endpoint, srv) = server(|mut peer| {
        assert_eq!(peer.read_raw(), expected_connect(b"s3cret"));
        peer.send(&connect_ack(1, 3));
        let (kind, _, stream, payload) = peer.read_frame();
        assert_eq!((kind, stream), (0x17, 0));
        let mut want = Vec::new();
        want.extend_from_slice(&0u32.to_be_bytes());
        want.extend_from_slice(&bytes_field(b"q"));
        want.push(1);
        want.extend_from_slice(&bytes_field(b"node-7"));
        want.extend_from_slice(&0u32.to_be_bytes());
        want.extend_from_slice(&bytes_field(b"me"));
        want.extend_from_slice(&1u32.to_be_bytes());
        want.extend_from_slice(&bytes_field(b"resize"));
        want.extend_from_slice(&bytes_field(br#"{"type":"object"}"#));
        want.extend_from_slice(&bytes_field(br#"{"type":"string"}"#));
        assert_eq!(payload, want);
        peer.send(&frame(0x18, 0, 0, &[0]));
        // 1.3 was selected: a DisconnectReason ends the connection with its name.
        let mut reason = vec![1, 0, 1];
        reason.extend_from_slice(&bytes_field(b"grant_revoked"));
        peer.send(&frame(0x20, 0, 0, &reason));
        let _ = peer.0.read_to_end(&mut Vec::new());
    });
    let reg = Registration { identity: "me".into(), task_queue: "q".into(), node: "node-7".into(), ..Default::default() };
    let mut opts = WorkerOptions::for_endpoint(&endpoint, reg).unwrap();
    opts.auth_token = b"s3cret".to_vec();
    opts.activity_descriptors.push(ActivityDescriptor {
        name: "resize".into(),
        input_schema_json: r#"{"type":"object"}"#.into(),
        output_schema_json: r#"{"type":"string"}"#.into(),
    });
    let worker = Worker::connect(opts).unwrap();
    assert_eq!(worker.negotiated().daemon_version, "1.3");
    let end = worker.recv(Some(Duration::from_secs(5))).unwrap_err();
    assert_eq!(end.kind(), ErrorKind::Closed);
    assert!(end.to_string().contains("grant_revoked (0x0001)"), "{end}");
    drop(worker);
    srv.join().unwrap();
}

#[test]
fn a_refused_connect_and_a_rejected_registration_are_reported() {
    let (endpoint, srv) = server(|mut peer| {
        assert_eq!(peer.read_raw(), expected_connect(b""));
        let mut p = 6u16.to_be_bytes().to_vec();
        p.push(1);
        p.extend_from_slice(&bytes_field(b"bad token"));
        peer.send(&frame(0x03, 0, 0, &p));
    });
    let err = Worker::connect(options(&endpoint)).map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
    let refusal = err.refusal().expect("a refusal");
    assert!(refusal.reason.contains("0x0006") && refusal.reason.contains("bad token"), "{}", refusal.reason);
    assert_eq!(refusal.details.get("liminal.reason_code").map(String::as_str), Some("6"));
    srv.join().unwrap();

    let (endpoint, srv) = server(|mut peer| {
        assert_eq!(peer.read_raw(), expected_connect(b""));
        peer.send(&connect_ack(1, 2));
        assert_eq!(peer.read_raw(), expected_register());
        let mut p = vec![1];
        p.extend_from_slice(&bytes_field(b"task queue taken"));
        peer.send(&frame(0x18, 0, 0, &p));
    });
    let err = Worker::connect(options(&endpoint)).map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err}");
    assert!(err.to_string().contains("task queue taken"), "{err}");
    srv.join().unwrap();

    // A reason as long as a frame may be reaches the error as its first 1,024 bytes.
    let (endpoint, srv) = server(|mut peer| {
        let _ = peer.read_frame();
        peer.send(&connect_ack(1, 2));
        let _ = peer.read_frame();
        let mut p = vec![1];
        p.extend_from_slice(&bytes_field("é".repeat(100_000).as_bytes()));
        peer.send(&frame(0x18, 0, 0, &p));
    });
    let err = Worker::connect(options(&endpoint)).map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err}");
    assert!(err.to_string().len() < 1100, "{} bytes of error", err.to_string().len());
    srv.join().unwrap();
}

#[test]
fn a_server_that_never_answers_costs_the_connect_timeout_and_no_more() {
    let (endpoint, srv) = server(|mut peer| {
        let _ = peer.read_frame();
        thread::sleep(Duration::from_millis(800));
    });
    let mut opts = options(&endpoint);
    opts.connect_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = Worker::connect(opts).map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_millis(750), "{:?}", started.elapsed());
    srv.join().unwrap();
}

#[test]
fn frames_over_the_bounds_end_the_connection() {
    // Before admission a frame may carry at most 64 KiB.
    let (endpoint, srv) = server(|mut peer| {
        let _ = peer.read_frame();
        peer.send(&[0x02, 0, 0, 0, 0, 0, 0x00, 0x01, 0x00, 0x01]);
    });
    let err = Worker::connect(options(&endpoint)).map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");
    srv.join().unwrap();
    // Once connected, 16 MiB.
    let (endpoint, srv) = server(|mut peer| {
        admit(&mut peer);
        peer.send(&[0x15, 0, 0, 0, 0, 1, 0x01, 0x00, 0x00, 0x01]);
        let _ = peer.0.read_to_end(&mut Vec::new());
    });
    let worker = Worker::connect(options(&endpoint)).unwrap();
    let err = worker.recv(Some(Duration::from_secs(5))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    assert!(err.to_string().contains("too large"), "{err}");
    drop(worker);
    srv.join().unwrap();
}

#[test]
fn a_control_frame_off_stream_zero_is_a_protocol_violation() {
    let (endpoint, srv) = server(|mut peer| {
        admit(&mut peer);
        peer.send(&frame(0x13, 0, 5, b""));
        let _ = peer.0.read_to_end(&mut Vec::new());
    });
    let worker = Worker::connect(options(&endpoint)).unwrap();
    let err = worker.recv(Some(Duration::from_secs(5))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    assert!(err.to_string().contains("stream 5"), "{err}");
    drop(worker);
    srv.join().unwrap();
}

#[test]
fn what_the_liminal_wire_lacks_is_refused_before_anything_is_sent() {
    let endpoint = "liminal+tcp://127.0.0.1:9"; // nothing is sent: the checks come first
    let refused = |opts: WorkerOptions| {
        let err = Worker::connect(opts).map(|_| ()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        err.to_string()
    };
    let mut o = options(endpoint);
    o.service_name = "other".into();
    assert!(refused(o).contains("service"));
    let mut o = options(endpoint);
    o.registration.payload_protocols.push(0x7001);
    assert!(refused(o).contains("payload protocols"));
    let mut o = options(endpoint);
    o.registration.identity = "x".repeat(993);
    assert!(refused(o).contains("1-992"));
    // Descriptors are for liminal endpoints only.
    let mut o = WorkerOptions::for_endpoint("tcp://127.0.0.1:9", registration()).unwrap();
    o.activity_descriptors.push(ActivityDescriptor::default());
    assert!(refused(o).contains("liminal"));
    assert!(WorkerOptions::for_endpoint("liminal+tcp://nohost", registration()).is_err());

    // An identity of 992 bytes is fine there, and a refusal's words stop at 1,024 bytes.
    let long = "y".repeat(992);
    let (endpoint, srv) = server(move |mut peer| {
        let _ = peer.read_frame();
        peer.send(&connect_ack(1, 2));
        let (_, _, _, payload) = peer.read_frame();
        assert!(payload.ends_with(&bytes_field("y".repeat(992).as_bytes())));
        peer.send(&frame(0x18, 0, 0, &[0]));
        peer.send(&push(7, b"job"));
        let _ = peer.0.read_to_end(&mut Vec::new());
    });
    let mut o = options(&endpoint);
    o.registration.identity = long;
    let worker = Worker::connect(o).unwrap();
    let job = worker.recv(Some(Duration::from_secs(5))).unwrap();
    let err = worker.reply_error(job.correlation_id, 1000, &"w".repeat(1025)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(worker.is_outstanding(job.correlation_id), "a refused reply leaves the push unanswered");
    drop(worker);
    srv.join().unwrap();
}

#[test]
fn status_codes_map_onto_the_four_refusal_codes() {
    use rp::push::liminal_refusal_code as code;
    assert_eq!(code(ErrorKind::Again.code()), "busy");
    for k in [ErrorKind::InvalidArgument, ErrorKind::NotFound, ErrorKind::Malformed, ErrorKind::Protocol] {
        assert_eq!(code(k.code()), "invalid", "{k:?}");
    }
    for k in [ErrorKind::Timeout, ErrorKind::Closed, ErrorKind::Refused, ErrorKind::Io, ErrorKind::Cancelled] {
        assert_eq!(code(k.code()), "unavailable", "{k:?}");
    }
    for c in [0, ErrorKind::NoMemory.code(), ErrorKind::Config.code(), 1000, 4242, -7] {
        assert_eq!(code(c), "internal", "{c}");
    }
}

#[test]
fn the_pollable_descriptor_is_level_triggered_on_a_liminal_endpoint() {
    let (endpoint, srv) = server(|mut peer| {
        admit(&mut peer);
        let mut burst = push(1, b"a");
        burst.extend_from_slice(&push(2, b"b"));
        peer.send(&burst);
        let _ = peer.0.read_to_end(&mut Vec::new());
    });
    let worker = Worker::connect(options(&endpoint)).unwrap();
    let fd = worker.pollable_fd();
    // poll(2) on Unix, a wait on the event handle on Windows.
    let readable = |ms| rp::transport::wait_readable(fd, Some(Duration::from_millis(ms))).unwrap();
    assert!(readable(5000));
    let mut got = Vec::new();
    while readable(0) || got.len() < 2 {
        match worker.recv(Some(Duration::ZERO)) {
            Ok(p) => got.push(p.payload),
            Err(e) if e.kind() == ErrorKind::Timeout => assert!(readable(5000)),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(got, vec![b"a".to_vec(), b"b".to_vec()]);
    assert!(!readable(50), "quiet once both pushes were taken");
    drop(worker);
    srv.join().unwrap();
}

#[test]
fn a_reconnecting_worker_comes_back_after_a_disconnect_and_never_answers_the_old_push() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("liminal+tcp://{}", listener.local_addr().unwrap());
    let srv = thread::spawn(move || {
        let accept = || {
            let (sock, _) = listener.accept().unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            Peer(sock)
        };
        let mut first = accept();
        admit(&mut first);
        first.send(&push(5, b"old"));
        // Disconnect once the worker holds the push; the worker goes away and comes back.
        thread::sleep(Duration::from_millis(100));
        first.send(&frame(0x04, 0, 0, b""));
        let mut second = accept();
        admit(&mut second);
        // The same server id as the push of the lost connection.
        second.send(&push(5, b"new"));
        let mut want = 5u64.to_be_bytes().to_vec();
        want.extend_from_slice(&bytes_field(b"reply-new"));
        assert_eq!(second.read_raw(), frame(0x16, 0, 1, &want), "only the new push is answered");
    });
    let mut opts = options(&endpoint);
    opts.reconnect = Some(rp::push::ReconnectPolicy {
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        ..Default::default()
    });
    let worker = Worker::connect(opts).unwrap();
    let old = worker.recv(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(old.payload, b"old");
    let new = worker.recv(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(new.payload, b"new");
    assert_ne!(old.correlation_id, new.correlation_id);
    assert_eq!(worker.reply(old.correlation_id, b"reply-old").unwrap_err().kind(), ErrorKind::Closed);
    worker.reply(new.correlation_id, b"reply-new").unwrap();
    srv.join().unwrap();
    assert_eq!(worker.stats().reconnects, 1);
    worker.close();
}
