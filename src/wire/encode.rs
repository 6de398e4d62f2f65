//! Encoding a [`FrameView`]: its body length, the one-pass encoder into a caller's buffer or a
//! connection's, and the field writers. Produces exactly the bytes prost produces for the same
//! fields.

use super::frame::{
    KEY_DEADLINE, KEY_ENVELOPE_VERSION, KEY_KIND, KEY_PAYLOAD, KEY_PAYLOAD_ENCODING, KEY_PAYLOAD_PROTOCOL,
    KEY_REQUEST_ID, KEY_TRACEPARENT, KEY_TRACESTATE,
};
use super::pb;
use super::{FrameView, WireError, FRAMING_VERSION, HEADER_LEN, MAX_BODY};

impl FrameView<'_> {
    /// Length of the protobuf body this frame encodes to.
    pub fn body_len(&self) -> usize {
        fn varint_field(v: u64) -> usize {
            if v == 0 {
                0
            } else {
                1 + pb::varint_len(v)
            }
        }
        fn len_field(n: usize) -> usize {
            if n == 0 {
                0
            } else {
                1 + pb::varint_len(n as u64) + n
            }
        }
        varint_field(u64::from(self.envelope_version))
            + varint_field(self.kind as i64 as u64)
            + varint_field(u64::from(self.payload_protocol))
            + len_field(self.payload.len())
            + varint_field(self.request_id)
            + varint_field(self.payload_encoding as i64 as u64)
            + varint_field(self.deadline_unix_ms)
            + len_field(self.traceparent.len())
            + len_field(self.tracestate.len())
    }

    /// [`body_len`](Self::body_len) with `head` written before the payload (see
    /// [`encode_at_with`](Self::encode_at_with)): the payload field grows by `head`, and its
    /// length varint may grow with it.
    fn body_len_with(&self, head: &[u8]) -> usize {
        let field = |n: usize| if n == 0 { 0 } else { 1 + pb::varint_len(n as u64) + n };
        self.body_len() - field(self.payload.len()) + field(head.len() + self.payload.len())
    }

    /// Length on the wire: header plus body.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.body_len()
    }

    /// Encodes the frame (header and body) into the front of `out`; returns the bytes written.
    ///
    /// Fails with [`WireError::BufferTooSmall`] (carrying the size needed, nothing written) when
    /// `out` is short, and with a too-large wire error when the body exceeds [`MAX_BODY`].
    pub fn encode_into(&self, out: &mut [u8]) -> Result<usize, WireError> {
        // One pass when even the longest body these fields could make fits in `out` and under
        // the cap: write the body, then the length in front of it.
        let bound = self.body_len_bound();
        if bound <= MAX_BODY as usize && HEADER_LEN + bound <= out.len() {
            let body_len = self.write_body(&mut out[HEADER_LEN..]);
            write_header(out, body_len);
            return Ok(HEADER_LEN + body_len);
        }
        let body_len = self.checked_body_len()?;
        let total = HEADER_LEN + body_len;
        if out.len() < total {
            return Err(WireError::BufferTooSmall {
                needed: total,
                capacity: out.len(),
            });
        }
        self.write(&mut out[..total], body_len);
        Ok(total)
    }

    /// Appends the encoded frame (header and body) to `out`.
    pub fn encode_to_vec(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let start = out.len();
        let end = self.encode_at(out, start)?;
        out.truncate(end);
        Ok(())
    }

    /// Encodes the frame at `out[at..]` in one pass, growing `out` (zero-filled, never
    /// shrunk) when the frame might not fit; returns the end of the frame. Bytes past the end
    /// are left as they were, so a reused buffer costs no clearing per frame.
    pub(crate) fn encode_at(&self, out: &mut Vec<u8>, at: usize) -> Result<usize, WireError> {
        let bound = self.body_len_bound();
        let room = if bound <= MAX_BODY as usize { bound } else { self.checked_body_len()? };
        let needed = at + HEADER_LEN + room;
        if out.len() < needed {
            out.resize(needed, 0);
        }
        let body_len = self.write_body(&mut out[at + HEADER_LEN..]);
        write_header(&mut out[at..], body_len);
        Ok(at + HEADER_LEN + body_len)
    }

    /// [`encode_at`](Self::encode_at) for a frame whose payload is a message ending with its
    /// own payload bytes (a push, a reply, a session message): the frame's payload field holds
    /// `head` (the message's fields before its payload, its payload's key and length) followed
    /// by `self.payload`. The message is encoded in the same pass as the frame around it,
    /// never on its own first.
    #[inline]
    pub(crate) fn encode_at_with(&self, head: &[u8], out: &mut Vec<u8>, at: usize) -> Result<usize, WireError> {
        let bound = self.body_len_bound().saturating_add(head.len());
        let room = if bound <= MAX_BODY as usize { bound } else { self.checked_body_len_with(head)? };
        let needed = at + HEADER_LEN + room;
        if out.len() < needed {
            out.resize(needed, 0);
        }
        let body_len = self.write_body_with(head, &mut out[at + HEADER_LEN..]);
        write_header(&mut out[at..], body_len);
        Ok(at + HEADER_LEN + body_len)
    }

    /// The encoded frame in a new vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_to_vec(&mut out)?;
        Ok(out)
    }

    /// The body length, or the too-large error encoding would fail with.
    pub(crate) fn checked_body_len(&self) -> Result<usize, WireError> {
        let body_len = self.body_len();
        if body_len > MAX_BODY as usize {
            return Err(WireError::TooLarge {
                body_len: body_len as u64,
                cap: MAX_BODY,
            });
        }
        Ok(body_len)
    }

    /// [`checked_body_len`](Self::checked_body_len) with `head` written before the payload
    /// (see [`encode_at_with`](Self::encode_at_with)).
    pub(crate) fn checked_body_len_with(&self, head: &[u8]) -> Result<usize, WireError> {
        let body_len = self.body_len_with(head);
        if body_len > MAX_BODY as usize {
            return Err(WireError::TooLarge {
                body_len: body_len as u64,
                cap: MAX_BODY,
            });
        }
        Ok(body_len)
    }

    /// Fails with the too-large error [`encode_at_with`](Self::encode_at_with) would fail with
    /// for `head` and this frame; cheap (no varint lengths) for a frame that surely fits.
    pub(crate) fn check_fits_with(&self, head: &[u8]) -> Result<(), WireError> {
        if self.body_len_bound().saturating_add(head.len()) <= MAX_BODY as usize {
            return Ok(());
        }
        self.checked_body_len_with(head).map(|_| ())
    }

    /// An upper bound of [`Self::body_len`] that needs no varint lengths (saturating).
    #[inline]
    fn body_len_bound(&self) -> usize {
        self.payload
            .len()
            .saturating_add(self.traceparent.len())
            .saturating_add(self.tracestate.len())
            .saturating_add(MAX_FIELD_OVERHEAD)
    }

    /// Writes header and body into `out`, which is exactly `HEADER_LEN + body_len` long.
    fn write(&self, out: &mut [u8], body_len: usize) {
        let written = self.write_body(&mut out[HEADER_LEN..]);
        debug_assert_eq!(written, body_len);
        write_header(out, body_len);
    }

    /// Writes the protobuf body at the front of `out`, which must hold it; returns its length.
    /// Fields are written in field-number order and default values are left out, as prost does.
    #[inline]
    fn write_body(&self, out: &mut [u8]) -> usize {
        let mut pos = 0;
        pos = put_varint_field(out, pos, KEY_ENVELOPE_VERSION, u64::from(self.envelope_version));
        pos = put_varint_field(out, pos, KEY_KIND, self.kind as i64 as u64);
        pos = put_varint_field(out, pos, KEY_PAYLOAD_PROTOCOL, u64::from(self.payload_protocol));
        pos = put_bytes_field(out, pos, KEY_PAYLOAD, self.payload);
        pos = put_varint_field(out, pos, KEY_REQUEST_ID, self.request_id);
        pos = put_varint_field(out, pos, KEY_PAYLOAD_ENCODING, self.payload_encoding as i64 as u64);
        pos = put_varint_field(out, pos, KEY_DEADLINE, self.deadline_unix_ms);
        pos = put_bytes_field(out, pos, KEY_TRACEPARENT, self.traceparent.as_bytes());
        put_bytes_field(out, pos, KEY_TRACESTATE, self.tracestate.as_bytes())
    }

    /// [`write_body`](Self::write_body) with `head` written before the payload (see
    /// [`encode_at_with`](Self::encode_at_with)). Kept apart from `write_body`, whose callers
    /// (`rp_frame_encode`, streams of whole frames) have no head to write.
    #[inline]
    fn write_body_with(&self, head: &[u8], out: &mut [u8]) -> usize {
        let mut pos = 0;
        pos = put_varint_field(out, pos, KEY_ENVELOPE_VERSION, u64::from(self.envelope_version));
        pos = put_varint_field(out, pos, KEY_KIND, self.kind as i64 as u64);
        pos = put_varint_field(out, pos, KEY_PAYLOAD_PROTOCOL, u64::from(self.payload_protocol));
        pos = put_two_part_field(out, pos, KEY_PAYLOAD, head, self.payload);
        pos = put_varint_field(out, pos, KEY_REQUEST_ID, self.request_id);
        pos = put_varint_field(out, pos, KEY_PAYLOAD_ENCODING, self.payload_encoding as i64 as u64);
        pos = put_varint_field(out, pos, KEY_DEADLINE, self.deadline_unix_ms);
        pos = put_bytes_field(out, pos, KEY_TRACEPARENT, self.traceparent.as_bytes());
        put_bytes_field(out, pos, KEY_TRACESTATE, self.tracestate.as_bytes())
    }
}

