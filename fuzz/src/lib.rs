//! The bodies of librp's fuzz targets, shared by the libFuzzer binaries in `fuzz_targets/` and
//! by the corpus replay test (`tests/fuzz_corpus.rs`, which includes this file as a module), so
//! a corpus file replays through exactly the code the fuzzer ran.
//!
//! Each function takes arbitrary bytes, must never panic, hang or leak, and asserts the
//! properties named in its documentation; a failed assertion is a finding.
#![allow(clippy::missing_safety_doc)]

use std::io::{self, Read, Write};
use std::time::Duration;

use prost::Message;
use rp::handoff::{self, HandoffStore, Token};
use rp::mux::{DaemonIdentity, DetectorError, LegacyVerdict, Mux, MuxEvent, PROBE_NONCE_LEN};
use rp::wire::proto::{Frame, FrameKind, HandoffAck};
use rp::wire::{
    decode_frame, registry, Decoded, FrameReader, FrameView, WireError, HEADER_LEN, HELLO_MAX_BODY, MAX_BODY,
};

/// A fuzz target: its name and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target: (name, body). The corpus folder of a target is `fuzz/corpus/<name>/`.
pub const TARGETS: &[Target] = &[
    ("frame_decode", frame_decode),
    ("frame_reader", frame_reader),
    ("mux_poll", mux_poll),
    ("push_server", push_server),
    ("push_worker", push_worker),
    ("liminal_worker", liminal_worker),
    ("handoff", handoff_offer),
    ("c_api", c_api),
    ("broker_hello", broker_hello),
    ("session_router", session_router),
    ("push_loop", push_loop),
    ("broker_loop", broker_loop),
];

/// The frame decoder: `FrameView::parse_body` agrees with prost on acceptance and on every
/// field; a decoded frame re-encodes to prost's canonical bytes (so to the input itself when
/// the input was canonical) and decodes again to the same view; `decode_frame` never claims
/// more bytes than it was given and `NeedMore` always asks for more than it has.
pub fn frame_decode(data: &[u8]) {
    let mine = FrameView::parse_body(data);
    let theirs = Frame::decode(data);
    assert_eq!(mine.is_ok(), theirs.is_ok(), "acceptance differs from prost: {mine:?} vs {theirs:?}");
    if let (Ok(view), Ok(frame)) = (&mine, &theirs) {
        assert_eq!(&view.to_frame(), frame, "fields differ from prost");
        let canonical = frame.encode_to_vec();
        let bytes = view.to_bytes().expect("a decoded body is below the cap");
        assert_eq!(bytes.len(), view.encoded_len());
        assert_eq!(&bytes[HEADER_LEN..], &canonical[..], "re-encoding differs from prost");
        if canonical == data {
            assert_eq!(&bytes[HEADER_LEN..], data, "a canonical body did not re-encode to itself");
        }
        assert_eq!(&FrameView::parse_body(&bytes[HEADER_LEN..]).expect("re-encoding decodes"), view);
        let mut small = vec![0u8; bytes.len().saturating_sub(1)];
        assert!(view.encode_into(&mut small).is_err());
    }
    for cap in [MAX_BODY, HELLO_MAX_BODY, 0, 16] {
        match decode_frame(data, cap) {
            Ok(Decoded::NeedMore { needed }) => assert!(needed > data.len()),
            Ok(Decoded::Frame { frame, consumed }) => {
                assert!(consumed <= data.len() && consumed >= HEADER_LEN);
                assert!((consumed - HEADER_LEN) as u64 <= u64::from(cap));
                assert_eq!(FrameView::parse_body(&data[HEADER_LEN..consumed]).expect("the same body parses alone"), frame);
            }
            Err(_) => {}
        }
    }
}

/// A small deterministic generator driven by the input, for chunk sizes and choices.
struct Dice(u64);
impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// A byte stream delivered in chunks of input-chosen sizes, with interruptions and
/// "would block" between them, as a non-blocking socket delivers it.
struct Chopped<'a> {
    data: &'a [u8],
    dice: Dice,
}
impl Read for Chopped<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.dice.next() % 8 {
            0 => return Err(io::ErrorKind::Interrupted.into()),
            1 => return Err(io::ErrorKind::WouldBlock.into()),
            _ => {}
        }
        let n = (1 + self.dice.next() as usize % 64).min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// `FrameReader` over a stream chopped at arbitrary points (with EINTR and EAGAIN in between)
/// yields exactly the frames `decode_frame` finds in the whole buffer, with the server's cap
/// policy (Hello cap for the first frame, full cap after), then ends with the same outcome:
/// a clean close at a frame boundary, truncation inside one, or the same error.
pub fn frame_reader(data: &[u8]) {
    let Some((&seed, stream)) = data.split_first() else { return };
    let mut reader = FrameReader::with_max_body(Chopped { data: stream, dice: Dice(u64::from(seed)) }, HELLO_MAX_BODY);
    let mut rest = stream;
    let mut cap = HELLO_MAX_BODY;
    for _ in 0..10_000 {
        let expected = match decode_frame(rest, cap) {
            Ok(Decoded::Frame { frame, consumed }) => {
                rest = &rest[consumed..];
                Ok(frame)
            }
            Ok(Decoded::NeedMore { .. }) if rest.is_empty() => Err(WireError::Closed),
            Ok(Decoded::NeedMore { needed }) => {
                Err(WireError::Truncated { received: rest.len(), expected: needed })
            }
            Err(e) => Err(e),
        };
        let got = loop {
            match reader.read_frame() {
                Err(WireError::Timeout) => continue, // would block: the caller polls and retries
                other => break other.map(|f| f.to_frame()),
            }
        };
        match (&expected, &got) {
            (Ok(e), Ok(g)) => assert_eq!(&e.to_frame(), g),
            (Err(e), Err(g)) => {
                assert_eq!(std::mem::discriminant(e), std::mem::discriminant(g), "{e:?} vs {g:?}");
                return;
            }
            _ => panic!("reader and decoder disagree: expected {expected:?}, got {got:?}"),
        }
        cap = MAX_BODY;
        reader.set_max_body(cap);
    }
}

fn fixed_identity() -> DaemonIdentity {
    DaemonIdentity {
        pid: 4242,
        exe_path: "/opt/rp-demo/bin/rp-demo-backend".into(),
        endpoint_namespace: "rp-demo-ns".into(),
        endpoint_path: "/tmp/rp-demo/backend.sock".into(),
        started_at_unix_ms: 1_700_000_000_000,
        boot_id: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".into(),
        idle_timeout_secs: Some(600),
        exe_hash_algorithm: rp::mux::EXE_HASH_ALGORITHM.into(),
        exe_hash: (0xa0..0xc0).collect(),
        ..DaemonIdentity::default()
    }
}

