//! Windows: the broker hands a client's named pipe to the backend as running-process does
//! there (the handle duplicated into the backend, its value in `HandoffOffer.handle_value`),
//! and the backend adopts it and serves the client on it.
#![cfg(windows)]

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use rp::broker::{connect, BrokerOptions, BrokerServer, BrokerServerOptions, BrokerService, Route};
use rp::handoff::{accept_handoff, HandoffStore};
use rp::transport::{Endpoint, PipeListener, Stream};
use rp::wire::proto::FrameKind;
use rp::wire::{FrameReader, FrameView};

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