/// The most body bytes the fields take besides the three byte strings: a one-byte key and a
/// varint of at most 10 bytes for each of the nine fields (a value, or a string's length).
const MAX_FIELD_OVERHEAD: usize = 9 * 11;

/// Writes the framing byte and the body length at the front of `out`.
#[inline(always)]
fn write_header(out: &mut [u8], body_len: usize) {
    out[0] = FRAMING_VERSION;
    out[1..HEADER_LEN].copy_from_slice(&(body_len as u32).to_le_bytes());
}

/// Writes a varint field at `pos` unless `v` is 0; returns the position after it.
#[inline(always)]
fn put_varint_field(out: &mut [u8], pos: usize, key: u64, v: u64) -> usize {
    if v == 0 {
        return pos;
    }
    put_key_and_varint(out, pos, key, v)
}

/// Writes a length-delimited field at `pos` unless `b` is empty; returns the position after it.
#[inline(always)]
fn put_bytes_field(out: &mut [u8], pos: usize, key: u64, b: &[u8]) -> usize {
    if b.is_empty() {
        return pos;
    }
    let start = put_key_and_varint(out, pos, key, b.len() as u64);
    let end = start + b.len();
    out[start..end].copy_from_slice(b);
    end
}

/// Writes a length-delimited field holding `head` then `b` at `pos` unless both are empty;
/// returns the position after it.
#[inline(always)]
fn put_two_part_field(out: &mut [u8], pos: usize, key: u64, head: &[u8], b: &[u8]) -> usize {
    let len = head.len() + b.len();
    if len == 0 {
        return pos;
    }
    let start = put_key_and_varint(out, pos, key, len as u64);
    let mid = start + head.len();
    out[start..mid].copy_from_slice(head);
    let end = mid + b.len();
    out[mid..end].copy_from_slice(b);
    end
}

/// Writes a one-byte key and the varint `v` at `pos`; returns the position after them. With
/// the 11 bytes of the longest such pair at hand (always, in the one-pass encoder) the bytes
/// are stored with a single bounds check.
#[inline(always)]
fn put_key_and_varint(out: &mut [u8], pos: usize, key: u64, v: u64) -> usize {
    match out.get_mut(pos..).and_then(|rest| rest.first_chunk_mut::<11>()) {
        Some(eleven) => {
            let [key_byte, ten @ ..] = eleven;
            *key_byte = key as u8;
            pos + 1 + pb::put_varint_in(ten, v)
        }
        None => {
            out[pos] = key as u8;
            pos + 1 + pb::put_varint(&mut out[pos + 1..], v)
        }
    }
}
