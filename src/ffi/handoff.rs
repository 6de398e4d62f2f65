//! `rp_handoff_*`: the backend side of connection handoff for C.

use std::io::{self, Read, Write};
#[cfg(unix)]
use std::os::fd::{AsFd, BorrowedFd, IntoRawFd, RawFd};
use std::time::{Duration, Instant};

use super::boundary::{boundary, Failure};
use super::bytes::{slice_arg, slice_out, timeout_arg};
use super::handle::{arc_free, arc_into_handle, arc_ref, castable, opt_out, out_arg};
use super::status::rp_status;
use crate::handoff::{self, HandoffStore, Token, DEFAULT_MAX_PENDING, DEFAULT_TTL, TOKEN_LEN};

/// Bytes in a handoff token.
pub const RP_HANDOFF_TOKEN_LEN: usize = 16;

/// A bounded store of one-time handoff tokens: each token is 128 random bits, lives for a time
/// to live, is accepted at most once, and is compared in constant time. Tokens are never
/// printed or put in error messages.
///
/// Methods: `rp_handoff_store_new`, `rp_handoff_store_issue`, `rp_handoff_store_insert`,
/// `rp_handoff_serve_offer`, `rp_handoff_accept`, `rp_handoff_store_free`.
///
/// Shared handle (Send + Sync): every function may run concurrently with the same store.
pub struct rp_handoff_store {
    _private: [u8; 0],
}

castable!(rp_handoff_store => HandoffStore: OwnedArc);

/// A caller's socket descriptor, borrowed for one call, whose reads and writes give up at a
/// deadline (the descriptor's own blocking mode and options are left untouched).
#[cfg(unix)]
struct DeadlineFd<'a> {
    fd: BorrowedFd<'a>,
    deadline: Option<Instant>,
}

#[cfg(unix)]
impl DeadlineFd<'_> {
    /// Waits until the descriptor is readable or the deadline passes.
    fn wait_in(&self) -> io::Result<()> {
        self.wait(libc::POLLIN)
    }

    /// Waits until the descriptor is ready for `events` or the deadline passes.
    fn wait(&self, events: libc::c_short) -> io::Result<()> {
        loop {
            let timeout_ms = match self.deadline {
                None => -1,
                // No time left is one look without waiting (a zero timeout tries once).
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
                }
            };
            let mut pfd = libc::pollfd {
                fd: std::os::fd::AsRawFd::as_raw_fd(&self.fd),
                events,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
            match n {
                n if n > 0 => return Ok(()),
                0 => return Err(io::ErrorKind::TimedOut.into()),
                _ => {
                    let err = io::Error::last_os_error();
                    if err.kind() != io::ErrorKind::Interrupted {
                        return Err(err);
                    }
                }
            }
        }
    }
}

#[cfg(unix)]
impl AsFd for DeadlineFd<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd
    }
}

#[cfg(unix)]
impl Read for DeadlineFd<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.wait(libc::POLLIN)?;
            let fd = std::os::fd::AsRawFd::as_raw_fd(&self.fd);
            // SAFETY: `buf` is writable for `buf.len()` bytes; `fd` is open for this call.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let err = io::Error::last_os_error();
            if !matches!(
                err.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
            ) {
                return Err(err);
            }
        }
    }
}

#[cfg(unix)]
impl Write for DeadlineFd<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            self.wait(libc::POLLOUT)?;
            let fd = std::os::fd::AsRawFd::as_raw_fd(&self.fd);
            // SAFETY: `buf` is readable for `buf.len()` bytes; `fd` is open for this call.
            // MSG_NOSIGNAL: a closed peer is an error, never SIGPIPE.
            let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let err = io::Error::last_os_error();
            if !matches!(
                err.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
            ) {
                return Err(err);
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Borrows a caller's descriptor for one call, with a deadline (`timeout_ms` per the timeout
/// rule: -1 = none).
///
/// # Safety
/// `fd` is an open descriptor that stays open for the duration of the call.
#[cfg(unix)]
unsafe fn deadline_fd<'a>(fd: RawFd, timeout_ms: i32) -> Result<DeadlineFd<'a>, Failure> {
    if fd < 0 {
        return Err(Failure::new(
            rp_status::InvalidArgument,
            format!("invalid descriptor {fd}"),
        ));
    }
    Ok(DeadlineFd {
        // SAFETY: open for the call per the contract above.
        fd: unsafe { BorrowedFd::borrow_raw(fd) },
        deadline: timeout_arg(timeout_ms)?.map(|t| Instant::now() + t),
    })
}

/// A caller's pipe or socket (a `HANDLE` or `SOCKET` value), borrowed for one call, whose
/// reads and writes give up at a deadline.
#[cfg(windows)]
struct DeadlineFd<'a> {
    fd: crate::transport::RawDescriptor,
    deadline: Option<Instant>,
    _borrow: std::marker::PhantomData<&'a ()>,
}

