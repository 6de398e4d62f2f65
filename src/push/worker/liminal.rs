//! The liminal dialect of the worker (`liminal+tcp://`): Connect and WorkerRegister instead of
//! the Hello and the registration request, liminal frames instead of v1 frames; the inbox, the
//! readiness signal and every call of [`Worker`](super::Worker) stay the same.

use std::borrow::Cow;
use std::io::Read;

use super::parse::{drain_for_fuzzing, State};
use super::{Push, WorkerOptions};
use crate::error::{Error, ErrorKind};
use crate::push::{check_registration, DEFAULT_SERVICE, MAX_ACTIVITY_TYPES};
use crate::stats::{self, PushWorkerCounters};
use crate::wire::liminal::{self, kind, Frame, Reader, Register};
use crate::wire::proto::{ErrorCode, Negotiated};
use crate::wire::{FrameWriter, Refusal, WireError};

/// The largest WorkerRegister this worker sends (activity descriptors included).
pub const MAX_REGISTER_BYTES: usize = 1024 * 1024;

/// Refuses what the liminal wire cannot carry and checks the registration's limits (identity
/// up to [`liminal::MAX_IDENTITY`] bytes there).
pub(super) fn check_options(opts: &WorkerOptions) -> Result<(), Error> {
    let reg = &opts.registration;
    if opts.service_name != DEFAULT_SERVICE {
        return Err(Error::invalid_argument("a liminal endpoint has no service name (liminal+tcp://)"));
    }
    if !reg.payload_protocols.is_empty() {
        return Err(Error::invalid_argument("a liminal endpoint has no payload protocols (liminal+tcp://)"));
    }
    if reg.identity.is_empty() || reg.identity.len() > liminal::MAX_IDENTITY {
        return Err(Error::invalid_argument(format!(
            "identity must be 1-{} bytes on a liminal endpoint",
            liminal::MAX_IDENTITY
        )));
    }
    let mut rest = reg.clone();
    rest.identity = "-".to_owned();
    check_registration(&rest).map_err(Error::invalid_argument)?;
    if opts.activity_descriptors.len() > MAX_ACTIVITY_TYPES {
        return Err(Error::invalid_argument(format!("at most {MAX_ACTIVITY_TYPES} activity descriptors")));
    }
    let len = register_frame(opts).len();
    if len > MAX_REGISTER_BYTES {
        return Err(Error::invalid_argument(format!(
            "a liminal registration must encode to at most {MAX_REGISTER_BYTES} bytes (got {len})"
        )));
    }
    Ok(())
}

fn register_frame(opts: &WorkerOptions) -> Vec<u8> {
    let reg = &opts.registration;
    liminal::worker_register(&Register {
        namespaces: &reg.namespaces,
        task_queue: &reg.task_queue,
        node: &reg.node,
        activity_types: &reg.activity_types,
        identity: &reg.identity,
        descriptors: &opts.activity_descriptors,
    })
}

