//! The backend endpoint multiplexer: a sans-io classifier over a daemon's read buffer.
//!
//! A daemon that already speaks its own ("legacy") wire on an endpoint keeps its sockets,
//! threads and event loop. For each connection it feeds the bytes buffered so far to
//! [`Mux::poll`], which never reads, writes or consumes anything: the returned [`MuxEvent`]
//! says what the bytes are and how many to advance past once handled.
//!
//! Order of decisions (the reference implementation's, checked by `tests/mux_cases.rs`):
//! 1. an empty buffer needs more bytes (the legacy detector is not asked);
//! 2. the legacy detector runs first and wins ties, even against a valid v1 frame;
//! 3. a first byte other than the v1 framing byte is legacy;
//! 4. an incomplete frame needs more bytes; a framing violation is fatal;
//! 5. an identity probe (0xB232) is answered; a malformed probe is fatal;
//! 6. any other first-party protocol is fatal, and so is a consumer protocol not served;
//! 7. a frame of a served protocol is a payload (its kind and envelope version are not checked).

mod identity;
mod probe;

pub use identity::{DaemonIdentity, LegacyHash, EXE_HASH_ALGORITHM, LEGACY_SHA256_LEN};
pub use probe::{probe, probe_with_nonce, verify_identity};
// Defined with the error type, which carries them, so that error.rs imports no role.
pub use crate::error::{DetectorError, MuxError};


use crate::error::Error;
use crate::wire::proto::{FrameKind, PayloadEncoding};
use crate::wire::{self, registry, Decoded, FrameView};

/// Length of the nonce an identity probe carries.
pub const PROBE_NONCE_LEN: usize = 32;

/// What the legacy detector says about the buffered bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyVerdict {
    /// The bytes are not the daemon's own wire; the mux goes on to classify them.
    NotLegacy,
    /// The bytes are the daemon's own wire.
    Legacy,
    /// The detector cannot tell yet; wait for more bytes.
    NeedMore,
}

/// Decides whether buffered bytes belong to the daemon's own wire. Called from every thread
/// that polls the mux, possibly concurrently.
pub type LegacyDetector =
    Box<dyn Fn(&[u8]) -> Result<LegacyVerdict, DetectorError> + Send + Sync + 'static>;

/// The verdict on the front of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MuxEvent<'a> {
    /// The buffer holds too little to decide; read more and poll again. Nothing consumed.
    NeedMoreBytes,
    /// The bytes are the daemon's own wire; handle them with the daemon's own code.
    /// The mux does not know their extent, so nothing is consumed.
    Legacy,
    /// An identity probe: write `reply` back, then advance by `consumed`.
    ///
    /// The reply is an owned vector: probes are rare (a broker sends one per connection it
    /// verifies), so this path allocates, while the payload path does not.
    ProbeAnswered {
        /// The complete reply frame (header included).
        reply: Vec<u8>,
        /// Bytes the probe frame occupied.
        consumed: usize,
    },
    /// A frame of a served consumer protocol, borrowed from the buffer (no copy, no allocation).
    Payload {
        /// The frame.
        frame: FrameView<'a>,
        /// Bytes the frame occupied.
        consumed: usize,
    },
}

/// The multiplexer of one backend endpoint. Immutable after creation; `Sync`, so one mux may
/// be polled from many threads at once.
pub struct Mux {
    served: Vec<u32>,
    /// The identity bytes of every probe reply (after the nonce), encoded once.
    reply_identity: Vec<u8>,
    detector: Option<LegacyDetector>,
}

impl std::fmt::Debug for Mux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mux")
            .field("served", &self.served)
            .field("reply_identity_len", &self.reply_identity.len())
            .field("has_detector", &self.detector.is_some())
            .finish()
    }
}

