//! librp against the reference implementation (crates.io `running-process`, features
//! `client`), both directions, over the platform's local endpoints: Unix sockets, or named
//! pipes on Windows (where a handoff is a `DuplicateHandle` and `HandoffOffer.handle_value`).
//! Each scenario is written once; [`Place`] names its endpoints.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use rp::broker::{self, BrokerOptions, BrokerServer, BrokerServerOptions, BrokerService, Route};
use rp::handoff::HandoffStore;
use rp::transport::{Endpoint, ListenOptions, Listener, OwnedDescriptor, Stream};
use rp::wire::proto::FrameKind;
use rp::wire::{FrameReader, FrameView};
use running_process::broker::client::{
    connect_to_backend, BackendConnectionRoute, BrokerClientError, ConnectBackendRequest, RefusalKind,
};
use running_process::broker::protocol as reference;
use running_process::broker::server::{serve_local_socket_connections, HelloHandler, RegisteredBackend};

const PROTO: u32 = 0x7001;

/// Where one test's local endpoints live: socket files in a private directory of its own on
/// Unix; on Windows pipes whose names carry this process and the test.
struct Place {
    #[cfg(unix)]
    dir: PathBuf,
    #[cfg(windows)]
    prefix: String,
}

impl Place {
    fn new(test: &str) -> Place {
        #[cfg(unix)]
        {
            let dir = std::env::temp_dir().join(format!("rp-interop-{}-{test}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
            Place { dir }
        }
        #[cfg(windows)]
        Place { prefix: format!("rp-interop-{}-{test}", std::process::id()) }
    }

    /// The endpoint called `name`: a socket file, or the pipe `\\.\pipe\<prefix>-<name>`.
    fn endpoint(&self, name: &str) -> Endpoint {
        #[cfg(unix)]
        return Endpoint::Path(self.dir.join(format!("{name}.sock")));
        #[cfg(windows)]
        Endpoint::Pipe(format!("{}-{name}", self.prefix))
    }
}

#[cfg(unix)]
impl Drop for Place {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How the reference names `endpoint` in a wire `Endpoint.path`: the socket path, or on
/// Windows the bare pipe name (`Endpoint::windows_pipe` refuses the `\\.\pipe\` prefix).
fn wire_path(endpoint: &Endpoint) -> String {
    match endpoint {
        Endpoint::Path(p) => p.to_str().unwrap().to_owned(),
        #[cfg(windows)]
        Endpoint::Pipe(name) => name.clone(),
        other => panic!("not a local endpoint: {other}"),
    }
}

/// A listener on `endpoint` with librp's transport (owner-only, as the roles bind).
fn listen(endpoint: &Endpoint) -> Listener {
    Listener::bind(endpoint, &ListenOptions::default()).unwrap()
}

/// Two connected local streams (a socket pair, or the two ends of a fresh pipe).
fn pair() -> (Stream, Stream) {
    #[cfg(unix)]
    {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        (Stream::from_unix_descriptor(a.into()), Stream::from_unix_descriptor(b.into()))
    }
    #[cfg(windows)]
    {
        let (a, b) = rp::transport::PipeStream::pair().unwrap();
        (Stream::Unix(a), Stream::Unix(b))
    }
}

/// Echoes every frame on `stream` as a RESPONSE with the same payload until it closes.
fn echo(stream: Stream) {
    let mut reader = FrameReader::new(&stream);
    while let Ok(f) = reader.read_frame() {
        let reply = FrameView { kind: FrameKind::Response as i32, ..f }.to_bytes().unwrap();
        if (&stream).write_all(&reply).is_err() {
            break;
        }
    }
}

/// Serves every connection to `endpoint` with `serve` on a thread of its own.
fn spawn_server(endpoint: &Endpoint, serve: impl Fn(Stream) + Send + Sync + 'static) {
    let listener = listen(endpoint);
    let serve = Arc::new(serve);
    std::thread::spawn(move || {
        while let Ok(s) = listener.accept() {
            let serve = Arc::clone(&serve);
            std::thread::spawn(move || serve(s));
        }
    });
}

/// A librp-style echo backend on `endpoint`.
fn spawn_echo_backend(endpoint: &Endpoint) {
    spawn_server(endpoint, echo);
}

/// A backend handoff endpoint served with librp's `accept_handoff`, echoing on adopted
/// connections.
fn spawn_handoff_backend(endpoint: &Endpoint, store: Arc<HandoffStore>) {
    spawn_server(endpoint, move |mut s| {
        if let Ok((handle, _)) = rp::handoff::accept_handoff(&mut s, &store) {
            echo(Stream::from_unix_descriptor(handle));
        }
    });
}

fn roundtrip<S: Read + Write>(stream: &mut S, text: &str) {
    let frame = FrameView { payload_protocol: PROTO, payload: text.as_bytes(), request_id: 9, ..FrameView::default() };
    stream.write_all(&frame.to_bytes().unwrap()).unwrap();
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).unwrap();
    let len = u32::from_le_bytes(header[1..5].try_into().unwrap()) as usize;
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).unwrap();
    let got = reference::Frame::decode(body.as_slice()).unwrap();
    assert_eq!(got.kind, reference::FrameKind::Response as i32);
    assert_eq!(got.request_id, 9);
    assert_eq!(got.payload, text.as_bytes());
}

/// Versions both brokers of the comparison tests serve (the allow list).
const ALLOWED: &str = "1.2.3";

/// The Hello deadline of both brokers (the reference's `RUNNING_PROCESS_BROKER_HELLO_TIMEOUT_MS`,
/// librp's `hello_timeout`).
const HELLO_TIMEOUT: Duration = Duration::from_secs(2);

/// librp's broker at `place`'s `broker` endpoint, serving rp-demo on `backend` (and handing
/// off through `handoff` with its store, when given).
fn librp_broker(place: &Place, backend: &Endpoint, handoff: Option<(Endpoint, Arc<HandoffStore>)>) -> BrokerServer {
    let service = BrokerService {
        service_name: "rp-demo".into(),
        backend_pipe: backend.to_string(),
        daemon_version: "1.2.3".into(),
        allowed_versions: vec![ALLOWED.into()],
        handoff_endpoint: handoff.as_ref().map(|(e, _)| e.clone()),
        handoff_store: handoff.map(|(_, s)| s),
        ..BrokerService::default()
    };
    let mut opts = BrokerServerOptions::new(place.endpoint("broker"), vec![service]);
    opts.hello_timeout = HELLO_TIMEOUT;
    BrokerServer::bind(opts).unwrap()
}

#[test]
fn reference_client_through_librp_broker_to_librp_backend() {
    let place = Place::new("ref-client");
    let backend = place.endpoint("backend");
    spawn_echo_backend(&backend);
    let broker = librp_broker(&place, &backend, None);
    let broker_path = broker.endpoint().to_string();

    let request = ConnectBackendRequest::new(&broker_path, "rp-demo", "1.2.3", "9.9.9");
    let mut conn = connect_to_backend(request).expect("reference client connects through the librp broker");
    assert_eq!(conn.route, BackendConnectionRoute::BrokerNegotiated);
    assert_eq!(conn.endpoint, backend.to_string());
    let n = conn.negotiated.as_ref().unwrap();
    assert_eq!(n.daemon_version, "1.2.3");
    assert_eq!(n.keepalive_interval_secs, 1800);
    roundtrip(&mut conn.stream, "reference client");

    // A refusal from the librp broker reads as the reference's refusal.
    let request = ConnectBackendRequest::new(&broker_path, "no-such", "1.2.3", "9.9.9");
    let err = connect_to_backend(request).unwrap_err();
    assert!(format!("{err:?}").contains("ServiceUnknown") || format!("{err}").contains("not registered"), "{err:?}");
}

#[test]
fn reference_client_adopts_a_librp_handoff() {
    let place = Place::new("ref-adopt");
    let backend = place.endpoint("backend");
    spawn_echo_backend(&backend);
    let store = Arc::new(HandoffStore::default());
    let handoff = place.endpoint("handoff");
    spawn_handoff_backend(&handoff, Arc::clone(&store));
    let broker = librp_broker(&place, &backend, Some((handoff, store)));
    let broker_path = broker.endpoint().to_string();

    let mut request = ConnectBackendRequest::new(&broker_path, "rp-demo", "1.2.3", "9.9.9");
    request.adopt_handed_off_connection = true;
    let mut conn = connect_to_backend(request).unwrap();
    assert_eq!(conn.route, BackendConnectionRoute::HandlePassed);
    roundtrip(&mut conn.stream, "handed off by librp");
}

/// The reference's Hello handler serving rp-demo 1.2.3 (the allow list) on `backend`.
fn reference_hello_handler(backend: &Endpoint) -> HelloHandler {
    let definition = reference::ServiceDefinition {
        service_name: "rp-demo".into(),
        version_allow_list: vec![ALLOWED.into()],
        ..Default::default()
    };
    // Read by the reference for each connection it accepts; the same for every test.
    static DEADLINE: std::sync::Once = std::sync::Once::new();
    DEADLINE.call_once(|| {
        std::env::set_var("RUNNING_PROCESS_BROKER_HELLO_TIMEOUT_MS", HELLO_TIMEOUT.as_millis().to_string())
    });
    HelloHandler::new()
        .with_backend(RegisteredBackend {
            service_definition: definition,
            daemon_version: "1.2.3".into(),
            backend_pipe: backend.to_string(),
            server_capabilities: 0,
        })
        .unwrap()
}

/// Waits until a reference broker accepts on `endpoint`: a connection is made and answered
/// (a foreign framing byte, refused at once, so a one-at-a-time loop is not held up).
fn wait_bound(endpoint: &Endpoint) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = rp::transport::connect(endpoint, Duration::from_secs(1)) {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(b"GET ").unwrap();
            running_process::broker::protocol::read_frame(&mut s).expect("the refusal of a foreign framing byte");
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the reference broker did not bind {endpoint}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A reference broker: the crate's own accept loop (`serve_local_socket_connections`: its
/// listener, peer identity and Hello read deadline) with its Hello handler, on `endpoint`;
/// returns once it accepts connections.
fn spawn_reference_broker(endpoint: &Endpoint, backend: &Endpoint) {
    let handler = reference_hello_handler(backend);
    let name = endpoint.to_string();
    std::thread::spawn(move || serve_local_socket_connections(&name, Arc::new(handler), 10_000));
    wait_bound(endpoint);
}

#[test]
fn librp_client_through_reference_hello_handler() {
    let place = Place::new("ref-broker");
    let backend = place.endpoint("backend");
    spawn_echo_backend(&backend);
    let broker_endpoint = place.endpoint("broker");
    spawn_reference_broker(&broker_endpoint, &backend);

    let opts = BrokerOptions::new(broker_endpoint.clone(), "rp-demo", "1.2.3", "9.9.9");
    let connected = broker::connect(&opts).expect("librp client through the reference Hello handler");
    assert_eq!(connected.route, Route::Negotiated);
    assert_eq!(connected.endpoint, backend);
    let n = connected.negotiated.unwrap();
    assert_eq!(n.keepalive_interval_secs, 1800);
    assert!(n.connection_id >= 1);
    let payload = b"librp client";
    connected
        .conn
        .send(&FrameView { payload_protocol: PROTO, payload, request_id: 3, ..FrameView::default() })
        .unwrap();
    let reply = connected.conn.recv(Some(Duration::from_secs(3))).unwrap();
    assert_eq!(reply.payload, payload);

    // The reference handler's refusal reaches the librp client as a Refusal.
    let opts = BrokerOptions::new(broker_endpoint, "no-such", "1.2.3", "9.9.9");
    let err = broker::connect(&opts).unwrap_err();
    let refusal = err.refusal().expect("a refusal");
    assert_eq!(refusal.code, reference::ErrorCode::ErrorServiceUnknown as i32);
}

#[test]
fn reference_offer_is_served_by_librp() {
    // The reference's encoding of an offer, answered by librp's backend-side handoff code.
    let token = [7u8; 16];
    let offer = reference::HandoffOffer {
        handle_value: 0,
        token: token.to_vec(),
        service_name: "rp-demo".into(),
        correlation_id: 5,
    };
    let frame = running_process::broker::server::handoff::wire::handoff_offer_frame(&offer);
    let body = frame.encode_to_vec();
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&body);

    let store = HandoffStore::default();
    store.insert(&rp::handoff::Token(token)).unwrap();
    let (mut a, mut b) = pair();
    a.write_all(&bytes).unwrap();
    let outcome = rp::handoff::serve_offer(&mut b, &store).unwrap();
    assert!(outcome.accepted);
    assert_eq!(outcome.correlation_id, 5);
    let mut header = [0u8; 5];
    a.read_exact(&mut header).unwrap();
    let mut ack_body = vec![0u8; u32::from_le_bytes(header[1..5].try_into().unwrap()) as usize];
    a.read_exact(&mut ack_body).unwrap();
    let ack_frame = reference::Frame::decode(ack_body.as_slice()).unwrap();
    running_process::broker::server::handoff::wire::validate_handoff_frame(&ack_frame, reference::FrameKind::Response).unwrap();
    let ack = reference::HandoffAck::decode(ack_frame.payload.as_slice()).unwrap();
    assert!(ack.accepted);
    assert_eq!(ack.token, token);
}

#[test]
fn librp_relay_is_what_the_reference_client_validates() {
    // The handoff-ready relay librp's broker sends, checked with the reference's validator.
    let ack = rp::wire::proto::HandoffAck { token: vec![1; 16], accepted: true, error_detail: String::new(), correlation_id: 3 };
    let payload = ack.encode_to_vec();
    let frame = FrameView {
        kind: FrameKind::Event as i32,
        payload_protocol: rp::wire::registry::HANDOFF,
        payload: &payload,
        request_id: 3,
        ..FrameView::default()
    }
    .to_bytes()
    .unwrap();
    let decoded = reference::Frame::decode(&frame[5..]).unwrap();
    running_process::broker::server::handoff::wire::validate_handoff_frame(&decoded, reference::FrameKind::Event).unwrap();
}

/// A daemon answering identity probes on `endpoint` through librp's mux, exactly as a C
/// daemon's loop would, with librp's current-process identity; returns that identity as a
/// broker records it when the daemon registers (the reference's `DaemonProcess`).
fn spawn_mux_daemon(endpoint: &Endpoint) -> running_process::broker::backend_lifecycle::identity::DaemonProcess {
    let path = wire_path(endpoint);
    let ours =
        rp::mux::DaemonIdentity::current_process("interop-ns", &path, Some(30), rp::mux::LegacyHash::Sha256).unwrap();
    assert_eq!(ours.boot_id, running_process::broker::host_identity::current().boot_id, "librp's boot id is the reference's");
    let mux = Arc::new(rp::mux::Mux::new(&ours, &[PROTO], None).unwrap());
    spawn_server(endpoint, move |mut conn| {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = conn.read(&mut chunk).unwrap_or(0);
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            match mux.poll(&buf).unwrap() {
                rp::mux::MuxEvent::NeedMoreBytes => continue,
                rp::mux::MuxEvent::ProbeAnswered { reply, .. } => return conn.write_all(&reply).unwrap(),
                other => panic!("unexpected {other:?}"),
            }
        }
    });
    running_process::broker::backend_lifecycle::identity::DaemonProcess {
        pid: ours.pid,
        exe_path: PathBuf::from(&ours.exe_path),
        exe_hash: ours.exe_hash.clone().try_into().unwrap(),
        legacy_exe_sha256: ours.legacy_exe_sha256,
        boot_id: ours.boot_id.clone(),
        ipc_endpoint: reference::Endpoint { namespace_id: "interop-ns".into(), path },
        started_at_unix_ms: ours.started_at_unix_ms,
        idle_timeout_secs: Some(30),
    }
}