#[cfg(windows)]
impl DeadlineFd<'_> {
    fn left(&self) -> Option<Duration> {
        self.deadline.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Waits until the descriptor is readable or the deadline passes.
    fn wait_in(&self) -> io::Result<()> {
        if crate::transport::wait_readable(self.fd, self.left())? {
            Ok(())
        } else {
            Err(io::ErrorKind::TimedOut.into())
        }
    }
}

#[cfg(windows)]
impl crate::transport::AsDescriptor for DeadlineFd<'_> {
    fn raw_descriptor(&self) -> crate::transport::RawDescriptor {
        self.fd
    }
}

#[cfg(windows)]
impl Read for DeadlineFd<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.wait_in()?;
            match crate::transport::recv_nonblocking(self.fd, buf) {
                Err(e) if matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock) => {}
                r => return r,
            }
        }
    }
}

#[cfg(windows)]
impl Write for DeadlineFd<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        crate::transport::send_nonblocking(self.fd, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Borrows a caller's pipe or socket for one call, with a deadline (`timeout_ms` per the
/// timeout rule: -1 = none).
///
/// # Safety
/// `fd` is an open handle that stays open for the duration of the call.
#[cfg(windows)]
unsafe fn deadline_fd<'a>(fd: i32, timeout_ms: i32) -> Result<DeadlineFd<'a>, Failure> {
    if fd <= 0 {
        return Err(Failure::new(rp_status::InvalidArgument, format!("invalid handle {fd}")));
    }
    Ok(DeadlineFd {
        fd: fd as crate::transport::RawDescriptor,
        deadline: timeout_arg(timeout_ms)?.map(|t| Instant::now() + t),
        _borrow: std::marker::PhantomData,
    })
}

/// Creates a token store.
///
/// Parameters: `max_pending` the most tokens pending at once (0 = 1024); `ttl_ms` the time to
/// live of each token in milliseconds (0 = 30000); `out_store` receives the store on success.
///
/// Returns `RP_STATUS_OK` or `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: on success the caller owns `*out_store` (written only on success); free it with
/// `rp_handoff_store_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_handoff_store_new(
    max_pending: u32,
    ttl_ms: u32,
    out_store: *mut *const rp_handoff_store,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or valid for a write per the API contract.
        let out_store = unsafe { out_arg(out_store, "out_store") }?;
        let max = match max_pending {
            0 => DEFAULT_MAX_PENDING,
            n => n as usize,
        };
        let ttl = match ttl_ms {
            0 => DEFAULT_TTL,
            ms => Duration::from_millis(u64::from(ms)),
        };
        let store = HandoffStore::new(max, ttl);
        out_store.write(arc_into_handle::<rp_handoff_store>(store));
        Ok(())
    })
}

