//! What a peer's registration may hold, and what the registrations a push server holds cost,
//! over real Unix sockets. Figures are printed (run with `--nocapture`). Linux only: the heap
//! is measured with glibc's `mallinfo2`.
#![cfg(target_os = "linux")]

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::*;
use prost::Message;
use rp::push::proto::{Registration, RegistrationAck};
use rp::push::{
    Worker, WorkerOptions, MAX_ACTIVITY_TYPES, MAX_NAMESPACES, MAX_PAYLOAD_PROTOCOLS, MAX_REGISTRATION_BYTES,
    MAX_REGISTRATION_STRING, PUSH_PROTOCOL,
};
use rp::wire::proto::FrameKind;
use rp::wire::FrameReader;
use rp::ErrorKind;

/// Sends a Hello and `reg` on a raw connection; returns the server's ack, or `None` when the
/// server closed the connection without one.
fn register_raw(dir: &TempDir, reg: &Registration) -> (UnixStream, Option<RegistrationAck>) {
    let mut sock = UnixStream::connect(dir.sock()).expect("connect");
    let mut bytes = hello_bytes();
    bytes.extend_from_slice(&frame(FrameKind::Request, PUSH_PROTOCOL, 1, &reg.encode_to_vec()));
    // The server may close before it has read everything it was sent.
    let _ = sock.write_all(&bytes);
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = FrameReader::new(&sock);
    reader.read_frame().expect("the hello reply");
    let ack = reader.read_frame().ok().map(|f| RegistrationAck::decode(f.payload).expect("an ack"));
    drop(reader);
    (sock, ack)
}

fn strings(n: usize, len: usize, tag: char) -> Vec<String> {
    (0..n).map(|i| format!("{tag}{i:05}{}", "x".repeat(len.saturating_sub(6)))).collect()
}

/// The largest registration the limits allow: every string and list at its limit, the lists'
/// strings as long as the 16 KiB total allows (the most strings, so the most bookkeeping).
fn maximal(i: usize) -> Registration {
    let long = |tag: &str| format!("{tag}{i:08}{}", "y".repeat(MAX_REGISTRATION_STRING - 9 - tag.len() + 1));
    let mut reg = Registration {
        identity: long("i"),
        task_queue: long("q"),
        node: long("n"),
        payload_protocols: (0..MAX_PAYLOAD_PROTOCOLS as u32).map(|p| 0x7001 + p).collect(),
        ..Registration::default()
    };
    for len in (1..=MAX_REGISTRATION_STRING).rev() {
        reg.namespaces = strings(MAX_NAMESPACES, len, 'n');
        reg.activity_types = strings(MAX_ACTIVITY_TYPES, len, 'a');
        if reg.encoded_len() <= MAX_REGISTRATION_BYTES {
            break;
        }
    }
    assert_eq!(reg.identity.len(), MAX_REGISTRATION_STRING);
    reg
}

#[test]
fn a_registration_over_any_limit_is_rejected_with_the_limit_named() {
    let dir = TempDir::new("bounds");
    let server = server_with(&dir, |_| {});
    let base = registration("q");
    let over: Vec<(Registration, &str)> = vec![
        (Registration { namespaces: strings(MAX_NAMESPACES + 1, 8, 'n'), ..base.clone() }, "at most 64 namespaces"),
        (
            Registration { activity_types: strings(MAX_ACTIVITY_TYPES + 1, 8, 'a'), ..base.clone() },
            "at most 256 activity types",
        ),
        (
            Registration { namespaces: vec!["n".repeat(MAX_REGISTRATION_STRING + 1)], ..base.clone() },
            "namespaces must be at most 256 bytes",
        ),
        (
            Registration { activity_types: vec!["a".repeat(MAX_REGISTRATION_STRING + 1)], ..base.clone() },
            "activity types must be at most 256 bytes",
        ),
        (
            Registration { payload_protocols: vec![0x7001; MAX_PAYLOAD_PROTOCOLS + 1], ..base.clone() },
            "at most 64 payload protocols",
        ),
        (
            Registration {
                namespaces: strings(MAX_NAMESPACES, 250, 'n'),
                activity_types: strings(10, 250, 'a'),
                ..base.clone()
            },
            "at most 16384 bytes",
        ),
        (Registration { node: "n".repeat(MAX_REGISTRATION_STRING + 1), ..base.clone() }, "at most 256 bytes"),
    ];
    for (reg, named) in &over {
        let (_sock, ack) = register_raw(&dir, reg);
        let ack = ack.expect("an ack");
        assert!(!ack.accepted, "{named}");
        assert!(ack.reason.contains(named), "{:?} does not name {named:?}", ack.reason);
        // The worker side refuses to send it at all.
        let err = Worker::connect(WorkerOptions::new(dir.endpoint(), reg.clone())).expect_err(named);
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        assert!(err.to_string().contains(named), "{err}");
    }
    // 10,000 namespaces of 1 KiB (a 10 MB frame): the registration is read with the Hello cap,
    // so it ends the connection before its body is buffered.
    let huge = Registration { namespaces: strings(10_000, 1024, 'n'), ..base.clone() };
    let (_sock, ack) = register_raw(&dir, &huge);
    assert!(ack.is_none(), "a 10 MB registration was answered: {ack:?}");
    // A maximal registration is accepted, and nothing of the above is kept.
    let (_sock, ack) = register_raw(&dir, &maximal(0));
    assert!(ack.expect("an ack").accepted);
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.workers().len() != 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.workers().len(), 1);
}

