//! Sessions over Unix socket pairs (named-pipe pairs on Windows), through the Rust API.

#[cfg(unix)]
use std::os::unix::net::UnixStream;
#[cfg(windows)]
use rp::transport::PipeStream as UnixStream;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rp::broker::Conn;
use rp::session::{CallOptions, Session, Side};
use rp::transport::Stream;
use rp::ErrorKind;

const ECHO: u32 = 0x7001;
const STREAM: u32 = 0x7002;
const HOLD: u32 = 0x7004;

fn pair(serve_a: bool, serve_b: bool) -> (Arc<Session>, Arc<Session>) {
    let (x, y) = UnixStream::pair().unwrap();
    let a = Session::new(Conn::new(Stream::Unix(x)).unwrap(), Side::Connecting, serve_a).unwrap();
    let b = Session::new(Conn::new(Stream::Unix(y)).unwrap(), Side::Accepting, serve_b).unwrap();
    (Arc::new(a), Arc::new(b))
}

/// Serves ECHO (answer = payload) and STREAM (100 chunks, then "done"); HOLD requests are
/// kept until the session ends.
fn serve(session: Arc<Session>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut held = Vec::new();
        loop {
            let req = match session.next_request(None) {
                Ok(r) => r,
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::Closed);
                    return;
                }
            };
            match req.payload_protocol() {
                ECHO => req.respond(req.payload()).unwrap(),
                STREAM => {
                    for i in 0..100 {
                        req.send_chunk(format!("c{i}").as_bytes()).unwrap();
                    }
                    req.respond(b"done").unwrap();
                }
                _ => held.push(req),
            }
        }
    })
}

#[test]
fn both_sides_call_each_other_with_split_ids() {
    let (a, b) = pair(true, true);
    let (sa, sb) = (serve(Arc::clone(&a)), serve(Arc::clone(&b)));
    let mut callers = Vec::new();
    for (who, s) in [("a", &a), ("b", &b)] {
        for t in 0..4 {
            let s = Arc::clone(s);
            callers.push(thread::spawn(move || {
                for i in 0..250 {
                    let msg = format!("{who}{t}-{i}");
                    let got = s.call(ECHO, msg.as_bytes(), &CallOptions::default(), Some(Duration::from_secs(10)));
                    assert_eq!(got.unwrap(), msg.as_bytes());
                }
            }));
        }
    }
    for c in callers {
        c.join().unwrap();
    }
    let ca = a.start_call(ECHO, b"", &CallOptions::default()).unwrap();
    let cb = b.start_call(ECHO, b"", &CallOptions::default()).unwrap();
    assert_eq!(ca.id() % 2, 1);
    assert_eq!(cb.id() % 2, 0);
    ca.wait(None).unwrap();
    cb.wait(None).unwrap();
    a.close();
    sa.join().unwrap();
    sb.join().unwrap();
}

#[test]
fn stream_chunks_arrive_in_order_then_the_response() {
    let (a, b) = pair(false, true);
    let server = serve(Arc::clone(&b));
    let call = a.start_call(STREAM, b"", &CallOptions::default()).unwrap();
    for i in 0..100 {
        assert_eq!(call.next_chunk(Some(Duration::from_secs(5))).unwrap(), format!("c{i}").as_bytes());
    }
    assert_eq!(call.next_chunk(Some(Duration::from_secs(5))).unwrap_err().kind(), ErrorKind::Closed);
    assert_eq!(call.wait(Some(Duration::from_secs(5))).unwrap(), b"done");
    drop(a);
    server.join().unwrap();
}

/// Calls after streamed, cancelled, timed-out and abandoned calls (whose bookkeeping a
/// session reuses) start clean: no chunk, outcome or interrupt of an earlier call shows.
#[test]
fn calls_after_every_kind_of_ending_start_clean() {
    let (a, b) = pair(false, true);
    let server = serve(Arc::clone(&b));
    let five = Some(Duration::from_secs(5));
    for round in 0..3 {
        // Streamed, with chunks left unread.
        let call = a.start_call(STREAM, b"", &CallOptions::default()).unwrap();
        assert_eq!(call.next_chunk(five).unwrap(), b"c0");
        assert_eq!(call.wait(five).unwrap(), b"done");
        drop(call);
        // Cancelled; interrupted with no wait to take it; timed out; dropped while pending.
        let call = a.start_call(HOLD, b"", &CallOptions::default()).unwrap();
        call.cancel();
        drop(call);
        let call = a.start_call(HOLD, b"", &CallOptions::default()).unwrap();
        call.interrupt();
        drop(call);
        let opts = CallOptions { deadline_unix_ms: now_ms() + 20, ..CallOptions::default() };
        assert_eq!(a.call(HOLD, b"", &opts, None).unwrap_err().kind(), ErrorKind::Timeout);
        drop(a.start_call(HOLD, b"", &CallOptions::default()).unwrap());
        // The next calls see only their own answers.
        for i in 0..20 {
            let msg = format!("r{round}-{i}");
            assert_eq!(a.call(ECHO, msg.as_bytes(), &CallOptions::default(), five).unwrap(), msg.as_bytes());
            let call = a.start_call(ECHO, msg.as_bytes(), &CallOptions::default()).unwrap();
            assert_eq!(call.next_chunk(five).unwrap_err().kind(), ErrorKind::Closed, "no chunk of an earlier call");
            assert_eq!(call.wait(five).unwrap(), msg.as_bytes());
        }
    }
    assert_eq!(a.pending_calls(), 0);
    drop(b);
    a.close();
    server.join().unwrap();
}

