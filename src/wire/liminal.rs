//! The liminal worker wire (`liminal+tcp://` endpoints): a 10-byte header — frame type (u8),
//! flags (u8), stream id (u32 BE), payload length (u32 BE) — then the payload, built from
//! big-endian integers, length-prefixed bytes and strings. Only what a worker sends and receives
//! is encoded or decoded here; other frame types are skipped by their length. docs/PROTOCOL.md
//! ("The liminal dialect") has the frames byte by byte.

use std::io::Read;

use super::stream::ReadBuffer;
use super::{Extent, WireError};

/// Bytes of the frame header.
pub const HEADER_LEN: usize = 10;
/// The largest payload accepted before the server admitted the connection.
pub const MAX_PAYLOAD_BEFORE_ADMISSION: u32 = 64 * 1024;
/// The largest payload accepted once connected.
pub const MAX_PAYLOAD: u32 = 16 * 1024 * 1024;
/// The longest worker identity a liminal server accepts.
pub const MAX_IDENTITY: usize = 992;
/// The longest `words` of a refusal record.
pub const MAX_REFUSAL_WORDS: usize = 1024;

/// The lowest version this worker offers (1.0).
pub const MIN_VERSION: Version = Version { major: 1, minor: 0 };
/// The highest version this worker offers (1.3: it understands DisconnectReason).
pub const MAX_VERSION: Version = Version { major: 1, minor: 3 };

/// Frame types a worker sends or receives.
pub mod kind {
    /// Worker → server: versions and auth token.
    pub const CONNECT: u8 = 0x01;
    /// Server → worker: the version selected.
    pub const CONNECT_ACK: u8 = 0x02;
    /// Server → worker: the Connect was refused.
    pub const CONNECT_ERROR: u8 = 0x03;
    /// Either side: the connection ends.
    pub const DISCONNECT: u8 = 0x04;
    /// Either side: are you there?
    pub const PING: u8 = 0x13;
    /// Either side: the answer to a Ping.
    pub const PONG: u8 = 0x14;
    /// Server → worker: a job.
    pub const PUSH: u8 = 0x15;
    /// Worker → server: the answer (flags 0) or a refusal record (flags 1).
    pub const PUSH_REPLY: u8 = 0x16;
    /// Worker → server: the registration.
    pub const WORKER_REGISTER: u8 = 0x17;
    /// Server → worker: the registration accepted or rejected.
    pub const WORKER_REGISTER_ACK: u8 = 0x18;
    /// Server → worker (1.3): why the server is ending the connection.
    pub const DISCONNECT_REASON: u8 = 0x20;
}

/// Flag of a PushReply that carries a refusal record instead of an answer.
pub const FLAG_REFUSAL: u8 = 0x01;
/// The stream id pushes and replies travel on.
pub const PUSH_STREAM: u32 = 1;

/// A protocol version, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// One frame, borrowed from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Frame type ([`kind`]).
    pub kind: u8,
    /// Flags.
    pub flags: u8,
    /// Stream id: 0 for control frames, 1 or more for the others.
    pub stream: u32,
    /// The payload.
    pub payload: &'a [u8],
}

/// Whether a worker knows a frame type (the ones in [`kind`]); it skips the others by length.
pub fn is_known(kind: u8) -> bool {
    is_control(kind) || is_stream_kind(kind)
}

/// Whether a frame type is a control frame (stream 0 only).
fn is_control(kind: u8) -> bool {
    matches!(
        kind,
        kind::CONNECT
            | kind::CONNECT_ACK
            | kind::CONNECT_ERROR
            | kind::DISCONNECT
            | kind::PING
            | kind::PONG
            | kind::WORKER_REGISTER
            | kind::WORKER_REGISTER_ACK
            | kind::DISCONNECT_REASON
    )
}

