//! The fast codec: the hot paths of librp's own protocols (push, session) without prost.
//!
//! A push (`Push`), a session request, answer or chunk (`SessionMessage`) is nearly always just
//! a payload protocol (field 1, varint) and payload bytes (field 2), and a worker's answer
//! (`PushReply`) just its payload (field 1 of the `result` oneof). These shapes are encoded
//! and decoded here directly; decoding gives up (`None`) on anything else, which the caller
//! hands to [`decode_large`] instead, so both paths produce and accept the same bytes.
//!
//! Every copy of a payload a peer sent is a fallible allocation ([`WireError::try_copy`]): a
//! payload that does not fit in memory ends its connection with `NoMemory`, never the process.

use prost::Message;

use crate::wire::{pb, WireError};

/// Most bytes of the fields besides the payload that [`decode_large`] accepts (a failure or an
/// error message and a few numbers, a few KiB at most).
const MAX_OTHER_FIELDS: usize = 64 * 1024;

/// Key of the payload protocol (field 1, varint) of a plain message.
const KEY_PROTOCOL: u8 = 0x08;
/// Key of the payload (field 2, length-delimited) of a plain message.
const KEY_PAYLOAD: u8 = 0x12;
/// Key of `PushReply.payload` (field 1, length-delimited).
const KEY_REPLY_PAYLOAD: u8 = 0x0a;

/// The fields of a message before its payload bytes, which come last: what a frame's encoder
/// writes in front of the payload so that the message is encoded in the same pass as the frame
/// (`FrameView::encode_at_with`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageHead {
    bytes: [u8; MAX_HEAD],
    len: u8,
}

/// The longest head: two one-byte keys, a u32 varint (5 bytes at most) and a length varint
/// (10 at most).
const MAX_HEAD: usize = 17;

impl MessageHead {
    /// The head of the plain message `{payload_protocol, payload}` (a `Push`, or a
    /// `SessionMessage` without error or end of stream) whose payload is `payload_len` bytes.
    /// Fields at their default are left out, as prost does.
    #[inline]
    pub(crate) fn plain(payload_protocol: u32, payload_len: usize) -> MessageHead {
        let mut head = MessageHead { bytes: [0; MAX_HEAD], len: 0 };
        let mut pos = 0;
        if payload_protocol != 0 {
            head.bytes[0] = KEY_PROTOCOL;
            pos = 1 + pb::put_varint(&mut head.bytes[1..], u64::from(payload_protocol));
        }
        if payload_len != 0 {
            pos = put_key_and_len(&mut head.bytes, pos, KEY_PAYLOAD, payload_len);
        }
        head.len = pos as u8;
        head
    }

    /// The head of `PushReply { result: payload }` whose payload is `payload_len` bytes (the
    /// oneof field is written even when the payload is empty, as prost does).
    #[inline]
    pub(crate) fn reply(payload_len: usize) -> MessageHead {
        let mut head = MessageHead { bytes: [0; MAX_HEAD], len: 0 };
        head.len = put_key_and_len(&mut head.bytes, 0, KEY_REPLY_PAYLOAD, payload_len) as u8;
        head
    }