#[test]
fn no_dispatcher_answers_not_found() {
    let (a, _b) = pair(false, false);
    let err = a.call(ECHO, b"x", &CallOptions::default(), Some(Duration::from_secs(5))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("no dispatcher"), "{err}");
}

#[test]
fn cancel_deadline_and_close_end_calls() {
    let (a, b) = pair(false, true);
    let server = serve(Arc::clone(&b));

    let call = a.start_call(HOLD, b"", &CallOptions::default()).unwrap();
    call.cancel();
    assert_eq!(call.wait(Some(Duration::ZERO)).unwrap_err().kind(), ErrorKind::Cancelled);

    let opts = CallOptions { deadline_unix_ms: now_ms() + 100, ..CallOptions::default() };
    let started = Instant::now();
    let call = a.start_call(HOLD, b"", &opts).unwrap();
    assert_eq!(call.wait(None).unwrap_err().kind(), ErrorKind::Timeout);
    assert!(call.is_done());
    assert!(started.elapsed() < Duration::from_secs(2));

    let pending: Vec<_> = (0..20).map(|_| a.start_call(HOLD, b"", &CallOptions::default()).unwrap()).collect();
    assert_eq!(a.pending_calls(), 20);
    drop(b); // the server thread still holds a reference; closing ends the connection
    a.close();
    for c in &pending {
        assert_eq!(c.wait(Some(Duration::from_secs(1))).unwrap_err().kind(), ErrorKind::Closed);
    }
    server.join().unwrap();
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A raw peer: writes frames by hand and sees what the session answers.
fn raw_peer() -> (Session, rp::wire::FrameReader<UnixStream>, rp::wire::FrameWriter<UnixStream>) {
    let (x, y) = UnixStream::pair().unwrap();
    let session = Session::new(Conn::new(Stream::Unix(x)).unwrap(), Side::Connecting, false).unwrap();
    y.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let reader = rp::wire::FrameReader::new(y.try_clone().unwrap());
    (session, reader, rp::wire::FrameWriter::new(y))
}

fn session_frame<'a>(kind: rp::wire::proto::FrameKind, id: u64, payload: &'a [u8]) -> rp::FrameView<'a> {
    rp::FrameView {
        kind: kind as i32,
        payload_protocol: rp::wire::registry::SESSION,
        payload,
        request_id: id,
        ..rp::FrameView::default()
    }
}

#[test]
fn wire_shape_of_a_call_and_of_the_no_dispatcher_error() {
    use prost::Message;
    use rp::session::proto::SessionMessage;
    use rp::wire::proto::FrameKind;

    let (session, mut reader, mut writer) = raw_peer();
    let opts = CallOptions { traceparent: "tp".into(), ..CallOptions::default() };
    let call = session.start_call(0x7A63, b"ask", &opts).unwrap();
    {
        let f = reader.read_frame().unwrap();
        assert_eq!(f.payload_protocol, rp::wire::registry::SESSION);
        assert_eq!(f.frame_kind(), Some(FrameKind::Request));
        assert_eq!(f.request_id, 1);
        assert_eq!(f.traceparent, "tp");
        let m = SessionMessage::decode(f.payload).unwrap();
        assert_eq!((m.payload_protocol, m.payload.as_slice()), (0x7A63, &b"ask"[..]));
    }
    let answer = SessionMessage { payload: b"yes".to_vec(), ..SessionMessage::default() }.encode_to_vec();
    writer.write_frame(&session_frame(FrameKind::Response, 1, &answer)).unwrap();
    assert_eq!(call.wait(Some(Duration::from_secs(5))).unwrap(), b"yes");

    // The peer (accepting side) calls with an even id; this session has no dispatcher.
    let ask = SessionMessage { payload_protocol: 0x7A63, ..SessionMessage::default() }.encode_to_vec();
    writer.write_frame(&session_frame(FrameKind::Request, 2, &ask)).unwrap();
    let f = reader.read_frame().unwrap();
    assert_eq!((f.frame_kind(), f.request_id), (Some(FrameKind::Response), 2));
    let e = SessionMessage::decode(f.payload).unwrap().error.unwrap();
    assert_eq!(e.code, rp::session::code::NOT_FOUND);
    assert!(e.message.contains("no dispatcher"));
}