/// The reference's strict prober (`probe_endpoint_with_timeout`: pid alive, executable path and
/// BLAKE3 checked against the OS, boot id, then the probe answer compared field by field) accepts
/// a daemon that answers through librp's mux with librp's current-process identity.
///
/// On Windows the boot id is the registry value the reference reads; a host without it (a fresh
/// Wine prefix: scripts/windows.sh adds one) gives every process an id of its own, and the
/// prober refuses any daemon, the reference's own included (`BootIdMismatch`).
#[test]
fn reference_strict_prober_verifies_a_librp_mux_daemon() {
    use running_process::broker::backend_lifecycle::identity::DaemonProcess as ReferenceDaemon;
    use running_process::broker::backend_lifecycle::probe::probe_endpoint_with_timeout;

    let place = Place::new("strict-probe");
    let expected = spawn_mux_daemon(&place.endpoint("daemon"));
    probe_endpoint_with_timeout(&expected.ipc_endpoint, &expected, Duration::from_secs(5))
        .expect("the reference's strict verification accepts librp's answer");

    // The same check is strict: an identity whose hash is not the executable's is refused
    // (before any connection is made).
    let wrong = ReferenceDaemon { exe_hash: [0; 32], ..expected };
    assert!(probe_endpoint_with_timeout(&wrong.ipc_endpoint, &wrong, Duration::from_secs(1)).is_err());
}

