//! librp's push worker (the liminal dialect, `liminal+tcp://`) joined to a real liminal server:
//! pushes routed by liminal-sdk's caller reach it, and its answers and refusals reach the caller.

mod common;

use std::time::{Duration, Instant};

use common::*;
use liminal_sdk::SdkError;
use rp::push::proto::Registration;
use rp::push::{ActivityDescriptor, Dialect, Worker, WorkerOptions};
use rp::ErrorKind;
use serde_json::{json, Value};

fn registration(task_queue: &str, identity: &str) -> Registration {
    Registration {
        identity: identity.to_owned(),
        task_queue: task_queue.to_owned(),
        namespaces: vec!["rp-interop".to_owned()],
        activity_types: vec![task_queue.to_owned()],
        node: String::new(),
        payload_protocols: Vec::new(),
    }
}

fn options(endpoint: &str, task_queue: &str, identity: &str) -> WorkerOptions {
    let mut opts = WorkerOptions::for_endpoint(endpoint, registration(task_queue, identity)).unwrap();
    assert_eq!(opts.dialect, Dialect::Liminal);
    opts.connect_timeout = WAIT;
    opts
}

fn worker(server: &Server, task_queue: &str) -> Worker {
    Worker::connect(options(&server.endpoint(), task_queue, "rp-worker")).expect("the librp worker registers")
}

/// Answers one push with `answer(request)` as JSON.
fn serve_one(worker: &Worker, answer: impl FnOnce(Value) -> Value) {
    let push = worker.recv(Some(WAIT)).expect("a push");
    let request: Value = serde_json::from_slice(&push.payload).expect("the caller sent JSON");
    worker.reply(push.correlation_id, &serde_json::to_vec(&answer(request)).unwrap()).unwrap();
}