#[test]
fn protocol_violations_end_the_session_with_closed() {
    use rp::wire::proto::FrameKind;
    // A request with this side's parity (odd ids belong to the connecting side).
    let (session, _reader, mut writer) = raw_peer();
    let pending = session.start_call(ECHO, b"", &CallOptions::default()).unwrap();
    writer.write_frame(&session_frame(FrameKind::Request, 3, &[])).unwrap();
    let err = pending.wait(Some(Duration::from_secs(5))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
    assert!(err.to_string().contains("parity"), "{err}");

    // A frame on another payload protocol.
    let (session, _reader, mut writer) = raw_peer();
    let pending = session.start_call(ECHO, b"", &CallOptions::default()).unwrap();
    let mut f = session_frame(FrameKind::Response, 1, &[]);
    f.payload_protocol = 0x7001;
    writer.write_frame(&f).unwrap();
    let err = pending.wait(Some(Duration::from_secs(5))).unwrap_err();
    assert!(err.to_string().contains("payload protocol"), "{err}");
    assert!(session.is_closed());
}

#[test]
fn a_reader_that_falls_64_mib_behind_loses_only_that_exchange() {
    const MIB: usize = 1 << 20;
    let (a, b) = pair(false, true);
    // The serving side floods the caller's stream until its request is cancelled; a TUNNEL
    // request is never read; ECHO answers.
    let server = {
        let b = Arc::clone(&b);
        thread::spawn(move || {
            let mut tunnel_outcome = None;
            while let Ok(req) = b.next_request(None) {
                match req.payload_protocol() {
                    STREAM => {
                        let chunk = vec![7u8; MIB];
                        let mut sent = 0;
                        let err = loop {
                            match req.send_chunk(&chunk) {
                                Ok(()) => sent += 1,
                                Err(e) => break e,
                            }
                            assert!(sent < 1000, "the flood was never stopped");
                        };
                        assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
                        assert!(sent >= 64, "stopped after only {sent} MiB");
                    }
                    HOLD => {
                        // Never reads the tunnel; waits for librp to end the request.
                        while !req.is_cancelled() {
                            thread::sleep(Duration::from_millis(10));
                        }
                        tunnel_outcome = Some(req.respond(b"late").unwrap_err().kind());
                    }
                    _ => req.respond(req.payload()).unwrap(),
                }
            }
            tunnel_outcome
        })
    };

    // A call whose stream is never read.
    let flood = a.start_call(STREAM, b"", &CallOptions::default()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !flood.is_done() {
        assert!(Instant::now() < deadline, "the unread stream was never cut off");
        thread::sleep(Duration::from_millis(10));
    }
    let err = flood.next_chunk(Some(Duration::ZERO)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");
    assert!(err.to_string().contains("64 MiB"), "{err}");
    assert_eq!(flood.wait(Some(Duration::ZERO)).unwrap_err().kind(), ErrorKind::TooLarge);

    // A tunnel the serving side never reads: the caller gets code 22 back.
    let tunnel = a.start_call(HOLD, b"", &CallOptions::default()).unwrap();
    let chunk = vec![9u8; MIB];
    let mut sent = 0;
    let err = loop {
        if let Err(e) = tunnel.send_chunk(&chunk) {
            break e;
        }
        sent += 1;
        if sent > 80 {
            break tunnel.wait(Some(Duration::from_secs(30))).unwrap_err();
        }
    };
    assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");

    // The session itself goes on.
    let got = a.call(ECHO, b"still here", &CallOptions::default(), Some(Duration::from_secs(5))).unwrap();
    assert_eq!(got, b"still here");
    drop(a);
    assert_eq!(server.join().unwrap(), Some(ErrorKind::TooLarge));
}

/// Whichever thread reads (a caller or dispatcher for itself, or the reader thread, which
/// takes the connection back after an idle gap), no answer or request is missed: calls from
/// two threads after gaps around the reader thread's recheck, each answered well before its
/// timeout, in a pair where both sides also serve.
#[test]
fn calls_around_idle_gaps_never_miss_their_answer() {
    let (a, b) = pair(true, true);
    let servers = [serve(Arc::clone(&a)), serve(Arc::clone(&b))];
    let callers: Vec<_> = [Arc::clone(&a), Arc::clone(&b)]
        .into_iter()
        .enumerate()
        .map(|(k, s)| {
            thread::spawn(move || {
                for i in 0..60u32 {
                    // Gaps of 0..=14 ms straddle the 10 ms after which the reader thread
                    // takes the connection back.
                    thread::sleep(Duration::from_millis(u64::from((i * 7 + k as u32 * 3) % 15)));
                    let started = Instant::now();
                    let got = s.call(ECHO, &i.to_le_bytes(), &CallOptions::default(), Some(Duration::from_secs(3)));
                    assert_eq!(got.unwrap_or_else(|e| panic!("call {i} failed after {:?}: {e}", started.elapsed())), i.to_le_bytes());
                    assert!(started.elapsed() < Duration::from_secs(1), "call {i} took {:?}", started.elapsed());
                }
            })
        })
        .collect();
    for c in callers {
        c.join().unwrap();
    }
    a.close();
    b.close();
    for s in servers {
        s.join().unwrap();
    }
}

#[test]
fn encoded_frames_end_the_session_with_a_protocol_violation() {
    use prost::Message;
    use rp::session::proto::SessionMessage;
    use rp::wire::proto::FrameKind;
    let answer = SessionMessage { payload: b"yes".to_vec(), ..SessionMessage::default() }.encode_to_vec();
    for (encoding, envelope, named) in [(1, 1, "payload_encoding 1"), (0, 2, "envelope_version 2")] {
        let (session, _reader, mut writer) = raw_peer();
        let pending = session.start_call(ECHO, b"", &CallOptions::default()).unwrap();
        let mut f = session_frame(FrameKind::Response, 1, &answer);
        f.payload_encoding = encoding;
        f.envelope_version = envelope;
        writer.write_frame(&f).unwrap();
        let err = pending.wait(Some(Duration::from_secs(5))).expect_err("an encoded answer is not an answer");
        assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
        assert!(err.to_string().contains("protocol violation") && err.to_string().contains(named), "{err}");
        assert!(session.is_closed());
    }
}

#[test]
fn dispatch_serves_requests_on_the_calling_thread_and_a_peer_code_keeps_its_kind() {
    let (a, b) = pair(false, true);
    let (n, r) = b.dispatch(Some(Duration::ZERO), |_| panic!("nothing is waiting"));
    assert_eq!((n, r.unwrap_err().kind()), (0, ErrorKind::Timeout));

    let caller = thread::spawn(move || {
        let opts = CallOptions::default();
        let echo = a.call(ECHO, b"x", &opts, Some(Duration::from_secs(5))).map_err(|e| e.kind());
        let failed = a.call(HOLD, b"", &opts, Some(Duration::from_secs(5))).map_err(|e| e.kind());
        (echo, failed)
    });
    let mut served = 0;
    while served < 2 {
        let (n, r) = b.dispatch(Some(Duration::from_secs(5)), |req| match req.payload_protocol() {
            ECHO => req.respond(req.payload()).unwrap(),
            _ => req.respond_error(ErrorKind::Io.code(), "the far side's disk").unwrap(),
        });
        r.unwrap();
        served += n;
    }
    let (echo, failed) = caller.join().unwrap();
    assert_eq!(echo.unwrap(), b"x");
    // librp's own codes keep their kind across the wire (one table: ErrorKind::code).
    assert_eq!(failed.unwrap_err(), ErrorKind::Io);
}

#[test]
fn closing_a_listener_wakes_an_accept_waiting_forever() {
    #[cfg(unix)]
    let local = rp::transport::Endpoint::Abstract(format!("rp-session-close-{}", std::process::id()));
    #[cfg(windows)]
    let local = rp::transport::Endpoint::Pipe(format!("rp-session-close-{}", std::process::id()));
    for endpoint in [local, rp::transport::Endpoint::parse("tcp://127.0.0.1:0").unwrap()] {
        let listener = Arc::new(rp::session::SessionListener::bind(&endpoint).unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let l = Arc::clone(&listener);
        thread::spawn(move || tx.send(l.accept(None).map(|_| ()).map_err(|e| e.kind())));
        thread::sleep(Duration::from_millis(100));
        assert!(rx.try_recv().is_err(), "{endpoint}: accept returned with no client");
        listener.close();
        let woken = rx.recv_timeout(Duration::from_secs(5)).unwrap_or_else(|_| panic!("{endpoint}: accept still waits"));
        assert_eq!(woken, Err(ErrorKind::Closed), "{endpoint}");
    }
}
