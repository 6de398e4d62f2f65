//! The broker client against a scripted broker: handoff adoption and each of its fallbacks
//! (no relay, token mismatch, refused ack, another frame), and an empty backend_pipe. Over Unix
//! sockets; on Windows over named pipes named after the same paths.

use std::io::Write;
#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};
#[cfg(windows)]
use pipes::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use prost::Message;
use rp::broker::{connect, BrokerOptions, Route};
use rp::control::hello_reply_frame;
use rp::transport::Endpoint;
use rp::wire::proto::{hello_reply, FrameKind, HandoffAck, Negotiated};
use rp::wire::{registry, FrameReader, FrameView, CAP_HANDLE_PASSING};

const TOKEN: [u8; 16] = [9; 16];

/// The endpoint of a socket path (on Windows, of the pipe named after it).
#[cfg(unix)]
fn endpoint(path: &Path) -> Endpoint {
    Endpoint::Path(path.to_owned())
}
#[cfg(windows)]
fn endpoint(path: &Path) -> Endpoint {
    Endpoint::Pipe(pipes::name(path))
}

/// Named-pipe stand-ins for the Unix listener and stream these tests use.
#[cfg(windows)]
mod pipes {
    use std::io;
    use std::path::Path;

    pub use rp::transport::PipeStream as UnixStream;

    /// The pipe standing for a socket path: its directory and file names.
    pub fn name(path: &Path) -> String {
        let dir = path.parent().and_then(|p| p.file_name()).unwrap_or_default().to_string_lossy();
        format!("{dir}-{}", path.file_name().unwrap().to_string_lossy())
    }

    pub struct UnixListener(rp::transport::PipeListener);

    impl UnixListener {
        pub fn bind(path: &Path) -> io::Result<UnixListener> {
            rp::transport::PipeListener::bind(&name(path)).map(UnixListener)
        }
        pub fn accept(&self) -> io::Result<(UnixStream, ())> {
            self.0.accept().map(|s| (s, ()))
        }
        pub fn incoming(&self) -> impl Iterator<Item = io::Result<UnixStream>> + '_ {
            std::iter::repeat_with(move || self.0.accept())
        }
    }
}

#[derive(Clone, Copy)]
enum Relay {
    Accepted,
    None,
    WrongToken,
    Refused,
    WrongKind,
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rp-broker-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn echo(stream: UnixStream, mut reader: FrameReader<UnixStream>) {
    let mut out = stream;
    while let Ok(f) = reader.read_frame() {
        let reply = FrameView { kind: FrameKind::Response as i32, ..f }.to_bytes().unwrap();
        if out.write_all(&reply).is_err() {
            break;
        }
    }
}

fn spawn_echo_backend(path: &Path) {
    let listener = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let reader = FrameReader::new(s.try_clone().unwrap());
            std::thread::spawn(move || echo(s, reader));
        }
    });
}

/// A broker that answers one Hello with a handoff-capable Negotiated and then relays as told.
fn spawn_scripted_broker(path: &Path, backend_pipe: String, relay: Relay) {
    let listener = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else { return };
        let mut reader = FrameReader::new(s.try_clone().unwrap());
        let id = reader.read_frame().unwrap().request_id;
        let n = Negotiated {
            negotiated_protocol: 1,
            daemon_version: "1.0.0".into(),
            backend_pipe,
            server_capabilities: CAP_HANDLE_PASSING,
            keepalive_interval_secs: 1800,
            handle_passed_token: TOKEN.to_vec(),
            connection_id: 1,
            ..Negotiated::default()
        };
        s.write_all(&hello_reply_frame(id, hello_reply::Result::Negotiated(n))).unwrap();
        let ack = |token: &[u8], accepted| HandoffAck { token: token.to_vec(), accepted, error_detail: String::new(), correlation_id: 1 };
        let (kind, ack) = match relay {
            Relay::None => {
                std::thread::sleep(Duration::from_secs(3));
                return;
            }
            Relay::Accepted => (FrameKind::Event, ack(&TOKEN, true)),
            Relay::WrongToken => (FrameKind::Event, ack(&[1; 16], true)),
            Relay::Refused => (FrameKind::Event, ack(&TOKEN, false)),
            Relay::WrongKind => (FrameKind::Response, ack(&TOKEN, true)),
        };
        let payload = ack.encode_to_vec();
        let frame = FrameView {
            kind: kind as i32,
            payload_protocol: registry::HANDOFF,
            payload: &payload,
            request_id: 1,
            ..FrameView::default()
        };
        s.write_all(&frame.to_bytes().unwrap()).unwrap();
        // Play the backend on the adopted connection.
        echo(s, reader);
    });
}

fn run(name: &str, relay: Relay, wait: Duration) -> (Route, Duration) {
    let dir = temp_dir(name);
    let backend = dir.join("backend.sock");
    spawn_echo_backend(&backend);
    let broker = dir.join("broker.sock");
    spawn_scripted_broker(&broker, endpoint(&backend).to_string(), relay);
    let mut opts = BrokerOptions::new(endpoint(&broker), "svc", "1.0.0", "1.0.0");
    opts.adopt_handoff = true;
    opts.handoff_wait = wait;
    let started = Instant::now();
    let c = connect(&opts).unwrap();
    let took = started.elapsed();
    c.conn.send(&FrameView { payload_protocol: 0x7001, payload: b"x", request_id: 5, ..FrameView::default() }).unwrap();
    assert_eq!(c.conn.recv(Some(Duration::from_secs(3))).unwrap().payload, b"x");
    assert_eq!(c.endpoint, endpoint(&backend));
    (c.route, took)
}

#[test]
fn accepted_relay_is_adopted() {
    assert_eq!(run("accepted", Relay::Accepted, Duration::from_secs(2)).0, Route::HandedOff);
}

#[test]
fn no_relay_falls_back_after_the_wait() {
    let (route, took) = run("none", Relay::None, Duration::from_millis(300));
    assert_eq!(route, Route::Negotiated);
    assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn token_mismatch_falls_back() {
    assert_eq!(run("mismatch", Relay::WrongToken, Duration::from_secs(2)).0, Route::Negotiated);
}

#[test]
fn refused_ack_falls_back() {
    assert_eq!(run("refused", Relay::Refused, Duration::from_secs(2)).0, Route::Negotiated);
}

#[test]
fn another_frame_falls_back() {
    assert_eq!(run("kind", Relay::WrongKind, Duration::from_secs(2)).0, Route::Negotiated);
}

#[test]
fn empty_backend_pipe_is_an_error() {
    let dir = temp_dir("empty");
    let broker = dir.join("broker.sock");
    spawn_scripted_broker(&broker, String::new(), Relay::None);
    let opts = BrokerOptions::new(endpoint(&broker), "svc", "1.0.0", "1.0.0");
    let err = connect(&opts).unwrap_err();
    assert_eq!(err.kind(), rp::ErrorKind::Protocol, "{err}");
}