impl Mux {
    /// A mux answering probes with `identity`, serving the consumer protocols `served`, and
    /// asking `detector` (if any) first whether bytes are the daemon's own wire.
    ///
    /// Fails when a served id is first-party or outside the consumer, private-use and SESSION
    /// ranges ([`registry::check_servable`]).
    pub fn new(
        identity: &DaemonIdentity,
        served: &[u32],
        detector: Option<LegacyDetector>,
    ) -> Result<Self, Error> {
        for &id in served {
            registry::check_servable(id).map_err(Error::invalid_argument)?;
        }
        let mut served = served.to_vec();
        served.sort_unstable();
        served.dedup();
        Ok(Mux {
            served,
            reply_identity: identity.encode_reply_identity(),
            detector,
        })
    }

    /// The served consumer protocols, sorted.
    pub fn served(&self) -> &[u32] {
        &self.served
    }

    /// Classifies the front of `buf`. Handles at most one unit per call.
    #[inline]
    pub fn poll<'a>(&self, buf: &'a [u8]) -> Result<MuxEvent<'a>, MuxError> {
        self.poll_then(
            buf,
            (),
            |(), frame, consumed| Ok(MuxEvent::Payload { frame, consumed }),
            |(), event| event,
        )
    }

    /// [`poll`](Self::poll), handing a payload frame to `payload` and any other outcome to
    /// `other`, each with `ctx`. The C entry point writes the caller's event from within `payload`, where the
    /// decoded frame is still in registers, instead of from a returned [`MuxEvent`].
    #[inline(always)]
    pub(crate) fn poll_then<'a, C, R>(
        &self,
        buf: &'a [u8],
        ctx: C,
        payload: impl FnOnce(C, FrameView<'a>, usize) -> R,
        other: impl FnOnce(C, Result<MuxEvent<'a>, MuxError>) -> R,
    ) -> R {
        let event = 'other: {
            let Some(&first) = buf.first() else {
                break 'other Ok(MuxEvent::NeedMoreBytes);
            };
            if let Some(detect) = &self.detector {
                match detect(buf) {
                    Err(e) => break 'other Err(e.into()),
                    Ok(LegacyVerdict::Legacy) => break 'other Ok(MuxEvent::Legacy),
                    Ok(LegacyVerdict::NeedMore) => break 'other Ok(MuxEvent::NeedMoreBytes),
                    Ok(LegacyVerdict::NotLegacy) => {}
                }
            }
            if first != wire::FRAMING_VERSION {
                break 'other Ok(MuxEvent::Legacy);
            }
            let (frame, consumed) = match wire::decode_frame(buf, wire::MAX_BODY) {
                Err(e) => break 'other Err(e.into()),
                Ok(Decoded::NeedMore { .. }) => break 'other Ok(MuxEvent::NeedMoreBytes),
                Ok(Decoded::Frame { frame, consumed }) => (frame, consumed),
            };
            // A served protocol is never first-party (`new` refuses those), so a served frame
            // is a payload: the common case is decided with one lookup.
            if self.serves(frame.payload_protocol) {
                return payload(ctx, frame, consumed);
            }
            self.not_served(buf, frame.payload_protocol)
        };
        other(ctx, event)
    }

    /// Whether `protocol` is one of the served protocols.
    #[inline(always)]
    fn serves(&self, protocol: u32) -> bool {
        match self.served.as_slice() {
            [only] => *only == protocol,
            served => served.binary_search(&protocol).is_ok(),
        }
    }

    /// The verdict on the frame at the front of `buf` (complete and well-formed) when this mux
    /// does not serve its `protocol`: a probe is answered, anything else is fatal. Probes are
    /// rare, so the frame is decoded again here rather than kept for this path.
    #[cold]
    #[inline(never)]
    fn not_served<'a>(&self, buf: &'a [u8], protocol: u32) -> Result<MuxEvent<'a>, MuxError> {
        if protocol == registry::IDENTITY_PROBE {
            // The same outcome as the first decoding: a complete frame.
            let (frame, consumed) = match wire::decode_frame(buf, wire::MAX_BODY)? {
                Decoded::Frame { frame, consumed } => (frame, consumed),
                Decoded::NeedMore { .. } => return Ok(MuxEvent::NeedMoreBytes),
            };
            let reply = self.answer_probe(&frame)?;
            return Ok(MuxEvent::ProbeAnswered { reply, consumed });
        }
        if registry::is_first_party(protocol) {
            return Err(MuxError::UnexpectedFirstPartyFrame {
                payload_protocol: protocol,
            });
        }
        Err(MuxError::UnservedPayloadProtocol {
            payload_protocol: protocol,
        })
    }

    /// Checks a probe and encodes its reply: RESPONSE, same request id and trace context,
    /// payload = nonce echo + identity bytes.
    fn answer_probe(&self, probe: &FrameView<'_>) -> Result<Vec<u8>, MuxError> {
        if probe.kind != FrameKind::Request as i32 {
            return Err(MuxError::MalformedProbe("the frame kind is not REQUEST"));
        }
        if probe.payload_encoding != PayloadEncoding::None as i32 {
            return Err(MuxError::MalformedProbe("the payload is compressed"));
        }
        if probe.payload.len() != PROBE_NONCE_LEN {
            return Err(MuxError::MalformedProbe(
                "the nonce is not exactly 32 bytes long",
            ));
        }
        let mut payload = Vec::with_capacity(PROBE_NONCE_LEN + self.reply_identity.len());
        payload.extend_from_slice(probe.payload);
        payload.extend_from_slice(&self.reply_identity);
        let reply = FrameView {
            payload_protocol: registry::IDENTITY_PROBE,
            payload: &payload,
            ..response_to(probe)
        };
        Ok(reply.to_bytes()?)
    }
}

