//! The session's hot paths without prost: encoding and decoding the `SessionMessage` of a
//! plain request, response or chunk (a payload protocol and payload bytes), and the hash map
//! of request ids. Everything else (errors, end of stream, any non-canonical encoding) goes
//! through the generated prost code, so both paths accept and produce the same bytes.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use prost::Message;

use super::proto::SessionMessage;
use crate::wire::pb;

/// Key of `SessionMessage.payload_protocol` (field 1, varint).
const KEY_PAYLOAD_PROTOCOL: u8 = 0x08;
/// Key of `SessionMessage.payload` (field 2, length-delimited).
const KEY_PAYLOAD: u8 = 0x12;

/// Encodes `SessionMessage { payload_protocol, payload }` (no error, no end of stream) and
/// hands the bytes to `send`: on the stack when they are small, so a call or an answer of a
/// few hundred bytes costs no allocation. The bytes are those prost produces.
pub(super) fn with_encoded<R>(payload_protocol: u32, payload: &[u8], send: impl FnOnce(&[u8]) -> R) -> R {
    const ON_STACK: usize = 512;
    // Two keys and two varints of at most 5 (u32) and 10 (length) bytes.
    let needed = payload.len() + 17;
    if needed <= ON_STACK {
        let mut buf = [0u8; ON_STACK];
        let len = encode_into(&mut buf, payload_protocol, payload);
        send(&buf[..len])
    } else {
        let mut buf = vec![0u8; needed];
        let len = encode_into(&mut buf, payload_protocol, payload);
        send(&buf[..len])
    }
}

/// Writes the message at the front of `out` (which has room); returns its length.
fn encode_into(out: &mut [u8], payload_protocol: u32, payload: &[u8]) -> usize {
    let mut pos = 0;
    if payload_protocol != 0 {
        out[pos] = KEY_PAYLOAD_PROTOCOL;
        pos += 1 + pb::put_varint(&mut out[pos + 1..], u64::from(payload_protocol));
    }
    if !payload.is_empty() {
        out[pos] = KEY_PAYLOAD;
        pos += 1 + pb::put_varint(&mut out[pos + 1..], payload.len() as u64);
        out[pos..pos + payload.len()].copy_from_slice(payload);
        pos += payload.len();
    }
    pos
}

/// Decodes a `SessionMessage`. The common shape (payload protocol and payload, in field
/// order, nothing else) is read directly, copying the payload once; anything else is left
/// to prost, whose result it would equal.
pub(super) fn decode(bytes: &[u8]) -> Result<SessionMessage, prost::DecodeError> {
    match decode_plain(bytes) {
        Some(msg) => Ok(msg),
        None => SessionMessage::decode(bytes),
    }
}

fn decode_plain(bytes: &[u8]) -> Option<SessionMessage> {
    let mut pos = 0;
    let mut msg = SessionMessage::default();
    if bytes.first() == Some(&KEY_PAYLOAD_PROTOCOL) {
        pos += 1;
        // prost keeps the low 32 bits of a longer varint, as `as u32` does.
        msg.payload_protocol = pb::get_varint(bytes, &mut pos).ok()? as u32;
    }
    if bytes.get(pos) == Some(&KEY_PAYLOAD) {
        pos += 1;
        msg.payload = pb::get_len_delimited(bytes, &mut pos).ok()?.to_vec();
    }
    (pos == bytes.len()).then_some(msg)
}

/// A map keyed by request id. Ids are small counters, not secrets: a multiply-and-fold hash
/// with a per-map random seed spreads them at a fraction of SipHash's cost, and a peer that
/// does not know the seed cannot aim its ids at one bucket.
pub(super) type IdMap<V> = HashMap<u64, V, IdHash>;

/// The [`BuildHasher`] of [`IdMap`]: its seed is drawn once per map.
#[derive(Debug, Clone, Copy)]
pub(super) struct IdHash(u64);

impl Default for IdHash {
    fn default() -> Self {
        IdHash(std::collections::hash_map::RandomState::new().hash_one(0x5350_u64) | 1)
    }
}

impl BuildHasher for IdHash {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher { seed: self.0, hash: 0 }
    }
}

/// Hashes one `u64` (a request id); see [`IdMap`].
#[derive(Debug)]
pub(super) struct IdHasher {
    seed: u64,
    hash: u64,
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not used by `u64` keys; kept correct for any other.
        for &b in bytes {
            self.write_u64(self.hash ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, id: u64) {
        let product = u128::from(id ^ self.seed) * u128::from(0x9e37_79b9_7f4a_7c15_u64);
        self.hash = (product as u64) ^ ((product >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::super::proto::SessionError;
    use super::*;

    fn plain(protocol: u32, payload: &[u8]) -> SessionMessage {
        SessionMessage { payload_protocol: protocol, payload: payload.to_vec(), ..SessionMessage::default() }
    }

    #[test]
    fn plain_messages_encode_to_the_bytes_prost_makes() {
        for (protocol, len) in [(0, 0), (0, 1), (0x7001, 0), (0x7001, 64), (u32::MAX, 127), (1, 128), (5, 495), (5, 496), (9, 70_000)] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let ours = with_encoded(protocol, &payload, <[u8]>::to_vec);
            assert_eq!(ours, plain(protocol, &payload).encode_to_vec(), "protocol {protocol}, {len} bytes");
            assert_eq!(decode(&ours).unwrap(), plain(protocol, &payload));
        }
    }

    #[test]
    fn every_other_message_decodes_as_prost_decodes_it() {
        let with_error = SessionMessage {
            error: Some(SessionError { code: -5, message: "no".into() }),
            ..plain(3, b"x")
        };
        let eos = SessionMessage { end_of_stream: true, ..plain(0, b"tail") };
        let mut reordered = plain(0, b"abc").encode_to_vec();
        reordered.extend_from_slice(&plain(7, b"").encode_to_vec());
        let mut repeated = plain(7, b"first").encode_to_vec();
        repeated.extend_from_slice(&plain(8, b"second").encode_to_vec());
        let cases: Vec<Vec<u8>> = vec![
            with_error.encode_to_vec(),
            eos.encode_to_vec(),
            reordered,
            repeated,
            vec![0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // a varint past 32 bits
            vec![0x08, 0x80],                               // cut short
            vec![0x12, 0x05, 1, 2],                         // payload longer than the message
            vec![0x12, 0x00],                               // an explicit empty payload
            vec![0x2a, 0x01, 0x00],                         // an unknown field
            vec![0x12, 0x01, 0x09, 0xff],                   // a stray byte after the payload
        ];
        for bytes in cases {
            let ours = decode(&bytes).map_err(|e| e.to_string());
            let prost = SessionMessage::decode(&bytes[..]).map_err(|e| e.to_string());
            assert_eq!(ours, prost, "bytes {bytes:02x?}");
        }
    }

    #[test]
    fn an_id_map_spreads_consecutive_ids() {
        let hash = IdHash::default();
        let mut buckets = [0u32; 64];
        for id in (1..=6400u64).step_by(2) {
            buckets[(hash.hash_one(id) & 63) as usize] += 1;
        }
        // 3,200 ids over 64 buckets: 50 each on average.
        assert!(buckets.iter().all(|&n| (20..=90).contains(&n)), "{buckets:?}");
        let mut map = IdMap::default();
        for id in 0..1000u64 {
            map.insert(id * 2, id);
        }
        assert!((0..1000u64).all(|id| map.get(&(id * 2)) == Some(&id)));
    }
}
