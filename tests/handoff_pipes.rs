//! Windows: the broker hands a client's named pipe to the backend as running-process does
//! there (the handle duplicated into the backend, its value in `HandoffOffer.handle_value`),
//! and the backend adopts it and serves the client on it: a backend in the broker's process,
//! and one in another process (this test binary re-executed: `handoff_backend_child`), whose
//! handle table the handle is duplicated into.
#![cfg(windows)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use prost::Message;
use rp::broker::{connect, BrokerOptions, BrokerServer, BrokerServerOptions, BrokerService, Conn, Route};
use rp::handoff::{accept_handoff, offer_frame_with_handle, HandoffStore, Token, TOKEN_LEN};
use rp::transport::{duplicate_handle_to, Endpoint, PipeListener, Stream};
use rp::wire::proto::{FrameKind, HandoffAck};
use rp::wire::{FrameReader, FrameView};
use rp::ErrorKind;

/// The backend process's handoff pipe name and the one token it accepts (hex).
const PIPE_ENV: &str = "RP_HANDOFF_CHILD_PIPE";
const TOKEN_ENV: &str = "RP_HANDOFF_CHILD_TOKEN";

fn name(tag: &str) -> String {
    format!("rp-handoff-pipes-{}-{tag}", std::process::id())
}

#[test]
fn a_handed_off_pipe_is_adopted_and_served_by_the_backend() {
    let store = Arc::new(HandoffStore::default());
    let handoff_name = name("handoff");
    let listener = PipeListener::bind(&handoff_name).unwrap();
    let backend_store = Arc::clone(&store);
    let backend = std::thread::spawn(move || {
        let mut control = listener.accept().unwrap();
        let (handle, outcome) = accept_handoff(&mut control, &backend_store).unwrap();
        assert!(outcome.accepted);
        assert_eq!(outcome.service_name, "good");
        // Serve the adopted connection: echo one frame.
        let adopted = Stream::from_unix_descriptor(handle);
        let mut reader = FrameReader::new(adopted.try_clone().unwrap());
        let f = reader.read_frame().unwrap();
        let reply = FrameView { kind: FrameKind::Response as i32, ..f }.to_bytes().unwrap();
        (&adopted).write_all(&reply).unwrap();
        std::thread::sleep(Duration::from_millis(200));
    });
    let services = vec![BrokerService {
        service_name: "good".into(),
        backend_pipe: name("backend"),
        daemon_version: "1.0.0".into(),
        handoff_endpoint: Some(Endpoint::Pipe(handoff_name)),
        handoff_store: Some(Arc::clone(&store)),
        ..BrokerService::default()
    }];
    let broker_ep = Endpoint::Pipe(name("broker"));
    let broker = BrokerServer::bind(BrokerServerOptions::new(broker_ep.clone(), services)).unwrap();
    let mut opts = BrokerOptions::new(broker_ep, "good", "1.0.0", "1.0.0");
    opts.adopt_handoff = true;
    opts.handoff_wait = Duration::from_secs(5);
    let connected = connect(&opts).unwrap();
    assert_eq!(connected.route, Route::HandedOff);
    connected
        .conn
        .send(&FrameView { payload_protocol: 0x7001, payload: b"through the backend", request_id: 3, ..FrameView::default() })
        .unwrap();
    let echoed = connected.conn.recv(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(echoed.payload, b"through the backend");
    assert_eq!(echoed.request_id, 3);
    backend.join().unwrap();
    // The broker counts the handoff once its handoff thread is done.
    let mut stats = broker.stats();
    for _ in 0..300 {
        if stats.handoffs_accepted + stats.handoffs_failed > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        stats = broker.stats();
    }
    assert_eq!((stats.handoffs_accepted, stats.handoffs_failed), (1, 0), "{stats:?}");
}

/// The backend process: serves handoff offers on its pipe (the token of `TOKEN_ENV` is the one
/// it accepts) and echoes, on every connection it adopts, each frame with " from <its pid>"
/// appended, until the client leaves. Prints `ready`, then `adopted` or `rejected: <reason>` per
/// offer.
#[test]
#[ignore = "run by a_pipe_handed_to_another_process_is_adopted_and_served_there as a child process"]
fn handoff_backend_child() {
    let (Ok(name), Ok(hex)) = (std::env::var(PIPE_ENV), std::env::var(TOKEN_ENV)) else { return };
    let mut token = [0u8; TOKEN_LEN];
    for (i, b) in token.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    let store = HandoffStore::default();
    store.insert(&Token(token)).unwrap();
    let listener = PipeListener::bind(&name).unwrap();
    let mut out = std::io::stdout();
    writeln!(out, "ready").unwrap();
    loop {
        let mut control = listener.accept().unwrap();
        match accept_handoff(&mut control, &store) {
            Ok((handle, _)) => {
                writeln!(out, "adopted").unwrap();
                let adopted = Conn::new(Stream::from_unix_descriptor(handle)).unwrap();
                while let Ok(f) = adopted.recv(Some(Duration::from_secs(20))) {
                    let mut payload = f.payload.clone();
                    payload.extend_from_slice(format!(" from {}", std::process::id()).as_bytes());
                    let kind = FrameKind::Response as i32;
                    let reply = FrameView { kind, payload: &payload, request_id: f.request_id, ..FrameView::default() };
                    if adopted.send(&reply).is_err() {
                        break;
                    }
                }
            }
            Err(e) => writeln!(out, "rejected: {e}").unwrap(),
        }
        out.flush().unwrap();
    }
}

/// The backend process; killed by its PID when dropped.
struct Backend {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Backend {
    fn start(pipe: &str, token: &Token) -> Backend {
        let hex: String = token.0.iter().map(|b| format!("{b:02x}")).collect();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "handoff_backend_child", "--ignored", "--nocapture", "--test-threads=1", "-q"])
            .env(PIPE_ENV, pipe)
            .env(TOKEN_ENV, hex)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut backend = Backend { child, lines };
        assert_eq!(backend.next_line(), "ready");
        backend
    }

    /// The backend's next line of its own (the test harness prints some around them).
    fn next_line(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).expect("the backend process answers within 20 s");
            if line == "ready" || line == "adopted" || line.starts_with("rejected: ") {
                return line;
            }
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Plays the broker's part of one handoff: duplicates `client` (the server end of the client's
/// pipe, in this process) into the process serving the handoff pipe `handoff`, offers it there
/// with `token`, and returns the backend's ack and the pid the pipe reported.
fn offer(handoff: &str, client: &Stream, token: &[u8], correlation_id: u64) -> (HandoffAck, u32) {
    let control = rp::transport::connect(&Endpoint::Pipe(handoff.into()), Duration::from_secs(5)).unwrap();
    let backend_pid = control.peer_credentials().unwrap().pid;
    let value = duplicate_handle_to(client.pipe_handle().unwrap(), backend_pid).unwrap();
    (&control).write_all(&offer_frame_with_handle(value, token, "good", correlation_id)).unwrap();
    control.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = FrameReader::new(&control);
    let reply = reader.read_frame().unwrap();
    assert_eq!((reply.payload_protocol, reply.request_id), (0xD0FF, correlation_id));
    (HandoffAck::decode(reply.payload).unwrap(), backend_pid)
}

#[test]
fn a_pipe_handed_to_another_process_is_adopted_and_served_there() {
    let token = Token::random().unwrap();
    let handoff = name("child-handoff");
    let mut backend = Backend::start(&handoff, &token);
    let clients = PipeListener::bind(&name("child-clients")).unwrap();
    let connect_client = || {
        let stream = rp::transport::connect(&Endpoint::Pipe(name("child-clients")), Duration::from_secs(5)).unwrap();
        let client = Conn::new(stream).unwrap();
        (client, Stream::Unix(clients.accept().unwrap()))
    };

    // The broker's end of the client's pipe goes into the backend's handle table; the broker
    // closes its own copy, and the client is served by the other process from then on.
    let (client, broker_end) = connect_client();
    let (ack, backend_pid) = offer(&handoff, &broker_end, &token.0, 11);
    assert_eq!(backend_pid, backend.child.id());
    assert!(ack.accepted, "{}", ack.error_detail);
    assert_eq!((ack.token.as_slice(), ack.correlation_id), (&token.0[..], 11));
    assert_eq!(backend.next_line(), "adopted");
    drop(broker_end);
    for i in 1..=3u64 {
        client.send(&FrameView { payload_protocol: 0x7001, payload: b"ping", request_id: i, ..FrameView::default() }).unwrap();
        let echoed = client.recv(Some(Duration::from_secs(10))).unwrap();
        assert_eq!(echoed.request_id, i);
        assert_eq!(echoed.payload, format!("ping from {backend_pid}").as_bytes());
    }
    drop(client);

    // The token was consumed: offered again it is refused, and the client's handle stays the
    // broker's (nothing reaches the backend's side).
    let (client, broker_end) = connect_client();
    let (ack, _) = offer(&handoff, &broker_end, &token.0, 12);
    assert!(!ack.accepted);
    assert!(backend.next_line().starts_with("rejected: "));
    client.send(&FrameView { payload_protocol: 0x7001, payload: b"still here", request_id: 1, ..FrameView::default() }).unwrap();
    broker_end.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = FrameReader::new(&broker_end);
    assert_eq!(reader.read_frame().unwrap().payload, b"still here");
    drop(reader);
    // A refused handle is left alone in the backend (as running-process leaves it): the
    // client's pipe stays open while that process lives, and ends with it.
    drop(broker_end);
    assert_eq!(client.recv(Some(Duration::from_millis(300))).unwrap_err().kind(), ErrorKind::Timeout);
    drop(backend);
    assert_eq!(client.recv(Some(Duration::from_secs(10))).unwrap_err().kind(), ErrorKind::Closed);
}
