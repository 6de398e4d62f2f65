//! Sessions, framed connections and the broker client over `tls://`, with certificates
//! generated at run time: calls round trip, the client identity under mutual TLS, the pollable
//! descriptor with decrypted bytes held, a backend reached through a broker over TLS, and one
//! failure per role with its kind.

#[path = "common/certs.rs"]
mod certs;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rp::broker::{BrokerOptions, BrokerServer, BrokerServerOptions, BrokerService, Conn, Route};
use rp::session::{CallOptions, Session, SessionListener, Side};
use rp::transport::{ClientAuth, Endpoint, TlsClientOptions};
use rp::ErrorKind;

use certs::Ca;

const ECHO: u32 = 0x7101;

fn tls_any() -> Endpoint {
    Endpoint::parse("tls://127.0.0.1:0").unwrap()
}

/// Accepts connections and serves echo sessions on them until the listener closes; each
/// accepted connection's TLS identity subject goes to `identities`.
fn serve_echo(listener: Arc<SessionListener>) -> thread::JoinHandle<Vec<Option<String>>> {
    thread::spawn(move || {
        let mut identities = Vec::new();
        let mut sessions = Vec::new();
        while let Ok(conn) = listener.accept(None) {
            identities.push(conn.tls_identity().map(|i| i.subject));
            let session = Arc::new(Session::new(conn, Side::Accepting, true).unwrap());
            let s = Arc::clone(&session);
            sessions.push(thread::spawn(move || {
                while let Ok(req) = s.next_request(None) {
                    let _ = req.respond(req.payload());
                }
            }));
            drop(session);
        }
        identities
    })
}

fn call(session: &Session, payload: &[u8]) -> Result<Vec<u8>, rp::Error> {
    session.call(ECHO, payload, &CallOptions::default(), Some(Duration::from_secs(10)))
}

#[test]
fn session_calls_round_trip_over_tls_small_large_and_concurrent() {
    let ca = Ca::new("session CA");
    let listener = Arc::new(SessionListener::bind_with(&tls_any(), Some(&ca.server_options())).unwrap());
    assert!(matches!(listener.endpoint(), Endpoint::Tls(_)), "{}", listener.endpoint());
    let serving = serve_echo(Arc::clone(&listener));
    let conn = rp::session::connect_with(listener.endpoint(), Duration::from_secs(5), &ca.trusting()).unwrap();
    assert!(conn.is_tls());
    assert!(conn.tls_identity().unwrap().subject.contains("CN=test server"));
    let session = Arc::new(Session::new(conn, Side::Connecting, false).unwrap());
    assert_eq!(call(&session, b"hello").unwrap(), b"hello");
    // Larger than a TLS record and than the frame reader's first read.
    let big: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
    assert_eq!(call(&session, &big).unwrap(), big);
    // Several callers at once: the reader thread and callers reading for themselves share it.
    let callers: Vec<_> = (0..4u8)
        .map(|t| {
            let s = Arc::clone(&session);
            thread::spawn(move || {
                for i in 0..200u32 {
                    let mut payload = vec![t; 1 + (i as usize * 131) % 40_000];
                    payload[0] = (i % 251) as u8;
                    assert_eq!(call(&s, &payload).unwrap(), payload);
                }
            })
        })
        .collect();
    for c in callers {
        c.join().unwrap();
    }
    session.close();
    listener.close();
    assert_eq!(serving.join().unwrap(), vec![None]);
}

#[test]
fn mutual_tls_shows_the_client_identity_and_refuses_a_client_without_certificate() {
    let ca = Ca::new("session CA");
    let clients = Ca::new("client CA");
    let mut server = ca.server_options();
    server.client_ca_pem = clients.pem();
    server.client_auth = ClientAuth::Required;
    let listener = Arc::new(SessionListener::bind_with(&tls_any(), Some(&server)).unwrap());
    let serving = serve_echo(Arc::clone(&listener));

    // Without a certificate: the server refuses the handshake; the client learns it on its
    // first call at the latest, as PERMISSION_DENIED.
    let started = Instant::now();
    let refused = rp::session::connect_with(listener.endpoint(), Duration::from_secs(5), &ca.trusting())
        .and_then(|conn| Session::new(conn, Side::Connecting, false))
        .and_then(|s| call(&s, b"x"));
    let e = refused.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::PermissionDenied | ErrorKind::Closed), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));

    let leaf = clients.leaf("session client", &["client.example"]);
    let tls = leaf.client_options(&ca);
    let conn = rp::session::connect_with(listener.endpoint(), Duration::from_secs(5), &tls).unwrap();
    let session = Session::new(conn, Side::Connecting, false).unwrap();
    assert_eq!(call(&session, b"with a certificate").unwrap(), b"with a certificate");
    assert!(session.tls_identity().is_some());
    session.close();
    listener.close();
    // Only the client with a certificate reached the application, with its identity.
    assert_eq!(serving.join().unwrap(), vec![Some("CN=session client,O=librp tests".to_string())]);
}