/// How much of `buf` the first frame occupies, judged from its header; a payload announced
/// over `max_payload` is an error before it arrives.
fn frame_extent(buf: &[u8], max_payload: u32) -> Result<Extent, WireError> {
    if buf.len() < HEADER_LEN {
        return Ok(Extent::NeedMore(HEADER_LEN));
    }
    let len = u32::from_be_bytes([buf[6], buf[7], buf[8], buf[9]]);
    if len > max_payload {
        return Err(WireError::TooLarge { body_len: u64::from(len), cap: max_payload });
    }
    let total = HEADER_LEN + len as usize;
    Ok(if buf.len() < total { Extent::NeedMore(total) } else { Extent::Complete(total) })
}

/// Reads liminal frames from a stream through an internal buffer (the same buffer as the v1
/// [`FrameReader`](super::FrameReader): memory grows only with bytes that arrived).
#[derive(Debug)]
pub struct Reader<R> {
    bytes: ReadBuffer<R>,
    max_payload: u32,
}

impl<R: Read> Reader<R> {
    /// A reader with the pre-admission bound (64 KiB); raise it with
    /// [`set_max_payload`](Self::set_max_payload) once connected.
    pub fn new(inner: R) -> Self {
        Reader { bytes: ReadBuffer::new(inner), max_payload: MAX_PAYLOAD_BEFORE_ADMISSION }
    }

    /// Changes the payload bound for frames read from now on (clamped to 16 MiB).
    pub fn set_max_payload(&mut self, max: u32) {
        self.max_payload = max.min(MAX_PAYLOAD);
    }

    /// The next frame if one is complete in the buffer; never reads. A control frame off
    /// stream 0, or a push or reply on stream 0, is an error.
    pub fn next_buffered(&mut self) -> Result<Option<Frame<'_>>, WireError> {
        let Extent::Complete(total) = frame_extent(self.bytes.pending(), self.max_payload)? else { return Ok(None) };
        let bytes = self.bytes.take(total);
        let frame = Frame {
            kind: bytes[0],
            flags: bytes[1],
            stream: u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]),
            payload: &bytes[HEADER_LEN..],
        };
        if is_known(frame.kind) && is_control(frame.kind) != (frame.stream == 0) {
            return Err(WireError::Protocol(
                format!(
                "liminal frame 0x{:02X} on stream {} ({})",
                frame.kind,
                frame.stream,
                if is_control(frame.kind) { "a control frame belongs on stream 0" } else { "stream 0 is for control frames" }
            )
                .into(),
            ));
        }
        Ok(Some(frame))
    }

    /// Reads the next frame, blocking per the stream's timeout.
    pub fn read_frame(&mut self) -> Result<Frame<'_>, WireError> {
        while let Extent::NeedMore(needed) = frame_extent(self.bytes.pending(), self.max_payload)? {
            self.bytes.fill(needed)?;
        }
        Ok(self.next_buffered()?.expect("a complete frame is buffered"))
    }

    /// Reads once from the stream into the buffer; returns the bytes read (errors as
    /// [`FrameReader::read_more`](super::FrameReader::read_more)).
    pub fn read_more(&mut self) -> Result<usize, WireError> {
        let needed = match frame_extent(self.bytes.pending(), self.max_payload)? {
            Extent::NeedMore(n) => n,
            Extent::Complete(total) => total + HEADER_LEN,
        };
        self.bytes.fill(needed)
    }

    /// The underlying stream, mutably (reading from it directly desynchronises the framing).
    pub fn get_mut(&mut self) -> &mut R {
        self.bytes.get_mut()
    }

    /// The same reader over another stream type, keeping every buffered byte.
    pub fn map_inner<S>(self, f: impl FnOnce(R) -> S) -> Reader<S> {
        Reader { bytes: self.bytes.map_inner(f), max_payload: self.max_payload }
    }
}

