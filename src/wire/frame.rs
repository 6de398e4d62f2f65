//! The `Frame` envelope: a borrowed view and its incremental decoding (its encoder is in
//! `encode.rs`).

use std::borrow::Cow;

use super::pb::{self, WT_LEN, WT_VARINT};
use super::proto::{Frame, FrameKind, PayloadEncoding};
use super::{WireError, ENVELOPE_VERSION, FRAMING_VERSION, HEADER_LEN};

/// A frame whose byte fields borrow from someone else's buffer.
///
/// Parsing one ([`decode_frame`], [`FrameView::parse_body`]) never allocates; encoding one
/// produces exactly the bytes the reference implementation produces for the same fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameView<'a> {
    /// Envelope version (1 for every frame librp builds).
    pub envelope_version: u32,
    /// Raw `FrameKind` value (REQUEST 0, RESPONSE 1, EVENT 2, CANCEL 3; others kept as-is).
    pub kind: i32,
    /// Payload protocol id.
    pub payload_protocol: u32,
    /// Payload bytes.
    pub payload: &'a [u8],
    /// Correlation id.
    pub request_id: u64,
    /// Raw `PayloadEncoding` value.
    pub payload_encoding: i32,
    /// Absolute deadline in Unix milliseconds; 0 = none.
    pub deadline_unix_ms: u64,
    /// W3C traceparent ("" = none).
    pub traceparent: &'a str,
    /// W3C tracestate ("" = none).
    pub tracestate: &'a str,
}

impl Default for FrameView<'_> {
    fn default() -> Self {
        FrameView {
            envelope_version: ENVELOPE_VERSION,
            kind: FrameKind::Request as i32,
            payload_protocol: 0,
            payload: &[],
            request_id: 0,
            payload_encoding: PayloadEncoding::None as i32,
            deadline_unix_ms: 0,
            traceparent: "",
            tracestate: "",
        }
    }
}

/// What the front of a buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// The frame is incomplete; at least `needed` bytes in total are required. Nothing consumed.
    NeedMore {
        /// Total bytes (from the start of the buffer) needed before trying again, at least.
        needed: usize,
    },
    /// A complete frame occupying the first `consumed` bytes.
    Frame {
        /// The frame, borrowing from the buffer.
        frame: FrameView<'a>,
        /// Bytes to advance past.
        consumed: usize,
    },
}

/// How much of a buffer the first frame occupies, judged from its header alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extent {
    /// At least `needed` bytes in total are required.
    NeedMore(usize),
    /// The first frame is complete and `total` bytes long (header included).
    Complete(usize),
}

/// Checks the header at the front of `buf`: framing byte, then the body length against `max_body`.
///
/// A foreign first byte is an error as soon as it is seen; an announced length above `max_body`
/// is an error before the body arrives (nothing is ever allocated for it).
#[inline]
pub fn frame_extent(buf: &[u8], max_body: u32) -> Result<Extent, WireError> {
    let Some(&first) = buf.first() else {
        return Ok(Extent::NeedMore(HEADER_LEN));
    };
    if first != FRAMING_VERSION {
        return Err(WireError::UnsupportedFramingVersion { byte: first });
    }
    if buf.len() < HEADER_LEN {
        return Ok(Extent::NeedMore(HEADER_LEN));
    }
    let body_len = u32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]]);
    if body_len > max_body {
        return Err(WireError::TooLarge {
            body_len: u64::from(body_len),
            cap: max_body,
        });
    }
    let total = HEADER_LEN + body_len as usize;
    if buf.len() < total {
        Ok(Extent::NeedMore(total))
    } else {
        Ok(Extent::Complete(total))
    }
}