/// A reference broker that hands connections off as it does in production
/// (`complete_negotiated_handoff` from its control-socket accept loop, after the Hello) to a
/// librp backend it verified with its strict probe and registered: on Windows it duplicates
/// the client's pipe into the backend's process (`DuplicateHandle`, by the registered pid) and
/// sends the value in `handle_value`; on Unix the descriptor goes by `SCM_RIGHTS` with its
/// token. The backend (a librp mux daemon and a handoff endpoint that adopts what it is given)
/// echoes on the adopted connection. Returns the broker's endpoint and the offers the backend
/// took.
fn spawn_reference_handoff_broker(place: &Place) -> (Endpoint, std::sync::mpsc::Receiver<Vec<u8>>) {
    use running_process::broker::backend_handle::BackendHandle;
    use running_process::broker::server::{
        complete_negotiated_handoff, serve_control_socket_connections_with_limit_policy_and_post_hello, AdminSnapshot,
        BackendRegistry, BrokerInstanceKey, ControlSocketConnectionLimit, PeerCredentialPolicy, ServeHandoffContext,
    };

    let backend = place.endpoint("backend");
    let expected = spawn_mux_daemon(&backend);
    let handoff = place.endpoint("handoff");
    let offers = spawn_trusting_handoff_backend(&handoff);
    let verified = BackendHandle::probe_with_service("rp-demo", "1.2.3", &expected.ipc_endpoint, &expected)
        .expect("the reference verifies the librp backend");
    let mut registry = BackendRegistry::new();
    registry.insert(BrokerInstanceKey::Shared, verified);

    let broker = place.endpoint("broker");
    let handler = reference_hello_handler(&backend);
    let (name, handoff_name) = (broker.to_string(), handoff.to_string());
    std::thread::spawn(move || {
        let registry = std::sync::Mutex::new(registry);
        let ctx = ServeHandoffContext {
            handoff_endpoint: &handoff_name,
            service_name: "rp-demo",
            service_version: "1.2.3",
            instance: &BrokerInstanceKey::Shared,
            registry: &registry,
        };
        serve_control_socket_connections_with_limit_policy_and_post_hello(
            &name,
            &handler,
            || -> AdminSnapshot { unreachable!("no admin requests here") },
            ControlSocketConnectionLimit::Unbounded,
            &PeerCredentialPolicy::allow_any(),
            |stream, reply| complete_negotiated_handoff(&ctx, stream, reply),
        )
    });
    wait_bound(&broker);
    (broker, offers)
}