/// The frame types a worker knows that travel on a stream of their own (not 0).
fn is_stream_kind(kind: u8) -> bool {
    matches!(kind, kind::PUSH | kind::PUSH_REPLY)
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/// Builds one frame: header, then the payload appended by `body`.
fn frame(kind: u8, flags: u8, stream: u32, body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = vec![kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    body(&mut out);
    let len = (out.len() - HEADER_LEN) as u32;
    out[6..10].copy_from_slice(&len.to_be_bytes());
    out
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn put_strings(out: &mut Vec<u8>, list: &[String]) {
    out.extend_from_slice(&(list.len() as u32).to_be_bytes());
    for s in list {
        put_bytes(out, s.as_bytes());
    }
}

fn put_version(out: &mut Vec<u8>, v: Version) {
    out.extend_from_slice(&v.major.to_be_bytes());
    out.extend_from_slice(&v.minor.to_be_bytes());
}

/// Connect: the versions offered and the auth token.
pub fn connect(min: Version, max: Version, auth_token: &[u8]) -> Vec<u8> {
    frame(kind::CONNECT, 0, 0, |out| {
        put_version(out, min);
        put_version(out, max);
        put_bytes(out, auth_token);
    })
}

/// An activity a worker describes in its registration: its name and its input and output JSON
/// schemas (liminal endpoints only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityDescriptor {
    /// The activity's name.
    pub name: String,
    /// JSON schema of its input.
    pub input_schema_json: String,
    /// JSON schema of its output.
    pub output_schema_json: String,
}

/// What a WorkerRegister carries.
#[derive(Debug, Clone, Copy)]
pub struct Register<'a> {
    /// Namespaces served.
    pub namespaces: &'a [String],
    /// The task queue (the subject pushes are routed by).
    pub task_queue: &'a str,
    /// Node name; empty = absent.
    pub node: &'a str,
    /// Activity types handled.
    pub activity_types: &'a [String],
    /// Who the worker is.
    pub identity: &'a str,
    /// Activity descriptors; none = no tail.
    pub descriptors: &'a [ActivityDescriptor],
}

/// WorkerRegister; the descriptor tail only when there are descriptors.
pub fn worker_register(r: &Register<'_>) -> Vec<u8> {
    frame(kind::WORKER_REGISTER, 0, 0, |out| {
        put_strings(out, r.namespaces);
        put_bytes(out, r.task_queue.as_bytes());
        if r.node.is_empty() {
            out.push(0);
        } else {
            out.push(1);
            put_bytes(out, r.node.as_bytes());
        }
        put_strings(out, r.activity_types);
        put_bytes(out, r.identity.as_bytes());
        if !r.descriptors.is_empty() {
            out.extend_from_slice(&(r.descriptors.len() as u32).to_be_bytes());
            for d in r.descriptors {
                put_bytes(out, d.name.as_bytes());
                put_bytes(out, d.input_schema_json.as_bytes());
                put_bytes(out, d.output_schema_json.as_bytes());
            }
        }
    })
}

/// The header and correlation id of a PushReply whose payload (`payload_len` bytes) follows
/// (written separately, so the payload is not copied).
pub fn push_reply_head(correlation_id: u64, payload_len: usize, refusal: bool) -> [u8; HEADER_LEN + 12] {
    let mut out = [0u8; HEADER_LEN + 12];
    out[0] = kind::PUSH_REPLY;
    out[1] = if refusal { FLAG_REFUSAL } else { 0 };
    out[2..6].copy_from_slice(&PUSH_STREAM.to_be_bytes());
    out[6..10].copy_from_slice(&((12 + payload_len) as u32).to_be_bytes());
    out[10..18].copy_from_slice(&correlation_id.to_be_bytes());
    out[18..22].copy_from_slice(&(payload_len as u32).to_be_bytes());
    out
}

/// A frame with an empty payload on stream 0 (Ping, Pong, Disconnect).
pub fn empty(kind: u8) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[0] = kind;
    out
}

/// The refusal record of a PushReply with the refusal flag: exactly
/// `{"code":"<code>","words":"<words>"}`, compact, escaped as serde_json escapes (`"` and `\`,
/// `\b \t \n \f \r`, other control characters as `\u00xx`; nothing else).
pub fn refusal_record(code: &str, words: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(words.len() + code.len() + 24);
    out.extend_from_slice(b"{\"code\":\"");
    json_escape_into(&mut out, code);
    out.extend_from_slice(b"\",\"words\":\"");
    json_escape_into(&mut out, words);
    out.extend_from_slice(b"\"}");
    out
}