#[test]
fn each_failure_has_its_kind() {
    let ca = Ca::new("session CA");
    let listener = Arc::new(SessionListener::bind_with(&tls_any(), Some(&ca.server_options())).unwrap());
    let serving = serve_echo(Arc::clone(&listener));
    let timeout = Duration::from_secs(5);
    // Unknown CA.
    let e = rp::session::connect_with(listener.endpoint(), timeout, &Ca::new("other CA").trusting()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("unknown CA"), "{e}");
    // Wrong name.
    let wrong = TlsClientOptions { server_name: "elsewhere.example".into(), ..ca.trusting() };
    let e = rp::session::connect_with(listener.endpoint(), timeout, &wrong).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("wrong name"), "{e}");
    // TLS options on a plain endpoint, and a TLS endpoint without them.
    let plain = Endpoint::parse("tcp://127.0.0.1:1").unwrap();
    assert_eq!(rp::session::connect_with(&plain, timeout, &ca.trusting()).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(rp::session::connect(listener.endpoint(), timeout).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(SessionListener::bind(&tls_any()).unwrap_err().kind(), ErrorKind::Config);
    // A tls:// listener reachable from other hosts needs required client certificates.
    let e = SessionListener::bind_with(&Endpoint::parse("tls://0.0.0.0:0").unwrap(), Some(&ca.server_options())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    // TLS to a plain TCP listener.
    let plain = SessionListener::bind(&Endpoint::parse("tcp://127.0.0.1:0").unwrap()).unwrap();
    let Endpoint::Tcp(addr) = plain.endpoint().clone() else { panic!() };
    let e = rp::session::connect_with(&Endpoint::Tls(addr), Duration::from_millis(500), &ca.trusting()).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Protocol | ErrorKind::Timeout), "{e}");
    // Plain TCP to the TLS listener: the server closes it; the call fails instead of hanging.
    let Endpoint::Tls(addr) = listener.endpoint().clone() else { panic!() };
    let conn = rp::session::connect(&Endpoint::Tcp(addr), timeout).unwrap();
    let session = Session::new(conn, Side::Connecting, false).unwrap();
    let e = call(&session, b"plain").unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Closed | ErrorKind::Protocol), "{e}");
    listener.close();
    assert!(serving.join().unwrap().is_empty());
}

#[test]
fn a_conn_driven_by_its_pollable_fd_misses_no_frame_held_decrypted() {
    let ca = Ca::new("session CA");
    let listener = SessionListener::bind_with(&tls_any(), Some(&ca.server_options())).unwrap();
    let endpoint = listener.endpoint().clone();
    let sender = thread::spawn(move || {
        let conn = listener.accept(Some(Duration::from_secs(5))).unwrap();
        // Many frames larger than a TLS record, then many small ones, written at once: one record
        // decrypts to more than one read takes, and records and frames straddle the reads.
        let size = |i: usize| if i >= 150 { 40 + i } else { 20_000 + (i * 37) % 5000 };
        let payloads: Vec<Vec<u8>> = (0..300u32).map(|i| vec![(i % 251) as u8; size(i as usize)]).collect();
        let frames: Vec<_> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| rp::FrameView { kind: 2, payload_protocol: ECHO, payload: p, request_id: i as u64 + 1, ..rp::FrameView::default() })
            .collect();
        conn.send_many(&frames).unwrap();
        // Stays open until the reader has everything.
        let _ = conn.recv(Some(Duration::from_secs(10)));
    });
    let conn = rp::session::connect_with(&endpoint, Duration::from_secs(5), &ca.trusting()).unwrap();
    let fd = conn.pollable_fd().unwrap();
    let mut got = 0u64;
    while got < 300 {
        // One receive per wake-up, nothing read ahead: the descriptor alone must say when.
        assert!(rp::transport::wait_readable(fd, Some(Duration::from_secs(5))).unwrap(), "stalled after {got} frames");
        match conn.recv(Some(Duration::ZERO)) {
            Ok(frame) => {
                got += 1;
                assert_eq!(frame.request_id, got);
                assert_eq!(frame.payload[0], ((got - 1) % 251) as u8);
            }
            Err(e) if e.kind() == ErrorKind::Timeout => {}
            Err(e) => panic!("{e}"),
        }
    }
    conn.close();
    sender.join().unwrap();
}

