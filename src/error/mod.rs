//! The error type shared by every part of librp, and the multiplexer's errors it carries
//! ([`MuxError`], [`DetectorError`], re-exported by [`crate::mux`]). It imports only the wire,
//! which imports nothing of it.

use std::borrow::Cow;
use std::io;

use crate::wire::{Refusal, WireError};

mod status;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, as a stable classification (the C ABI maps each to one `rp_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An argument was out of range or inconsistent.
    InvalidArgument,
    /// A string argument or field was not valid UTF-8.
    InvalidUtf8,
    /// A caller-provided output buffer was too small.
    BufferTooSmall,
    /// The first byte of a frame was not the v1 framing version.
    UnsupportedFraming,
    /// A frame (or message) announced a length above the cap.
    TooLarge,
    /// The peer closed the stream in the middle of a frame.
    Truncated,
    /// A frame body or payload was not valid protobuf for its message.
    Malformed,
    /// The protocol was violated in some other way.
    Protocol,
    /// The stream ended cleanly at a frame boundary, or the handle was closed.
    Closed,
    /// A deadline passed.
    Timeout,
    /// An operating-system call failed.
    Io,
    /// Nothing can be done now without blocking (for example a full send buffer or token
    /// store); retry later.
    Again,
    /// The named worker, queue or item does not exist.
    NotFound,
    /// The broker or server refused the connection (see [`Refusal`]).
    Refused,
    /// The peer rejected a registration or handoff.
    Rejected,
    /// Not permitted (a peer of another user, an unsafe socket directory, ...).
    PermissionDenied,
    /// Invalid configuration (environment or options).
    Config,
    /// A frame arrived for a consumer protocol the endpoint does not serve.
    UnservedProtocol,
    /// A first-party frame (control, admin, handoff) arrived where it is not accepted.
    FirstPartyFrame,
    /// An identity probe broke its rules.
    MalformedProbe,
    /// The broker path is disabled (`RUNNING_PROCESS_DISABLE=1`); use the direct path.
    Disabled,
    /// The call was cancelled (locally, or by the peer for a request being served).
    Cancelled,
    /// A wait was interrupted (`interrupt` on the handle it waited on); nothing else changed.
    Interrupted,
    /// The peer answered a call with an application error (see [`Error::Peer`]).
    PeerError,
    /// Memory for what a peer sent could not be allocated; the connection ended.
    NoMemory,
}

/// An error from librp: a kind plus a human-readable description.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A wire-level failure (framing, caps, protobuf).
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The endpoint multiplexer ended the connection.
    #[error(transparent)]
    Mux(#[from] MuxError),
    /// An argument was out of range or inconsistent.
    #[error("invalid argument: {0}")]
    InvalidArgument(Cow<'static, str>),
    /// A string was not valid UTF-8.
    #[error("invalid UTF-8 in {0}")]
    InvalidUtf8(&'static str),
    /// An output buffer was too small; `needed` bytes are required.
    #[error("buffer too small: {needed} bytes needed, {capacity} available")]
    BufferTooSmall {
        /// Bytes required.
        needed: usize,
        /// Bytes provided.
        capacity: usize,
    },
    /// A deadline passed.
    #[error("timed out: {0}")]
    Timeout(Cow<'static, str>),
    /// The connection or handle is closed.
    #[error("closed: {0}")]
    Closed(Cow<'static, str>),
    /// Nothing can be done now without blocking; retry later.
    #[error("try again: {0}")]
    Again(Cow<'static, str>),
    /// The named worker, queue or item does not exist.
    #[error("not found: {0}")]
    NotFound(Cow<'static, str>),
    /// The broker or server refused the connection.
    #[error("refused ({}): {}", .0.code_name(), .0.reason)]
    Refused(Box<Refusal>),
    /// The peer rejected a registration or handoff.
    #[error("rejected: {0}")]
    Rejected(Cow<'static, str>),
    /// Not permitted.
    #[error("permission denied: {0}")]
    PermissionDenied(Cow<'static, str>),
    /// Invalid configuration.
    #[error("invalid configuration: {0}")]
    Config(Cow<'static, str>),
    /// The broker path is disabled by the environment.
    #[error("disabled: {0}")]
    Disabled(Cow<'static, str>),
    /// The call was cancelled.
    #[error("cancelled: {0}")]
    Cancelled(Cow<'static, str>),
    /// A wait was interrupted by `interrupt` on the handle it waited on; the push, call or
    /// request goes on and can be waited for again.
    #[error("interrupted: {0}")]
    Interrupted(Cow<'static, str>),
    /// More data arrived than librp holds for a reader that has not taken it.
    #[error("too much unread data: {0}")]
    Overflow(Cow<'static, str>),
    /// The peer answered a session call with an error code: an application code (1000 or
    /// more, or one librp does not know; kind `PeerError`) or one of librp's stable codes,
    /// whose kind it keeps ([`ErrorKind::from_code`]).
    #[error("peer error {code}: {message}")]
    Peer {
        /// The peer's code.
        code: i32,
        /// The peer's message.
        message: String,
    },
    /// An error with a note on its likely cause (for example what the peer turned out to be);
    /// its kind and refusal are those of `source`.
    #[error("{source}; {note}")]
    Noted {
        /// The error.
        source: Box<Error>,
        /// What it probably means and what to do.
        note: Cow<'static, str>,
    },
    /// Memory for what a peer sent could not be allocated; the connection ended.
    #[error("out of memory: {0}")]
    NoMemory(Cow<'static, str>),
    /// An operating-system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What librp was doing.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The stable classification of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Wire(w) => w.kind(),
            Error::Mux(m) => m.kind(),
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::InvalidUtf8(_) => ErrorKind::InvalidUtf8,
            Error::BufferTooSmall { .. } => ErrorKind::BufferTooSmall,
            Error::Timeout(_) => ErrorKind::Timeout,
            // EACCES / EPERM (on a connect, a bind, a socket directory...) name their cause.
            Error::Io { source, .. } if source.kind() == io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            Error::Io { .. } => ErrorKind::Io,
            Error::Closed(_) => ErrorKind::Closed,
            Error::Again(_) => ErrorKind::Again,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Refused(_) => ErrorKind::Refused,
            Error::Rejected(_) => ErrorKind::Rejected,
            Error::PermissionDenied(_) => ErrorKind::PermissionDenied,
            Error::Config(_) => ErrorKind::Config,
            Error::Disabled(_) => ErrorKind::Disabled,
            Error::Cancelled(_) => ErrorKind::Cancelled,
            Error::Interrupted(_) => ErrorKind::Interrupted,
            Error::Overflow(_) => ErrorKind::TooLarge,
            // librp's own codes (below 1000) stand for their kind: one table, src/error/status.rs.
            Error::Peer { code, .. } => status::peer_kind(*code),
            Error::Noted { source, .. } => source.kind(),
            Error::NoMemory(_) => ErrorKind::NoMemory,
        }
    }

    /// Shorthand for an [`Error::InvalidArgument`].
    pub fn invalid_argument(msg: impl Into<Cow<'static, str>>) -> Self {
        Error::InvalidArgument(msg.into())
    }

    /// The refusal, when this error is one.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Error::Refused(r) => Some(r),
            Error::Noted { source, .. } => source.refusal(),
            _ => None,
        }
    }

    /// The refusal, when this error is one, taken out of it.
    pub(crate) fn into_refusal(self) -> Option<Box<Refusal>> {
        match self {
            Error::Refused(r) => Some(r),
            Error::Noted { source, .. } => source.into_refusal(),
            _ => None,
        }
    }

    /// This error with a note on its likely cause.
    pub fn noted(self, note: impl Into<Cow<'static, str>>) -> Self {
        Error::Noted { source: Box::new(self), note: note.into() }
    }

    /// Shorthand for an [`Error::Io`] with context.
    pub fn io(context: &'static str, source: io::Error) -> Self {
        Error::Io { context, source }
    }
}

/// A legacy detector failed (for example a C callback returned a value outside its enum).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("legacy detector failed: {0}")]
pub struct DetectorError(pub Cow<'static, str>);

/// A verdict that ends the connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MuxError {
    /// A frame for a consumer protocol this endpoint does not serve.
    #[error("payload protocol 0x{payload_protocol:04X} is not served on this endpoint")]
    UnservedPayloadProtocol {
        /// The frame's payload protocol.
        payload_protocol: u32,
    },
    /// A first-party frame (control, admin, handoff) arrived on a backend endpoint.
    #[error("first-party payload protocol 0x{payload_protocol:04X} is not accepted on a backend endpoint")]
    UnexpectedFirstPartyFrame {
        /// The frame's payload protocol.
        payload_protocol: u32,
    },
    /// An identity probe broke its rules (kind, encoding, nonce length).
    #[error("malformed identity probe: {0}")]
    MalformedProbe(&'static str),
    /// The bytes are not valid v1 framing (too large, undecodable body, ...).
    #[error(transparent)]
    Framing(#[from] WireError),
    /// The legacy detector failed.
    #[error(transparent)]
    Detector(#[from] DetectorError),
}

impl MuxError {
    /// The stable classification of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            MuxError::UnservedPayloadProtocol { .. } => ErrorKind::UnservedProtocol,
            MuxError::UnexpectedFirstPartyFrame { .. } => ErrorKind::FirstPartyFrame,
            MuxError::MalformedProbe(_) => ErrorKind::MalformedProbe,
            MuxError::Framing(w) => w.kind(),
            MuxError::Detector(_) => ErrorKind::InvalidArgument,
        }
    }
}

/// Where a wire error sits among librp's stable kinds (kept here, beside [`ErrorKind`], so
/// the wire imports nothing of the error type).
impl WireError {
    /// The stable classification of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            WireError::UnsupportedFramingVersion { .. } => ErrorKind::UnsupportedFraming,
            WireError::TooLarge { .. } => ErrorKind::TooLarge,
            WireError::Truncated { .. } => ErrorKind::Truncated,
            WireError::Malformed { .. } => ErrorKind::Malformed,
            WireError::Protocol(_) => ErrorKind::Protocol,
            WireError::Closed => ErrorKind::Closed,
            WireError::Timeout => ErrorKind::Timeout,
            WireError::Io(e) if e.kind() == io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            WireError::Io(_) => ErrorKind::Io,
            WireError::BufferTooSmall { .. } => ErrorKind::BufferTooSmall,
            WireError::NoMemory { .. } => ErrorKind::NoMemory,
        }
    }
}