/// The endpoint mux driven as a daemon drives it, with a legacy detector whose verdicts (and
/// failures) come from the input: every event consumes at most what it was given and makes
/// progress, a payload is always on a served protocol, a probe reply is a well-formed RESPONSE
/// on the identity-probe protocol echoing the nonce.
pub fn mux_poll(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else { return };
    let script_len = usize::from(head % 8).min(rest.len());
    let (script, mut buf) = rest.split_at(script_len);
    let script = script.to_vec();
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let detector: Option<rp::mux::LegacyDetector> = if script.is_empty() {
        None
    } else {
        Some(Box::new(move |b: &[u8]| {
            assert!(!b.is_empty(), "the detector is never asked about an empty buffer");
            let i = calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match script[i % script.len()] % 4 {
                0 => Ok(LegacyVerdict::NotLegacy),
                1 => Ok(LegacyVerdict::Legacy),
                2 => Ok(LegacyVerdict::NeedMore),
                _ => Err(DetectorError("scripted failure".into())),
            }
        }))
    };
    let served = [0x7001, 0x7002];
    let mux = Mux::new(&fixed_identity(), &served, detector).expect("valid mux");
    for _ in 0..1000 {
        match mux.poll(buf) {
            Ok(MuxEvent::NeedMoreBytes | MuxEvent::Legacy) | Err(_) => return,
            Ok(MuxEvent::Payload { frame, consumed }) => {
                assert!(consumed > 0 && consumed <= buf.len());
                assert!(served.contains(&frame.payload_protocol));
                buf = &buf[consumed..];
            }
            Ok(MuxEvent::ProbeAnswered { reply, consumed }) => {
                assert!(consumed > 0 && consumed <= buf.len());
                let Ok(Decoded::Frame { frame, consumed: n }) = decode_frame(&reply, MAX_BODY) else {
                    panic!("probe reply is not one frame")
                };
                assert_eq!(n, reply.len());
                assert_eq!(frame.payload_protocol, registry::IDENTITY_PROBE);
                assert_eq!(frame.kind, FrameKind::Response as i32);
                let Ok(Decoded::Frame { frame: probe, .. }) = decode_frame(buf, MAX_BODY) else { unreachable!() };
                assert_eq!(frame.request_id, probe.request_id);
                assert_eq!(&frame.payload[..PROBE_NONCE_LEN], probe.payload);
                buf = &buf[consumed..];
            }
        }
    }
}

/// The push server's read path for one worker connection (Hello, registration, replies),
/// through `rp::push::fuzzing::worker_stream`. The first byte picks the kernel-reported peer
/// (none, pid 4242 as in the golden Hello, or another pid) so the peer_pid check is reached.
pub fn push_server(data: &[u8]) {
    let Some((&which, stream)) = data.split_first() else { return };
    let accepted = rp::push::fuzzing::worker_stream(stream, chosen_peer(which));
    // Each accepted frame is at least a header long.
    assert!(accepted * HEADER_LEN <= stream.len());
}

/// The worker's parse path for what a server sends (HelloReply, registration ack, pushes and
/// cancels), through `rp::push::fuzzing::server_stream`: every push received was an EVENT on
/// the push protocol present in the input.
pub fn push_worker(data: &[u8]) {
    let jobs = rp::push::fuzzing::server_stream(data);
    assert!(jobs.len() * HEADER_LEN <= data.len());
}

/// The worker's parse path for what a liminal server sends (ConnectAck, WorkerRegisterAck,
/// then pushes, Pings, Disconnects and frames to skip), through
/// `rp::push::fuzzing::liminal_server_stream`: every push received took a whole Push frame of
/// the input (10-byte header, correlation id, payload length) and carries nothing the liminal
/// wire lacks.
pub fn liminal_worker(data: &[u8]) {
    let jobs = rp::push::fuzzing::liminal_server_stream(data);
    let pushed: usize = jobs.iter().map(|j| 22 + j.payload.len()).sum();
    assert!(pushed <= data.len());
    for job in &jobs {
        assert_eq!((job.payload_protocol, job.deadline_unix_ms), (0, 0));
        assert!(job.traceparent.is_empty() && job.tracestate.is_empty());
    }
}

/// The kernel-reported peer chosen by an input's first byte: none, pid 4242 as in the golden
/// Hello, or another pid (so the peer_pid check is reached both ways).
fn chosen_peer(which: u8) -> Option<rp::transport::PeerCredentials> {
    match which % 3 {
        0 => None,
        n => Some(rp::transport::PeerCredentials { pid: if n == 1 { 4242 } else { 7 }, uid: 0, gid: 0 }),
    }
}

/// The broker services the `broker_hello` target answers for: one plain, one with an allow
/// list, one with a block list and a minimum version.
fn broker_services() -> &'static [rp::broker::BrokerService] {
    use rp::broker::BrokerService;
    static SERVICES: std::sync::OnceLock<Vec<BrokerService>> = std::sync::OnceLock::new();
    SERVICES.get_or_init(|| {
        let entry = |name: &str| BrokerService {
            service_name: name.into(),
            backend_pipe: format!("/run/{name}.sock"),
            daemon_version: "1.0.0".into(),
            ..BrokerService::default()
        };
        vec![
            entry("echo"),
            BrokerService { allowed_versions: vec!["1.2.3".into()], ..entry("pinned") },
            BrokerService { blocked_versions: vec!["0.9.0".into()], min_version: "0.5.0".into(), ..entry("strict") },
        ]
    })
}

