//! Handoff under injected faults, 10,000 cycles: truncated control data (MSG_CTRUNC, more
//! descriptors than the receiver's control buffer holds), several descriptors in one message, an
//! offer without a descriptor, wrong and replayed tokens, offers cut short, and a descriptor with
//! its 16 token bytes followed by no offer, by a frame that is not an offer, by garbage, or by an
//! offer naming another token — every received
//! descriptor is closed on every failure and has FD_CLOEXEC, so the descriptor count returns to
//! where it started. (One test in its own binary: the descriptor count is process-wide.)
// Unix only: passes descriptors over Unix sockets (SCM_RIGHTS), which Windows does not have.
#![cfg(unix)]

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use prost::Message;
use rp::handoff::{accept_handoff, recv_with_fd, send_with_fd, HandoffStore, TOKEN_LEN};
use rp::wire::proto::HandoffOffer;
use rp::wire::FrameView;
use rp::ErrorKind;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn offer_frame(token: &[u8], correlation_id: u64) -> Vec<u8> {
    let offer = HandoffOffer { handle_value: 0, token: token.to_vec(), service_name: "svc".into(), correlation_id }
        .encode_to_vec();
    FrameView { payload_protocol: 0xD0FF, payload: &offer, request_id: correlation_id, ..FrameView::default() }
        .to_bytes()
        .unwrap()
}

/// Plays the broker: `fd` with the 16 token bytes alone, then `offer`.
fn send_offer(broker: &mut UnixStream, token: &[u8; 16], offer: &[u8], fd: &UnixStream) {
    assert_eq!(send_with_fd(broker, token, fd).unwrap(), TOKEN_LEN);
    broker.write_all(offer).unwrap();
}

/// Sends `data` with `fds` in one SCM_RIGHTS message.
fn send_fds(socket: &UnixStream, data: &[u8], fds: &[RawFd]) {
    let payload = std::mem::size_of_val(fds);
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE(payload as u32) } as usize;
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut _, iov_len: data.len() };
    // SAFETY: zeroed msghdr is valid; every pointer set below outlives the sendmsg call, and the
    // control buffer is CMSG_SPACE(payload) bytes, 8-byte aligned.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(payload as u32) as _;
        std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg).cast::<RawFd>(), fds.len());
        assert_eq!(libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL), data.len() as isize);
    }
}

/// Reads whatever the backend wrote back (acks), without blocking.
fn drain(s: &mut UnixStream) {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    while let Ok(n) = std::io::Read::read(s, &mut buf) {
        if n == 0 {
            break;
        }
    }
    s.set_nonblocking(false).unwrap();
}

fn cloexec(fd: &OwnedFd) -> bool {
    // SAFETY: fcntl F_GETFD on a descriptor we own.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) & libc::FD_CLOEXEC != 0 }
}

