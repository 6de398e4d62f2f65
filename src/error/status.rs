//! The stable codes: the one table that gives each [`ErrorKind`] its number. The same number is
//! the C API's `rp_status` value (and so Go's `Status`, which reads rp.h), and the code a
//! session sends in an error answer, so a peer's answer maps back to the kind it came from.
//!
//! Codes are grouped by family (1–9 expected outcomes, 10–19 caller errors, 20–29 protocol
//! errors, 30–39 refusals, 40–49 system errors, 90–99 internal); they never change and are never
//! reused. 0 (success), 4 (incomplete frame), 10 (NULL argument) and 90 (panic) exist only at
//! the C boundary and have no kind. Application codes start at
//! [`FIRST_APPLICATION_CODE`](crate::session::code::FIRST_APPLICATION_CODE).

use super::ErrorKind;

/// Declares the table: each kind with its code, both directions generated from one list.
macro_rules! stable_codes {
    ($($kind:ident = $code:literal),+ $(,)?) => {
        impl ErrorKind {
            /// The stable code of this kind: its `rp_status` value in C, and the code a session
            /// sends for it in an error answer.
            pub const fn code(self) -> i32 {
                match self {
                    $(ErrorKind::$kind => $code,)+
                }
            }

            /// The kind a stable code stands for; `None` for success, the codes that exist only
            /// at the C boundary, application codes and unknown ones.
            pub const fn from_code(code: i32) -> Option<ErrorKind> {
                match code {
                    $($code => Some(ErrorKind::$kind),)+
                    _ => None,
                }
            }
        }
    };
}

stable_codes! {
    Again = 1,
    Timeout = 2,
    Closed = 3,
    BufferTooSmall = 5,
    Disabled = 6,
    Cancelled = 7,
    Interrupted = 8,
    InvalidArgument = 11,
    InvalidUtf8 = 12,
    NotFound = 13,
    Protocol = 20,
    UnsupportedFraming = 21,
    TooLarge = 22,
    Truncated = 23,
    Malformed = 24,
    UnservedProtocol = 25,
    FirstPartyFrame = 26,
    MalformedProbe = 27,
    Refused = 30,
    Rejected = 31,
    PermissionDenied = 32,
    PeerError = 33,
    Io = 40,
    Config = 41,
    NoMemory = 42,
}

/// The kind of a code a peer answered with: librp's own codes stand for their kind, anything
/// else (an application code, an unknown or boundary-only code) is [`ErrorKind::PeerError`].
pub(crate) const fn peer_kind(code: i32) -> ErrorKind {
    match ErrorKind::from_code(code) {
        Some(kind) => kind,
        None => ErrorKind::PeerError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_stay_below_application_codes() {
        for c in 0..200 {
            if let Some(kind) = ErrorKind::from_code(c) {
                assert_eq!(kind.code(), c);
            }
        }
        for c in [0, 4, 10, 90, 999, 1000, 1234, -1] {
            assert_eq!(ErrorKind::from_code(c), None, "{c}");
            assert_eq!(peer_kind(c), ErrorKind::PeerError);
        }
    }

    #[test]
    fn a_peer_code_keeps_its_kind() {
        let peer = |code| crate::Error::Peer { code, message: "m".into() }.kind();
        assert_eq!(peer(40), ErrorKind::Io);
        assert_eq!(peer(20), ErrorKind::Protocol);
        assert_eq!(peer(90), ErrorKind::PeerError);
        assert_eq!(peer(1234), ErrorKind::PeerError);
    }
}