/// Decodes the frame at the front of `buf` without copying or allocating.
///
/// `max_body` is the body cap in force ([`super::MAX_BODY`], or [`super::HELLO_MAX_BODY`] for a
/// connection's first frame). A partial header or body is [`Decoded::NeedMore`], not an error.
///
/// Inlined into its two hot callers (the mux and `rp_frame_decode`), so the frame is built
/// where it is used instead of being copied out of a returned value.
#[inline(always)]
pub fn decode_frame(buf: &[u8], max_body: u32) -> Result<Decoded<'_>, WireError> {
    match frame_extent(buf, max_body)? {
        Extent::NeedMore(needed) => Ok(Decoded::NeedMore { needed }),
        Extent::Complete(total) => Ok(Decoded::Frame {
            frame: FrameView::parse_body(&buf[HEADER_LEN..total])?,
            consumed: total,
        }),
    }
}

/// Checks trace context against [`super::MAX_TRACE_CONTEXT`] (a sender checks what it is
/// asked to send with it, a receiver what it received); the error says by how much.
pub(crate) fn trace_context_fits(traceparent: &str, tracestate: &str) -> Result<(), String> {
    let len = traceparent.len() + tracestate.len();
    if len > super::MAX_TRACE_CONTEXT {
        return Err(format!("{len} bytes of trace context exceed the {}-byte limit", super::MAX_TRACE_CONTEXT));
    }
    Ok(())
}

#[cold]
fn malformed(detail: &'static str) -> WireError {
    WireError::Malformed {
        what: "Frame body",
        detail: Cow::Borrowed(detail),
    }
}

/// The key of each `Frame` field (field number and wire type), as read from the wire.
const fn key(field: u32, wire_type: u8) -> u64 {
    ((field as u64) << 3) | wire_type as u64
}
pub(super) const KEY_ENVELOPE_VERSION: u64 = key(1, WT_VARINT);
pub(super) const KEY_KIND: u64 = key(2, WT_VARINT);
pub(super) const KEY_PAYLOAD_PROTOCOL: u64 = key(3, WT_VARINT);
pub(super) const KEY_PAYLOAD: u64 = key(4, WT_LEN);
pub(super) const KEY_REQUEST_ID: u64 = key(5, WT_VARINT);
pub(super) const KEY_PAYLOAD_ENCODING: u64 = key(6, WT_VARINT);
pub(super) const KEY_DEADLINE: u64 = key(7, WT_VARINT);
pub(super) const KEY_TRACEPARENT: u64 = key(8, WT_LEN);
pub(super) const KEY_TRACESTATE: u64 = key(9, WT_LEN);

/// Reads a length-delimited string field; it must be UTF-8.
#[inline(always)]
fn utf8_field<'a>(body: &'a [u8], pos: &mut usize) -> Result<&'a str, WireError> {
    let bytes = pb::get_len_delimited(body, pos).map_err(malformed)?;
    if bytes.is_empty() {
        return Ok("");
    }
    std::str::from_utf8(bytes)
        .map_err(|_| malformed("invalid string value: data is not UTF-8 encoded"))
}

/// Any key but the nine of a well-formed `Frame` field: an invalid key, a known field with the
/// wrong wire type (both errors), or an unknown field, which is skipped.
#[cold]
#[inline(never)]
fn other_field(body: &[u8], pos: &mut usize, key: u64) -> Result<(), WireError> {
    let (field, wt) = pb::split_key(key).map_err(malformed)?;
    if (1..=9).contains(&field) {
        return Err(wrong_wire_type(field));
    }
    pb::skip_field(body, pos, field, wt).map_err(malformed)
}

fn wrong_wire_type(field: u32) -> WireError {
    WireError::Malformed {
        what: "Frame body",
        detail: Cow::Owned(format!("invalid wire type for Frame field {field}")),
    }
}