/// The reference client through the reference broker's handoff to a librp backend.
#[test]
fn reference_broker_hands_off_to_a_librp_backend() {
    let place = Place::new("ref-handoff");
    let (broker, offers) = spawn_reference_handoff_broker(&place);
    let broker_path = broker.to_string();
    let mut request = ConnectBackendRequest::new(&broker_path, "rp-demo", "1.2.3", "9.9.9");
    request.adopt_handed_off_connection = true;
    let mut conn = connect_to_backend(request).expect("the reference client through the reference broker");
    assert_eq!(conn.route, BackendConnectionRoute::HandlePassed);
    roundtrip(&mut conn.stream, "handed off by the reference to librp");

    // The reference's offer is the one librp's broker makes for the same connection: the same
    // fields, and on Windows (a handle value, never 0) the same bytes. On Unix the reference
    // writes handle_value 0 out (08 00) where librp leaves the default out; both decode alike.
    let theirs = offers.recv_timeout(Duration::from_secs(5)).unwrap();
    let decode = |bytes: &[u8]| {
        let Ok(rp::Decoded::Frame { frame, .. }) = rp::wire::decode_frame(bytes, 512) else { panic!("{bytes:02x?}") };
        (frame.kind, frame.payload_protocol, frame.request_id, rp::wire::proto::HandoffOffer::decode(frame.payload).unwrap())
    };
    let (_, _, _, offer) = decode(&theirs);
    let ours = rp::handoff::offer_frame_with_handle(offer.handle_value, &offer.token, "rp-demo", offer.correlation_id);
    assert_eq!(decode(&ours), decode(&theirs));
    #[cfg(windows)]
    {
        assert_ne!(offer.handle_value, 0);
        assert_eq!(ours, theirs, "librp's offer is the reference's, byte for byte");
    }
}

