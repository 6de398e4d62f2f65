//! `rp_status`: the stable result codes of every fallible C function.

use std::ffi::c_char;

use crate::error::ErrorKind;

/// The result of a fallible librp call: 0 is success, every other value is a stable code.
///
/// Codes are grouped by family (1–9 expected outcomes, 10–19 caller errors, 20–29 protocol
/// errors, 30–39 refusals, 40–49 system errors, 90–99 internal). Values never change and are
/// never reused. After a non-OK status, `rp_last_error_message` describes the failure.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rp_status {
    /// Success.
    Ok = 0,
    /// Nothing can be done right now without blocking; try again later.
    Again = 1,
    /// A deadline or timeout passed before the operation completed.
    Timeout = 2,
    /// The connection or handle is closed (cleanly, by either side).
    Closed = 3,
    /// The buffer holds part of a frame; more bytes are needed. Nothing was consumed.
    Incomplete = 4,
    /// A caller-provided output buffer is too small; the needed size was reported.
    BufferTooSmall = 5,
    /// The broker path is disabled by `RUNNING_PROCESS_DISABLE=1`; use your direct path.
    Disabled = 6,
    /// The call was cancelled (by `rp_session_call_cancel`, or by the peer for a request being
    /// served).
    Cancelled = 7,
    /// A required pointer argument was NULL.
    NullArgument = 10,
    /// An argument is out of range or inconsistent.
    InvalidArgument = 11,
    /// A string argument or field is not valid UTF-8.
    InvalidUtf8 = 12,
    /// The named worker, queue or item does not exist.
    NotFound = 13,
    /// The peer or the bytes broke a rule of the protocol.
    Protocol = 20,
    /// The first byte of a frame is not the v1 framing version.
    UnsupportedFraming = 21,
    /// A frame or message exceeds its size cap.
    TooLarge = 22,
    /// The peer closed the stream in the middle of a frame.
    Truncated = 23,
    /// A frame body or payload is not valid protobuf for its message.
    Malformed = 24,
    /// A frame arrived for a payload protocol the endpoint does not serve; fatal for the
    /// connection.
    UnservedProtocol = 25,
    /// A first-party frame (control, admin, handoff) arrived on an endpoint that does not accept
    /// it; fatal for the connection.
    FirstPartyFrame = 26,
    /// An identity probe broke its rules (kind, encoding, nonce length); fatal for the connection.
    MalformedProbe = 27,
    /// The broker or server refused the request (its code and retry hint are readable).
    Refused = 30,
    /// The peer rejected a registration or handoff (its reason is readable).
    Rejected = 31,
    /// The operation is not permitted: a peer of another user, an unsafe socket directory, or
    /// the system refused access (EACCES/EPERM on a connect, a bind or a file).
    PermissionDenied = 32,
    /// The peer answered a session call with an application error (code 1000 or more, or one
    /// librp does not know); `rp_last_error_message` shows "peer error CODE: MESSAGE".
    PeerError = 33,
    /// An operating-system call failed.
    Io = 40,
    /// The configuration (environment or options) is invalid.
    Config = 41,
    /// Memory for what a peer sent (a frame, a payload, a message) could not be allocated: the
    /// connection ended, the process lives on.
    NoMemory = 42,
    /// A bug inside librp was caught at the boundary; only `_free` is valid on the handle now.
    Panic = 90,
}

/// Every status, for `From<i32>` and `rp_status_str` (not exported to C).
const ALL_STATUSES: [rp_status; 28] = [
    rp_status::Ok,
    rp_status::Again,
    rp_status::Timeout,
    rp_status::Closed,
    rp_status::Incomplete,
    rp_status::BufferTooSmall,
    rp_status::Disabled,
    rp_status::Cancelled,
    rp_status::NullArgument,
    rp_status::InvalidArgument,
    rp_status::InvalidUtf8,
    rp_status::NotFound,
    rp_status::Protocol,
    rp_status::UnsupportedFraming,
    rp_status::TooLarge,
    rp_status::Truncated,
    rp_status::Malformed,
    rp_status::UnservedProtocol,
    rp_status::FirstPartyFrame,
    rp_status::MalformedProbe,
    rp_status::Refused,
    rp_status::Rejected,
    rp_status::PermissionDenied,
    rp_status::PeerError,
    rp_status::Io,
    rp_status::Config,
    rp_status::NoMemory,
    rp_status::Panic,
];