impl<'a> FrameView<'a> {
    /// Parses a `Frame` protobuf body (without the 5-byte header).
    ///
    /// Accepts exactly what the prost runtime accepts: unknown fields are skipped, a repeated
    /// scalar keeps its last value, strings must be UTF-8.
    #[inline(always)]
    pub fn parse_body(body: &'a [u8]) -> Result<Self, WireError> {
        let mut f = FrameView {
            envelope_version: 0,
            kind: 0,
            payload_encoding: 0,
            ..FrameView::default()
        };
        let varint = |pos: &mut usize| pb::get_varint(body, pos).map_err(malformed);
        let mut pos = 0usize;
        // Every encoder writes the fields in field-number order, each at most once, with
        // one-byte keys: read that prefix with one comparison per field. The general loop
        // below takes over wherever the body departs from it, with the same outcome as if it
        // had read the whole body (fields are applied in wire order either way).
        let next_is = |pos: usize, key: u64| body.get(pos).is_some_and(|&b| u64::from(b) == key);
        if next_is(pos, KEY_ENVELOPE_VERSION) {
            pos += 1;
            f.envelope_version = varint(&mut pos)? as u32;
        }
        if next_is(pos, KEY_KIND) {
            pos += 1;
            f.kind = varint(&mut pos)? as i32;
        }
        if next_is(pos, KEY_PAYLOAD_PROTOCOL) {
            pos += 1;
            f.payload_protocol = pb::get_varint_short(body, &mut pos).map_err(malformed)? as u32;
        }
        if next_is(pos, KEY_PAYLOAD) {
            pos += 1;
            f.payload = pb::get_len_delimited(body, &mut pos).map_err(malformed)?;
        }
        if next_is(pos, KEY_REQUEST_ID) {
            pos += 1;
            f.request_id = pb::get_varint_4(body, &mut pos).map_err(malformed)?;
        }
        if next_is(pos, KEY_PAYLOAD_ENCODING) {
            pos += 1;
            f.payload_encoding = varint(&mut pos)? as i32;
        }
        if next_is(pos, KEY_DEADLINE) {
            pos += 1;
            f.deadline_unix_ms = varint(&mut pos)?;
        }
        if next_is(pos, KEY_TRACEPARENT) {
            pos += 1;
            f.traceparent = utf8_field(body, &mut pos)?;
        }
        if next_is(pos, KEY_TRACESTATE) {
            pos += 1;
            f.tracestate = utf8_field(body, &mut pos)?;
        }
        while pos < body.len() {
            // Known fields are matched on the whole key, so each is one comparison; a key
            // spelled in more than one byte has the same value and lands here too.
            let key = pb::get_varint(body, &mut pos).map_err(malformed)?;
            match key {
                KEY_ENVELOPE_VERSION => f.envelope_version = varint(&mut pos)? as u32,
                KEY_KIND => f.kind = varint(&mut pos)? as i32,
                KEY_PAYLOAD_PROTOCOL => f.payload_protocol = varint(&mut pos)? as u32,
                KEY_PAYLOAD => {
                    f.payload = pb::get_len_delimited(body, &mut pos).map_err(malformed)?
                }
                KEY_REQUEST_ID => f.request_id = varint(&mut pos)?,
                KEY_PAYLOAD_ENCODING => f.payload_encoding = varint(&mut pos)? as i32,
                KEY_DEADLINE => f.deadline_unix_ms = varint(&mut pos)?,
                KEY_TRACEPARENT => f.traceparent = utf8_field(body, &mut pos)?,
                KEY_TRACESTATE => f.tracestate = utf8_field(body, &mut pos)?,
                _ => other_field(body, &mut pos, key)?,
            }
        }
        Ok(f)
    }

    /// Checks that the payload is plain bytes librp can read: envelope version 1 and no payload
    /// encoding (librp decodes no compression). The one check every role that reads payloads
    /// applies; a frame that fails it is a protocol violation, never data.
    pub fn check_plain(&self) -> Result<(), WireError> {
        if self.envelope_version != ENVELOPE_VERSION {
            return Err(WireError::Protocol(
                format!("envelope_version {} is not 1", self.envelope_version).into(),
            ));
        }
        if self.payload_encoding != PayloadEncoding::None as i32 {
            let name = PayloadEncoding::try_from(self.payload_encoding).map_or("unknown", |e| e.as_str_name());
            return Err(WireError::Protocol(
                format!(
                    "payload_encoding {} ({name}) is not NONE: librp reads only plain payloads",
                    self.payload_encoding
                )
                .into(),
            ));
        }
        Ok(())
    }