/// The RESPONSE frame answering `request`: envelope version 1, same payload protocol, request
/// id and trace context; no payload, no encoding, no deadline (set `payload` on the result).
pub fn response_to<'a>(request: &FrameView<'a>) -> FrameView<'a> {
    FrameView {
        envelope_version: wire::ENVELOPE_VERSION,
        kind: FrameKind::Response as i32,
        payload_protocol: request.payload_protocol,
        payload: &[],
        request_id: request.request_id,
        payload_encoding: PayloadEncoding::None as i32,
        deadline_unix_ms: 0,
        traceparent: request.traceparent,
        tracestate: request.tracestate,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn vector(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
        hex(std::fs::read_to_string(path).unwrap().trim())
    }

    #[test]
    fn probe_replies_match_the_golden_vectors() {
        let mut id = identity::tests::fixed_identity();
        let mux = Mux::new(&id, &[0x7001], None).unwrap();
        let probe = vector("probe_request.hex");
        let MuxEvent::ProbeAnswered { reply, consumed } = mux.poll(&probe).unwrap() else {
            panic!("not answered")
        };
        assert_eq!(consumed, probe.len());
        assert_eq!(reply, vector("probe_response_legacy.hex"));

        id.legacy_exe_sha256 = [0; 32];
        let mux = Mux::new(&id, &[0x7001], None).unwrap();
        let MuxEvent::ProbeAnswered { reply, .. } = mux.poll(&probe).unwrap() else {
            panic!("not answered")
        };
        assert_eq!(reply, vector("probe_response_blake3_only.hex"));
    }

    #[test]
    fn response_to_matches_the_echo_vector() {
        let request = vector("consumer_request_traceparent.hex");
        let Decoded::Frame { frame, .. } = wire::decode_frame(&request, wire::MAX_BODY).unwrap()
        else {
            panic!()
        };
        let echo = FrameView {
            payload: frame.payload,
            ..response_to(&frame)
        };
        assert_eq!(
            echo.to_bytes().unwrap(),
            vector("consumer_response_echo.hex")
        );
    }

    #[test]
    fn first_party_protocols_cannot_be_served() {
        let id = identity::tests::fixed_identity();
        assert!(Mux::new(&id, &[0x7001, 0xB232], None).is_err());
        assert!(Mux::new(&id, &[0x1234], None).is_err());
    }
}
