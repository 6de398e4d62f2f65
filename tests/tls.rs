//! Push server and worker over `tls://`, with certificates generated at run time: round trips,
//! the client identity under mutual TLS, and each failure with its kind and message, in time.

#[path = "common/certs.rs"]
mod certs;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rp::push::proto::Registration;
use rp::push::{PushResult, PushServer, PushSpec, RegistrationDecision, ServerEvent, ServerOptions, Target, Worker, WorkerOptions};
use rp::transport::{ClientAuth, Endpoint, TlsClientOptions, TlsServerOptions};
use rp::ErrorKind;

use certs::Ca;

fn registration() -> Registration {
    Registration {
        identity: "tls-worker".into(),
        task_queue: "q".into(),
        namespaces: vec!["default".into()],
        activity_types: vec!["echo".into()],
        payload_protocols: vec![0x7001],
        ..Registration::default()
    }
}

fn server_with(tls: Option<TlsServerOptions>, edit: impl FnOnce(&mut ServerOptions)) -> PushServer {
    let endpoint = if tls.is_some() { "tls://127.0.0.1:0" } else { "tcp://127.0.0.1:0" };
    let mut opts = ServerOptions::new(Endpoint::parse(endpoint).unwrap());
    opts.tls = tls;
    opts.handshake_timeout = Duration::from_secs(3);
    edit(&mut opts);
    PushServer::bind(opts).expect("bind")
}

fn worker_options(endpoint: &Endpoint, tls: TlsClientOptions) -> WorkerOptions {
    let mut opts = WorkerOptions::new(endpoint.clone(), registration());
    opts.tls = tls;
    opts.connect_timeout = Duration::from_secs(3);
    opts
}

fn echo(worker: Arc<Worker>) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        let mut n = 0;
        while let Ok(job) = worker.recv(None) {
            let mut reply = b"echo:".to_vec();
            reply.extend_from_slice(&job.payload);
            if worker.reply(job.correlation_id, &reply).is_err() {
                break;
            }
            n += 1;
        }
        n
    })
}

fn spec(payload: &[u8]) -> PushSpec {
    PushSpec { payload_protocol: 0x7001, payload: payload.to_vec(), ..PushSpec::default() }
}

/// A connect that fails, with how long it took.
fn failing_connect(opts: WorkerOptions) -> (rp::Error, Duration) {
    let started = Instant::now();
    let e = Worker::connect(opts).expect_err("the connect must fail");
    (e, started.elapsed())
}

#[test]
fn pushes_round_trip_over_tls_small_and_large() {
    let ca = Ca::new("test CA");
    let server = server_with(Some(ca.server_options()), |_| {});
    assert!(server.endpoint().to_string().starts_with("tls://127.0.0.1:"), "{}", server.endpoint());
    let worker = Arc::new(Worker::connect(worker_options(server.endpoint(), ca.trusting())).expect("connect"));
    let answering = echo(Arc::clone(&worker));
    let workers = server.workers();
    assert_eq!(workers.len(), 1);
    assert_eq!(workers[0].peer, None);
    assert_eq!(workers[0].tls_identity, None, "no client certificate asked for");

    for i in 0..50u32 {
        let payload = format!("job {i}");
        let out = server.push_wait(Target::TaskQueue("q".into()), spec(payload.as_bytes()), Duration::from_secs(5)).unwrap();
        assert_eq!(out, PushResult::Reply(format!("echo:job {i}").into_bytes()));
    }
    // Larger than a TLS record and than a socket buffer, both ways.
    let big: Vec<u8> = (0..3 << 20).map(|i| (i % 251) as u8).collect();
    let out = server.push_wait(Target::TaskQueue("q".into()), spec(&big), Duration::from_secs(20)).unwrap();
    let PushResult::Reply(reply) = out else { panic!("{out:?}") };
    assert_eq!(&reply[..5], b"echo:");
    assert!(reply[5..] == big[..], "the large payload came back intact");
    // Asynchronous pushes, read by the event loop.
    let tickets: Vec<_> = (0..20).map(|i| server.push(Target::TaskQueue("q".into()), spec(&[i])).unwrap()).collect();
    for (i, t) in tickets.into_iter().enumerate() {
        assert_eq!(t.wait(Some(Duration::from_secs(5))).unwrap(), PushResult::Reply(vec![b'e', b'c', b'h', b'o', b':', i as u8]));
    }
    worker.close();
    assert_eq!(answering.join().unwrap(), 71);
}

