use std::borrow::Cow;
use std::io;

/// A failure to read, write or decode v1 frames.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The first byte of a frame was not [`super::FRAMING_VERSION`]; fatal for the connection.
    #[error("unsupported framing version 0x{byte:02x} (expected 0x01)")]
    UnsupportedFramingVersion {
        /// The byte that was found.
        byte: u8,
    },
    /// A frame announced a body longer than the cap; rejected before any allocation.
    #[error("frame body too large: {body_len} bytes exceeds cap {cap}")]
    TooLarge {
        /// The announced (or requested) body length.
        body_len: u64,
        /// The cap in force.
        cap: u32,
    },
    /// The stream ended inside a frame.
    #[error("peer closed the stream mid-frame: {received} of {expected} bytes received")]
    Truncated {
        /// Bytes of the frame that arrived.
        received: usize,
        /// Bytes known to be needed when the stream ended (at least).
        expected: usize,
    },
    /// A body or payload was not a valid protobuf message of the expected type.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// Which message failed to decode.
        what: &'static str,
        /// Why.
        detail: Cow<'static, str>,
    },
    /// A frame was well-formed but broke a rule of the protocol.
    #[error("protocol violation: {0}")]
    Protocol(Cow<'static, str>),
    /// The stream ended cleanly at a frame boundary.
    #[error("connection closed by peer")]
    Closed,
    /// A read or write timed out; no buffered bytes were lost.
    #[error("timed out waiting for the peer")]
    Timeout,
    /// An output buffer was too small; `needed` bytes are required (nothing was written).
    #[error("buffer too small: {needed} bytes needed, {capacity} available")]
    BufferTooSmall {
        /// Bytes required.
        needed: usize,
        /// Bytes provided.
        capacity: usize,
    },
    /// Memory for bytes a peer sent could not be allocated (the allocation was refused, nothing
    /// aborted); fatal for the connection.
    #[error("{bytes} bytes for what the peer sent could not be allocated")]
    NoMemory {
        /// The size of the allocation that failed.
        bytes: usize,
    },
    /// The operating system reported an error.
    #[error("i/o error: {0}")]
    Io(#[source] io::Error),
}

impl WireError {
    /// A malformed-`what` error from a prost decode failure.
    pub fn from_prost(what: &'static str, err: prost::DecodeError) -> Self {
        WireError::Malformed {
            what,
            detail: Cow::Owned(err.to_string()),
        }
    }

    /// A copy of `bytes` in memory of its own, or [`WireError::NoMemory`] when it cannot be
    /// allocated: every copy of what a peer sent goes through here (or another fallible
    /// allocation), so a large frame never aborts the process.
    pub fn try_copy(bytes: &[u8]) -> Result<Vec<u8>, WireError> {
        let mut v = Vec::new();
        v.try_reserve_exact(bytes.len()).map_err(|_| WireError::NoMemory { bytes: bytes.len() })?;
        v.extend_from_slice(bytes);
        Ok(v)
    }

    pub(crate) fn from_io(err: io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => WireError::Timeout,
            io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof => WireError::Closed,
            _ => WireError::Io(err),
        }
    }
}
