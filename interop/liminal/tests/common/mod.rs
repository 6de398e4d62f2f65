//! Shared harness of the live liminal tests: a real liminal server embedded on 127.0.0.1:0 in a
//! private temporary directory, liminal-sdk's caller, a small raw-socket client written from the
//! wire facts, and a frame-aware relay that lets a test act as the server toward a worker (what
//! the server itself never does, such as sending a Ping).
#![allow(dead_code)]

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use liminal_bus_protocol::WorkerRegistration;
use liminal_sdk::{ConnectionPoolConfig, ConversationHandle, RemoteConfig, RemoteConversationHandle, SdkError};
use liminal_server::auth_revocation::{Digest32, GrantLogId, RevocationAuthority, RevocationPolicy};
use liminal_server::config::{AuthConfig, LimitsConfig, ServerConfig, ServicesConfig};
use liminal_server::server::connection::services::build_connection_services;
use liminal_server::server::connection::{ConnectionNotifier, ConnectionSupervisor};
use liminal_server::server::listener::ServerListener;
use liminal_server::ServerError;

/// How long any single wait in these tests may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// How the embedded server is configured.
#[derive(Clone, Debug, Default)]
pub struct Setup {
    /// A bearer token every Connect must carry (`[auth] token`).
    pub token: Option<String>,
    /// Install a grant-revocation policy without the authority service: every Connect is
    /// refused.
    pub revocation: bool,
    /// The embedding application declines every worker registration with these words.
    pub decline_registrations: Option<String>,
    /// The embedding application records each registration as the server decoded it.
    pub record_registrations: bool,
    /// The server's wait for a worker's reply (its default when `None`).
    pub reply_timeout_ms: Option<u64>,
}

/// A private directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rp-liminal-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The embedding application's hook on worker registrations: records each one, and declines
/// it when told to.
#[derive(Debug)]
struct Notifier {
    decline: Option<String>,
    seen: Arc<Mutex<Vec<WorkerRegistration>>>,
}

impl ConnectionNotifier for Notifier {
    fn on_worker_registered(&self, _pid: u64, registration: &WorkerRegistration) -> Result<(), ServerError> {
        self.seen.lock().unwrap().push(registration.clone());
        match &self.decline {
            Some(words) => Err(ServerError::ConfigValidation { message: words.clone() }),
            None => Ok(()),
        }
    }

    fn on_worker_unregistered(&self, _pid: u64) {}
}

/// A running liminal server; shut down (Disconnect to every connection) when dropped.
pub struct Server {
    listener: Option<ServerListener>,
    supervisor: ConnectionSupervisor,
    addr: SocketAddr,
    down: bool,
    registrations: Arc<Mutex<Vec<WorkerRegistration>>>,
    _dir: TempDir,
}

impl Server {
    /// A server with the default configuration.
    pub fn start() -> Server {
        Server::with(Setup::default())
    }

    pub fn with(setup: Setup) -> Server {
        let dir = TempDir::new("server");
        let mut limits = LimitsConfig::default();
        if let Some(ms) = setup.reply_timeout_ms {
            limits.reply_timeout_ms = ms;
        }
        let config = ServerConfig {
            listen_address: "127.0.0.1:0".parse().unwrap(),
            extra_listen_addresses: Vec::new(),
            health_listen_address: "127.0.0.1:0".parse().unwrap(),
            channels: Vec::new(),
            routing_rules: Vec::new(),
            persistence_path: Some(dir.path().to_path_buf()),
            cluster: None,
            auth: setup.token.clone().map(|token| AuthConfig {
                token,
                pass: None,
                lys: None,
                require_verified_worker: false,
            }),
            drain_timeout_ms: 5_000,
            services: ServicesConfig::default(),
            limits,
            participant: None,
            websocket: None,
            open: None,
            templates: Default::default(),
            agents: None,
        };
        let services = build_connection_services(&config).expect("liminal services");
        let mut builder = ConnectionSupervisor::builder(services).limits(limits);
        if let Some(auth) = &config.auth {
            builder = builder.auth(auth).expect("auth config");
        }
        let registrations = Arc::new(Mutex::new(Vec::new()));
        if setup.decline_registrations.is_some() || setup.record_registrations {
            let seen = Arc::clone(&registrations);
            builder = builder.notifier(Arc::new(Notifier { decline: setup.decline_registrations, seen }));
        }
        let supervisor = builder.build().expect("liminal supervisor");
        if setup.revocation {
            let policy = RevocationPolicy {
                log: GrantLogId::new("rp-interop-grants", 0).unwrap(),
                audience: "rp-interop".to_owned(),
                issuer: Digest32([0x5a; 32]),
            };
            supervisor
                .install_revocation(Arc::new(RevocationAuthority::unpublished(policy)))
                .expect("revocation policy");
        }
        let listener = ServerListener::bind(&config, supervisor).expect("liminal listener");
        let supervisor = listener.supervisor();
        let addr = listener.local_addr();
        Server { listener: Some(listener), supervisor, addr, down: false, registrations, _dir: dir }
    }

