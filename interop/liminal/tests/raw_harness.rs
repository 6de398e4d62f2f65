//! The harness itself against the real server, with a raw-socket worker written from the wire
//! facts: what the server does, independent of librp.

mod common;

use common::*;
use serde_json::json;

#[test]
fn raw_worker_is_given_1_2_registers_and_answers() {
    let server = Server::start();
    let (mut worker, ack) = RawWorker::connect(server.addr(), (1, 0), (1, 3), b"");
    assert_eq!(ack.kind, CONNECT_ACK, "{ack:?}");
    assert_eq!(&ack.payload[0..4], &[0, 1, 0, 2], "selected version");
    let reg = worker.register("raw.echo", "raw-worker");
    assert_eq!((reg.kind, reg.payload.as_slice()), (WORKER_REGISTER_ACK, &[0u8][..]));

    let caller = ask_async(server.addr(), "raw.echo", json!({"n": 1}));
    let (correlation, payload) = worker.recv_push();
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&payload).unwrap(), json!({"n": 1}));
    worker.reply(correlation, 0, br#"{"n":2}"#);
    assert_eq!(caller.join().unwrap().unwrap(), json!({"n": 2}));

    let caller = ask_async(server.addr(), "raw.echo", json!("x"));
    let (correlation, _) = worker.recv_push();
    worker.reply(correlation, 1, br#"{"code":"busy","words":"raw busy"}"#);
    match caller.join().unwrap() {
        Err(liminal_sdk::SdkError::WorkerRefused { code, words }) => {
            assert_eq!((code.as_str(), words.as_str()), ("busy", "raw busy"))
        }
        other => panic!("{other:?}"),
    }

    worker.send(PING, 0, 0, b"");
    let pong = worker.read().unwrap();
    assert_eq!((pong.kind, pong.payload.len()), (PONG, 0));
}

#[test]
fn raw_worker_sees_disconnect_then_eof_on_shutdown() {
    let mut server = Server::start();
    let (mut worker, ack) = RawWorker::connect(server.addr(), (1, 0), (1, 3), b"");
    assert_eq!(ack.kind, CONNECT_ACK);
    assert_eq!(worker.register("raw.bye", "raw-worker").payload, vec![0]);
    server.shutdown();
    let frame = worker.read().unwrap();
    assert_eq!(frame.kind, DISCONNECT, "{frame:?}");
    assert!(worker.read().is_err());
}

#[test]
fn raw_refusals_of_connect_and_registration() {
    let server = Server::with(Setup { token: Some("right-token".into()), ..Setup::default() });
    let (_w, answer) = RawWorker::connect(server.addr(), (1, 0), (1, 3), b"wrong-token");
    println!("wrong token: {:?}", connect_error(&answer));
    assert_eq!(connect_error(&answer).0, 0x0006);
    let (_w, answer) = RawWorker::connect(server.addr(), (1, 0), (1, 3), b"right-token");
    assert_eq!(answer.kind, CONNECT_ACK);

    let server = Server::with(Setup { revocation: true, ..Setup::default() });
    let (_w, answer) = RawWorker::connect(server.addr(), (1, 0), (1, 3), b"");
    println!("revocation: {:?}", connect_error(&answer));
    assert_eq!(connect_error(&answer), (0x0006, Some("revocation_binding_missing".into())));

    let server = Server::with(Setup { decline_registrations: Some("no workers here".into()), ..Setup::default() });
    let (mut w, answer) = RawWorker::connect(server.addr(), (1, 0), (1, 3), b"");
    assert_eq!(answer.kind, CONNECT_ACK);
    let ack = w.register("raw.declined", "raw-worker");
    println!("declined: {:?}", String::from_utf8_lossy(&ack.payload));
    assert_eq!(ack.payload[0], 1);
}

#[test]
fn relay_puts_a_ping_and_an_unknown_frame_before_each_push() {
    let server = Server::start();
    let relay = Relay::start(server.addr(), vec![encode(PING, 0, 0, b""), encode(0x7e, 0, 3, b"??")]);
    let (mut worker, ack) = RawWorker::connect(relay.addr, (1, 0), (1, 3), b"");
    assert_eq!(ack.kind, CONNECT_ACK);
    assert_eq!(worker.register("raw.relayed", "raw-worker").payload, vec![0]);
    let caller = ask_async(server.addr(), "raw.relayed", json!("r"));
    assert_eq!(worker.read().unwrap().kind, PING);
    worker.send(PONG, 0, 0, b"");
    assert_eq!(worker.read().unwrap(), Frame { kind: 0x7e, flags: 0, stream: 3, payload: b"??".to_vec() });
    let (correlation, payload) = worker.recv_push();
    worker.reply(correlation, 0, &payload);
    assert_eq!(caller.join().unwrap().unwrap(), json!("r"));
    let log = relay.log.lock().unwrap();
    assert_eq!(log.injected, 2);
    assert_eq!(log.from_worker, vec![CONNECT, WORKER_REGISTER, PONG, PUSH_REPLY]);
}
