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
    /// The call was cancelled (by `rp_session_ticket_cancel`, or by the peer for a request being
    /// served).
    Cancelled = 7,
    /// A wait was interrupted by `rp_push_ticket_interrupt`, `rp_session_ticket_interrupt` or
    /// `rp_session_request_interrupt`; the push, call or request goes on: wait again.
    Interrupted = 8,
    /// A required pointer argument was NULL.
    NullArgument = 10,
    /// An argument is out of range or inconsistent.
    InvalidArgument = 11,
    /// A string argument or field is not valid UTF-8.
    InvalidUtf8 = 12,
    /// The named worker, queue or item does not exist.
    NotFound = 13,
    /// The peer or the bytes broke a rule of the protocol; also a TLS peer where plain TCP was
    /// expected or the reverse, or a broken TLS stream (the message says which).
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
    /// the system refused access (EACCES/EPERM on a connect, a bind or a file); on TLS, a
    /// certificate was refused (unknown CA, expired or not yet valid, wrong name, a client
    /// certificate required and missing or untrusted; the message says which).
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

/// Generates, from one list of every variant with its description, `ALL_STATUSES`,
/// `rp_status::description` and `rp_status::from_code`. The `match` in `description` is
/// exhaustive, so a variant missing from the list does not compile. (The enum itself stays
/// written out above: cbindgen reads the sources without expanding macros.)
macro_rules! statuses {
    ($($variant:ident => $text:literal),+ $(,)?) => {
        /// Every status, for `From<i32>` and `rp_status_str` (not exported to C).
        const ALL_STATUSES: [rp_status; [$(rp_status::$variant),+].len()] = [$(rp_status::$variant),+];

        impl rp_status {
            /// A short, static description (NUL-terminated).
            pub(crate) fn description(self) -> &'static std::ffi::CStr {
                match self {
                    $(rp_status::$variant => $text,)+
                }
            }

            /// The status with value `code`, if there is one.
            #[inline]
            fn from_code(code: i32) -> Option<rp_status> {
                /// Statuses by value (all are below 100; a larger one would not compile).
                const BY_CODE: [Option<rp_status>; 100] = {
                    let mut table = [None; 100];
                    let mut i = 0;
                    while i < ALL_STATUSES.len() {
                        table[ALL_STATUSES[i] as usize] = Some(ALL_STATUSES[i]);
                        i += 1;
                    }
                    table
                };
                BY_CODE.get(usize::try_from(code).ok()?).copied().flatten()
            }
        }
    };
}

statuses! {
    Ok => c"ok",
    Again => c"try again",
    Timeout => c"timed out",
    Closed => c"closed",
    Incomplete => c"incomplete frame: more bytes needed",
    BufferTooSmall => c"buffer too small",
    Disabled => c"broker path disabled",
    Cancelled => c"cancelled",
    Interrupted => c"interrupted",
    NullArgument => c"NULL argument",
    InvalidArgument => c"invalid argument",
    InvalidUtf8 => c"invalid UTF-8",
    NotFound => c"not found",
    Protocol => c"protocol violation",
    UnsupportedFraming => c"unsupported framing version",
    TooLarge => c"too large",
    Truncated => c"truncated: peer closed mid-frame",
    Malformed => c"malformed message",
    UnservedProtocol => c"payload protocol not served",
    FirstPartyFrame => c"unexpected first-party frame",
    MalformedProbe => c"malformed identity probe",
    Refused => c"refused",
    Rejected => c"rejected",
    PermissionDenied => c"permission denied",
    PeerError => c"peer error",
    Io => c"i/o error",
    Config => c"invalid configuration",
    NoMemory => c"out of memory",
    Panic => c"internal panic",
}

/// Total conversion from an integer received from C: unknown values become `InvalidArgument`
/// (an integer from C is never transmuted into the enum).
impl From<i32> for rp_status {
    fn from(code: i32) -> Self {
        rp_status::from_code(code).unwrap_or(rp_status::InvalidArgument)
    }
}

/// The core's error kinds map to C status codes through the one table of stable codes
/// (`src/error/status.rs`): the status is the kind's code.
impl From<ErrorKind> for rp_status {
    #[inline]
    fn from(kind: ErrorKind) -> Self {
        rp_status::from(kind.code())
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
    match rp_status::from_code(status) {
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
    fn every_kind_is_the_status_of_its_code() {
        for s in ALL_STATUSES {
            if let Some(kind) = ErrorKind::from_code(s as i32) {
                assert_eq!(rp_status::from(kind), s);
            }
        }
        // The statuses without a kind exist only at the C boundary.
        for s in [rp_status::Ok, rp_status::Incomplete, rp_status::NullArgument, rp_status::Panic] {
            assert_eq!(ErrorKind::from_code(s as i32), None);
        }
    }

    #[test]
    fn every_status_has_a_distinct_description() {
        let mut seen = std::collections::HashSet::new();
        for s in ALL_STATUSES {
            assert!(seen.insert(s.description()), "{s:?}");
        }
    }
}
