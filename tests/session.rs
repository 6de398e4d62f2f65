//! Sessions over Unix socket pairs, through the Rust API.

use std::os::unix::net::UnixStream;
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
