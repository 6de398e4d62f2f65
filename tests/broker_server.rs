//! The broker server's answers, over real Unix sockets, to the Hellos and first frames the
//! reference broker (running-process 4.10.21, `hello_handler.rs` and `connection.rs`) answers
//! in a known way, and its bounds on what a peer sends (Hello fields, admin requests).

use std::io::{Read, Write};
use std::net::Shutdown;
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use prost::Message;
use rp::broker::{BrokerServer, BrokerServerOptions, BrokerService};
use rp::control::ClientHello;
use rp::transport::Endpoint;
use rp::wire::proto::{hello_reply, AdminReply, AdminRequest, ErrorCode, FrameKind, Hello, HelloReply};
use rp::wire::{registry, FrameReader, FrameView};

struct Broker {
    server: BrokerServer,
    dir: PathBuf,
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.server.shutdown();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn broker(tag: &str, tune: impl FnOnce(&mut BrokerServerOptions)) -> Broker {
    let dir = std::env::temp_dir().join(format!("rp-broker-server-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let service = BrokerService {
        service_name: "rp-demo".into(),
        backend_pipe: "/tmp/rp-demo.sock".into(),
        daemon_version: "1.2.3".into(),
        allowed_versions: vec!["1.2.3".into()],
        ..BrokerService::default()
    };
    let mut opts = BrokerServerOptions::new(endpoint(&dir), vec![service]);
    tune(&mut opts);
    Broker { server: BrokerServer::bind(opts).unwrap(), dir }
}

/// The broker's endpoint: a socket in `dir` (on Windows, a pipe named after `dir`).
#[cfg(unix)]
fn endpoint(dir: &std::path::Path) -> Endpoint {
    Endpoint::Path(dir.join("broker.sock"))
}
#[cfg(windows)]
fn endpoint(dir: &std::path::Path) -> Endpoint {
    Endpoint::Pipe(dir.file_name().unwrap().to_string_lossy().into_owned())
}

impl Broker {
    #[cfg(unix)]
    fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(self.dir.join("broker.sock")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    #[cfg(windows)]
    fn connect(&self) -> rp::transport::Stream {
        let s = rp::transport::connect(&endpoint(&self.dir), Duration::from_secs(10)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// Sends `bytes` (then shuts the write side when `eof`) and reads the one answer frame.
    fn answer(&self, bytes: &[u8], eof: bool) -> (u64, u32, Vec<u8>) {
        let mut s = self.connect();
        s.write_all(bytes).unwrap();
        if eof {
            s.shutdown(Shutdown::Write).unwrap();
        }
        let mut reader = FrameReader::new(&s);
        let f = reader.read_frame().expect("an answer frame");
        assert_eq!(f.kind, FrameKind::Response as i32);
        (f.request_id, f.payload_protocol, f.payload.to_vec())
    }

    /// The refusal answering `bytes`: (request id, code, reason, retry hint).
    fn refusal(&self, bytes: &[u8], eof: bool) -> (u64, i32, String, u64) {
        let (id, protocol, payload) = self.answer(bytes, eof);
        assert_eq!(protocol, registry::CONTROL);
        match HelloReply::decode(payload.as_slice()).unwrap().result.unwrap() {
            hello_reply::Result::Refused(r) => (id, r.code, r.reason, r.retry_after_ms),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}

fn hello(service: &str, version: &str) -> Hello {
    ClientHello { service_name: service.into(), wanted_version: version.into(), ..ClientHello::default() }.to_message()
}

fn hello_frame(h: &Hello) -> Vec<u8> {
    let payload = h.encode_to_vec();
    FrameView { payload_protocol: registry::CONTROL, payload: &payload, request_id: 7, ..FrameView::default() }
        .to_bytes()
        .unwrap()
}

const PEER_REJECTED: i32 = ErrorCode::PeerRejected as i32;

#[test]
fn hello_refusals_match_the_reference_broker() {
    let b = broker("hello", |_| {});
    // Served.
    let (_, _, payload) = b.answer(&hello_frame(&hello("rp-demo", "1.2.3")), false);
    assert!(matches!(HelloReply::decode(payload.as_slice()).unwrap().result, Some(hello_reply::Result::Negotiated(_))));
    // Not in the allow list: VERSION_BLOCKED with the reference's 30 s hint.
    assert_eq!(
        b.refusal(&hello_frame(&hello("rp-demo", "1.2.4")), false),
        (7, ErrorCode::VersionBlocked as i32, "wanted_version is not in version_allow_list".into(), 30_000)
    );
    // A service name that is not [a-z0-9-]{1,64}: PEER_REJECTED, not SERVICE_UNKNOWN.
    for name in ["Rp_Demo", "", &"a".repeat(65)] {
        assert_eq!(
            b.refusal(&hello_frame(&hello(name, "1.2.3")), false),
            (7, PEER_REJECTED, "invalid service_name".into(), 0),
            "{name:?}"
        );
    }
    // A wanted version that is not the reference's semver: PEER_REJECTED.
    for version in ["1.2", "v1.2.3", "1.2.3-RC1", &format!("1.2.3-{}", "a".repeat(60))] {
        assert_eq!(
            b.refusal(&hello_frame(&hello("rp-demo", version)), false),
            (7, PEER_REJECTED, "invalid wanted_version".into(), 0),
            "{version:?}"
        );
    }
    // Several faults: the reference's order decides (name, then version, then policy).
    assert_eq!(b.refusal(&hello_frame(&hello("BAD", "x")), false).2, "invalid service_name");
    assert_eq!(b.refusal(&hello_frame(&hello("no-such", "x")), false).2, "invalid wanted_version");
    assert_eq!(b.refusal(&hello_frame(&hello("no-such", "9.9.9")), false).1, ErrorCode::ServiceUnknown as i32);
}

#[test]
#[cfg_attr(windows, ignore = "needs a half-close (the client's end of stream after a cut Hello), which a named pipe does not have")]
fn framing_faults_are_answered_like_the_reference_broker() {
    let b = broker("framing", |_| {});
    // A good framing byte and length, a body that is not a Frame: answered, request id 0.
    let garbage = [0x01, 3, 0, 0, 0, 0xff, 0xff, 0xff];
    assert_eq!(b.refusal(&garbage, false), (0, PEER_REJECTED, "malformed broker Frame".into(), 0));
    // A Hello cut short, then EOF: "incomplete Hello frame".
    let full = hello_frame(&hello("rp-demo", "1.2.3"));
    for cut in [1, 3, full.len() - 1] {
        assert_eq!(b.refusal(&full[..cut], true), (0, PEER_REJECTED, "incomplete Hello frame".into(), 0), "{cut}");
    }
    // Nothing at all, then EOF: the same.
    assert_eq!(b.refusal(&[], true).2, "incomplete Hello frame");
    // The envelope checks echo the request id and go in the reference's order.
    let payload = hello("rp-demo", "1.2.3").encode_to_vec();
    let frame = |f: FrameView| FrameView { payload: &payload, request_id: 5, ..f }.to_bytes().unwrap();
    let event_compressed =
        frame(FrameView { kind: FrameKind::Event as i32, payload_encoding: 1, ..FrameView::default() });
    assert_eq!(b.refusal(&event_compressed, false), (5, PEER_REJECTED, "Hello frame kind must be REQUEST".into(), 0));
    let foreign_compressed = frame(FrameView { payload_protocol: 0x7001, payload_encoding: 1, ..FrameView::default() });
    assert_eq!(b.refusal(&foreign_compressed, false).2, "Hello frame payload_protocol must be control-plane");
    let compressed = frame(FrameView { payload_encoding: 1, ..FrameView::default() });
    assert_eq!(b.refusal(&compressed, false).2, "Hello payload must not be compressed");
}

/// As the reference broker: a first frame not complete by the Hello deadline is not answered;
/// the connection is closed.
#[test]
fn a_first_frame_not_complete_by_the_deadline_is_closed_unanswered() {
    let b = broker("deadline", |o| o.hello_timeout = Duration::from_millis(200));
    let full = hello_frame(&hello("rp-demo", "1.2.3"));
    let mut s = b.connect();
    s.write_all(&full[..4]).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "answered {rest:02x?}");
}

#[test]
fn hello_fields_without_a_reference_limit_are_bounded() {
    let b = broker("bounds", |_| {});
    let good = hello("rp-demo", "1.2.3");
    let cases = [
        (Hello { auth_token: vec![1; 1025], ..good.clone() }, "1024 bytes"),
        (Hello { capability_token: vec![1; 1025], ..good.clone() }, "1024 bytes"),
        (Hello { request_id: "r".repeat(257), ..good.clone() }, "256 bytes"),
        (Hello { peer_attestation_nonce: vec![1; 257], ..good.clone() }, "256 bytes"),
        // The reference's own caps.
        (Hello { client_version: "v".repeat(129), ..good.clone() }, "128 bytes"),
        (Hello { client_lib_name: "n".repeat(65), ..good.clone() }, "64 bytes"),
    ];
    for (h, limit) in cases {
        let (_, code, reason, _) = b.refusal(&hello_frame(&h), false);
        assert_eq!(code, PEER_REJECTED, "{reason}");
        assert!(reason.contains(limit), "{reason} should name {limit}");
    }
    // At the limits it is served.
    let at = Hello {
        auth_token: vec![1; 1024],
        request_id: "r".repeat(256),
        client_version: "v".repeat(128),
        ..good
    };
    let (_, _, payload) = b.answer(&hello_frame(&at), false);
    assert!(matches!(HelloReply::decode(payload.as_slice()).unwrap().result, Some(hello_reply::Result::Negotiated(_))));
}

fn admin(b: &Broker, request: &AdminRequest) -> AdminReply {
    let payload = request.encode_to_vec();
    let bytes =
        FrameView { payload_protocol: registry::ADMIN, payload: &payload, request_id: 3, ..FrameView::default() }
            .to_bytes()
            .unwrap();
    let (id, protocol, payload) = b.answer(&bytes, false);
    assert_eq!((id, protocol), (3, registry::ADMIN));
    AdminReply::decode(payload.as_slice()).unwrap()
}

#[test]
fn admin_requests_name_the_verb_and_are_bounded() {
    let b = broker("admin", |_| {});
    let reply = admin(&b, &AdminRequest { verb: 999, ..AdminRequest::default() });
    assert_eq!(reply.exit_code, 2);
    assert!(reply.body.contains("999") && !reply.body.contains("UNSPECIFIED"), "{}", reply.body);
    let reply = admin(&b, &AdminRequest { verb: 2, ..AdminRequest::default() });
    assert!(reply.body.contains("ADMIN_VERB_DUMP") && reply.exit_code == 2, "{}", reply.body);
    let healthz = rp::wire::proto::AdminVerb::Healthz as i32;
    assert_eq!(admin(&b, &AdminRequest { verb: healthz, ..AdminRequest::default() }).exit_code, 0);
    let long_path = AdminRequest { verb: healthz, output_path: "p".repeat(4097), ..AdminRequest::default() };
    let reply = admin(&b, &long_path);
    assert_eq!(reply.exit_code, 2);
    assert!(reply.body.contains("output_path exceeds 4096 bytes"), "{}", reply.body);
    let long_name = AdminRequest { verb: healthz, service_name: "s".repeat(65), ..AdminRequest::default() };
    assert!(admin(&b, &long_name).body.contains("service_name exceeds 64 bytes"));
}

#[test]
fn replies_echo_the_request_id_and_trace_context() {
    let b = broker("trace", |_| {});
    for version in ["1.2.3", "1.2.4"] {
        let payload = hello("rp-demo", version).encode_to_vec();
        let bytes = FrameView {
            payload_protocol: registry::CONTROL,
            payload: &payload,
            request_id: 11,
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            tracestate: "rp=1",
            ..FrameView::default()
        }
        .to_bytes()
        .unwrap();
        let mut s = b.connect();
        s.write_all(&bytes).unwrap();
        let mut reader = FrameReader::new(&s);
        let f = reader.read_frame().unwrap();
        assert_eq!(f.request_id, 11);
        assert_eq!((f.traceparent, f.tracestate), ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "rp=1"));
    }
}

/// The peer's pid as the kernel reports it (SO_PEERCRED; GetNamedPipeClientProcessId on
/// Windows) is checked against a non-zero `Hello.peer_pid`, as the reference broker checks it.
#[test]
fn a_hello_peer_pid_other_than_the_verified_one_is_refused() {
    let b = broker("peerpid", |_| {});
    let mut foreign = hello("rp-demo", "1.2.3");
    foreign.peer_pid = std::process::id() + 1;
    let (_, code, reason, _) = b.refusal(&hello_frame(&foreign), false);
    assert_eq!((code, reason.as_str()), (PEER_REJECTED, "peer_pid does not match verified peer"));
    let mut own = hello("rp-demo", "1.2.3");
    own.peer_pid = std::process::id();
    let (_, protocol, payload) = b.answer(&hello_frame(&own), false);
    assert_eq!(protocol, registry::CONTROL);
    assert!(matches!(HelloReply::decode(payload.as_slice()).unwrap().result, Some(hello_reply::Result::Negotiated(_))));
}
