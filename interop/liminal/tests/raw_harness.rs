//! The harness itself, checked against the real server with a raw-socket worker written from
//! the wire facts: the relay that librp_worker.rs puts between a librp worker and the server.

mod common;

use common::*;
use serde_json::json;

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