/// The broker server's handling of a client's first frame (Hello or admin request), through
/// `rp::broker::fuzzing::client_stream`; the first byte picks the kernel-reported peer. An
/// answer is exactly one RESPONSE echoing the request id: a HelloReply on the control protocol
/// (Negotiated only for a configured service whose version policy admits the wanted version,
/// with that service's backend) or an AdminReply.
pub fn broker_hello(data: &[u8]) {
    use rp::wire::proto::{hello_reply, AdminReply, Hello, HelloReply};
    let Some((&which, stream)) = data.split_first() else { return };
    let Some(reply) = rp::broker::fuzzing::client_stream(stream, chosen_peer(which), broker_services()) else { return };
    let (frame, consumed) = match decode_frame(&reply, MAX_BODY) {
        Ok(Decoded::Frame { frame, consumed }) => (frame, consumed),
        other => panic!("the answer is not one frame: {other:?}"),
    };
    assert_eq!(consumed, reply.len(), "the answer is more than one frame");
    assert_eq!(frame.kind, FrameKind::Response as i32);
    // What the client asked, as decoded independently of the server's code.
    let asked = match decode_frame(stream, HELLO_MAX_BODY) {
        Ok(Decoded::Frame { frame, .. }) => Some(frame),
        _ => None,
    };
    match frame.payload_protocol {
        registry::CONTROL => {
            let result = HelloReply::decode(frame.payload).expect("HelloReply decodes").result.expect("a result");
            if let hello_reply::Result::Negotiated(n) = result {
                let asked = asked.expect("a Negotiated answers a decodable frame");
                assert_eq!(frame.request_id, asked.request_id, "the request id is not echoed");
                let hello = Hello::decode(asked.payload).expect("a Negotiated answers a Hello");
                let service = broker_services()
                    .iter()
                    .find(|s| s.service_name == hello.service_name)
                    .expect("Negotiated for an unknown service");
                assert_eq!(n.backend_pipe, service.backend_pipe);
                let v = hello.wanted_version.as_str();
                assert!(service.allowed_versions.is_empty() || service.allowed_versions.iter().any(|a| a == v));
                assert!(!service.blocked_versions.iter().any(|b| b == v), "a blocked version was served");
            } else if let hello_reply::Result::Refused(r) = result {
                assert_ne!(r.code, 0, "a refusal without a code");
            }
        }
        registry::ADMIN => {
            AdminReply::decode(frame.payload).expect("AdminReply decodes");
            assert_eq!(Some(frame.request_id), asked.map(|f| f.request_id), "the request id is not echoed");
        }
        other => panic!("answer on payload protocol 0x{other:04X}"),
    }
}

/// The session's frame routing: a session (side, dispatcher and up to three calls of its own
/// chosen by the first byte) over a real socket pair reads the rest of the input as what its
/// peer sent, then end of stream. The reader thread must route or reject every frame without
/// panicking; every call ends (answered, failed, or CLOSED when the connection ends), never by
/// timeout; the session ends; everything it wrote back is well-formed session frames.
pub fn session_router(data: &[u8]) {
    use rp::session::{CallOptions, Session, Side};
    use std::os::unix::net::UnixStream;
    let Some((&flags, stream)) = data.split_first() else { return };
    let Ok((ours, mut theirs)) = UnixStream::pair() else { return };
    let conn = rp::broker::Conn::new(rp::transport::Stream::Unix(ours)).expect("conn over a socket pair");
    let side = if flags & 1 == 0 { Side::Connecting } else { Side::Accepting };
    let session = Session::new(conn, side, flags & 2 != 0).expect("session");
    let calls: Vec<_> = (0..(flags >> 2) % 4)
        .filter_map(|_| session.start_call(0x8000, b"call", &CallOptions::default()).ok())
        .collect();
    // What the session writes is read concurrently, so its writes never block.
    let mut reading = theirs.try_clone().expect("clone");
    let written = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = reading.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = reading.read_to_end(&mut all);
        all
    });
    let _ = theirs.write_all(stream);
    let _ = theirs.shutdown(std::net::Shutdown::Write);
    // Dispatch whatever was queued: answer each request.
    while let Ok(request) = session.next_request(Some(Duration::ZERO)) {
        let _ = request.respond(b"answer");
    }
    for call in calls {
        if let Err(e) = call.wait(Some(Duration::from_secs(10))) {
            assert_ne!(e.kind(), rp::ErrorKind::Timeout, "a call outlived its connection: {e}");
        }
    }
    let start = std::time::Instant::now();
    while !session.is_closed() {
        assert!(start.elapsed() < Duration::from_secs(10), "the session did not end after end of stream");
        std::thread::sleep(Duration::from_micros(200));
    }
    drop(session);
    let _ = theirs.shutdown(std::net::Shutdown::Both);
    let back = written.join().expect("reader");
    let mut at = 0;
    while at < back.len() {
        match decode_frame(&back[at..], MAX_BODY) {
            Ok(Decoded::Frame { frame, consumed }) => {
                assert_eq!(frame.payload_protocol, registry::SESSION, "the session wrote another protocol");
                at += consumed;
            }
            other => panic!("the session wrote a malformed frame at byte {at}: {other:?}"),
        }
    }
}

/// A duplex stream: reads come from the input, writes are collected.
struct Duplex<'a> {
    input: &'a [u8],
    output: Vec<u8>,
}
impl Read for Duplex<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}
impl Write for Duplex<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The token of the golden `handoff_offer` vector (10 11 .. 1f), pending in the store.
const GOLDEN_TOKEN: [u8; 16] = [
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
];

/// Handoff offer parsing and answering (`serve_offer`): a served offer gets exactly one ack
/// frame that echoes the correlation id and the presented token; an accepted token is consumed
/// (serving the same offer again is rejected); a failure writes nothing.
pub fn handoff_offer(data: &[u8]) {
    let store = HandoffStore::new(4, Duration::from_secs(60));
    store.insert(&Token(GOLDEN_TOKEN)).expect("empty store");
    let mut conn = Duplex { input: data, output: Vec::new() };
    let Ok(outcome) = handoff::serve_offer(&mut conn, &store) else {
        assert!(conn.output.is_empty(), "a failed offer wrote an ack");
        return;
    };
    let Ok(Decoded::Frame { frame, consumed }) = decode_frame(&conn.output, MAX_BODY) else {
        panic!("the ack is not one frame")
    };
    assert_eq!(consumed, conn.output.len());
    assert_eq!(frame.payload_protocol, registry::HANDOFF);
    assert_eq!(frame.kind, FrameKind::Response as i32);
    let ack = HandoffAck::decode(frame.payload).expect("the ack decodes");
    assert_eq!(ack.accepted, outcome.accepted);
    assert_eq!(ack.correlation_id, outcome.correlation_id);
    if outcome.accepted {
        assert_eq!(ack.token, GOLDEN_TOKEN, "only the pending token is accepted");
        assert!(store.is_empty(), "an accepted token is consumed");
        let mut again = Duplex { input: data, output: Vec::new() };
        let second = handoff::serve_offer(&mut again, &store).expect("the same offer parses again");
        assert!(!second.accepted, "a token was accepted twice");
    } else {
        assert_eq!(store.len(), 1, "a rejected offer consumed the pending token");
    }
}

mod capi {
    use std::ffi::c_void;

    /// The verdict script a C detector reads: the callback takes the next byte each call.
    pub struct Script {
        pub bytes: Vec<u8>,
        pub at: usize,
    }