/// librp's client, adopting handoffs, through the reference broker's handoff to a librp
/// backend: the Hello connection itself is the backend connection.
#[test]
fn librp_client_is_handed_off_by_the_reference_broker() {
    let place = Place::new("librp-adopt");
    let (broker, offers) = spawn_reference_handoff_broker(&place);
    let mut opts = BrokerOptions::new(broker, "rp-demo", "1.2.3", "9.9.9");
    opts.adopt_handoff = true;
    let connected = broker::connect(&opts).expect("librp client through the reference broker's handoff");
    assert_eq!(connected.route, Route::HandedOff);
    let payload = b"librp client, handed off by the reference";
    connected
        .conn
        .send(&FrameView { payload_protocol: PROTO, payload, request_id: 4, ..FrameView::default() })
        .unwrap();
    let reply = connected.conn.recv(Some(Duration::from_secs(3))).unwrap();
    assert_eq!(reply.payload, payload);
    assert!(offers.recv_timeout(Duration::from_secs(5)).is_ok());
}

/// Reference clients at once through librp's broker to librp's backend: each is served (on
/// Windows every one takes a pipe instance of its own, waiting while none is free).
#[test]
fn reference_clients_at_once_through_librp_broker() {
    let place = Place::new("ref-many");
    let backend = place.endpoint("backend");
    spawn_echo_backend(&backend);
    let broker = librp_broker(&place, &backend, None);
    let broker_path = broker.endpoint().to_string();
    std::thread::scope(|scope| {
        for i in 0..16 {
            let broker_path = &broker_path;
            scope.spawn(move || {
                let request = ConnectBackendRequest::new(broker_path, "rp-demo", "1.2.3", "9.9.9");
                let mut conn = connect_to_backend(request).unwrap_or_else(|e| panic!("client {i}: {e:?}"));
                roundtrip(&mut conn.stream, &format!("client {i}"));
            });
        }
    });
}

