//! Handoff, backend side, end to end over Unix sockets: accepted, wrong, replayed, expired and
//! short tokens, and 10,000 descriptor handoffs with the open-descriptor count unchanged.
//! (One binary, one test: the descriptor count is process-wide.)
// Unix only: passes descriptors over Unix sockets (SCM_RIGHTS), which Windows does not have.
#![cfg(unix)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use prost::Message;
use rp::handoff::{accept_handoff, recv_with_fd, send_with_fd, HandoffStore};
use rp::wire::proto::{HandoffAck, HandoffOffer};
use rp::wire::{decode_frame, Decoded, FrameView, MAX_BODY};
use rp::ErrorKind;

fn offer_frame(token: &[u8], correlation_id: u64) -> Vec<u8> {
    let offer = HandoffOffer {
        handle_value: 0,
        token: token.to_vec(),
        service_name: "rp-demo".into(),
        correlation_id,
    }
    .encode_to_vec();
    FrameView {
        payload_protocol: 0xD0FF,
        payload: &offer,
        request_id: correlation_id,
        ..FrameView::default()
    }
    .to_bytes()
    .unwrap()
}

/// Plays the broker: sends a fresh connection's descriptor with `offer`, returns the ack and
/// the client end of the handed-off connection.
fn broker_sends(broker: &mut UnixStream, offer: &[u8]) -> UnixStream {
    let (client, backend_end) = UnixStream::pair().unwrap();
    // The descriptor rides with the first 3 bytes; the rest follows as plain bytes.
    send_with_fd(broker, &offer[..3], &backend_end).unwrap();
    broker.write_all(&offer[3..]).unwrap();
    client
}

fn read_ack(broker: &mut UnixStream) -> HandoffAck {
    let mut buf = vec![0u8; 256];
    let mut have = 0;
    loop {
        have += broker.read(&mut buf[have..]).unwrap();
        if let Decoded::Frame { frame, .. } = decode_frame(&buf[..have], MAX_BODY).unwrap() {
            assert_eq!(frame.kind, 1);
            return HandoffAck::decode(frame.payload).unwrap();
        }
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn handoff_outcomes_and_no_descriptor_leaks() {
    let (mut broker, mut backend) = UnixStream::pair().unwrap();
    let store = HandoffStore::default();
    let before = open_fds();

    // Accepted: the adopted descriptor is the client's connection.
    let token = store.issue().unwrap();
    let mut client = broker_sends(&mut broker, &offer_frame(&token.0, 9));
    let (fd, outcome) = accept_handoff(&mut backend, &store).unwrap();
    assert!(outcome.accepted);
    let ack = read_ack(&mut broker);
    assert!(ack.accepted && ack.token == token.0 && ack.correlation_id == 9);
    let mut adopted = UnixStream::from(fd);
    adopted.write_all(b"hello").unwrap();
    let mut got = [0u8; 5];
    client.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello");
    drop((adopted, client));

    // running-process's broker layout: the descriptor with the 16 token bytes alone, then the
    // offer frame. Accepted; and refused before any ack when the offer names another token.
    let sent = store.issue().unwrap();
    let (mut client, backend_end) = UnixStream::pair().unwrap();
    send_with_fd(&broker, &sent.0, &backend_end).unwrap();
    broker.write_all(&offer_frame(&sent.0, 11)).unwrap();
    drop(backend_end);
    let (fd, outcome) = accept_handoff(&mut backend, &store).unwrap();
    assert!(outcome.accepted && outcome.correlation_id == 11);
    assert!(read_ack(&mut broker).accepted);
    UnixStream::from(fd).write_all(b"hi").unwrap();
    let mut got = [0u8; 2];
    client.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hi");
    drop(client);
    let other = store.issue().unwrap();
    let (_client, backend_end) = UnixStream::pair().unwrap();
    send_with_fd(&broker, &[0x42; 16], &backend_end).unwrap();
    broker.write_all(&offer_frame(&other.0, 12)).unwrap();
    drop(backend_end);
    let err = accept_handoff(&mut backend, &store).unwrap_err();
    assert!(err.to_string().contains("not the one sent with the descriptor"), "{err}");
    assert_eq!(store.len(), 1, "the offer's token was not consumed");
    assert!(store.consume(&other.0).is_ok());
    drop(_client);

    // Replayed, wrong, short and expired tokens: rejected with a well-formed ack, fd closed.
    let expiring = HandoffStore::new(8, Duration::from_millis(1));
    let old = expiring.issue().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let cases: [(&HandoffStore, Vec<u8>, &str); 4] = [
        (&store, token.0.to_vec(), "mismatch"),
        (&store, vec![0x42; 16], "mismatch"),
        (&store, vec![1, 2, 3], "16 bytes"),
        (&expiring, old.0.to_vec(), "expired"),
    ];
    for (which, presented, reason) in cases {
        let _client = broker_sends(&mut broker, &offer_frame(&presented, 5));
        let err = accept_handoff(&mut backend, which).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Rejected);
        assert!(err.to_string().contains(reason), "{err}");
        let ack = read_ack(&mut broker);
        assert!(!ack.accepted);
        assert!(ack.error_detail.contains(reason));
        assert_eq!(ack.token, presented);
    }

    // request_id != correlation_id is rejected too.
    let good = store.issue().unwrap();
    let mut offer = offer_frame(&good.0, 5);
    let Decoded::Frame { frame, .. } = decode_frame(&offer, MAX_BODY).unwrap() else {
        panic!()
    };
    offer = FrameView {
        request_id: 6,
        ..frame
    }
    .to_bytes()
    .unwrap();
    let _client = broker_sends(&mut broker, &offer);
    assert_eq!(
        accept_handoff(&mut backend, &store).unwrap_err().kind(),
        ErrorKind::Rejected
    );
    assert!(!read_ack(&mut broker).accepted);
    drop(_client);

    // 10,000 raw descriptor handoffs.
    for _ in 0..10_000 {
        let (x, _y) = UnixStream::pair().unwrap();
        send_with_fd(&broker, b"x", &x).unwrap();
        let mut buf = [0u8; 4];
        let (_, fd) = recv_with_fd(&backend, &mut buf).unwrap();
        drop(fd.unwrap());
    }
    assert_eq!(open_fds(), before, "no descriptor leaked");
}