/// Connects (offering 1.0–1.3) and registers. `rearm` runs before every read: it sets the
/// socket's read timeout to what is left of the connect timeout, or fails with `Timeout`.
/// Frames after the ack stay buffered in `reader`. Returns what was negotiated
/// (`daemon_version` "major.minor", `server_capabilities`).
pub(super) fn handshake<S: Read>(
    reader: &mut Reader<S>,
    writer: &mut FrameWriter<crate::transport::Stream>,
    opts: &WorkerOptions,
    rearm: &dyn Fn() -> Result<(), Error>,
) -> Result<Negotiated, Error> {
    writer.write_raw(&[&liminal::connect(liminal::MIN_VERSION, liminal::MAX_VERSION, &opts.auth_token)])?;
    let (version, capabilities) = loop {
        rearm()?;
        let frame = reader.read_frame()?;
        match frame.kind {
            kind::CONNECT_ACK => break liminal::connect_ack(frame.payload)?,
            kind::CONNECT_ERROR => return Err(connect_refused(&frame, opts)?),
            kind::DISCONNECT | kind::DISCONNECT_REASON => {
                return Err(Error::Closed(format!("{} ended the connection before it was admitted", opts.endpoint).into()))
            }
            kind::PING => writer.write_raw(&[&liminal::empty(kind::PONG)])?,
            k if liminal::is_known(k) => return Err(unexpected(k, "the ConnectAck")),
            _ => {} // another frame type: skipped by its length
        }
    };
    if version < liminal::MIN_VERSION || version > liminal::MAX_VERSION {
        return Err(WireError::Protocol(format!("the server selected version {version}, outside the 1.0-1.3 offered").into()).into());
    }
    reader.set_max_payload(liminal::MAX_PAYLOAD);
    writer.write_raw(&[&register_frame(opts)])?;
    loop {
        rearm()?;
        let frame = reader.read_frame()?;
        match frame.kind {
            kind::WORKER_REGISTER_ACK => match liminal::register_ack(frame.payload)? {
                Ok(()) => break,
                Err(reason) => return Err(Error::Rejected(format!("registration rejected: {}", clip(reason)).into())),
            },
            kind::PING => writer.write_raw(&[&liminal::empty(kind::PONG)])?,
            kind::PONG => {}
            kind::DISCONNECT => {
                return Err(Error::Closed(format!("{} ended the connection before the registration was answered", opts.endpoint).into()))
            }
            kind::DISCONNECT_REASON => {
                let (code, name) = liminal::disconnect_reason(frame.payload)?;
                return Err(Error::Closed(format!("the server ended the connection: {name} (0x{code:04X})").into()));
            }
            k if liminal::is_known(k) => return Err(unexpected(k, "the WorkerRegisterAck")),
            _ => {}
        }
    }
    Ok(Negotiated {
        daemon_version: version.to_string(),
        server_capabilities: u64::from(capabilities),
        ..Negotiated::default()
    })
}

/// What a server's reason or message may add to an error: its first 1,024 bytes (a peer
/// decides its length, up to a whole frame).
fn clip(text: &str) -> &str {
    const MOST: usize = 1024;
    if text.len() <= MOST {
        return text;
    }
    let mut end = MOST;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn unexpected(k: u8, waiting_for: &str) -> Error {
    WireError::Protocol(format!("liminal frame 0x{k:02X} while waiting for {waiting_for}").into()).into()
}

/// A ConnectError as a refusal: the reason code and message in the reason, the code in the
/// details (`liminal.reason_code`); "no common version" maps onto VERSION_UNSUPPORTED, the
/// others onto PEER_REJECTED.
fn connect_refused(frame: &Frame<'_>, opts: &WorkerOptions) -> Result<Error, Error> {
    let (code, message) = liminal::connect_error(frame.payload)?;
    let name = liminal::connect_error_name(code).map(|n| format!(" ({n})")).unwrap_or_default();
    let reason = match message {
        Some(m) if !m.is_empty() => format!("liminal ConnectError 0x{code:04X}{name}: {}", clip(m)),
        _ => format!("liminal ConnectError 0x{code:04X}{name}"),
    };
    let mapped = if code == 0x0007 { ErrorCode::VersionUnsupported } else { ErrorCode::PeerRejected };
    let mut refusal = Refusal::new(mapped, reason);
    refusal.details.insert("liminal.reason_code".to_owned(), code.to_string());
    crate::log!(Warn, "push-worker", "{} refused the Connect: {}", opts.endpoint, refusal.reason);
    Ok(Error::Refused(Box::new(refusal)))
}

/// Moves every complete buffered frame into the inbox: pushes become jobs, a Ping owes a Pong
/// (`st.pongs_owed`), Disconnect and DisconnectReason end the connection, unknown frame types
/// are skipped; anything else a worker never receives ends it as a protocol violation.
pub(super) fn take_buffered<R: Read>(
    reader: &mut Reader<R>,
    st: &mut State,
    counters: &PushWorkerCounters,
) -> Result<(), Cow<'static, str>> {
    loop {
        let frame = match reader.next_buffered() {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(()),
            Err(e) => return Err(format!("connection failed: {e}").into()),
        };
        match frame.kind {
            kind::PUSH => {
                let (correlation_id, payload) =
                    liminal::push(frame.payload).map_err(|e| Cow::Owned(e.to_string()))?;
                let payload = match WireError::try_copy(payload) {
                    Ok(p) => p,
                    Err(e) => {
                        st.no_memory = true;
                        return Err(format!("push {correlation_id} not received: {e}").into());
                    }
                };
                stats::bump(&counters.pushes_received);
                st.jobs.push_back(Push {
                    correlation_id,
                    payload_protocol: 0,
                    payload,
                    deadline_unix_ms: 0,
                    traceparent: String::new(),
                    tracestate: String::new(),
                });
            }
            kind::PING => {
                liminal::empty_payload(&frame, "Ping").map_err(|e| Cow::Owned(e.to_string()))?;
                st.pongs_owed += 1;
            }
            kind::PONG => {}
            kind::DISCONNECT => return Err("the server disconnected".into()),
            kind::DISCONNECT_REASON => {
                return Err(match liminal::disconnect_reason(frame.payload) {
                    Ok((code, name)) => format!("the server ended the connection: {name} (0x{code:04X})").into(),
                    Err(e) => e.to_string().into(),
                })
            }
            k if liminal::is_known(k) => {
                return Err(format!("protocol violation: liminal frame 0x{k:02X} is not sent to a worker").into())
            }
            _ => {}
        }
    }
}