/// The HandoffOffer frame librp's broker sends is read and served by the reference backend's
/// `read_handoff_offer` / `respond_to_handoff_offer`: accepted with the token it expects, and
/// answered with a well-formed rejection for another token.
#[test]
fn reference_backend_serves_a_librp_offer() {
    use running_process::broker::backend_lib::wire::{read_handoff_offer, respond_to_handoff_offer};
    use running_process::broker::server::HandoffTokenStore;

    for (matching, label) in [(true, "accepted"), (false, "rejected")] {
        let mut store = HandoffTokenStore::new();
        let now = std::time::Instant::now();
        let expected = store.issue(now).unwrap();
        let presented: Vec<u8> = if matching { expected.as_bytes().to_vec() } else { vec![0x42; 16] };
        let (broker_side, backend_side) = pair();
        (&broker_side).write_all(&rp::handoff::offer_frame(&presented, "rp-demo", 77)).unwrap();

        let mut backend = backend_side;
        let offer = read_handoff_offer(&mut backend).expect("the reference reads librp's offer");
        assert_eq!(offer.correlation_id, 77, "{label}");
        assert_eq!(offer.service_name, "rp-demo", "{label}");
        respond_to_handoff_offer(&mut backend, &mut store, expected, offer, now).unwrap();

        let mut reader = FrameReader::new(&broker_side);
        let frame = reader.read_frame().unwrap();
        assert_eq!(frame.payload_protocol, 0xD0FF);
        assert_eq!(frame.kind, FrameKind::Response as i32);
        assert_eq!(frame.request_id, 77);
        let ack = rp::wire::proto::HandoffAck::decode(frame.payload).unwrap();
        assert_eq!(ack.accepted, matching, "{label}");
        assert_eq!(ack.token, presented, "{label}: the ack echoes the presented token");
        assert_eq!(ack.correlation_id, 77);
        assert_eq!(ack.error_detail.is_empty(), matching, "{label}: {}", ack.error_detail);
    }
}

/// What a client learns from one broker answer: the reference client's classification of the
/// refusal, its code and retry hint (the reason text may differ in wording).
#[derive(Debug, PartialEq)]
struct Answer {
    kind: RefusalKind,
    code: reference::ErrorCode,
    retry_after_ms: u64,
}

/// The reference client's view of a Hello for `service`/`version` sent to `broker`.
fn reference_client_hello(broker: &str, service: &str, version: &str) -> (Answer, String) {
    let err = connect_to_backend(ConnectBackendRequest::new(broker, service, version, "9.9.9"))
        .err()
        .unwrap_or_else(|| panic!("{service} {version}: negotiated, expected a refusal"));
    let kind = err.refusal_kind().unwrap_or_else(|| panic!("{service} {version}: not a refusal: {err:?}"));
    match err {
        BrokerClientError::Refused { code, reason, retry_after_ms } => (Answer { kind, code, retry_after_ms }, reason),
        other => panic!("{other:?}"),
    }
}