fn json_escape_into(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x09 => out.extend_from_slice(b"\\t"),
            0x0A => out.extend_from_slice(b"\\n"),
            0x0C => out.extend_from_slice(b"\\f"),
            0x0D => out.extend_from_slice(b"\\r"),
            0x00..=0x1F => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]),
            _ => out.push(b),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding (every decoder takes the whole payload: trailing bytes are an error)
// ---------------------------------------------------------------------------------------------

/// Reads payload primitives front to back.
struct Cursor<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn new(payload: &'a [u8], what: &'static str) -> Self {
        Cursor { rest: payload, what }
    }

    fn bad(&self, why: &str) -> WireError {
        WireError::Protocol(format!("malformed liminal {}: {why}", self.what).into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.rest.len() < n {
            return Err(self.bad("payload ends early"));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes(b.try_into().expect("8 bytes")))
    }

    fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn string(&mut self) -> Result<&'a str, WireError> {
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|_| self.bad("a string is not UTF-8"))
    }

    fn optional_string(&mut self) -> Result<Option<&'a str>, WireError> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.string().map(Some),
            other => Err(self.bad(&format!("presence byte {other}"))),
        }
    }

    fn version(&mut self) -> Result<Version, WireError> {
        Ok(Version { major: self.u16()?, minor: self.u16()? })
    }

    fn end(self) -> Result<(), WireError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.bad(&format!("{} trailing bytes", self.rest.len())))
        }
    }
}

/// ConnectAck: the version selected and the server's capabilities.
pub fn connect_ack(payload: &[u8]) -> Result<(Version, u32), WireError> {
    let mut c = Cursor::new(payload, "ConnectAck");
    let v = (c.version()?, c.u32()?);
    c.end()?;
    Ok(v)
}

/// ConnectError: the reason code and the optional message.
pub fn connect_error(payload: &[u8]) -> Result<(u16, Option<&str>), WireError> {
    let mut c = Cursor::new(payload, "ConnectError");
    let v = (c.u16()?, c.optional_string()?);
    c.end()?;
    Ok(v)
}

/// The name of a ConnectError reason code, where the facts name it.
pub fn connect_error_name(code: u16) -> Option<&'static str> {
    match code {
        0x0006 => Some("authentication failed"),
        0x0007 => Some("no common protocol version"),
        0x0009 => Some("codec error"),
        _ => None,
    }
}

/// WorkerRegisterAck: `Ok(())` accepted, `Err(reason)` rejected.
pub fn register_ack(payload: &[u8]) -> Result<Result<(), &str>, WireError> {
    let mut c = Cursor::new(payload, "WorkerRegisterAck");
    let v = match c.u8()? {
        0 => Ok(()),
        1 => Err(c.string()?),
        other => return Err(c.bad(&format!("status byte {other}"))),
    };
    c.end()?;
    Ok(v)
}

/// Push: the correlation id and the payload.
pub fn push(payload: &[u8]) -> Result<(u64, &[u8]), WireError> {
    let mut c = Cursor::new(payload, "Push");
    let v = (c.u64()?, c.bytes()?);
    c.end()?;
    Ok(v)
}

/// DisconnectReason: its code and name (body version 1; the name at most 64 bytes).
pub fn disconnect_reason(payload: &[u8]) -> Result<(u16, &str), WireError> {
    let mut c = Cursor::new(payload, "DisconnectReason");
    let body_version = c.u8()?;
    if body_version != 1 {
        return Err(c.bad(&format!("body version {body_version}")));
    }
    let code = c.u16()?;
    let name = c.string()?;
    if name.len() > 64 {
        return Err(c.bad("a reason name over 64 bytes"));
    }
    c.end()?;
    Ok((code, name))
}