    /// Checks that the trace context is at most [`super::MAX_TRACE_CONTEXT`] bytes, before it
    /// is kept with a push or a request.
    pub fn check_trace_context(&self) -> Result<(), WireError> {
        trace_context_fits(self.traceparent, self.tracestate).map_err(|why| WireError::Protocol(why.into()))
    }

    /// The frame kind, if it is one of the four known kinds.
    pub fn frame_kind(&self) -> Option<FrameKind> {
        FrameKind::try_from(self.kind).ok()
    }

    /// An owned copy as the generated prost message.
    pub fn to_frame(&self) -> Frame {
        Frame {
            envelope_version: self.envelope_version,
            kind: self.kind,
            payload_protocol: self.payload_protocol,
            payload: self.payload.to_vec(),
            request_id: self.request_id,
            payload_encoding: self.payload_encoding,
            deadline_unix_ms: self.deadline_unix_ms,
            traceparent: self.traceparent.to_owned(),
            tracestate: self.tracestate.to_owned(),
        }
    }

    /// [`to_frame`](Self::to_frame) with the payload copied by a fallible allocation: what a
    /// peer sent is copied this way, so a payload that does not fit in memory is
    /// [`WireError::NoMemory`] rather than the end of the process.
    pub fn try_to_frame(&self) -> Result<Frame, WireError> {
        Ok(Frame { payload: WireError::try_copy(self.payload)?, ..FrameView { payload: &[], ..*self }.to_frame() })
    }
}

impl Frame {
    /// A borrowed view of this frame.
    pub fn view(&self) -> FrameView<'_> {
        FrameView {
            envelope_version: self.envelope_version,
            kind: self.kind,
            payload_protocol: self.payload_protocol,
            payload: &self.payload,
            request_id: self.request_id,
            payload_encoding: self.payload_encoding,
            deadline_unix_ms: self.deadline_unix_ms,
            traceparent: &self.traceparent,
            tracestate: &self.tracestate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{HELLO_MAX_BODY, MAX_BODY};
    use prost::Message;

    fn sample() -> FrameView<'static> {
        FrameView {
            kind: FrameKind::Event as i32,
            payload_protocol: 0x7001,
            payload: b"hello",
            request_id: u64::MAX,
            deadline_unix_ms: 1_700_000_000_123,
            traceparent: "00-abc-def-01",
            tracestate: "k=v",
            ..FrameView::default()
        }
    }

    #[test]
    fn encoder_matches_prost() {
        let v = sample();
        let mine = v.to_bytes().unwrap();
        let body = v.to_frame().encode_to_vec();
        assert_eq!(&mine[HEADER_LEN..], &body[..]);
        assert_eq!(v.encoded_len(), mine.len());
    }

    #[test]
    fn negative_enum_values_round_trip_like_prost() {
        let v = FrameView {
            kind: -1,
            payload_encoding: -7,
            ..sample()
        };
        let mine = v.to_bytes().unwrap();
        assert_eq!(&mine[HEADER_LEN..], &v.to_frame().encode_to_vec()[..]);
        let Decoded::Frame { frame, .. } = decode_frame(&mine, MAX_BODY).unwrap() else {
            panic!("complete frame expected")
        };
        assert_eq!(frame, v);
    }