/// Issues a fresh random token (from the OS random source) and stores it.
///
/// Parameters: `out_token`, `cap`: receives the `RP_HANDOFF_TOKEN_LEN` token bytes; `cap` must
/// be at least `RP_HANDOFF_TOKEN_LEN`.
///
/// Returns `RP_STATUS_OK`; `RP_STATUS_AGAIN` when the store is full of unexpired tokens;
/// `RP_STATUS_BUFFER_TOO_SMALL`; `RP_STATUS_IO`; `RP_STATUS_NULL_ARGUMENT`.
///
/// Thread safety: may run concurrently with any other call on the store.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_handoff_store_issue(
    store: *const rp_handoff_store,
    out_token: *mut u8,
    cap: usize,
) -> rp_status {
    boundary(|| {
        // SAFETY: `store` is NULL or a live store reference per the API contract.
        let store = unsafe { arc_ref::<rp_handoff_store>(store, "store") }?;
        // SAFETY: only checked for NULL here.
        unsafe { out_arg(out_token, "out_token") }?;
        // SAFETY: `cap` writable bytes at `out_token` per the API contract.
        let out = unsafe { slice_out(out_token, cap, "out_token") }?;
        if out.len() < TOKEN_LEN {
            return Err(crate::Error::BufferTooSmall {
                needed: TOKEN_LEN,
                capacity: out.len(),
            }
            .into());
        }
        let token = store.issue()?;
        out[..TOKEN_LEN].copy_from_slice(&token.0);
        Ok(())
    })
}

/// Adds a token issued elsewhere (for example one agreed with the broker).
///
/// Parameters: `token`, `len`: exactly `RP_HANDOFF_TOKEN_LEN` bytes (copied).
///
/// Returns `RP_STATUS_OK`; `RP_STATUS_AGAIN` when the store is full; `RP_STATUS_INVALID_ARGUMENT`
/// for another length; `RP_STATUS_NULL_ARGUMENT`.
///
/// Thread safety: may run concurrently with any other call on the store.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_handoff_store_insert(
    store: *const rp_handoff_store,
    token: *const u8,
    len: usize,
) -> rp_status {
    boundary(|| {
        // SAFETY: `store` is NULL or a live store reference per the API contract.
        let store = unsafe { arc_ref::<rp_handoff_store>(store, "store") }?;
        // SAFETY: `len` readable bytes at `token` per the API contract.
        let bytes = unsafe { slice_arg(token, len, "token") }?;
        let token: [u8; TOKEN_LEN] = bytes.try_into().map_err(|_| {
            Failure::new(
                rp_status::InvalidArgument,
                format!("a handoff token is {TOKEN_LEN} bytes, got {}", bytes.len()),
            )
        })?;
        store.insert(&Token(token))?;
        Ok(())
    })
}

/// Serves one handoff offer on a framed control connection: reads exactly one HandoffOffer
/// frame from `fd`, checks request id = correlation id, checks and consumes the token, and
/// writes the HandoffAck (accepted, or rejected with the reason: always a well-formed ack).
///
/// Parameters: `store`; `fd` a connected stream socket (blocking or not; its mode and options
/// are not changed); `timeout_ms` the deadline for the whole exchange (-1 = none, 0 = do not
/// wait); `out_accepted` receives whether the token was accepted; `out_correlation_id` (may be NULL)
/// receives the offer's correlation id.
///
/// Returns `RP_STATUS_OK` when an ack was written (check `*out_accepted`; after a rejection
/// `rp_last_error_message` is not set); `RP_STATUS_TIMEOUT`; `RP_STATUS_CLOSED`,
/// `RP_STATUS_TRUNCATED`; `RP_STATUS_PROTOCOL` / `RP_STATUS_MALFORMED` /
/// `RP_STATUS_UNSUPPORTED_FRAMING` / `RP_STATUS_TOO_LARGE` when the frame is not a valid
/// offer (no ack is written); `RP_STATUS_IO`; `RP_STATUS_NULL_ARGUMENT`,
/// `RP_STATUS_INVALID_ARGUMENT`.
///
/// Thread safety: may run concurrently with other calls on the store; `fd` must not be read
/// by anyone else meanwhile.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_handoff_serve_offer(
    store: *const rp_handoff_store,
    fd: i32,
    timeout_ms: i32,
    out_accepted: *mut bool,
    out_correlation_id: *mut u64,
) -> rp_status {
    boundary(|| {
        // SAFETY: `store` is NULL or a live store reference per the API contract.
        let store = unsafe { arc_ref::<rp_handoff_store>(store, "store") }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_accepted = unsafe { out_arg(out_accepted, "out_accepted") }?;
        // SAFETY: `fd` is open for the call per the API contract.
        let mut conn = unsafe { deadline_fd(fd, timeout_ms) }?;
        let outcome = handoff::serve_offer(&mut conn, store)?;
        out_accepted.write(outcome.accepted);
        // SAFETY: NULL or valid for a write per the API contract.
        if let Some(out) = unsafe { opt_out(out_correlation_id) } {
            out.write(outcome.correlation_id);
        }
        Ok(())
    })
}