/// Sends raw `bytes` to `broker` (then shuts the write side when `eof`) and reads the body of
/// the one answer frame with the reference's framing.
fn raw_body(broker: &Endpoint, bytes: &[u8], eof: bool) -> Vec<u8> {
    let mut s = rp::transport::connect(broker, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(bytes).unwrap();
    if eof {
        s.shutdown(std::net::Shutdown::Write).unwrap();
    }
    running_process::broker::protocol::read_frame(&mut s).expect("an answer frame")
}

/// The answer to raw `bytes`, read with the reference's message types.
fn raw_answer(broker: &Endpoint, bytes: &[u8], eof: bool) -> (Answer, String, u64) {
    let body = raw_body(broker, bytes, eof);
    let frame = reference::Frame::decode(body.as_slice()).unwrap();
    assert_eq!(frame.kind, reference::FrameKind::Response as i32);
    let reply = reference::HelloReply::decode(frame.payload.as_slice()).unwrap();
    let Some(reference::hello_reply::Result::Refused(r)) = reply.result else { panic!("not a refusal: {reply:?}") };
    let code = reference::ErrorCode::try_from(r.code).unwrap();
    (Answer { kind: RefusalKind::from_code(code), code, retry_after_ms: r.retry_after_ms }, r.reason, frame.request_id)
}

/// librp's broker and the reference broker, side by side, serving rp-demo on one echo backend.
struct TwoBrokers {
    _place: Place,
    ours: BrokerServer,
    theirs: Endpoint,
}

impl TwoBrokers {
    fn new(test: &str) -> TwoBrokers {
        let place = Place::new(test);
        let backend = place.endpoint("backend");
        spawn_echo_backend(&backend);
        let ours = librp_broker(&place, &backend, None);
        let theirs = place.endpoint("reference");
        spawn_reference_broker(&theirs, &backend);
        TwoBrokers { _place: place, ours, theirs }
    }

    fn ours(&self) -> Endpoint {
        self.ours.endpoint().clone()
    }

    /// Both brokers' answers to raw `bytes` (then EOF when `eof`): the same meaning, the
    /// reference's `reason`, and the same bytes.
    fn compare_raw(&self, bytes: &[u8], eof: bool, reason: &str) {
        let want = raw_answer(&self.theirs, bytes, eof);
        let got = raw_answer(&self.ours(), bytes, eof);
        assert_eq!(want.1, reason, "the reference's reason");
        assert_eq!((&got.0, got.2), (&want.0, want.2), "{reason}: librp said {:?}", got.1);
        assert_eq!(got.1, reason);
        // Not only the same meaning: the same bytes.
        assert_eq!(raw_body(&self.ours(), bytes, eof), raw_body(&self.theirs, bytes, eof), "{reason}");
    }
}

/// A framed Hello for rp-demo 1.2.3, as the reference encodes it.
fn hello_frame() -> Vec<u8> {
    let hello = reference::Hello {
        client_min_protocol: 1,
        client_max_protocol: 1,
        service_name: "rp-demo".into(),
        wanted_version: "1.2.3".into(),
        ..Default::default()
    };
    let frame = reference::Frame {
        envelope_version: 1,
        kind: reference::FrameKind::Request as i32,
        payload: hello.encode_to_vec(),
        request_id: 1,
        ..Default::default()
    }
    .encode_to_vec();
    let mut full = vec![1u8];
    full.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    full.extend_from_slice(&frame);
    full
}

/// Each Hello the reference broker refuses in a known way, sent by the reference client to the
/// reference broker and to librp's broker: the same `RefusalKind`, code and retry hint.
#[test]
fn librp_broker_refuses_like_the_reference_broker() {
    let brokers = TwoBrokers::new("refusals");
    let (ours_path, theirs_path) = (brokers.ours().to_string(), brokers.theirs.to_string());

    let cases = [
        ("rp-demo", "1.2.4", "outside the allow list"),
        ("Rp_Demo", "1.2.3", "service name not [a-z0-9-]"),
        (&*"a".repeat(65), "1.2.3", "service name over 64"),
        ("rp-demo", "1.2", "wanted_version not semver"),
        ("rp-demo", "1.2.3-RC1", "upper-case pre-release"),
        ("BAD", "x", "bad name and bad version"),
        ("no-such", "x", "unknown service and bad version"),
        ("no-such", "1.2.3", "unknown service"),
    ];
    for (service, version, what) in cases {
        let (want, want_reason) = reference_client_hello(&theirs_path, service, version);
        let (got, got_reason) = reference_client_hello(&ours_path, service, version);
        assert_eq!(got, want, "{what}: librp said {got_reason:?}, the reference {want_reason:?}");
    }
    // The table of the issue, pinned: the reference's answers are what we compare with.
    let (a, _) = reference_client_hello(&ours_path, "rp-demo", "1.2.4");
    assert_eq!((a.kind, a.retry_after_ms), (RefusalKind::VersionBlocked, 30_000));
    let (a, reason) = reference_client_hello(&ours_path, "Rp_Demo", "1.2.3");
    assert_eq!((a.kind, reason.as_str()), (RefusalKind::Other(reference::ErrorCode::ErrorPeerRejected), "invalid service_name"));
    let (_, reason) = reference_client_hello(&ours_path, "rp-demo", "1.2");
    assert_eq!(reason, "invalid wanted_version");

    // First frames the reference client cannot send: an undecodable body behind a good framing
    // byte, a frame announcing more than 64 KiB, a framing byte that is not 1.
    let raw_cases: [(&[u8], &str); 3] = [
        (&[0x01, 3, 0, 0, 0, 0xff, 0xff, 0xff], "malformed broker Frame"),
        (&[0x01, 0x01, 0x00, 0x01, 0x00], "initial Hello frame exceeds 64 KiB"),
        (&[0x47, 0x45, 0x54, 0x20], "unsupported framing version"),
    ];
    for (bytes, reason) in raw_cases {
        brokers.compare_raw(bytes, false, reason);
    }

    // Every Hello case, sent raw with a request id and trace context: librp's answer is the
    // reference's, byte for byte (request id and trace context echoed).
    for (service, version, what) in cases {
        let hello = reference::Hello {
            client_min_protocol: 1,
            client_max_protocol: 1,
            service_name: service.into(),
            wanted_version: version.into(),
            ..Default::default()
        };
        let frame = reference::Frame {
            envelope_version: 1,
            kind: reference::FrameKind::Request as i32,
            payload: hello.encode_to_vec(),
            request_id: 9,
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
            tracestate: "rp=1".into(),
            ..Default::default()
        }
        .encode_to_vec();
        let mut bytes = vec![1u8];
        bytes.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&frame);
        let want = raw_body(&brokers.theirs, &bytes, false);
        let got = raw_body(&brokers.ours(), &bytes, false);
        assert_eq!(got, want, "{what}");
    }
}

/// A Hello cut short by the end of the stream (a part of it, or nothing): both brokers answer
/// "incomplete Hello frame", byte for byte.
#[test]
#[cfg_attr(
    windows,
    ignore = "a named pipe has no half-close: the client cannot end its stream and still read the answer, \
              and the reference broker's Hello read (PIPE_NOWAIT) sees no end of stream before its deadline"
)]
fn librp_broker_answers_a_hello_cut_short_like_the_reference_broker() {
    let brokers = TwoBrokers::new("cut-short");
    let full = hello_frame();
    for bytes in [&full[..3], &full[..full.len() - 1], &[]] {
        brokers.compare_raw(bytes, true, "incomplete Hello frame");
    }
}