/// Heap bytes in use (glibc's count over every arena).
fn heap_in_use() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    unsafe { libc::mallinfo2() }.uordblks
}

fn wait_for_workers(server: &rp::push::PushServer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.workers().len() != n {
        assert!(Instant::now() < deadline, "{} workers, expected {n}", server.workers().len());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// 200 workers with maximal registrations held at once cost the server at most 128 KiB each
/// (measured: about 75 KiB of RSS, 46 KiB of heap: the registration, kept once, its strings'
/// bookkeeping and the connection's read buffer), and all of it is returned once they leave.
/// Before the limits, one registration of 10,000 namespaces of 1 KiB cost 27 MiB.
#[test]
fn many_maximal_registrations_cost_a_small_stated_amount_returned_when_they_leave() {
    const N: usize = 200;
    const PER_WORKER_KIB: u64 = 128;
    raise_fd_limit();
    let dir = TempDir::new("maxreg");
    let server = server_with(&dir, |_| {});
    let regs: Vec<Registration> = (0..N).map(maximal).collect();
    // One worker comes and goes first, so what the server sets up once is not counted.
    drop(register_raw(&dir, &regs[0]));
    wait_for_workers(&server, 0);
    let heap_before = heap_in_use();
    let rss_before = rss_kib();
    let held: Vec<UnixStream> = regs
        .iter()
        .map(|reg| {
            let (sock, ack) = register_raw(&dir, reg);
            assert!(ack.expect("an ack").accepted);
            sock
        })
        .collect();
    wait_for_workers(&server, N);
    let rss_grown = rss_kib().saturating_sub(rss_before);
    let heap_grown = heap_in_use().saturating_sub(heap_before);
    println!(
        "{N} maximal registrations ({} bytes each) held: RSS +{rss_grown} KiB ({} KiB per worker), heap +{} KiB",
        regs[0].encoded_len(),
        rss_grown / N as u64,
        heap_grown / 1024
    );
    assert!(rss_grown <= PER_WORKER_KIB * N as u64, "RSS grew by {rss_grown} KiB for {N} workers");
    assert!(heap_grown as u64 <= PER_WORKER_KIB * 1024 * N as u64, "heap grew by {heap_grown} bytes");
    drop(held);
    wait_for_workers(&server, 0);
    // The event loop frees a connection once it has seen it close.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut kept = heap_in_use().saturating_sub(heap_before);
    while kept > 512 * 1024 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        kept = heap_in_use().saturating_sub(heap_before);
    }
    println!("after they left: heap +{} KiB", kept / 1024);
    assert!(kept <= 512 * 1024, "{kept} bytes still held after every worker left");
}

/// A worker's failure message and a session's error message are at most 4096 bytes: a longer
/// one is refused when sent and ends the connection when received.
#[test]
fn error_messages_are_bounded_both_ways() {
    use rp::push::proto::{push_reply, PushFailure, PushReply};
    use rp::push::{PushResult, PushSpec, Target, MAX_FAILURE_MESSAGE};
    use rp::session::{CallOptions, Session, Side, MAX_ERROR_MESSAGE};
    let long = "m".repeat(MAX_FAILURE_MESSAGE + 1);

    // Push: received from a raw worker.
    let dir = TempDir::new("failmsg");
    let server = server_with(&dir, |_| {});
    let sock = raw_registered_worker(&dir.endpoint(), "q");
    let worker_long = long.clone();
    let answering = std::thread::spawn(move || {
        let mut reader = FrameReader::new(&sock);
        let id = reader.read_frame().expect("the push").request_id;
        let failure = PushReply {
            result: Some(push_reply::Result::Failure(PushFailure { code: 1000, message: worker_long })),
        };
        (&sock).write_all(&frame(FrameKind::Response, PUSH_PROTOCOL, id, &failure.encode_to_vec())).unwrap();
        let mut sock = sock;
        wait_closed(&mut sock, Duration::from_secs(5)).is_some()
    });
    let spec = PushSpec { payload_protocol: 0x7001, payload: b"job".to_vec(), ..PushSpec::default() };
    let err = server.push_wait(Target::TaskQueue("q".into()), spec.clone(), Duration::from_secs(5)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    assert!(err.to_string().contains("4096-byte limit"), "{err}");
    assert!(answering.join().unwrap(), "the server ended the connection");
    // Push: a real worker refuses to send it, and may still answer.
    let client = std::sync::Arc::new(worker(server.endpoint(), "real"));
    let answering = {
        let client = std::sync::Arc::clone(&client);
        let long = long.clone();
        std::thread::spawn(move || {
            let job = client.recv(Some(Duration::from_secs(5))).unwrap();
            let err = client.reply_error(job.correlation_id, 1000, &long).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
            client.reply_error(job.correlation_id, 1000, &long[..MAX_FAILURE_MESSAGE]).unwrap();
        })
    };
    let out = server.push_wait(Target::TaskQueue("real".into()), spec, Duration::from_secs(5)).unwrap();
    assert_eq!(out, PushResult::WorkerFailure { code: 1000, message: long[..MAX_FAILURE_MESSAGE].to_owned() });
    answering.join().unwrap();

    // Session: sent and received.
    let (x, y) = UnixStream::pair().unwrap();
    let conn = |s| rp::broker::Conn::new(rp::transport::Stream::Unix(s)).unwrap();
    let a = Session::new(conn(x), Side::Connecting, false).unwrap();
    let b = std::sync::Arc::new(Session::new(conn(y), Side::Accepting, true).unwrap());
    let serving = {
        let b = std::sync::Arc::clone(&b);
        std::thread::spawn(move || {
            let req = b.next_request(Some(Duration::from_secs(5))).unwrap();
            let err = req.respond_error(1000, &"e".repeat(MAX_ERROR_MESSAGE + 1)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        })
    };
    let err = a.call(0x7001, b"ask", &CallOptions::default(), Some(Duration::from_secs(5))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "dropped without an answer: {err}");
    serving.join().unwrap();
    let (x, y) = UnixStream::pair().unwrap();
    let a = Session::new(conn(x), Side::Connecting, false).unwrap();
    y.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let call = a.start_call(0x7001, b"ask", &CallOptions::default()).unwrap();
    let mut reader = FrameReader::new(&y);
    let id = reader.read_frame().unwrap().request_id;
    let error = rp::session::proto::SessionMessage {
        error: Some(rp::session::proto::SessionError { code: 1000, message: "e".repeat(MAX_ERROR_MESSAGE + 1) }),
        ..Default::default()
    };
    (&y).write_all(&frame(FrameKind::Response, rp::wire::registry::SESSION, id, &error.encode_to_vec())).unwrap();
    let err = call.wait(Some(Duration::from_secs(5))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    assert!(err.to_string().contains("4096-byte limit"), "{err}");
}

/// Trace context is kept with each push and request: more than 8 KiB of it ends the
/// connection of a session that receives it, and is refused to a caller that would send it.
#[test]
fn trace_context_is_bounded() {
    use rp::session::{Session, Side};
    use rp::wire::MAX_TRACE_CONTEXT;
    let long = "t".repeat(MAX_TRACE_CONTEXT + 1);
    // A session receiving a request with it.
    let (x, y) = UnixStream::pair().unwrap();
    let session = Session::new(rp::broker::Conn::new(rp::transport::Stream::Unix(x)).unwrap(), Side::Connecting, true).unwrap();
    let message = rp::session::proto::SessionMessage { payload_protocol: 0x7001, ..Default::default() }.encode_to_vec();
    let request = rp::FrameView {
        kind: FrameKind::Request as i32,
        payload_protocol: rp::wire::registry::SESSION,
        payload: &message,
        request_id: 2,
        tracestate: &long,
        ..rp::FrameView::default()
    };
    (&y).write_all(&request.to_bytes().unwrap()).unwrap();
    let err = session.next_request(Some(Duration::from_secs(5))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    assert!(err.to_string().contains("trace context exceed the 8192-byte limit"), "{err}");
    // Up to the limit is fine.
    let (x, y) = UnixStream::pair().unwrap();
    let session = Session::new(rp::broker::Conn::new(rp::transport::Stream::Unix(x)).unwrap(), Side::Connecting, true).unwrap();
    let request = rp::FrameView { tracestate: &long[..MAX_TRACE_CONTEXT], ..request };
    (&y).write_all(&request.to_bytes().unwrap()).unwrap();
    let req = session.next_request(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(req.tracestate().len(), MAX_TRACE_CONTEXT);
    // Neither a session nor a push server sends more.
    let opts = rp::session::CallOptions { tracestate: long.clone(), ..Default::default() };
    let err = session.start_call(0x7001, b"", &opts).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    let dir = TempDir::new("tracelimit");
    let server = server_with(&dir, |_| {});
    let spec = rp::push::PushSpec { traceparent: long.clone(), ..Default::default() };
    let err = server.push(rp::push::Target::TaskQueue("q".into()), spec.clone()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    let err = server.push_wait(rp::push::Target::TaskQueue("q".into()), spec, Duration::from_secs(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
}