    #[test]
    fn every_prefix_needs_more_and_the_whole_decodes() {
        let bytes = sample().to_bytes().unwrap();
        for n in 0..bytes.len() {
            match decode_frame(&bytes[..n], MAX_BODY).unwrap() {
                Decoded::NeedMore { needed } => assert!(needed > n),
                Decoded::Frame { .. } => panic!("prefix {n} decoded"),
            }
        }
        let Decoded::Frame { frame, consumed } = decode_frame(&bytes, MAX_BODY).unwrap() else {
            panic!()
        };
        assert_eq!(consumed, bytes.len());
        assert_eq!(frame, sample());
    }

    #[test]
    fn caps_and_framing_byte_are_checked_from_the_header() {
        assert!(matches!(
            decode_frame(&[0x02], MAX_BODY),
            Err(WireError::UnsupportedFramingVersion { byte: 2 })
        ));
        assert!(matches!(
            decode_frame(&[1, 0xff, 0xff, 0xff, 0xff], MAX_BODY),
            Err(WireError::TooLarge {
                body_len: 0xffff_ffff,
                cap: MAX_BODY
            })
        ));
        let over_hello = (HELLO_MAX_BODY + 1).to_le_bytes();
        let hdr = [
            1,
            over_hello[0],
            over_hello[1],
            over_hello[2],
            over_hello[3],
        ];
        assert!(matches!(
            decode_frame(&hdr, HELLO_MAX_BODY),
            Err(WireError::TooLarge { .. })
        ));
        assert!(matches!(
            decode_frame(&hdr, MAX_BODY),
            Ok(Decoded::NeedMore { .. })
        ));
    }

    #[test]
    fn malformed_bodies_agree_with_prost() {
        let cases: &[&[u8]] = &[
            &[0xff],                   // truncated varint key
            &[0x08],                   // key without value
            &[0x22, 0x05, 0x01],       // payload longer than the body
            &[0x42, 0x01, 0xff],       // traceparent not UTF-8
            &[0x0a, 0x00],             // envelope_version with LEN wire type
            &[0x00],                   // field 0
            &[0x0f],                   // wire type 7
            &[0x7c],                   // unexpected end group (field 15)
            &[0x80, 0x01, 0x00],       // field 16, varint: unknown, skipped -> ok
            &[0x85, 0x01, 1, 2, 3, 4], // field 16, fixed32: skipped -> ok
        ];
        for case in cases {
            let prost_ok = Frame::decode(*case).is_ok();
            let mine = FrameView::parse_body(case);
            assert_eq!(mine.is_ok(), prost_ok, "case {case:02x?}: {mine:?}");
            if let Ok(v) = mine {
                assert_eq!(v.to_frame(), Frame::decode(*case).unwrap());
            }
        }
    }