    /// The embedded supervisor, for what an embedding application can see.
    pub fn supervisor(&self) -> &ConnectionSupervisor {
        &self.supervisor
    }

    /// The registrations the server decoded, in order (with `record_registrations`).
    pub fn registrations(&self) -> Vec<WorkerRegistration> {
        self.registrations.lock().unwrap().clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `liminal+tcp://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("liminal+tcp://{}", self.addr)
    }

    /// Stops accepting, sends every connection an orderly Disconnect, waits (bounded) until
    /// they are gone, and stops the server.
    pub fn shutdown(&mut self) {
        if self.down {
            return;
        }
        self.down = true;
        if let Some(listener) = self.listener.take() {
            let _ = listener.shutdown();
        }
        let since = self.supervisor.departures().unwrap_or(0);
        let live = self.supervisor.active_connection_count() as u64;
        self.supervisor.force_close_active_connections();
        let _ = self.supervisor.await_departures(since, live, Instant::now() + WAIT);
        self.supervisor.shutdown();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Polls a future that the SDK hands out already resolved.
pub fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("the SDK's receive future was not ready"),
    }
}

/// One request through liminal-sdk's caller on `subject` (its conversation), answered by the
/// worker serving that task queue: the JSON reply, or the SDK's error.
pub fn ask(addr: SocketAddr, subject: &str, request: serde_json::Value) -> Result<serde_json::Value, SdkError> {
    ask_with_token(addr, subject, request, None)
}

pub fn ask_with_token(
    addr: SocketAddr,
    subject: &str,
    request: serde_json::Value,
    token: Option<&[u8]>,
) -> Result<serde_json::Value, SdkError> {
    let config = RemoteConfig::new(addr.to_string(), "rp-interop", subject.to_owned(), ConnectionPoolConfig::new(1, 5_000, 16))?;
    let config = match token {
        Some(token) => config.connect_tcp_with_auth(token)?,
        None => config.connect_tcp()?,
    };
    let conversation = RemoteConversationHandle::new(&config);
    conversation.request(request)?;
    ready(conversation.receive::<serde_json::Value>())
}

/// [`ask`] from its own thread, so a worker on this thread can answer it.
pub fn ask_async(
    addr: SocketAddr,
    subject: &str,
    request: serde_json::Value,
) -> std::thread::JoinHandle<Result<serde_json::Value, SdkError>> {
    let subject = subject.to_owned();
    std::thread::spawn(move || ask(addr, &subject, request))
}

// ---- the raw-socket worker -------------------------------------------------------------------

pub const CONNECT: u8 = 0x01;
pub const CONNECT_ACK: u8 = 0x02;
pub const CONNECT_ERROR: u8 = 0x03;
pub const DISCONNECT: u8 = 0x04;
pub const PING: u8 = 0x13;
pub const PONG: u8 = 0x14;
pub const PUSH: u8 = 0x15;
pub const PUSH_REPLY: u8 = 0x16;
pub const WORKER_REGISTER: u8 = 0x17;
pub const WORKER_REGISTER_ACK: u8 = 0x18;

/// One frame as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

pub fn encode(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// A worker speaking the liminal wire directly over a TCP socket.
pub struct RawWorker {
    pub stream: TcpStream,
}

impl RawWorker {
    /// Connects and sends Connect offering `min..=max` with `token`; returns the socket and
    /// the server's answer (ConnectAck or ConnectError).
    pub fn connect(addr: SocketAddr, min: (u16, u16), max: (u16, u16), token: &[u8]) -> (RawWorker, Frame) {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut worker = RawWorker { stream };
        let mut payload = Vec::new();
        for (major, minor) in [min, max] {
            payload.extend_from_slice(&major.to_be_bytes());
            payload.extend_from_slice(&minor.to_be_bytes());
        }
        put_bytes(&mut payload, token);
        worker.send(CONNECT, 0, 0, &payload);
        let answer = worker.read().expect("an answer to Connect");
        (worker, answer)
    }

    /// Sends WorkerRegister for `task_queue` under `identity`; returns WorkerRegisterAck.
    pub fn register(&mut self, task_queue: &str, identity: &str) -> Frame {
        let mut payload = Vec::new();
        payload.extend_from_slice(&1u32.to_be_bytes());
        put_bytes(&mut payload, b"rp-interop");
        put_bytes(&mut payload, task_queue.as_bytes());
        payload.push(0);
        payload.extend_from_slice(&1u32.to_be_bytes());
        put_bytes(&mut payload, task_queue.as_bytes());
        put_bytes(&mut payload, identity.as_bytes());
        self.send(WORKER_REGISTER, 0, 0, &payload);
        self.read().expect("an answer to WorkerRegister")
    }

    pub fn send(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        self.stream.write_all(&encode(kind, flags, stream, payload)).unwrap();
    }

    /// The next frame, or the I/O error (EOF, timeout).
    pub fn read(&mut self) -> std::io::Result<Frame> {
        let mut header = [0u8; 10];
        self.stream.read_exact(&mut header)?;
        let len = u32::from_be_bytes(header[6..10].try_into().unwrap()) as usize;
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload)?;
        Ok(Frame {
            kind: header[0],
            flags: header[1],
            stream: u32::from_be_bytes(header[2..6].try_into().unwrap()),
            payload,
        })
    }

    /// The next Push as (correlation id, payload), skipping nothing else silently: any other
    /// frame fails the test.
    pub fn recv_push(&mut self) -> (u64, Vec<u8>) {
        let frame = self.read().expect("a Push");
        assert_eq!(frame.kind, PUSH, "expected a Push, got {frame:?}");
        let correlation = u64::from_be_bytes(frame.payload[0..8].try_into().unwrap());
        let len = u32::from_be_bytes(frame.payload[8..12].try_into().unwrap()) as usize;
        assert_eq!(frame.payload.len(), 12 + len);
        (correlation, frame.payload[12..].to_vec())
    }

    /// Sends PushReply (flags 0: the answer; 1: a refusal record).
    pub fn reply(&mut self, correlation: u64, flags: u8, payload: &[u8]) {
        let mut body = correlation.to_be_bytes().to_vec();
        put_bytes(&mut body, payload);
        self.send(PUSH_REPLY, flags, 1, &body);
    }
}

// ---- a frame-aware relay between a worker and the server -------------------------------------

/// What the relay saw and did.
#[derive(Debug, Default)]
pub struct RelayLog {
    /// Frame types the worker sent, in order (Pongs included, though not forwarded).
    pub from_worker: Vec<u8>,
    /// Frame types the server sent, in order.
    pub from_server: Vec<u8>,
    /// Frames the relay put in front of each Push on its way to the worker.
    pub injected: usize,
}

/// Relays one worker connection to the server, frame by frame. In front of every Push it
/// sends the worker `inject` (for example a Ping and a frame type the worker does not know), as
/// a server could; the worker's Pongs are recorded and not forwarded (the server sent no Ping).
pub struct Relay {
    pub addr: SocketAddr,
    pub log: Arc<std::sync::Mutex<RelayLog>>,
}

fn read_raw(stream: &mut TcpStream) -> std::io::Result<Frame> {
    let mut header = [0u8; 10];
    stream.read_exact(&mut header)?;
    let len = u32::from_be_bytes(header[6..10].try_into().unwrap()) as usize;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload)?;
    Ok(Frame { kind: header[0], flags: header[1], stream: u32::from_be_bytes(header[2..6].try_into().unwrap()), payload })
}

impl Relay {
    pub fn start(server: SocketAddr, inject: Vec<Vec<u8>>) -> Relay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(std::sync::Mutex::new(RelayLog::default()));
        let log2 = Arc::clone(&log);
        std::thread::spawn(move || {
            let Ok((worker, _)) = listener.accept() else { return };
            let upstream = TcpStream::connect(server).unwrap();
            let (mut w_in, mut w_out) = (worker.try_clone().unwrap(), worker);
            let (mut s_in, mut s_out) = (upstream.try_clone().unwrap(), upstream);
            let log3 = Arc::clone(&log2);
            let mut w_out2 = w_out.try_clone().unwrap();
            std::thread::spawn(move || {
                while let Ok(f) = read_raw(&mut w_in) {
                    log3.lock().unwrap().from_worker.push(f.kind);
                    if f.kind == PONG {
                        continue;
                    }
                    if s_out.write_all(&encode(f.kind, f.flags, f.stream, &f.payload)).is_err() {
                        break;
                    }
                }
                let _ = s_out.shutdown(std::net::Shutdown::Both);
            });
            while let Ok(f) = read_raw(&mut s_in) {
                log2.lock().unwrap().from_server.push(f.kind);
                if f.kind == PUSH {
                    for bytes in &inject {
                        if w_out2.write_all(bytes).is_err() {
                            return;
                        }
                        log2.lock().unwrap().injected += 1;
                    }
                }
                if w_out.write_all(&encode(f.kind, f.flags, f.stream, &f.payload)).is_err() {
                    break;
                }
            }
            let _ = w_out.shutdown(std::net::Shutdown::Both);
        });
        Relay { addr, log }
    }
}