    pub unsafe extern "C" fn detect(user_data: *mut c_void, buf: *const u8, len: usize) -> i32 {
        // SAFETY: user_data is the Script boxed by `c_api` for this mux, alive until freed.
        let script = unsafe { &mut *user_data.cast::<Script>() };
        assert!(!buf.is_null() && len > 0);
        // SAFETY: the mux lends `len` readable bytes for the call; touch them all (ASan checks).
        let sum = unsafe { std::slice::from_raw_parts(buf, len) }.iter().fold(0u8, |a, b| a ^ b);
        let b = script.bytes.get(script.at % script.bytes.len().max(1)).copied().unwrap_or(0);
        script.at += 1;
        std::hint::black_box(sum);
        // 0..=2 are verdicts; anything else is a detector failure the mux must report.
        match b % 5 {
            4 => -1,
            v => i32::from(v),
        }
    }

    pub unsafe extern "C" fn free_script(user_data: *mut c_void) {
        // SAFETY: user_data came from Box::into_raw in `c_api`; librp frees it exactly once.
        drop(unsafe { Box::from_raw(user_data.cast::<Script>()) });
    }
}

/// A sequence of C API calls chosen by the input, through the `extern "C"` functions as a C
/// program calls them: frame decode/encode (re-encoding a decoded frame gives its bytes back
/// when they were canonical), encode to an `rp_msg`, response encoding, daemon identities,
/// muxes (created with a scripted C detector, cloned, polled, freed in any order), handoff
/// token stores, NULL arguments, status strings and the last error. Every handle is freed at
/// the end, so LeakSanitizer reports any leak; ASan reports any use of a dangling view.
pub fn c_api(data: &[u8]) {
    use rp::ffi::boundary::rp_last_error_message;
    use rp::ffi::bytes::{rp_msg, rp_msg_data, rp_msg_free, rp_msg_len};
    use rp::ffi::frame::{rp_frame_decode, rp_frame_encode, rp_frame_encode_msg, rp_frame_view, rp_frame_view_init};
    use rp::ffi::handoff::{rp_handoff_store, rp_handoff_store_free, rp_handoff_store_insert, rp_handoff_store_issue, rp_handoff_store_new};
    use rp::ffi::identity::{rp_daemon_identity, rp_daemon_identity_free, rp_daemon_identity_new, rp_daemon_identity_set_pid};
    use rp::ffi::mux::{rp_frame_encode_response, rp_frame_encode_response_msg, rp_mux, rp_mux_clone, rp_mux_event, rp_mux_free, rp_mux_new, rp_mux_poll};
    use rp::ffi::registry::rp_protocol_classify;
    use rp::ffi::status::{rp_status, rp_status_str};
    use std::ptr::{null, null_mut};

    let mut input = data;
    let mut take = |n: usize| -> &[u8] {
        let n = n.min(input.len());
        let (a, b) = input.split_at(n);
        input = b;
        a
    };
    let mut muxes: Vec<*const rp_mux> = Vec::new();
    let mut stores: Vec<*const rp_handoff_store> = Vec::new();
    let mut identity: *mut rp_daemon_identity = null_mut();
    // SAFETY (whole body): every pointer passed is NULL, a live handle this function owns, or a
    // buffer of the stated length; views are read before the call that may invalidate them.
    unsafe {
        assert_eq!(rp_daemon_identity_new(&mut identity), rp_status::Ok);
        for _ in 0..64 {
            let Some(&op) = take(1).first() else { break };
            let arg = take(1).first().copied().unwrap_or(0);
            match op % 12 {
                0 => {
                    // Decode a chunk; re-encode what decoded.
                    let chunk = take(usize::from(arg) * 2).to_vec();
                    let mut view = std::mem::zeroed::<rp_frame_view>();
                    let mut used = 0usize;
                    let cap = if arg & 1 == 0 { MAX_BODY } else { HELLO_MAX_BODY };
                    if rp_frame_decode(chunk.as_ptr(), chunk.len(), cap, &mut view, &mut used) == rp_status::Ok {
                        assert!(used <= chunk.len());
                        let mut out = vec![0u8; used + 16];
                        let mut n = 0usize;
                        assert_eq!(rp_frame_encode(&view, out.as_mut_ptr(), out.len(), &mut n), rp_status::Ok);
                        let canonical = Frame::decode(&chunk[HEADER_LEN..used]).unwrap().encode_to_vec();
                        assert_eq!(&out[HEADER_LEN..n], &canonical[..]);
                        let mut msg: *mut rp_msg = null_mut();
                        assert_eq!(rp_frame_encode_msg(&view, &mut msg), rp_status::Ok);
                        assert_eq!(std::slice::from_raw_parts(rp_msg_data(msg), rp_msg_len(msg)), &out[..n]);
                        rp_msg_free(msg);
                        // A response to it, into a buffer too small, then one large enough.
                        let payload = take(usize::from(arg % 32)).to_vec();
                        let mut tiny = [0u8; 4];
                        let st = rp_frame_encode_response(&view, payload.as_ptr(), payload.len(), tiny.as_mut_ptr(), tiny.len(), &mut n);
                        assert_ne!(st, rp_status::Ok);
                        let mut msg: *mut rp_msg = null_mut();
                        if rp_frame_encode_response_msg(&view, payload.as_ptr(), payload.len(), &mut msg) == rp_status::Ok {
                            assert!(rp_msg_len(msg) >= HEADER_LEN);
                            rp_msg_free(msg);
                        }
                    }
                }
                1 => {
                    let mut view = std::mem::zeroed::<rp_frame_view>();
                    assert_eq!(rp_frame_view_init(&mut view), rp_status::Ok);
                    view.request_id = u64::from(arg) << 56;
                    view.kind = i32::from(arg) - 128;
                    let mut buf = vec![0u8; usize::from(arg)];
                    let mut n = 0usize;
                    let st = rp_frame_encode(&view, buf.as_mut_ptr(), buf.len(), &mut n);
                    assert!(st != rp_status::Ok || n <= buf.len());
                }
                2 if muxes.len() < 4 => {
                    let script = Box::new(capi::Script { bytes: take(usize::from(arg % 8)).to_vec(), at: 0 });
                    let served = [0x7001u32, u32::from(arg) << 8];
                    let detect = if arg & 0x80 != 0 { None } else { Some(capi::detect as _) };
                    let mut mux: *const rp_mux = null();
                    let ud = Box::into_raw(script).cast();
                    if rp_mux_new(identity, served.as_ptr(), 1 + usize::from(arg & 1), detect, ud, Some(capi::free_script), &mut mux) == rp_status::Ok {
                        muxes.push(mux);
                    }
                }
                3 if !muxes.is_empty() => {
                    let mux = muxes[usize::from(arg) % muxes.len()];
                    let chunk = take(usize::from(arg) * 2).to_vec();
                    let mut ev = std::mem::zeroed::<rp_mux_event>();
                    if rp_mux_poll(mux, chunk.as_ptr(), chunk.len(), &mut ev) == rp_status::Ok {
                        assert!(ev.consumed <= chunk.len());
                        let f = ev.frame.payload;
                        if f.len > 0 {
                            let start = f.ptr.offset_from(chunk.as_ptr());
                            assert!(start >= 0 && start as usize + f.len <= chunk.len(), "payload view outside the buffer");
                        }
                        let r = ev.reply;
                        if r.len > 0 {
                            let copy = std::slice::from_raw_parts(r.ptr, r.len).to_vec();
                            assert!(matches!(decode_frame(&copy, MAX_BODY), Ok(Decoded::Frame { .. })));
                        }
                    }
                }
                4 if !muxes.is_empty() && muxes.len() < 8 => {
                    let m = rp_mux_clone(muxes[usize::from(arg) % muxes.len()]);
                    assert!(!m.is_null());
                    muxes.push(m);
                }
                5 if !muxes.is_empty() => {
                    let i = usize::from(arg) % muxes.len();
                    rp_mux_free(muxes.swap_remove(i));
                }
                6 if stores.len() < 3 => {
                    let mut s: *const rp_handoff_store = null();
                    if rp_handoff_store_new(u32::from(arg % 4), 60_000, &mut s) == rp_status::Ok {
                        stores.push(s);
                    }
                }
                7 if !stores.is_empty() => {
                    let s = stores[usize::from(arg) % stores.len()];
                    let mut tok = [0u8; 16];
                    let n = usize::from(arg % 20);
                    let mut out = vec![0u8; n];
                    let _ = rp_handoff_store_issue(s, out.as_mut_ptr(), n);
                    let t = take(usize::from(arg % 17));
                    tok[..t.len()].copy_from_slice(t);
                    let _ = rp_handoff_store_insert(s, tok.as_ptr(), t.len());
                }
                8 if !stores.is_empty() => {
                    let i = usize::from(arg) % stores.len();
                    rp_handoff_store_free(stores.swap_remove(i));
                }
                9 => {
                    // NULL arguments are errors, never crashes.
                    let mut ev = std::mem::zeroed::<rp_mux_event>();
                    assert_eq!(rp_mux_poll(null(), null(), 0, &mut ev), rp_status::NullArgument);
                    let mut n = 0usize;
                    assert_ne!(rp_frame_decode(null(), 5, MAX_BODY, null_mut(), &mut n), rp_status::Ok);
                    assert_ne!(rp_frame_encode(null(), null_mut(), 0, null_mut()), rp_status::Ok);
                    assert_ne!(rp_daemon_identity_set_pid(null_mut(), 1), rp_status::Ok);
                    rp_mux_free(null());
                    rp_handoff_store_free(null());
                    rp_msg_free(null_mut());
                }
                10 => {
                    let code = i32::from(arg as i8) * 3;
                    assert!(!rp_status_str(code).is_null());
                    let _ = rp_protocol_classify(u32::from(arg) << (arg % 24));
                    let mut buf = vec![0 as std::ffi::c_char; usize::from(arg % 8)];
                    let full = rp_last_error_message(if buf.is_empty() { null_mut() } else { buf.as_mut_ptr() }, buf.len());
                    if !buf.is_empty() {
                        let written = full.min(buf.len() - 1);
                        assert_eq!(buf[written], 0, "the message is NUL-terminated");
                    }
                }
                _ => {
                    let _ = rp_daemon_identity_set_pid(identity, u32::from(arg));
                }
            }
        }
        for m in muxes {
            rp_mux_free(m);
        }
        for s in stores {
            rp_handoff_store_free(s);
        }
        rp_daemon_identity_free(identity);
    }
}