/// Receives a handed-off connection on the Unix stream socket `fd`: the connection's
/// descriptor by `SCM_RIGHTS` with the 16 token bytes alone as the message's data, then a
/// HandoffOffer frame carrying that token (as librp's and running-process's brokers send it;
/// the descriptor with the offer's first bytes, as earlier librp brokers sent it, is taken
/// too); answers the offer with a HandoffAck on `fd`; on acceptance gives the adopted
/// descriptor to the caller.
///
/// Parameters: `store`; `fd` the Unix socket the broker hands connections over; `timeout_ms`
/// the deadline for the whole exchange (-1 = none, 0 = do not wait); `out_fd` receives the
/// adopted connection (close-on-exec) on `RP_STATUS_OK` only.
///
/// Returns `RP_STATUS_OK`; `RP_STATUS_REJECTED` when the token was refused, judged as
/// running-process's backend judges it (the token sent with the descriptor not pending, or
/// expired; the offer presenting another token, or one not 16 bytes long; request id !=
/// correlation id): the ack said so, the received descriptor was closed, and
/// `rp_last_error_message` gives the reason; `RP_STATUS_TIMEOUT`; `RP_STATUS_CLOSED`;
/// `RP_STATUS_PROTOCOL` (no descriptor, several descriptors, a truncated control message, not
/// an offer: no ack then); `RP_STATUS_MALFORMED`; `RP_STATUS_IO`;
/// `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_ARGUMENT`. On every failure, every
/// descriptor received is closed.
///
/// On Windows there is no `SCM_RIGHTS`: `fd` is the pipe (`HANDLE`) the broker's offer comes
/// on, the offer's `handle_value` is the connection's pipe handle as the broker duplicated it
/// into this process (`DuplicateHandle`), and `*out_fd` receives that handle, adopted, as
/// `(int32_t)(intptr_t)handle` (close it with `CloseHandle`, or give it to `rp_conn_adopt_fd`).
/// An offer whose `handle_value` is not a pipe handle here fails with `RP_STATUS_PROTOCOL`
/// before any ack.
///
/// Ownership: the caller owns `*out_fd` and closes it with `close()`.
/// Thread safety: may run concurrently with other calls on the store; `fd` must not be read
/// by anyone else meanwhile.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_handoff_accept(
    store: *const rp_handoff_store,
    fd: i32,
    timeout_ms: i32,
    out_fd: *mut i32,
) -> rp_status {
    boundary(|| {
        // SAFETY: `store` is NULL or a live store reference per the API contract.
        let store = unsafe { arc_ref::<rp_handoff_store>(store, "store") }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_fd = unsafe { out_arg(out_fd, "out_fd") }?;
        // SAFETY: `fd` is open for the call per the API contract.
        let mut conn = unsafe { deadline_fd(fd, timeout_ms) }?;
        // The descriptor arrives with the first bytes: wait for them under the deadline.
        conn.wait_in()
            .map_err(crate::wire::WireError::from_io)?;
        let (adopted, _outcome) = handoff::accept_handoff(&mut conn, store)?;
        #[cfg(unix)]
        out_fd.write(adopted.into_raw_fd());
        #[cfg(windows)]
        out_fd.write(super::bytes::descriptor_out(std::os::windows::io::IntoRawHandle::into_raw_handle(adopted) as isize));
        Ok(())
    })
}

/// Drops one reference to a token store. NULL is a no-op. Must not be called twice with the
/// same reference.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_handoff_store_free(store: *const rp_handoff_store) {
    super::boundary::boundary_or((), || {
        // SAFETY: `store` is NULL or a live reference owned by the caller, freed once.
        unsafe { arc_free(store) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_length_matches_the_core() {
        assert_eq!(RP_HANDOFF_TOKEN_LEN, TOKEN_LEN);
    }
}