/// Checks that a frame meant to be empty is.
pub fn empty_payload(frame: &Frame<'_>, what: &'static str) -> Result<(), WireError> {
    Cursor::new(frame.payload, what).end()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn connect_matches_the_bytes_seen_live() {
        let v = |major, minor| Version { major, minor };
        assert_eq!(connect(v(1, 0), v(1, 1), b""), hex("01 00 00000000 0000000c 0001 0000 0001 0001 00000000"));
    }

    #[test]
    fn register_matches_the_bytes_seen_live() {
        let s = |x: &str| x.to_owned();
        let r = Register {
            namespaces: &[s("raw")],
            task_queue: "raw.echo",
            node: "",
            activity_types: &[s("raw.echo")],
            identity: "raw-c-like-worker",
            descriptors: &[],
        };
        let mut want = hex("17 00 00000000 0000003d 00000001 00000003");
        want.extend_from_slice(b"raw");
        want.extend_from_slice(&hex("00000008"));
        want.extend_from_slice(b"raw.echo");
        want.extend_from_slice(&hex("00 00000001 00000008"));
        want.extend_from_slice(b"raw.echo");
        want.extend_from_slice(&hex("00000011"));
        want.extend_from_slice(b"raw-c-like-worker");
        assert_eq!(worker_register(&r), want);
    }

    #[test]
    fn refusal_records_escape_like_serde_json() {
        assert_eq!(refusal_record("busy", "raw worker is busy"), br#"{"code":"busy","words":"raw worker is busy"}"#);
        assert_eq!(
            refusal_record("invalid", "a\"b\\c\n\t\u{1}\u{7f}é/"),
            "{\"code\":\"invalid\",\"words\":\"a\\\"b\\\\c\\n\\t\\u0001\u{7f}é/\"}".as_bytes()
        );
    }

    #[test]
    fn refusal_records_are_byte_for_byte_what_serde_json_writes() {
        let mut words: Vec<String> = (0u32..0x80).map(|c| char::from_u32(c).unwrap().to_string()).collect();
        words.push((0u32..0x80).filter_map(char::from_u32).collect());
        words.extend(["é ü €", "\u{2028}\u{2029}", "😀 a\"b", ""].map(String::from));
        for w in &words {
            for code in ["busy", "invalid", "unavailable", "internal"] {
                let want = serde_json::to_string(&serde_json::json!({ "code": code, "words": w })).unwrap();
                assert_eq!(String::from_utf8(refusal_record(code, w)).unwrap(), want, "{w:?}");
            }
        }
    }

    #[test]
    fn decoders_refuse_trailing_bytes_and_bad_presence() {
        assert_eq!(connect_ack(&hex("0001 0002 00000000")).unwrap(), (Version { major: 1, minor: 2 }, 0));
        assert!(connect_ack(&hex("0001 0002 00000000 00")).is_err());
        assert!(connect_error(&hex("0006 02")).is_err());
        assert_eq!(register_ack(&hex("00")).unwrap(), Ok(()));
        assert!(register_ack(&hex("00 00")).is_err());
        assert!(push(&hex("0000000000000002 00000005 6869")).is_err());
    }

    #[test]
    fn control_frames_belong_on_stream_zero() {
        let bytes = hex("13 00 00000001 00000000");
        let mut r = Reader::new(&bytes[..]);
        r.read_more().unwrap();
        assert!(r.next_buffered().is_err());
        let bytes = hex("15 00 00000000 00000000");
        let mut r = Reader::new(&bytes[..]);
        r.read_more().unwrap();
        assert!(r.next_buffered().is_err());
        // Unknown types are handed out, to be skipped.
        let bytes = hex("7e 00 00000009 00000002 abcd");
        let mut r = Reader::new(&bytes[..]);
        r.read_more().unwrap();
        assert_eq!(r.next_buffered().unwrap().unwrap().kind, 0x7e);
    }

    #[test]
    fn a_frame_over_the_bound_is_refused_before_it_arrives() {
        let bytes = hex("15 00 00000001 00010001");
        let mut r = Reader::new(&bytes[..]);
        r.read_more().unwrap();
        assert!(matches!(r.next_buffered(), Err(WireError::TooLarge { .. })));
        assert!(matches!(r.read_more(), Err(WireError::TooLarge { .. })));
    }
}