/// The refusal code of a liminal refusal record for a librp status code given to
/// `reply_error`: AGAIN is "busy"; argument and wire errors (INVALID_ARGUMENT, NOT_FOUND,
/// PROTOCOL, TOO_LARGE, TRUNCATED, MALFORMED, UNSERVED_PROTOCOL and the other codes 20–29) are
/// "invalid"; TIMEOUT, CLOSED, DISABLED, CANCELLED, INTERRUPTED, REFUSED, REJECTED,
/// PERMISSION_DENIED and IO are "unavailable"; everything else (application codes included)
/// is "internal".
pub fn refusal_code(status: i32) -> &'static str {
    match ErrorKind::from_code(status) {
        Some(ErrorKind::Again) => "busy",
        Some(
            ErrorKind::InvalidArgument
            | ErrorKind::NotFound
            | ErrorKind::Protocol
            | ErrorKind::UnsupportedFraming
            | ErrorKind::TooLarge
            | ErrorKind::Truncated
            | ErrorKind::Malformed
            | ErrorKind::UnservedProtocol
            | ErrorKind::FirstPartyFrame
            | ErrorKind::MalformedProbe,
        ) => "invalid",
        Some(
            ErrorKind::Timeout
            | ErrorKind::Closed
            | ErrorKind::Disabled
            | ErrorKind::Cancelled
            | ErrorKind::Interrupted
            | ErrorKind::Refused
            | ErrorKind::Rejected
            | ErrorKind::PermissionDenied
            | ErrorKind::Io,
        ) => "unavailable",
        _ => "internal",
    }
}

/// Fuzzing and corpus-replay hook: runs `bytes`, as if a liminal server sent them, through the
/// worker's real parse path — the ConnectAck, the WorkerRegisterAck, then the frames a receiving
/// thread turns into pushes. Returns the pushes received, in order.
pub(crate) fn fuzz_server_stream(bytes: &[u8]) -> Vec<Push> {
    let mut reader = Reader::new(bytes);
    let mut acks = 0;
    while acks < 2 {
        let frame = match reader.read_frame() {
            Ok(f) => f,
            Err(_) => return Vec::new(),
        };
        let ok = match (acks, frame.kind) {
            (0, kind::CONNECT_ACK) => liminal::connect_ack(frame.payload).is_ok(),
            (1, kind::WORKER_REGISTER_ACK) => matches!(liminal::register_ack(frame.payload), Ok(Ok(()))),
            (_, k) if !liminal::is_known(k) || k == kind::PING || k == kind::PONG => continue,
            _ => false,
        };
        if !ok {
            return Vec::new();
        }
        acks += 1;
        if acks == 1 {
            reader.set_max_payload(liminal::MAX_PAYLOAD);
        }
    }
    let counters = PushWorkerCounters::default();
    drain_for_fuzzing(|st| take_buffered(&mut reader, st, &counters).is_ok() && reader.read_more().is_ok())
}