#[test]
fn the_server_name_defaults_to_the_endpoint_host_and_can_be_set() {
    let ca = Ca::new("test CA");
    let server = server_with(Some(ca.server_options()), |_| {});
    let port = server.endpoint().to_string().rsplit(':').next().unwrap().to_owned();
    let by_name = Endpoint::parse(&format!("tls://localhost:{port}")).unwrap();
    Worker::connect(worker_options(&by_name, ca.trusting())).expect("localhost is in the certificate");
    let named = TlsClientOptions { server_name: "localhost".into(), ..ca.trusting() };
    Worker::connect(worker_options(server.endpoint(), named)).expect("an explicit name");
}

#[test]
fn mutual_tls_shows_the_client_identity_to_the_registration_decision() {
    let ca = Ca::new("test CA");
    let client_ca = Ca::new("client CA");
    let tls = TlsServerOptions { client_ca_pem: client_ca.pem(), client_auth: ClientAuth::Required, ..ca.server_options() };
    let server = server_with(Some(tls), |o| o.decide_registrations = true);
    let leaf = client_ca.leaf_with("worker-7", &["worker-7.example", "10.1.2.3", "fd00::7"], |p| {
        use rcgen::SanType;
        p.subject_alt_names.push(SanType::URI("spiffe://example.org/worker/7".try_into().unwrap()));
        p.subject_alt_names.push(SanType::Rfc822Name("ops@example.org".try_into().unwrap()));
        p.distinguished_name.push(rcgen::DnType::OrganizationalUnitName, "batch");
    });
    let opts = leaf.client_options(&ca);
    let endpoint = server.endpoint().clone();
    let connecting = thread::spawn(move || Worker::connect(worker_options(&endpoint, opts)));
    let ServerEvent::RegistrationRequest { worker_id, peer, tls_identity, .. } = server.next_event(Some(Duration::from_secs(5))).unwrap() else {
        panic!("expected a registration request");
    };
    assert_eq!(peer, None);
    let identity = tls_identity.expect("the verified client certificate");
    assert_eq!(identity.subject, "CN=worker-7,O=librp tests,OU=batch");
    let sans = ["DNS:worker-7.example", "IP:10.1.2.3", "IP:fd00::7", "URI:spiffe://example.org/worker/7", "email:ops@example.org"];
    assert_eq!(identity.sans, sans.map(str::to_owned).to_vec());
    assert!(!identity.certificate_der.is_empty());
    server.decide(worker_id, RegistrationDecision::Accept).unwrap();
    let worker = connecting.join().unwrap().expect("registered");
    let info = server.workers().into_iter().find(|w| w.id == worker.worker_id()).unwrap();
    assert_eq!(info.tls_identity.unwrap().subject, "CN=worker-7,O=librp tests,OU=batch");
}

#[test]
fn optional_client_certificates_let_clients_without_one_in() {
    let ca = Ca::new("test CA");
    let client_ca = Ca::new("client CA");
    let tls = TlsServerOptions { client_ca_pem: client_ca.pem(), client_auth: ClientAuth::Optional, ..ca.server_options() };
    let server = server_with(Some(tls), |_| {});
    let worker = Worker::connect(worker_options(server.endpoint(), ca.trusting())).expect("no certificate is fine");
    assert_eq!(server.workers()[0].tls_identity, None);
    drop(worker);
    let leaf = client_ca.leaf("worker-8", &["worker-8.example"]);
    let opts = leaf.client_options(&ca);
    let worker = Worker::connect(worker_options(server.endpoint(), opts)).expect("with one");
    let info = server.workers().into_iter().find(|w| w.id == worker.worker_id()).unwrap();
    assert_eq!(info.tls_identity.unwrap().sans, vec!["DNS:worker-8.example".to_owned()]);
}