#[test]
fn the_broker_client_reaches_a_tls_backend_and_never_hands_off_tls() {
    let ca = Ca::new("backend CA");
    let backend = Arc::new(SessionListener::bind_with(&tls_any(), Some(&ca.server_options())).unwrap());
    let serving = serve_echo(Arc::clone(&backend));
    #[cfg(unix)]
    let broker_endpoint = Endpoint::parse(&format!("@rp-tls-broker-{}", std::process::id())).unwrap();
    #[cfg(windows)]
    let broker_endpoint = Endpoint::Pipe(format!("rp-tls-broker-{}", std::process::id()));
    let service = BrokerService {
        service_name: "tls-backend".into(),
        backend_pipe: backend.endpoint().to_string(),
        daemon_version: "1.0.0".into(),
        ..BrokerService::default()
    };
    let broker = BrokerServer::bind(BrokerServerOptions::new(broker_endpoint.clone(), vec![service])).unwrap();

    let mut opts = BrokerOptions::new(broker.endpoint().clone(), "tls-backend", "1.0.0", "1.0.0");
    opts.tls = ca.trusting();
    opts.adopt_handoff = true;
    let reached = rp::broker::connect(&opts).unwrap();
    assert_eq!(reached.route, Route::Negotiated);
    assert!(reached.conn.is_tls());
    let session = Session::new(reached.conn, Side::Connecting, false).unwrap();
    assert_eq!(call(&session, b"through the broker").unwrap(), b"through the broker");
    session.close();

    // Hello-skip to the cached tls:// endpoint uses the same TLS options.
    opts.cached_endpoint = Some(reached.endpoint.clone());
    let skipped = rp::broker::connect(&opts).unwrap();
    assert_eq!(skipped.route, Route::HelloSkip);
    assert!(skipped.conn.is_tls());
    drop(skipped);

    // Without the CA the backend is refused: PERMISSION_DENIED.
    let mut untrusting = BrokerOptions::new(broker.endpoint().clone(), "tls-backend", "1.0.0", "1.0.0");
    untrusting.tls = Ca::new("other CA").trusting();
    let e = rp::broker::connect(&untrusting).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");

    // The broker itself serves Unix sockets (named pipes on Windows) only.
    let e = BrokerServer::bind(BrokerServerOptions::new(tls_any(), Vec::new())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    drop(broker);
    backend.close();
    serving.join().unwrap();
}

#[test]
fn a_plain_conn_is_not_tls() {
    #[cfg(unix)]
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    #[cfg(windows)]
    let (a, _b) = rp::transport::PipeStream::pair().unwrap();
    let conn = Conn::new(rp::transport::Stream::Unix(a)).unwrap();
    assert!(!conn.is_tls());
    assert!(conn.tls_identity().is_none());
}

#[test]
fn the_session_reader_routes_replies_held_decrypted() {
    // Many callers with small payloads: one socket read brings several records, which decrypt
    // to more than the frame reader takes at once; the rest must be routed without waiting for
    // the socket (which shows nothing more).
    let ca = Ca::new("session CA");
    let listener = Arc::new(SessionListener::bind_with(&tls_any(), Some(&ca.server_options())).unwrap());
    let serving = serve_echo(Arc::clone(&listener));
    let conn = rp::session::connect_with(listener.endpoint(), Duration::from_secs(5), &ca.trusting()).unwrap();
    let session = Arc::new(Session::new(conn, Side::Connecting, false).unwrap());
    let started = Instant::now();
    let callers: Vec<_> = (0..16u8)
        .map(|t| {
            let s = Arc::clone(&session);
            thread::spawn(move || {
                for i in 0..100u32 {
                    let payload = vec![t ^ (i as u8); 700 + (i as usize * 13) % 600];
                    let got = s.call(ECHO, &payload, &CallOptions::default(), Some(Duration::from_secs(3)));
                    assert_eq!(got.unwrap(), payload);
                }
            })
        })
        .collect();
    for c in callers {
        c.join().unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    session.close();
    listener.close();
    serving.join().unwrap();
}

#[test]
fn requests_held_decrypted_reach_a_poll_loop_on_the_request_fd() {
    // The accepting side takes requests only when its request descriptor says so: its reader
    // thread alone reads the connection, and must route what a read decrypted beyond what the
    // frame reader took (the socket shows nothing more).
    let ca = Ca::new("session CA");
    let listener = SessionListener::bind_with(&tls_any(), Some(&ca.server_options())).unwrap();
    let endpoint = listener.endpoint().clone();
    let serving = thread::spawn(move || {
        let conn = listener.accept(Some(Duration::from_secs(5))).unwrap();
        let session = Session::new(conn, Side::Accepting, true).unwrap();
        let fd = session.request_fd();
        let mut answered = 0;
        while answered < 600 {
            if !rp::transport::wait_readable(fd, Some(Duration::from_secs(5))).unwrap() {
                break; // stalled: the caller's waits fail
            }
            loop {
                match session.next_request(Some(Duration::ZERO)) {
                    Ok(req) => {
                        req.respond(req.payload()).unwrap();
                        answered += 1;
                    }
                    Err(e) if e.kind() == ErrorKind::Timeout => break,
                    Err(_) => return answered,
                }
            }
        }
        answered
    });
    let conn = rp::session::connect_with(&endpoint, Duration::from_secs(5), &ca.trusting()).unwrap();
    let session = Session::new(conn, Side::Connecting, false).unwrap();
    for round in 0..3u32 {
        // Many small requests at once: records arrive several per read.
        let tickets: Vec<_> = (0..200u32)
            .map(|i| {
                let payload = vec![(i % 251) as u8; 60 + (i as usize * 7) % 300];
                (session.start_call(ECHO, &payload, &CallOptions::default()).unwrap(), payload)
            })
            .collect();
        for (t, payload) in tickets {
            assert_eq!(t.wait(Some(Duration::from_secs(5))).unwrap_or_else(|e| panic!("round {round}: {e}")), payload);
        }
    }
    session.close();
    assert_eq!(serving.join().unwrap(), 600);
}