    /// Bodies built from random fields (in and out of order, repeated, with long keys, wrong
    /// wire types, unknown fields), then cut or corrupted: accepted and decoded as prost does.
    #[test]
    fn random_bodies_agree_with_prost() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..20_000 {
            let mut body = Vec::new();
            for _ in 0..next(8) {
                let field = 1 + next(12) as u32;
                let wt = [WT_VARINT, WT_LEN, pb::WT_FIXED32, pb::WT_FIXED64][next(4) as usize];
                let key = u64::from(field << 3) | u64::from(wt);
                if next(8) == 0 {
                    // The same key spelled in two bytes.
                    body.extend_from_slice(&[(key as u8) | 0x80, (key >> 7) as u8]);
                } else {
                    body.push(key as u8);
                }
                let mut varint = [0u8; 10];
                let value = [0, 1, 0x7001, 123_456_789, u64::MAX][next(5) as usize];
                match wt {
                    WT_VARINT => {
                        let n = pb::put_varint(&mut varint, value);
                        body.extend_from_slice(&varint[..n]);
                    }
                    WT_LEN => {
                        let len = next(70) as usize;
                        let n = pb::put_varint(&mut varint, len as u64);
                        body.extend_from_slice(&varint[..n]);
                        body.extend((0..len).map(|i| b'a' + (i % 26) as u8));
                    }
                    pb::WT_FIXED32 => body.extend_from_slice(&[1, 2, 3, 4]),
                    _ => body.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]),
                }
            }
            match next(4) {
                0 if !body.is_empty() => body.truncate(next(body.len() as u64) as usize),
                1 if !body.is_empty() => {
                    let at = next(body.len() as u64) as usize;
                    body[at] = next(256) as u8;
                }
                _ => {}
            }
            let mine = FrameView::parse_body(&body);
            let theirs = Frame::decode(&body[..]);
            assert_eq!(mine.is_ok(), theirs.is_ok(), "{body:02x?}: {mine:?}");
            if let (Ok(mine), Ok(theirs)) = (mine, theirs) {
                assert_eq!(mine.to_frame(), theirs, "{body:02x?}");
                // Both encoder paths (roomy buffer: one pass; exact buffer: length first).
                let canonical = theirs.encode_to_vec();
                let total = HEADER_LEN + canonical.len();
                for cap in [total, total + 200] {
                    let mut out = vec![0u8; cap];
                    assert_eq!(mine.encode_into(&mut out).unwrap(), total);
                    assert_eq!(&out[HEADER_LEN..total], &canonical[..]);
                    assert_eq!(out[1..HEADER_LEN], (canonical.len() as u32).to_le_bytes());
                }
            }
        }
    }

    /// A frame whose payload is written in two parts is the frame with those parts joined, at
    /// every length of either part around the varint boundaries.
    #[test]
    fn a_payload_in_two_parts_encodes_as_the_parts_joined() {
        let bytes: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
        for head_len in [0, 1, 3, 17] {
            for payload_len in [0, 1, 64, 110, 111, 127, 128, 16_366, 16_367, 16_384, 20_000 - 17] {
                let (head, payload) = (&bytes[..head_len], &bytes[head_len..head_len + payload_len]);
                let frame = FrameView { payload, ..sample() };
                let joined: Vec<u8> = [head, payload].concat();
                let expected = FrameView { payload: &joined, ..frame }.to_bytes().unwrap();
                let mut out = vec![9u8; 3];
                let end = frame.encode_at_with(head, &mut out, 3).unwrap();
                assert_eq!(&out[3..end], &expected[..], "{head_len} + {payload_len}");
                assert_eq!(frame.checked_body_len_with(head).unwrap(), expected.len() - HEADER_LEN);
                frame.check_fits_with(head).unwrap();
            }
        }
        let huge = vec![0u8; MAX_BODY as usize];
        let frame = FrameView { payload: &huge[1..], ..FrameView::default() };
        assert!(matches!(frame.encode_at_with(&[0x12], &mut Vec::new(), 0), Err(WireError::TooLarge { .. })));
        assert!(matches!(frame.checked_body_len_with(&[0x12]), Err(WireError::TooLarge { .. })));
        assert!(matches!(frame.check_fits_with(&[0x12]), Err(WireError::TooLarge { .. })));
        // Under the cap, though near enough that only the exact length tells.
        let frame = FrameView { payload: &huge[..MAX_BODY as usize - 40], ..FrameView::default() };
        frame.check_fits_with(&[0x12]).unwrap();
    }

    #[test]
    fn encode_into_reports_needed_size() {
        let v = sample();
        let mut small = [0u8; 4];
        match v.encode_into(&mut small) {
            Err(WireError::BufferTooSmall {
                needed,
                capacity: 4,
            }) => assert_eq!(needed, v.encoded_len()),
            other => panic!("{other:?}"),
        }
        let mut big = vec![0u8; 256];
        let n = v.encode_into(&mut big).unwrap();
        assert_eq!(&big[..n], &v.to_bytes().unwrap()[..]);
    }

    #[test]
    fn oversize_body_is_refused_on_encode() {
        let payload = vec![0u8; MAX_BODY as usize];
        let v = FrameView {
            payload: &payload,
            ..FrameView::default()
        };
        assert!(matches!(v.to_bytes(), Err(WireError::TooLarge { .. })));
    }
}