/// A first frame still incomplete at the Hello deadline (a part of a Hello, or nothing, and
/// then silence): neither broker answers; both close the connection at their deadline.
#[test]
fn librp_broker_closes_a_hello_cut_short_at_the_deadline_like_the_reference_broker() {
    let brokers = TwoBrokers::new("deadline");
    let full = hello_frame();
    let endpoints = [("the reference", brokers.theirs.clone()), ("librp", brokers.ours())];
    std::thread::scope(|scope| {
        for bytes in [&full[..3], &full[..full.len() - 1], &[]] {
            for (who, endpoint) in &endpoints {
                scope.spawn(move || {
                    let mut s = rp::transport::connect(endpoint, Duration::from_secs(5)).unwrap();
                    s.set_read_timeout(Some(HELLO_TIMEOUT * 5)).unwrap();
                    s.write_all(bytes).unwrap();
                    let started = std::time::Instant::now();
                    let mut answer = Vec::new();
                    let end = s.read_to_end(&mut answer);
                    assert!(answer.is_empty(), "{who} answered {} bytes of a Hello: {answer:02x?}", bytes.len());
                    assert!(end.is_ok(), "{who}: the connection was not closed: {end:?}");
                    assert!(started.elapsed() < HELLO_TIMEOUT * 4, "{who} closed late");
                });
            }
        }
    });
}

/// Takes the one handoff offer on `s` whatever its token (as a backend behind `rp broker
/// --handoff` does: that broker keeps no token store another process could share), acks it,
/// and returns the handed-off connection with the offer frame.
fn take_any_offer(s: &mut Stream) -> Option<(OwnedDescriptor, Vec<u8>)> {
    #[cfg(unix)]
    let (bytes, handle) = {
        let mut first = vec![0u8; 512];
        let (n, fd) = rp::handoff::recv_with_fd(&*s, &mut first).ok()?;
        first.truncate(n);
        // librp's broker sends the descriptor with the offer's first bytes; the reference's with
        // the 16 token bytes alone (its "sideband"), the offer frame after them.
        if n == rp::handoff::TOKEN_LEN {
            first = FrameReader::new(&*s).read_frame().ok()?.to_bytes().ok()?;
        }
        (first, fd?)
    };
    #[cfg(windows)]
    let (bytes, handle) = {
        let frame = FrameReader::new(&*s).read_frame().ok()?.to_bytes().ok()?;
        let rp::Decoded::Frame { frame: view, .. } = rp::wire::decode_frame(&frame, 512).ok()? else { return None };
        let offer = rp::wire::proto::HandoffOffer::decode(view.payload).ok()?;
        // The connection's pipe handle, as the broker duplicated it into this process.
        let handle = rp::transport::adopt_handle(offer.handle_value).ok()?;
        (frame, handle)
    };
    let Ok(rp::Decoded::Frame { frame, .. }) = rp::wire::decode_frame(&bytes, 512) else { return None };
    let offer = rp::wire::proto::HandoffOffer::decode(frame.payload).ok()?;
    let store = HandoffStore::default();
    store.insert(&rp::handoff::Token(offer.token.as_slice().try_into().ok()?)).unwrap();
    let (ack, _) = rp::handoff::answer_offer(&frame, &store).unwrap();
    s.write_all(&ack).ok()?;
    Some((handle, bytes))
}

/// A backend handoff endpoint that takes every offer made to it ([`take_any_offer`]), echoing
/// on adopted connections; the offers taken come out of the receiver.
fn spawn_trusting_handoff_backend(endpoint: &Endpoint) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    spawn_server(endpoint, move |mut s| {
        if let Some((handle, offer)) = take_any_offer(&mut s) {
            let _ = tx.lock().unwrap().send(offer);
            echo(Stream::from_unix_descriptor(handle));
        }
    });
    rx
}

/// The broker as `rp broker --service rp-demo=... --handoff rp-demo=HANDOFF` sets it up (a
/// handoff endpoint, no shared token store): the reference client's route is HandlePassed.
#[test]
fn reference_client_is_handed_off_by_a_storeless_broker() {
    let place = Place::new("ref-storeless");
    let backend = place.endpoint("backend");
    let handoff = place.endpoint("handoff");
    spawn_trusting_handoff_backend(&handoff);
    let service = BrokerService {
        service_name: "rp-demo".into(),
        backend_pipe: backend.to_string(),
        daemon_version: "1.2.3".into(),
        handoff_endpoint: Some(handoff),
        ..BrokerService::default()
    };
    let broker = BrokerServer::bind(BrokerServerOptions::new(place.endpoint("broker"), vec![service])).unwrap();
    let broker_path = broker.endpoint().to_string();
    let mut request = ConnectBackendRequest::new(&broker_path, "rp-demo", "1.2.3", "9.9.9");
    request.adopt_handed_off_connection = true;
    let mut conn = connect_to_backend(request).unwrap();
    assert_eq!(conn.route, BackendConnectionRoute::HandlePassed);
    roundtrip(&mut conn.stream, "handed off without a shared store");
    drop(broker);
}