/// What the event-loop targets read their script from: bytes, then zeros once it runs out.
struct Script<'a>(&'a [u8]);
impl<'a> Script<'a> {
    fn u8(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        b
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

/// An abstract socket name unique to this process and call.
fn unique_name(what: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("rp-fuzz-{what}-{}-{n}", std::process::id())
}

/// Threads of this process now.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// Waits (up to 5 s) until no more than `baseline` threads run: the fuzz binaries of the
/// event-loop targets call it after each input, so threads a server started on its own (the
/// broker's handoff threads, which outlive its shutdown by up to the ack timeout) have ended
/// before libFuzzer looks for leaks.
pub fn wait_for_threads(baseline: usize) {
    let start = std::time::Instant::now();
    while thread_count() > baseline && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// One scripted peer of a server under test: a non-blocking Unix socket, what it has read so
/// far (every frame of it must be well-formed), and a frame it has only half written.
struct Peer {
    socket: std::os::unix::net::UnixStream,
    got: Vec<u8>,
    parsed: usize,
    /// Request id and payload of every EVENT read and not yet answered.
    events: std::collections::VecDeque<(u64, Vec<u8>)>,
    held_back: Vec<u8>,
    eof: bool,
}

impl Peer {
    fn connect(name: &str) -> Option<Peer> {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).ok()?;
        let socket = std::os::unix::net::UnixStream::connect_addr(&addr).ok()?;
        socket.set_nonblocking(true).ok()?;
        Some(Peer { socket, got: Vec::new(), parsed: 0, events: Default::default(), held_back: Vec::new(), eof: false })
    }

    /// Writes what the socket takes now (never SIGPIPE); the rest is dropped.
    fn send(&mut self, mut bytes: &[u8]) {
        use std::os::fd::AsRawFd;
        while !bytes.is_empty() {
            match rp::transport::send_nosignal(self.socket.as_raw_fd(), bytes) {
                Ok(n) if n > 0 => bytes = &bytes[n..],
                _ => return,
            }
        }
    }

    /// Sends the first `cut` bytes of `frame` and holds the rest back for [`Peer::resume`].
    fn send_part(&mut self, frame: &[u8], cut: usize) {
        let cut = cut.min(frame.len());
        self.send(&frame[..cut]);
        self.held_back = frame[cut..].to_vec();
    }

    fn resume(&mut self) {
        let rest = std::mem::take(&mut self.held_back);
        self.send(&rest);
    }

    /// Reads what has arrived; every whole frame must decode and be on one of `protocols`.
    fn drain(&mut self, protocols: &[u32]) {
        let mut buf = [0u8; 16 * 1024];
        while !self.eof {
            match (&self.socket).read(&mut buf) {
                Ok(0) => self.eof = true,
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.parse(protocols);
    }

    fn parse(&mut self, protocols: &[u32]) {
        loop {
            match decode_frame(&self.got[self.parsed..], MAX_BODY) {
                Ok(Decoded::Frame { frame, consumed }) => {
                    assert!(
                        protocols.contains(&frame.payload_protocol),
                        "the server wrote on payload protocol 0x{:04X}",
                        frame.payload_protocol
                    );
                    if frame.kind == FrameKind::Event as i32 && self.events.len() < 64 {
                        self.events.push_back((frame.request_id, frame.payload.to_vec()));
                    }
                    self.parsed += consumed;
                }
                Ok(Decoded::NeedMore { .. }) => return,
                Err(e) => panic!("the server wrote a malformed frame at byte {}: {e:?}", self.parsed),
            }
        }
    }

    /// After the server stopped: reads to end of stream (the server must have closed it) and
    /// checks every frame; a frame cut short by the close is allowed.
    fn finish(mut self, protocols: &[u32]) {
        let _ = self.socket.set_nonblocking(false);
        let _ = self.socket.set_read_timeout(Some(Duration::from_secs(5)));
        let mut rest = Vec::new();
        if !self.eof {
            if let Err(e) = (&self.socket).read_to_end(&mut rest) {
                assert!(e.kind() != io::ErrorKind::WouldBlock && e.kind() != io::ErrorKind::TimedOut, "the server left a connection open after it stopped");
            }
        }
        self.got.extend_from_slice(&rest);
        self.events.clear();
        self.parse(protocols);
    }
}

/// One frame's bytes.
fn frame_bytes(kind: FrameKind, payload_protocol: u32, request_id: u64, payload: &[u8]) -> Vec<u8> {
    FrameView { kind: kind as i32, payload_protocol, request_id, payload, ..FrameView::default() }
        .to_bytes()
        .expect("a small frame encodes")
}

/// A Hello frame with script-chosen fields: service name, version range, pid, token.
fn scripted_hello(s: &mut Script<'_>, services: &[&str], versions: &[&str], token: &[u8]) -> Vec<u8> {
    use rp::wire::proto::Hello;
    let v = s.u8();
    let w = s.u8();
    let hello = Hello {
        client_min_protocol: 1,
        client_max_protocol: if w & 0x80 != 0 { 0 } else { 1 },
        service_name: services[usize::from(v) % services.len()].into(),
        wanted_version: versions[usize::from(w) % versions.len()].into(),
        client_capabilities: u64::from(v >> 7),
        auth_token: if v & 0x40 != 0 { token.to_vec() } else { Vec::new() },
        peer_pid: match (v >> 4) & 3 {
            0 => 0,
            1 => 7,
            _ => std::process::id(),
        },
        client_version: "x".repeat(usize::from(w & 0x40) * 3),
        client_keepalive_secs: u64::from(w & 0x30),
        ..Hello::default()
    };
    frame_bytes(FrameKind::Request, registry::CONTROL, u64::from(s.u8()), &hello.encode_to_vec())
}

/// The real push server's event loop (`PushServer` over a socket it listens on), driven by up to
/// four scripted workers and by the application's calls, all chosen by the input: server options
/// (deadlines, limits, decisions, auth), then a script of steps: connect, Hello, registration,
/// replies (right, failed, misaddressed, malformed), raw bytes, frames cut in two, reads,
/// half-closes, closes, pushes to any target with any deadline and size, `push_wait` answered
/// by a worker thread, decisions, disconnects, pauses and an early shutdown.
///
/// Checked: everything the server writes is well-formed frames on the control and push
/// protocols; after shutdown every ticket is done and every connection is closed; a reply that
/// reached a ticket is the one its worker gave for that push (unless raw bytes were sent, which
/// can forge one).
pub fn push_loop(data: &[u8]) {
    use rp::push::proto::{push_reply, Push, PushFailure, PushReply, Registration};
    use rp::push::{PushResult, PushServer, PushSpec, RegistrationDecision, ServerEvent, ServerOptions, Target, PUSH_PROTOCOL};
    const PROTOCOLS: &[u32] = &[registry::CONTROL, PUSH_PROTOCOL];
    const MS: fn(u64) -> Duration = Duration::from_millis;
    let mut s = Script(data);
    let flags = s.u8();
    let name = unique_name("push");
    let mut opts = ServerOptions::new(rp::transport::Endpoint::Abstract(name.clone()));
    opts.decide_registrations = flags & 1 != 0;
    opts.events = flags & 2 != 0;
    if flags & 4 != 0 {
        opts.auth_token = b"fuzz-token".to_vec();
    }
    opts.handshake_timeout = if flags & 8 != 0 { MS(5) } else { Duration::from_secs(10) };
    opts.frame_timeout = if flags & 16 != 0 { MS(5) } else { Duration::from_secs(30) };
    opts.max_send_buffer = if flags & 32 != 0 { 4096 } else { 8 << 20 };
    if flags & 64 != 0 {
        opts.max_connections = 3;
        opts.max_connections_per_uid = 2;
    }
    let Ok(server) = PushServer::bind(opts) else { return };
    let mut peers: Vec<Option<Peer>> = Vec::new();
    let mut tickets: Vec<(rp::push::Ticket, Vec<u8>)> = Vec::new();
    let mut forged = false;
    let mut slept = 0u64;
    let mut next_job = 0u32;
    let worker_of = |server: &PushServer, p: usize| {
        let identity = format!("peer{p}");
        server.workers().into_iter().find(|w| w.registration.identity == identity).map(|w| w.id)
    };
    for _ in 0..200 {
        if s.done() {
            break;
        }
        let op = s.u8();
        let p = usize::from(op >> 4) % 4;
        if op & 15 == 0 {
            if peers.len() < 4 {
                peers.push(Peer::connect(&name));
            } else {
                peers[p] = Peer::connect(&name);
            }
            continue;
        }
        let peer_slot = peers.get_mut(p);
        match op & 15 {
            1 => {
                let hello = scripted_hello(&mut s, &["librp-push", "other"], &["1.0.0", "2.0.0", "1.0"], b"fuzz-token");
                if let Some(Some(peer)) = peer_slot {
                    peer.send(&hello);
                }
            }
            2 | 3 => {
                let v = s.u8();
                let many = if v & 0x80 != 0 { 200 } else { usize::from(v >> 5) };
                let reg = Registration {
                    identity: if v & 0x10 != 0 { "i".repeat(300) } else { format!("peer{p}") },
                    task_queue: format!("q{}", v & 1),
                    namespaces: (0..many).map(|i| format!("ns{i}")).collect(),
                    activity_types: vec!["a".into(); usize::from(v >> 6)],
                    node: "n".into(),
                    payload_protocols: match (v >> 1) & 3 {
                        0 => vec![],
                        1 => vec![0x7001],
                        2 => vec![0x7001, 0x7002],
                        _ => vec![5],
                    },
                };
                let kind = if v & 8 != 0 { FrameKind::Event } else { FrameKind::Request };
                let frame = frame_bytes(kind, PUSH_PROTOCOL, 1, &reg.encode_to_vec());
                if let Some(Some(peer)) = peer_slot {
                    if op & 15 == 3 {
                        let cut = usize::from(s.u8()) % frame.len();
                        peer.send_part(&frame, cut);
                    } else {
                        peer.send(&frame);
                    }
                }
            }
            4 | 5 => {
                // Answer the oldest push read (read first).
                let v = s.u8();
                let Some(Some(peer)) = peer_slot else { continue };
                peer.drain(PROTOCOLS);
                let Some((id, payload)) = peer.events.pop_front() else { continue };
                let job = Push::decode(&payload[..]).map(|p| p.payload).unwrap_or_default();
                let result = if v & 1 == 0 {
                    push_reply::Result::Payload(job)
                } else {
                    push_reply::Result::Failure(PushFailure { code: i32::from(v), message: "failed".into() })
                };
                let body = PushReply { result: Some(result) }.encode_to_vec();
                let mut frame = FrameView {
                    kind: FrameKind::Response as i32,
                    payload_protocol: PUSH_PROTOCOL,
                    request_id: id,
                    payload: &body,
                    ..FrameView::default()
                };
                // Misaddressed or malformed replies; the loop must refuse them without a mix-up.
                match (v >> 1) % 12 {
                    0 => frame.request_id = id.wrapping_add(1000),
                    1 => frame.kind = FrameKind::Event as i32,
                    2 => frame.payload_protocol = 0x7001,
                    3 => frame.payload_encoding = 1,
                    4 => frame.envelope_version = 2,
                    5 => frame.payload = &body[..body.len() / 2],
                    _ => {}
                }
                let Ok(bytes) = frame.to_bytes() else { continue };
                if op & 15 == 5 {
                    let cut = usize::from(s.u8()) % bytes.len();
                    peer.send_part(&bytes, cut);
                } else {
                    peer.send(&bytes);
                }
            }
            6 => {
                let n = usize::from(s.u8());
                let raw = s.take(n);
                forged = true;
                if let Some(Some(peer)) = peer_slot {
                    peer.send(raw);
                }
            }
            7 => {
                if let Some(Some(peer)) = peer_slot {
                    peer.resume();
                    peer.drain(PROTOCOLS);
                }
            }
            8 => {
                if let Some(slot) = peer_slot {
                    if s.u8() & 1 == 0 {
                        if let Some(peer) = slot {
                            let _ = peer.socket.shutdown(std::net::Shutdown::Write);
                        }
                    } else {
                        *slot = None;
                    }
                }
            }
            9 | 10 => {
                let t = s.u8();
                let size = s.u8();
                let d = s.u8();
                let target = match t % 4 {
                    0 => Target::Worker(worker_of(&server, p).unwrap_or(u64::from(t))),
                    1 => Target::TaskQueue(format!("q{}", (t >> 2) & 1)),
                    2 => Target::Protocol(0x7001 + u32::from((t >> 2) % 3)),
                    _ => Target::Worker(u64::from(t >> 2)),
                };
                next_job += 1;
                let mut payload = next_job.to_le_bytes().to_vec();
                payload.resize(if size & 0x80 != 0 { usize::from(size & 0x7f) * 1024 } else { 4 + usize::from(size) }, 0xab);
                let spec = PushSpec {
                    payload_protocol: 0x7001,
                    payload: payload.clone(),
                    deadline_unix_ms: match d % 4 {
                        0 => 0,
                        1 => 1,
                        _ => rp_now_ms() + u64::from(d >> 2),
                    },
                    ..PushSpec::default()
                };
                if op & 15 == 9 {
                    if let Ok(ticket) = server.push(target, spec) {
                        tickets.push((ticket, payload));
                    }
                } else {
                    // push_wait, with the worker of peer `p` answering from another thread.
                    let responder = peer_slot.and_then(|p| p.as_mut());
                    let timeout = MS(1 + u64::from(d % 16));
                    let stop = std::sync::atomic::AtomicBool::new(false);
                    let outcome = std::thread::scope(|scope| {
                        if let Some(peer) = responder {
                            let stop = &stop;
                            scope.spawn(move || answer_pushes(peer, stop));
                        }
                        let outcome = server.push_wait(target, spec, timeout);
                        stop.store(true, std::sync::atomic::Ordering::Relaxed);
                        outcome
                    });
                    if let (Ok(PushResult::Reply(got)), false) = (&outcome, forged) {
                        assert_eq!(got, &payload, "push_wait returned another push's reply");
                    }
                }
            }
            11 => {
                let v = s.u8();
                while let Ok(event) = server.next_event(Some(Duration::ZERO)) {
                    if let ServerEvent::RegistrationRequest { worker_id, .. } = event {
                        let decision = if v & 1 == 0 { RegistrationDecision::Accept } else { RegistrationDecision::Reject("no".into()) };
                        let _ = server.decide(worker_id, decision);
                    }
                }
                let _ = server.decide(u64::from(v >> 1), RegistrationDecision::Accept);
            }
            12 => {
                let id = worker_of(&server, p).unwrap_or(u64::from(s.u8()));
                let _ = server.disconnect(id);
            }
            13 => {
                let ms = u64::from(s.u8() % 8).min(40u64.saturating_sub(slept));
                slept += ms;
                std::thread::sleep(MS(ms));
            }
            14 => {
                let _ = server.workers();
                std::thread::yield_now();
            }
            _ => {
                if s.u8() == 0xff {
                    server.shutdown();
                }
            }
        }
    }
    server.shutdown();
    for (ticket, payload) in tickets {
        assert!(ticket.is_done(), "a push outlived the server");
        if let (Ok(PushResult::Reply(got)), false) = (ticket.wait(Some(Duration::ZERO)), forged) {
            assert_eq!(got, payload, "a ticket got another push's reply");
        }
    }
    for peer in peers.into_iter().flatten() {
        peer.finish(PROTOCOLS);
    }
}

fn rp_now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A worker's answering thread for `push_loop`'s `push_wait`: finishes the frame the peer
/// held back, then echoes every push's job as its reply until `stop` (at most 100 ms).
fn answer_pushes(peer: &mut Peer, stop: &std::sync::atomic::AtomicBool) {
    use rp::push::proto::{push_reply, Push, PushReply};
    peer.resume();
    let start = std::time::Instant::now();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) && start.elapsed() < Duration::from_millis(100) {
        peer.drain(&[registry::CONTROL, rp::push::PUSH_PROTOCOL]);
        while let Some((id, payload)) = peer.events.pop_front() {
            let job = Push::decode(&payload[..]).map(|p| p.payload).unwrap_or_default();
            let body = PushReply { result: Some(push_reply::Result::Payload(job)) }.encode_to_vec();
            peer.send(&frame_bytes(FrameKind::Response, rp::push::PUSH_PROTOCOL, id, &body));
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// The real broker server's event loop (`BrokerServer` over a socket it listens on), driven by
/// up to six scripted clients and a scripted handoff backend, all chosen by the input: options
/// (Hello deadline, rate limit, connection limits, events, whether the handoff backend listens),
/// then steps: connect, Hellos for any service and version (with or without handle passing),
/// admin requests with any verb, raw bytes, frames cut in two, reads, half-closes, closes, a
/// backend that accepts, refuses or drops a handed-off client, events taken, pauses and
/// `begin_shutdown`.
///
/// Checked: everything the broker writes to a client is well-formed frames on the control,
/// admin and handoff protocols; after shutdown every client connection is closed.
pub fn broker_loop(data: &[u8]) {
    use rp::broker::{BrokerServer, BrokerServerOptions, BrokerService};
    use rp::wire::proto::AdminRequest;
    use std::os::unix::net::UnixListener;
    const PROTOCOLS: &[u32] = &[registry::CONTROL, registry::ADMIN, registry::HANDOFF];
    let mut s = Script(data);
    let flags = s.u8();
    let limits = s.u8();
    let name = unique_name("broker");
    let backend_name = unique_name("backend");
    let store = std::sync::Arc::new(HandoffStore::new(4, Duration::from_secs(60)));
    let backend = if flags & 1 != 0 {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(&backend_name).ok().and_then(|a| UnixListener::bind_addr(&a).ok())
    } else {
        None
    };
    if let Some(l) = &backend {
        let _ = l.set_nonblocking(true);
    }
    let mut services = broker_services().to_vec();
    services.push(BrokerService {
        service_name: "handy".into(),
        backend_pipe: "/run/handy.sock".into(),
        daemon_version: "1.0.0".into(),
        handoff_endpoint: Some(rp::transport::Endpoint::Abstract(backend_name)),
        handoff_store: (flags & 2 != 0).then(|| std::sync::Arc::clone(&store)),
        ..BrokerService::default()
    });
    let mut opts = BrokerServerOptions::new(rp::transport::Endpoint::Abstract(name.clone()), services);
    opts.events = flags & 4 != 0;
    opts.hello_timeout = if flags & 8 != 0 { Duration::from_millis(5) } else { Duration::from_secs(5) };
    opts.handoff_ack_timeout = Duration::from_millis(if flags & 16 != 0 { 5 } else { 50 });
    opts.rate_limit = if limits & 1 != 0 { u32::from(limits >> 4) } else { 256 };
    opts.rate_window = Duration::from_millis(if limits & 2 != 0 { 2 } else { 1000 });
    if limits & 4 != 0 {
        opts.max_connections = 1 + usize::from(limits >> 6);
        opts.max_connections_per_uid = 1 + usize::from((limits >> 4) & 3);
    }
    let Ok(server) = BrokerServer::bind(opts) else { return };
    let mut clients: Vec<Option<Peer>> = Vec::new();
    let mut slept = 0u64;
    for _ in 0..200 {
        if s.done() {
            break;
        }
        let op = s.u8();
        let p = usize::from(op >> 4) % 6;
        if op & 15 == 0 {
            if clients.len() < 6 {
                clients.push(Peer::connect(&name));
            } else {
                clients[p] = Peer::connect(&name);
            }
            continue;
        }
        let slot = clients.get_mut(p);
        match op & 15 {
            1 | 2 => {
                let hello = scripted_hello(
                    &mut s,
                    &["echo", "pinned", "strict", "handy", "nope", "Bad!"],
                    &["1.2.3", "0.9.0", "0.1.0", "2.0.0", "1.0", "1.0.0-rc.1"],
                    b"",
                );
                if let Some(Some(peer)) = slot {
                    if op & 15 == 2 {
                        let cut = usize::from(s.u8()) % hello.len();
                        peer.send_part(&hello, cut);
                    } else {
                        peer.send(&hello);
                    }
                }
            }
            3 => {
                let verb = s.u8();
                let req = AdminRequest {
                    verb: i32::from(verb & 0x7f) - 8,
                    json: verb & 0x80 != 0,
                    service_name: "echo".into(),
                    ..AdminRequest::default()
                };
                let frame = frame_bytes(FrameKind::Request, registry::ADMIN, u64::from(verb), &req.encode_to_vec());
                if let Some(Some(peer)) = slot {
                    peer.send(&frame);
                }
            }
            4 => {
                let n = usize::from(s.u8());
                let raw = s.take(n);
                if let Some(Some(peer)) = slot {
                    peer.send(raw);
                }
            }
            5 => {
                if let Some(Some(peer)) = slot {
                    peer.resume();
                    peer.drain(PROTOCOLS);
                }
            }
            6 => {
                if let Some(slot) = slot {
                    if s.u8() & 1 == 0 {
                        if let Some(peer) = slot {
                            let _ = peer.socket.shutdown(std::net::Shutdown::Write);
                        }
                    } else {
                        *slot = None;
                    }
                }
            }
            7 => server.begin_shutdown(),
            8 | 9 => {
                // The backend takes one pending handoff: accepts it, refuses it or drops it.
                let v = s.u8();
                let Some(listener) = &backend else { continue };
                let Ok((mut stream, _)) = listener.accept() else { continue };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
                let _ = stream.set_write_timeout(Some(Duration::from_millis(50)));
                match v % 3 {
                    0 => {
                        let mine = HandoffStore::new(4, Duration::from_secs(60));
                        let _ = handoff::accept_handoff(&mut stream, if v & 4 != 0 { &mine } else { &store });
                    }
                    1 => drop(stream),
                    _ => {
                        let _ = rp::transport::send_nosignal(std::os::fd::AsRawFd::as_raw_fd(&stream), s.take(usize::from(v >> 2)));
                    }
                }
            }
            10 => {
                while server.next_event(Some(Duration::ZERO)).is_ok() {}
                let _ = server.events_dropped();
            }
            11 => {
                let ms = u64::from(s.u8() % 8).min(40u64.saturating_sub(slept));
                slept += ms;
                std::thread::sleep(Duration::from_millis(ms));
            }
            _ => {
                if let Some(Some(peer)) = slot {
                    peer.drain(PROTOCOLS);
                }
            }
        }
    }
    drop(backend);
    server.shutdown();
    for peer in clients.into_iter().flatten() {
        peer.finish(PROTOCOLS);
    }
}