#[test]
fn ten_thousand_handoffs_with_injected_faults_leak_no_descriptor() {
    let store = HandoffStore::new(64, std::time::Duration::from_secs(60));
    // Warm up lazily opened descriptors (the OS random source) before the baseline.
    let _ = store.issue().unwrap();
    let _ = store.consume(&[0; 16]);
    let before = open_fds();
    let mut tally = [0usize; 11];
    for i in 0..10_000usize {
        let (mut broker, mut backend) = UnixStream::pair().unwrap();
        let case = i % 11;
        tally[case] += 1;
        match case {
            0 => {
                // Accepted handoff; the adopted descriptor is CLOEXEC.
                let token = store.issue().unwrap();
                let (x, _peer) = UnixStream::pair().unwrap();
                send_offer(&mut broker, &token.0, &offer_frame(&token.0, i as u64 + 1), &x);
                let (fd, outcome) = accept_handoff(&mut backend, &store).unwrap();
                assert!(outcome.accepted && cloexec(&fd));
            }
            1 => {
                // MSG_CTRUNC: 64 descriptors do not fit the receiver's control buffer.
                let pairs: Vec<_> = (0..32).map(|_| UnixStream::pair().unwrap()).collect();
                let fds: Vec<RawFd> = pairs.iter().flat_map(|(a, b)| [a.as_raw_fd(), b.as_raw_fd()]).collect();
                send_fds(&broker, b"\x01", &fds);
                let mut buf = [0u8; 8];
                let err = recv_with_fd(&backend, &mut buf).unwrap_err();
                assert!(err.to_string().contains("truncated"), "{err}");
            }
            2 => {
                // Two descriptors with an offer: refused, both closed.
                let (x, y) = UnixStream::pair().unwrap();
                let offer = offer_frame(&[7u8; 16], 7);
                send_fds(&broker, &offer, &[x.as_raw_fd(), y.as_raw_fd()]);
                let err = accept_handoff(&mut backend, &store).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
            }
            3 => {
                // An offer without a descriptor.
                broker.write_all(&offer_frame(&[7u8; 16], 7)).unwrap();
                assert!(accept_handoff(&mut backend, &store).is_err());
            }
            4 => {
                // A wrong token: rejected, the descriptor closed.
                let (x, _peer) = UnixStream::pair().unwrap();
                send_offer(&mut broker, &[0x42; 16], &offer_frame(&[0x42; 16], 3), &x);
                assert_eq!(accept_handoff(&mut backend, &store).unwrap_err().kind(), ErrorKind::Rejected);
            }
            5 => {
                // A replayed token: the first use is accepted, the second rejected.
                let token = store.issue().unwrap();
                for attempt in 0..2 {
                    let (x, _peer) = UnixStream::pair().unwrap();
                    send_offer(&mut broker, &token.0, &offer_frame(&token.0, 11), &x);
                    let got = accept_handoff(&mut backend, &store);
                    assert_eq!(got.is_ok(), attempt == 0);
                }
            }
            6 => {
                // The offer is cut short and the broker goes away.
                let (x, _peer) = UnixStream::pair().unwrap();
                let offer = offer_frame(&[7u8; 16], 9);
                send_offer(&mut broker, &[7u8; 16], &offer[..offer.len() / 2], &x);
                drop(x);
                broker.shutdown(std::net::Shutdown::Write).unwrap();
                assert!(accept_handoff(&mut backend, &store).is_err());
            }
            7 => {
                // The descriptor with its 16 token bytes, and no offer: the broker goes away.
                let (x, _peer) = UnixStream::pair().unwrap();
                send_offer(&mut broker, &[7u8; 16], &[], &x);
                broker.shutdown(std::net::Shutdown::Write).unwrap();
                let err = accept_handoff(&mut backend, &store).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
            }
            8 => {
                // The descriptor with its token, then a frame that is not an offer.
                let (x, _peer) = UnixStream::pair().unwrap();
                let other = FrameView { payload_protocol: 0x7001, payload: &[7u8; 16], request_id: 1, ..FrameView::default() }
                    .to_bytes()
                    .unwrap();
                send_offer(&mut broker, &[7u8; 16], &other, &x);
                let err = accept_handoff(&mut backend, &store).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
            }
            9 => {
                // The descriptor with its token, then garbage: a header announcing a huge body.
                let (x, _peer) = UnixStream::pair().unwrap();
                send_offer(&mut broker, &[7u8; 16], &[0xFF; 24], &x);
                assert!(accept_handoff(&mut backend, &store).is_err());
            }
            _ => {
                // The descriptor with one token, an offer (with a token the store holds) naming
                // another: rejected (the token sent with the descriptor is not pending), nothing
                // consumed.
                let token = store.issue().unwrap();
                let (x, _peer) = UnixStream::pair().unwrap();
                send_offer(&mut broker, &[0x42; 16], &offer_frame(&token.0, 12), &x);
                let err = accept_handoff(&mut backend, &store).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Rejected, "{err}");
                assert!(err.to_string().contains("not pending"), "{err}");
                assert!(store.consume(&token.0).is_ok(), "the offer's token was not consumed");
            }
        }
        drain(&mut broker);
    }
    let after = open_fds();
    println!("10,000 handoff cycles {tally:?} (accepted, ctrunc, two fds, no fd, wrong token, replay, cut short, no offer, not an offer, garbage, token mismatch): fds {before} -> {after}");
    assert_eq!(after, before, "descriptors leaked");
}