    /// The head's bytes.
    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Writes a key and a payload length at `pos` of a head; returns the position after them.
#[inline(always)]
fn put_key_and_len(bytes: &mut [u8; MAX_HEAD], pos: usize, key: u8, len: usize) -> usize {
    bytes[pos] = key;
    pos + 1 + pb::put_varint(&mut bytes[pos + 1..], len as u64)
}

/// Decodes a plain message written in field order with nothing else in it: `(payload
/// protocol, payload)`, or `None` for any other shape (including invalid bytes).
pub(crate) fn plain_message(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let mut pos = 0;
    let mut protocol = 0;
    let mut payload: &[u8] = &[];
    if bytes.first() == Some(&KEY_PROTOCOL) {
        pos += 1;
        // prost keeps the low 32 bits of a longer varint, as `as u32` does. Protocol ids from
        // 0x4000 up take three bytes: read inline.
        protocol = pb::get_varint_short(bytes, &mut pos).ok()? as u32;
    }
    if bytes.get(pos) == Some(&KEY_PAYLOAD) {
        pos += 1;
        payload = pb::get_len_delimited(bytes, &mut pos).ok()?;
    }
    (pos == bytes.len()).then_some((protocol, payload))
}

/// Decodes a `PushReply` that is exactly one payload field: the payload, or `None` for any
/// other shape.
pub(crate) fn reply_payload(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.first() != Some(&KEY_REPLY_PAYLOAD) {
        return None;
    }
    let mut pos = 1;
    let payload = pb::get_len_delimited(bytes, &mut pos).ok()?;
    (pos == bytes.len()).then_some(payload)
}

/// Decodes a message `M` of any shape prost accepts, as prost would, except that its payload
/// (field `payload_field`, bytes, maybe megabytes) is copied by a fallible allocation and
/// handed to `put`. The other fields named in `others` are decoded by prost from a copy of
/// their bytes, which must stay under [`MAX_OTHER_FIELDS`]; unknown fields are skipped. With
/// `oneof`, the payload and the other fields are the variants of one oneof (`PushReply`): the
/// last one on the wire wins.
pub(crate) fn decode_large<M: Message + Default>(
    bytes: &[u8],
    what: &'static str,
    payload_field: u32,
    others: &[u32],
    oneof: bool,
    put: impl FnOnce(&mut M, Vec<u8>),
) -> Result<M, WireError> {
    let malformed = |detail: &'static str| WireError::Malformed { what, detail: detail.into() };
    let mut payload: Option<&[u8]> = None;
    let mut rest = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let start = pos;
        let (field, wire_type) = pb::get_key(bytes, &mut pos).map_err(malformed)?;
        if field == payload_field && wire_type == pb::WT_LEN {
            payload = Some(pb::get_len_delimited(bytes, &mut pos).map_err(malformed)?);
            if oneof {
                rest.clear();
            }
            continue;
        }
        pb::skip_field(bytes, &mut pos, field, wire_type).map_err(malformed)?;
        // The payload field with another wire type goes to prost, which refuses it as prost does.
        if field == payload_field || others.contains(&field) {
            if rest.len() + (pos - start) > MAX_OTHER_FIELDS {
                return Err(WireError::Protocol(
                    format!("the fields of a {what} besides its payload exceed {MAX_OTHER_FIELDS} bytes").into(),
                ));
            }
            rest.extend_from_slice(&bytes[start..pos]);
            if oneof {
                payload = None;
            }
        }
    }
    let mut msg = M::decode(&rest[..]).map_err(|e| WireError::from_prost(what, e))?;
    if let Some(p) = payload {
        put(&mut msg, WireError::try_copy(p)?);
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use push_proto::{push_reply, Push, PushFailure, PushReply};

    /// The real push messages, generated from `proto/librp_push.proto` (included, not imported,
    /// so that the wire layer's tests need no role module).
    mod push_proto {
        #![allow(missing_docs, dead_code, clippy::all)]
        include!(concat!(env!("OUT_DIR"), "/librp.push.v1.rs"));
    }

    /// The real session messages, generated from `proto/librp_session.proto`.
    mod session_proto {
        #![allow(missing_docs, dead_code, clippy::all)]
        include!(concat!(env!("OUT_DIR"), "/librp.session.v1.rs"));
    }

    /// The plain message `{protocol, payload}` as a frame's encoder writes it: head, then payload.
    fn plain_bytes(protocol: u32, payload: &[u8]) -> Vec<u8> {
        [MessageHead::plain(protocol, payload.len()).as_bytes(), payload].concat()
    }

    /// `PushReply { result: payload }` as a frame's encoder writes it.
    fn reply_bytes(payload: &[u8]) -> Vec<u8> {
        [MessageHead::reply(payload.len()).as_bytes(), payload].concat()
    }

    const SIZES: [usize; 9] = [0, 1, 64, 127, 128, 300, 16_383, 16_384, 70_000];

    fn bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| i as u8).collect()
    }

    #[test]
    fn plain_messages_are_the_bytes_prost_makes_and_decode_back() {
        for protocol in [0u32, 1, 0x7001, u32::MAX] {
            for len in SIZES {
                let payload = bytes(len);
                let ours = plain_bytes(protocol, &payload);
                let prost = Push { payload_protocol: protocol, payload: payload.clone() }.encode_to_vec();
                assert_eq!(ours, prost, "protocol {protocol}, {len} bytes");
                assert_eq!(plain_message(&ours), Some((protocol, &payload[..])));
            }
        }
    }

    #[test]
    fn reply_payloads_are_the_bytes_prost_makes_and_decode_back() {
        for len in SIZES {
            let payload = bytes(len);
            let ours = reply_bytes(&payload);
            let prost = PushReply { result: Some(push_reply::Result::Payload(payload.clone())) }.encode_to_vec();
            assert_eq!(ours, prost, "{len} bytes");
            assert_eq!(reply_payload(&ours), Some(&payload[..]));
        }
    }

    /// Whatever the fast decoders accept, prost decodes to the same thing.
    #[test]
    fn the_fast_decoders_accept_only_what_prost_reads_the_same_way() {
        let failure = PushReply {
            result: Some(push_reply::Result::Failure(PushFailure { code: -5, message: "no".into() })),
        };
        let mut two_results = reply_bytes(b"first");
        two_results.extend_from_slice(&reply_bytes(b"second"));
        let mut reordered = plain_bytes(0, b"abc");
        reordered.extend_from_slice(&plain_bytes(7, b""));
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            failure.encode_to_vec(),
            two_results,
            reordered,
            vec![0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // a protocol varint past 32 bits
            vec![0x08, 0x80],                               // cut short
            vec![0x12, 0x05, 1, 2],                         // a payload longer than the message
            vec![0x12, 0x00],                               // an explicit empty payload
            vec![0x0a, 0x00],                               // an explicit empty reply payload
            vec![0x2a, 0x01, 0x00],                         // an unknown field
            vec![0x12, 0x01, 0x09, 0xff],                   // a stray byte after the payload
            vec![0x0a, 0x01, 0x09, 0x0a],                   // a reply cut short after a payload
        ];
        for case in &cases {
            if let Some((protocol, payload)) = plain_message(case) {
                let prost = Push::decode(&case[..]).expect("prost accepts what the fast path does");
                assert_eq!((prost.payload_protocol, &prost.payload[..]), (protocol, payload), "{case:02x?}");
            }
            if let Some(payload) = reply_payload(case) {
                let prost = PushReply::decode(&case[..]).expect("prost accepts what the fast path does");
                assert_eq!(prost.result, Some(push_reply::Result::Payload(payload.to_vec())), "{case:02x?}");
            }
        }
        assert!(reply_payload(&cases[1]).is_none(), "a failure is not a payload");
        assert!(reply_payload(&cases[2]).is_none(), "the last of two results wins in prost: not the fast path");
    }

    /// `decode_large` reads every shape as prost does: field order, repeats, unknown fields,
    /// the oneof's last variant, wrong wire types and cut-short bytes.
    #[test]
    fn decode_large_reads_what_prost_reads() {
        use session_proto::{SessionError, SessionMessage};
        let failure = PushReply {
            result: Some(push_reply::Result::Failure(PushFailure { code: -5, message: "no".into() })),
        }
        .encode_to_vec();
        let payload = reply_bytes(b"first");
        let session = SessionMessage {
            payload_protocol: 7,
            payload: b"abc".to_vec(),
            error: Some(SessionError { code: 3, message: "e".into() }),
            end_of_stream: true,
        }
        .encode_to_vec();
        let cat = |parts: &[&[u8]]| parts.concat();
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            failure.clone(),
            payload.clone(),
            cat(&[&payload, &failure]),
            cat(&[&failure, &payload]),
            cat(&[&failure, &failure, &payload, &failure]),
            session.clone(),
            cat(&[&session, &session]),
            cat(&[&session[2..], &session[..2]]),
            cat(&[&[0x2a, 0x01, 0x00], &session]),  // an unknown field first
            vec![0x10, 0x05],                       // field 2 with the varint wire type
            vec![0x0a, 0x05, 1, 2],                 // cut short
            vec![0x08, 0x80],                       // a varint cut short
            vec![0x12, 0x01, 0x09, 0x0b, 0x01],     // a group never closed
            cat(&[&session, &[0x1a, 0x02, 0x08]]),  // an error message cut short
        ];
        for case in &cases {
            let ours = decode_large::<PushReply>(case, "PushReply", 1, &[2], true, |m, p| {
                m.result = Some(push_reply::Result::Payload(p));
            });
            match PushReply::decode(&case[..]) {
                Ok(m) => assert_eq!(ours.unwrap(), m, "{case:02x?}"),
                Err(_) => assert!(ours.is_err(), "{case:02x?}"),
            }
            let ours = decode_large::<SessionMessage>(case, "SessionMessage", 2, &[1, 3, 4], false, |m, p| m.payload = p);
            match SessionMessage::decode(&case[..]) {
                Ok(m) => assert_eq!(ours.unwrap(), m, "{case:02x?}"),
                Err(_) => assert!(ours.is_err(), "{case:02x?}"),
            }
            let ours = decode_large::<Push>(case, "Push", 2, &[1], false, |m, p| m.payload = p);
            match Push::decode(&case[..]) {
                Ok(m) => assert_eq!(ours.unwrap(), m, "{case:02x?}"),
                Err(_) => assert!(ours.is_err(), "{case:02x?}"),
            }
        }
    }
}