fn assert_fails(e: &rp::Error, took: Duration, kind: ErrorKind, words: &str) {
    assert_eq!(e.kind(), kind, "{e}");
    assert!(e.to_string().contains(words), "{e:?} should say {words:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn an_unknown_ca_is_refused() {
    let ca = Ca::new("test CA");
    let other = Ca::new("someone else");
    let server = server_with(Some(ca.server_options()), |_| {});
    let (e, took) = failing_connect(worker_options(server.endpoint(), other.trusting()));
    assert_fails(&e, took, ErrorKind::PermissionDenied, "unknown CA");
}

#[test]
fn expired_and_not_yet_valid_certificates_are_refused() {
    let ca = Ca::new("test CA");
    let expired = ca.leaf_with("old", &["127.0.0.1"], |p| {
        p.not_before = rcgen::date_time_ymd(2001, 1, 1);
        p.not_after = rcgen::date_time_ymd(2002, 1, 1);
    });
    let server = server_with(Some(expired.server_options()), |_| {});
    let (e, took) = failing_connect(worker_options(server.endpoint(), ca.trusting()));
    assert_fails(&e, took, ErrorKind::PermissionDenied, "expired");

    let future = ca.leaf_with("new", &["127.0.0.1"], |p| {
        p.not_before = rcgen::date_time_ymd(2090, 1, 1);
        p.not_after = rcgen::date_time_ymd(2091, 1, 1);
    });
    let server = server_with(Some(future.server_options()), |_| {});
    let (e, took) = failing_connect(worker_options(server.endpoint(), ca.trusting()));
    assert_fails(&e, took, ErrorKind::PermissionDenied, "not valid yet");
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let ca = Ca::new("test CA");
    let server = server_with(Some(ca.server_options()), |_| {});
    let opts = TlsClientOptions { server_name: "push.example.org".into(), ..ca.trusting() };
    let (e, took) = failing_connect(worker_options(server.endpoint(), opts));
    assert_fails(&e, took, ErrorKind::PermissionDenied, "wrong name");
}

#[test]
fn a_missing_client_certificate_is_refused_when_required() {
    let ca = Ca::new("test CA");
    let client_ca = Ca::new("client CA");
    let tls = TlsServerOptions { client_ca_pem: client_ca.pem(), client_auth: ClientAuth::Required, ..ca.server_options() };
    let server = server_with(Some(tls), |_| {});
    let (e, took) = failing_connect(worker_options(server.endpoint(), ca.trusting()));
    assert_fails(&e, took, ErrorKind::PermissionDenied, "client certificate");
    // One from a CA the server does not trust is refused too.
    let stranger = Ca::new("stranger").leaf("w", &["w.example"]);
    let opts = stranger.client_options(&ca);
    let (e, took) = failing_connect(worker_options(server.endpoint(), opts));
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(took < Duration::from_secs(3));
    assert!(server.workers().is_empty());
}

#[test]
fn a_plain_client_on_a_tls_endpoint_is_told_to_use_tls() {
    let ca = Ca::new("test CA");
    let server = server_with(Some(ca.server_options()), |_| {});
    let plain = Endpoint::Tcp(server.endpoint().to_string().trim_start_matches("tls://").to_owned());
    let (e, took) = failing_connect(worker_options(&plain, TlsClientOptions::default()));
    assert_fails(&e, took, ErrorKind::Refused, "connect with tls://");
}

#[test]
fn a_tls_client_on_a_plain_endpoint_is_told_it_is_plain() {
    let ca = Ca::new("test CA");
    let server = server_with(None, |_| {});
    let tls = Endpoint::Tls(server.endpoint().to_string().trim_start_matches("tcp://").to_owned());
    let (e, took) = failing_connect(worker_options(&tls, ca.trusting()));
    assert_fails(&e, took, ErrorKind::Protocol, "does not speak TLS");
}

#[test]
fn a_silent_tls_server_times_out_within_the_connect_timeout() {
    let ca = Ca::new("test CA");
    // A listener that accepts and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = Endpoint::Tls(listener.local_addr().unwrap().to_string());
    let mut opts = worker_options(&endpoint, ca.trusting());
    opts.connect_timeout = Duration::from_millis(500);
    let (e, took) = failing_connect(opts);
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn a_reachable_tls_server_needs_client_certificates_or_a_token() {
    let ca = Ca::new("test CA");
    let leaf = ca.server_leaf();
    let remote = |tls: TlsServerOptions, token: &[u8]| {
        let mut opts = ServerOptions::new(Endpoint::parse("tls://0.0.0.0:0").unwrap());
        opts.tls = Some(tls);
        opts.allow_remote_tcp = true;
        opts.auth_token = token.to_vec();
        PushServer::bind(opts)
    };
    let e = remote(leaf.server_options(), b"").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("client certificates"), "{e}");
    remote(leaf.server_options(), b"secret").expect("TLS plus a token").shutdown();
    let required = TlsServerOptions { client_ca_pem: ca.pem(), client_auth: ClientAuth::Required, ..leaf.server_options() };
    remote(required, b"").expect("TLS with required client certificates").shutdown();
    let optional = TlsServerOptions { client_ca_pem: ca.pem(), client_auth: ClientAuth::Optional, ..leaf.server_options() };
    assert_eq!(remote(optional, b"").unwrap_err().kind(), ErrorKind::Config);
}

#[test]
fn bad_tls_options_are_refused_clearly() {
    let ca = Ca::new("test CA");
    let leaf = ca.server_leaf();
    // A TLS endpoint without a certificate, TLS options on a plain endpoint.
    let e = PushServer::bind(ServerOptions::new(Endpoint::parse("tls://127.0.0.1:0").unwrap())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    let mut opts = ServerOptions::new(Endpoint::parse("tcp://127.0.0.1:0").unwrap());
    opts.tls = Some(leaf.server_options());
    assert_eq!(PushServer::bind(opts).unwrap_err().kind(), ErrorKind::InvalidArgument);
    // Garbage PEM, a key that does not match.
    let garbage = TlsServerOptions { cert_chain_pem: b"not pem".to_vec(), ..leaf.server_options() };
    let e = server_result(garbage).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("certificate"), "{e}");
    let other_key = ca.leaf("x", &["x"]).key_pem;
    let mismatched = TlsServerOptions { key_pem: other_key, ..leaf.server_options() };
    assert_eq!(server_result(mismatched).unwrap_err().kind(), ErrorKind::Config);
    // Mutual TLS without client CA roots.
    let no_roots = TlsServerOptions { client_auth: ClientAuth::Required, ..leaf.server_options() };
    assert_eq!(server_result(no_roots).unwrap_err().kind(), ErrorKind::Config);
    // Worker TLS options on a plain endpoint.
    let server = server_with(None, |_| {});
    let e = Worker::connect(worker_options(server.endpoint(), ca.trusting())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
}

fn server_result(tls: TlsServerOptions) -> Result<PushServer, rp::Error> {
    let mut opts = ServerOptions::new(Endpoint::parse("tls://127.0.0.1:0").unwrap());
    opts.tls = Some(tls);
    PushServer::bind(opts)
}

#[test]
fn roles_without_tls_refuse_tls_endpoints_clearly() {
    let endpoint = Endpoint::parse("tls://127.0.0.1:1").unwrap();
    // Sessions take tls:// with their TLS options (tests/tls_session.rs); without them:
    let e = rp::session::SessionListener::bind(&endpoint).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    let e = rp::session::connect(&endpoint, Duration::from_secs(1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(e.to_string().contains("TLS options"), "{e}");
    let e = rp::broker::BrokerServer::bind(rp::broker::BrokerServerOptions::new(endpoint.clone(), Vec::new())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
}

#[test]
fn a_worker_driven_by_its_pollable_fd_misses_no_push_over_tls() {
    let ca = Ca::new("test CA");
    let server = server_with(Some(ca.server_options()), |_| {});
    let worker = Arc::new(Worker::connect(worker_options(server.endpoint(), ca.trusting())).expect("connect"));
    let w = Arc::clone(&worker);
    // Answers only when the pollable descriptor says a push is there, taking what is ready.
    let answering = thread::spawn(move || {
        let mut n = 0;
        loop {
            match rp::transport::wait_readable(w.pollable_fd(), Some(Duration::from_secs(5))) {
                Ok(true) => {}
                _ => return n,
            }
            loop {
                match w.recv(Some(Duration::ZERO)) {
                    Ok(job) => {
                        if w.reply(job.correlation_id, &job.payload[..8]).is_err() {
                            return n;
                        }
                        n += 1;
                    }
                    Err(e) if e.kind() == ErrorKind::Timeout => break,
                    Err(_) => return n,
                }
            }
        }
    });
    // Many pushes larger than a TLS record, sent at once: records and frames straddle reads.
    let tickets: Vec<_> = (0..300u32)
        .map(|i| {
            let mut payload = vec![7u8; 20_000 + (i as usize * 37) % 5000];
            payload[..4].copy_from_slice(&i.to_be_bytes());
            server.push(Target::TaskQueue("q".into()), spec(&payload)).unwrap()
        })
        .collect();
    for (i, t) in tickets.into_iter().enumerate() {
        let PushResult::Reply(r) = t.wait(Some(Duration::from_secs(10))).unwrap() else { panic!() };
        assert_eq!(&r[..4], &(i as u32).to_be_bytes());
    }
    worker.close();
    assert_eq!(answering.join().unwrap(), 300);
}

#[test]
fn tls_and_an_auth_token_work_together() {
    let ca = Ca::new("test CA");
    let server = server_with(Some(ca.server_options()), |o| o.auth_token = b"s3cret".to_vec());
    let mut opts = worker_options(server.endpoint(), ca.trusting());
    let (e, took) = failing_connect(opts.clone());
    assert_fails(&e, took, ErrorKind::Refused, "authentication failed");
    opts.auth_token = b"s3cret".to_vec();
    Worker::connect(opts).expect("the token, over TLS");
}

#[test]
fn a_silent_client_on_a_tls_endpoint_is_closed_at_the_handshake_deadline() {
    use std::io::Read;
    let ca = Ca::new("test CA");
    let server = server_with(Some(ca.server_options()), |o| o.handshake_timeout = Duration::from_millis(300));
    let addr = server.endpoint().to_string().trim_start_matches("tls://").to_owned();
    let mut silent = std::net::TcpStream::connect(addr).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = silent.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without a word");
    assert!(started.elapsed() < Duration::from_secs(2), "closed after {:?}", started.elapsed());
}

#[test]
fn without_ca_roots_a_worker_trusts_the_system_roots() {
    let ca = Ca::new("test CA");
    let server = server_with(Some(ca.server_options()), |_| {});
    // The system's roots as SSL_CERT_FILE names them (no other test here uses system roots).
    let dir = std::env::temp_dir().join(format!("rp-tls-roots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bundle = dir.join("bundle.pem");
    std::fs::write(&bundle, ca.pem()).unwrap();
    std::env::set_var("SSL_CERT_FILE", &bundle);
    let trusted = Worker::connect(worker_options(server.endpoint(), TlsClientOptions::default()));
    std::fs::write(&bundle, Ca::new("another").pem()).unwrap();
    let untrusted = Worker::connect(worker_options(server.endpoint(), TlsClientOptions::default()));
    std::env::remove_var("SSL_CERT_FILE");
    let _ = std::fs::remove_dir_all(&dir);
    trusted.expect("the server's CA is in the system bundle");
    let e = untrusted.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("unknown CA"), "{e}");
}