#[test]
fn answers_reach_the_sdk_caller() {
    let server = Server::with(Setup { record_registrations: true, ..Setup::default() });
    let mut opts = options(&server.endpoint(), "rp.echo", "rp-echo-worker");
    opts.registration.node = "rp-interop-node".to_owned();
    opts.registration.namespaces.push("rp-second".to_owned());
    opts.registration.activity_types.push("rp.echo.other".to_owned());
    opts.activity_descriptors = vec![ActivityDescriptor {
        name: "rp.echo".to_owned(),
        input_schema_json: r#"{"type":"object"}"#.to_owned(),
        output_schema_json: r#"{"type":"string"}"#.to_owned(),
    }];
    let worker = Worker::connect(opts).expect("the librp worker registers");
    // The registration as the server decoded it.
    let seen = server.registrations();
    assert_eq!(seen.len(), 1);
    let seen = &seen[0];
    assert_eq!(seen.identity, "rp-echo-worker");
    assert_eq!(seen.task_queue, "rp.echo");
    assert_eq!(seen.namespaces, ["rp-interop", "rp-second"]);
    assert_eq!(seen.activity_types, ["rp.echo", "rp.echo.other"]);
    assert_eq!(seen.node.as_deref(), Some("rp-interop-node"));
    assert_eq!(seen.activities.len(), 1);
    assert_eq!(
        (seen.activities[0].name.as_str(), seen.activities[0].input_schema_json.as_str(), seen.activities[0].output_schema_json.as_str()),
        ("rp.echo", r#"{"type":"object"}"#, r#"{"type":"string"}"#)
    );

    let caller = ask_async(server.addr(), "rp.echo", json!({"activity": "one"}));
    serve_one(&worker, |request| json!({"reply-of": request["activity"]}));
    assert_eq!(caller.join().unwrap().unwrap(), json!({"reply-of": "one"}));

    // Two in flight, answered in the reverse order: each reply reaches its own caller.
    let a = ask_async(server.addr(), "rp.echo", json!({"activity": "a"}));
    let first = worker.recv(Some(WAIT)).unwrap();
    let b = ask_async(server.addr(), "rp.echo", json!({"activity": "b"}));
    let second = worker.recv(Some(WAIT)).unwrap();
    assert_ne!(first.correlation_id, second.correlation_id);
    for push in [&second, &first] {
        let request: Value = serde_json::from_slice(&push.payload).unwrap();
        worker.reply(push.correlation_id, &serde_json::to_vec(&json!({"reply-of": request["activity"]})).unwrap()).unwrap();
    }
    assert_eq!(a.join().unwrap().unwrap(), json!({"reply-of": "a"}));
    assert_eq!(b.join().unwrap().unwrap(), json!({"reply-of": "b"}));

    // A large, non-ASCII payload both ways.
    let big = "é-ü-✓ ".repeat(40_000);
    let caller = ask_async(server.addr(), "rp.echo", json!(big.clone()));
    serve_one(&worker, |request| json!([request, 1]));
    assert_eq!(caller.join().unwrap().unwrap(), json!([big, 1]));
    worker.close();
}

#[test]
fn reply_error_reaches_the_caller_as_the_mapped_refusal() {
    let server = Server::start();
    let worker = worker(&server, "rp.refuse");
    // librp status code -> the refusal the sdk caller sees.
    let cases = [
        (1, "busy"),          // AGAIN
        (11, "invalid"),      // INVALID_ARGUMENT
        (3, "unavailable"),   // CLOSED
        (2, "unavailable"),   // TIMEOUT
        (1000, "internal"),   // unmapped
    ];
    for (code, expected) in cases {
        let words = format!("librp refused with {code}: \"quoted\", back\\slash, tab\t, é, \u{1}");
        let caller = ask_async(server.addr(), "rp.refuse", json!({"code": code}));
        let push = worker.recv(Some(WAIT)).unwrap();
        worker.reply_error(push.correlation_id, code, &words).unwrap();
        match caller.join().unwrap() {
            Err(SdkError::WorkerRefused { code: got, words: got_words }) => {
                assert_eq!((got.as_str(), got_words.as_str()), (expected, words.as_str()), "status {code}")
            }
            other => panic!("status {code}: the caller was told {other:?}, not a {expected} refusal"),
        }
    }
    // Every control character, DEL and non-ASCII text: escaped as the server requires.
    let words: String = (0u8..0x20).map(char::from).chain("\u{7f} / é ✓ \"'".chars()).collect();
    let caller = ask_async(server.addr(), "rp.refuse", json!("escapes"));
    let push = worker.recv(Some(WAIT)).unwrap();
    worker.reply_error(push.correlation_id, 11, &words).unwrap();
    match caller.join().unwrap() {
        Err(SdkError::WorkerRefused { code, words: got }) => assert_eq!((code.as_str(), got), ("invalid", words)),
        other => panic!("the caller was told {other:?}"),
    }
    // Words up to 1,024 bytes reach the caller whole; longer ones librp refuses to send, and the
    // push can still be answered.
    let longest = "é".repeat(512);
    let caller = ask_async(server.addr(), "rp.refuse", json!("long words"));
    let push = worker.recv(Some(WAIT)).unwrap();
    let err = worker.reply_error(push.correlation_id, 1, &format!("{longest}x")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    worker.reply_error(push.correlation_id, 1, &longest).unwrap();
    match caller.join().unwrap() {
        Err(SdkError::WorkerRefused { code, words: got }) => assert_eq!((code.as_str(), got), ("busy", longest)),
        other => panic!("the caller was told {other:?}"),
    }
    // The worker still answers after refusing.
    let caller = ask_async(server.addr(), "rp.refuse", json!("after"));
    serve_one(&worker, |request| request);
    assert_eq!(caller.join().unwrap().unwrap(), json!("after"));
}

#[test]
fn worker_answers_a_ping_and_skips_unknown_frames_between_pushes() {
    let server = Server::start();
    // In front of every push: a Ping, and a frame of a type the worker does not know.
    let inject = vec![encode(PING, 0, 0, b""), encode(0x7e, 0, 3, b"not for workers")];
    let relay = Relay::start(server.addr(), inject);
    let worker = Worker::connect(options(&format!("liminal+tcp://{}", relay.addr), "rp.ping", "rp-ping-worker"))
        .expect("the librp worker registers through the relay");
    for round in 0..3 {
        let caller = ask_async(server.addr(), "rp.ping", json!({"round": round}));
        serve_one(&worker, |request| json!({"answered": request["round"]}));
        assert_eq!(caller.join().unwrap().unwrap(), json!({"answered": round}));
    }
    let log = relay.log.lock().unwrap();
    assert_eq!(log.injected, 6);
    assert_eq!(log.from_worker.iter().filter(|&&k| k == PONG).count(), 3, "one Pong per Ping: {:?}", log.from_worker);
}

#[test]
fn worker_stays_connected_and_answering_while_the_server_runs() {
    let server = Server::start();
    let worker = worker(&server, "rp.steady");
    // The server answers Pings from other clients meanwhile.
    let (mut other, ack) = RawWorker::connect(server.addr(), (1, 0), (1, 1), b"");
    assert_eq!(ack.kind, CONNECT_ACK);
    let started = Instant::now();
    let mut round = 0;
    while started.elapsed() < Duration::from_millis(1_500) {
        // Idle waits time out without ending the connection.
        assert_eq!(worker.recv(Some(Duration::from_millis(200))).unwrap_err().kind(), ErrorKind::Timeout);
        other.send(PING, 0, 0, b"");
        assert_eq!(other.read().unwrap().kind, PONG);
        let caller = ask_async(server.addr(), "rp.steady", json!(round));
        serve_one(&worker, |request| json!([request]));
        assert_eq!(caller.join().unwrap().unwrap(), json!([round]));
        round += 1;
    }
    assert!(round >= 3);
}

#[test]
fn registrations_over_the_identity_limit_or_declined_by_the_server_fail() {
    let server = Server::start();
    // At the limit the server accepts it; one byte over, librp refuses it without connecting.
    let at_limit = "i".repeat(992);
    let worker = Worker::connect(options(&server.endpoint(), "rp.long", &at_limit)).expect("992-byte identity");
    let caller = ask_async(server.addr(), "rp.long", json!("x"));
    serve_one(&worker, |request| request);
    assert_eq!(caller.join().unwrap().unwrap(), json!("x"));
    let over = "i".repeat(993);
    let err = Worker::connect(options(&server.endpoint(), "rp.long2", &over)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");

    // An embedding application that declines the registration: the server's WorkerRegisterAck
    // rejects it with the application's words.
    let declining = Server::with(Setup { decline_registrations: Some("no workers wanted here".into()), ..Setup::default() });
    let err = Worker::connect(options(&declining.endpoint(), "rp.declined", "rp-worker")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err}");
    assert!(err.to_string().contains("no workers wanted here"), "{err}");
}

#[test]
fn server_shutdown_ends_recv_with_closed() {
    let mut server = Server::start();
    let worker = std::sync::Arc::new(worker(&server, "rp.bye"));
    let waiting = {
        let worker = std::sync::Arc::clone(&worker);
        std::thread::spawn(move || {
            let started = Instant::now();
            (worker.recv(Some(WAIT)).map(|_| ()), started.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    server.shutdown();
    let (outcome, waited) = waiting.join().unwrap();
    let err = outcome.expect_err("recv ends with the server");
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    // The server's orderly Disconnect, not only the socket's end, is what the worker reports.
    assert!(err.to_string().contains("the server disconnected"), "{err}");
    assert!(waited < WAIT, "recv waited its whole timeout");
    assert_eq!(worker.recv(Some(Duration::from_millis(100))).unwrap_err().kind(), ErrorKind::Closed);
}

#[test]
fn refused_connects_are_reported_with_the_reason() {
    let server = Server::with(Setup { token: Some("the-right-token".into()), ..Setup::default() });
    let mut opts = options(&server.endpoint(), "rp.auth", "rp-worker");
    opts.auth_token = b"a-wrong-token".to_vec();
    let err = Worker::connect(opts).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
    // The reason code (authentication failure) and the server's message.
    assert!(err.to_string().contains("0x0006") && err.to_string().contains("token rejected"), "{err}");
    // The right token is admitted and served.
    let mut opts = options(&server.endpoint(), "rp.auth", "rp-worker");
    opts.auth_token = b"the-right-token".to_vec();
    let worker = Worker::connect(opts).expect("the right token is admitted");
    let caller = std::thread::spawn({
        let addr = server.addr();
        move || ask_with_token(addr, "rp.auth", json!("gated"), Some(b"the-right-token"))
    });
    serve_one(&worker, |request| request);
    assert_eq!(caller.join().unwrap().unwrap(), json!("gated"));

    // A server with a revocation policy but no authority service refuses every Connect.
    let revoking = Server::with(Setup { revocation: true, ..Setup::default() });
    let err = Worker::connect(options(&revoking.endpoint(), "rp.revoked", "rp-worker")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
    assert!(err.to_string().contains("0x0006") && err.to_string().contains("revocation_binding_missing"), "{err}");
}

#[test]
fn librp_offering_1_0_to_1_3_is_given_1_2() {
    let server = Server::with(Setup { record_registrations: true, ..Setup::default() });
    let worker = worker(&server, "rp.version");
    // No node and no activity descriptors: the server decodes none.
    let seen = server.registrations();
    assert_eq!((seen[0].node.as_deref(), seen[0].activities.len()), (None, 0));
    assert_eq!(worker.negotiated().daemon_version, "1.2", "{:?}", worker.negotiated());
}

#[test]
fn a_closed_worker_leaves_the_server() {
    let server = Server::start();
    let worker = worker(&server, "rp.leaving");
    let caller = ask_async(server.addr(), "rp.leaving", json!("before"));
    serve_one(&worker, |request| request);
    assert_eq!(caller.join().unwrap().unwrap(), json!("before"));
    worker.close();
    assert_eq!(worker.recv(Some(Duration::from_millis(100))).unwrap_err().kind(), ErrorKind::Closed);
    let deadline = Instant::now() + WAIT;
    while server.supervisor().active_connection_count() > 0 {
        assert!(Instant::now() < deadline, "the server still holds the closed worker's connection");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Nobody serves the task queue any more: the server says so to the caller.
    let err = ask(server.addr(), "rp.leaving", json!("after")).unwrap_err();
    assert!(err.to_string().contains("no_server"), "{err}");
}