impl rp_status {
    /// A short, static description (NUL-terminated).
    pub(crate) fn description(self) -> &'static std::ffi::CStr {
        match self {
            rp_status::Ok => c"ok",
            rp_status::Again => c"try again",
            rp_status::Timeout => c"timed out",
            rp_status::Closed => c"closed",
            rp_status::Incomplete => c"incomplete frame: more bytes needed",
            rp_status::BufferTooSmall => c"buffer too small",
            rp_status::Disabled => c"broker path disabled",
            rp_status::Cancelled => c"cancelled",
            rp_status::NullArgument => c"NULL argument",
            rp_status::InvalidArgument => c"invalid argument",
            rp_status::InvalidUtf8 => c"invalid UTF-8",
            rp_status::NotFound => c"not found",
            rp_status::Protocol => c"protocol violation",
            rp_status::UnsupportedFraming => c"unsupported framing version",
            rp_status::TooLarge => c"too large",
            rp_status::Truncated => c"truncated: peer closed mid-frame",
            rp_status::Malformed => c"malformed message",
            rp_status::UnservedProtocol => c"payload protocol not served",
            rp_status::FirstPartyFrame => c"unexpected first-party frame",
            rp_status::MalformedProbe => c"malformed identity probe",
            rp_status::Refused => c"refused",
            rp_status::Rejected => c"rejected",
            rp_status::PermissionDenied => c"permission denied",
            rp_status::PeerError => c"peer error",
            rp_status::Io => c"i/o error",
            rp_status::Config => c"invalid configuration",
            rp_status::NoMemory => c"out of memory",
            rp_status::Panic => c"internal panic",
        }
    }
}

/// Total conversion from an integer received from C: unknown values become `InvalidArgument`
/// (an integer from C is never transmuted into the enum).
impl From<i32> for rp_status {
    fn from(code: i32) -> Self {
        ALL_STATUSES
            .into_iter()
            .find(|s| *s as i32 == code)
            .unwrap_or(rp_status::InvalidArgument)
    }
}

/// The one mapping from the core's error kinds to C status codes.
impl From<ErrorKind> for rp_status {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidArgument => rp_status::InvalidArgument,
            ErrorKind::InvalidUtf8 => rp_status::InvalidUtf8,
            ErrorKind::BufferTooSmall => rp_status::BufferTooSmall,
            ErrorKind::UnsupportedFraming => rp_status::UnsupportedFraming,
            ErrorKind::TooLarge => rp_status::TooLarge,
            ErrorKind::Truncated => rp_status::Truncated,
            ErrorKind::Malformed => rp_status::Malformed,
            ErrorKind::Protocol => rp_status::Protocol,
            ErrorKind::Closed => rp_status::Closed,
            ErrorKind::Timeout => rp_status::Timeout,
            ErrorKind::Io => rp_status::Io,
            ErrorKind::Again => rp_status::Again,
            ErrorKind::NotFound => rp_status::NotFound,
            ErrorKind::Refused => rp_status::Refused,
            ErrorKind::Rejected => rp_status::Rejected,
            ErrorKind::PermissionDenied => rp_status::PermissionDenied,
            ErrorKind::Config => rp_status::Config,
            ErrorKind::UnservedProtocol => rp_status::UnservedProtocol,
            ErrorKind::FirstPartyFrame => rp_status::FirstPartyFrame,
            ErrorKind::MalformedProbe => rp_status::MalformedProbe,
            ErrorKind::Disabled => rp_status::Disabled,
            ErrorKind::Cancelled => rp_status::Cancelled,
            ErrorKind::PeerError => rp_status::PeerError,
            ErrorKind::NoMemory => rp_status::NoMemory,
        }
    }
}

/// A static, human-readable name for a status code.
///
/// Parameters: `status` — any integer; unknown values give "unknown status".
///
/// Returns a NUL-terminated string with static lifetime. Never free it.
///
/// Thread safety: may be called from any thread at any time.
#[unsafe(no_mangle)]
pub extern "C" fn rp_status_str(status: i32) -> *const c_char {
    let known = ALL_STATUSES.into_iter().find(|s| *s as i32 == status);
    match known {
        Some(s) => s.description().as_ptr(),
        None => c"unknown status".as_ptr(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_i32_is_total_and_round_trips() {
        for s in ALL_STATUSES {
            assert_eq!(rp_status::from(s as i32), s);
        }
        assert_eq!(rp_status::from(-1), rp_status::InvalidArgument);
        assert_eq!(rp_status::from(9), rp_status::InvalidArgument);
        assert_eq!(rp_status::from(i32::MAX), rp_status::InvalidArgument);
    }

    #[test]
    fn every_status_has_a_distinct_description() {
        let mut seen = std::collections::HashSet::new();
        for s in ALL_STATUSES {
            assert!(seen.insert(s.description()), "{s:?}");
        }
    }
}
