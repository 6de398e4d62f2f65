//! `rp_log_set`: the process-wide log callback for C.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use super::boundary::{boundary, Failure};
use super::callback::{rp_user_data_free_callback, ForeignCallback};
use super::status::rp_status;
use crate::log::{self, Level};

/// How much a log event matters; `rp_log_set` delivers the events at or below (more severe
/// than or equal to) the level it is given.
#[repr(i32)]
pub enum rp_log_level {
    /// No events (only as `rp_log_set`'s `max_level`).
    Off = 0,
    /// Something failed that librp cannot recover from on its own.
    Error = 1,
    /// A peer was refused or misbehaved (protocol violation), a timeout passed, a worker was
    /// lost, a registration was rejected.
    Warn = 2,
    /// A connection, Hello or registration was accepted; a connection ended normally.
    Info = 3,
    /// Details for tracing a problem.
    Debug = 4,
}

/// Receives one log event.
///
/// Parameters: `user_data` as registered; `level` — an `rp_log_level` (ERROR to DEBUG);
/// `component` — which part of librp speaks: `"push-server"`, `"push-worker"`, `"broker"`,
/// `"session"`; `message` — one line of UTF-8 text without a trailing newline. `component` and
/// `message` are NUL-terminated and borrowed: valid only until the callback returns.
///
/// Called on the thread that noticed the event: the push server's or the broker server's
/// event-loop thread, a session's reader thread, or the application's own thread inside a
/// librp call (a connect, a push, a receive...). Several threads may call it at once, so it must
/// be thread-safe. No librp lock is held while it runs: it may call any librp function,
/// including `rp_log_set`; a librp call it makes may log in turn (so it runs nested). It must
/// return normally: it must not unwind (no C++ exception, no `longjmp`, no Go panic) out of
/// the callback — that aborts the process.
pub type rp_log_callback = Option<
    unsafe extern "C" fn(user_data: *mut c_void, level: rp_log_level, component: *const c_char, message: *const c_char),
>;

/// Sets the process-wide log callback, or clears it (`callback` NULL).
///
/// librp is silent by default: with no callback set, nothing is formatted and a log point
/// costs one atomic load; librp never writes to stdout or stderr either way.
///
/// Parameters: `max_level` — the most verbose `rp_log_level` delivered (`RP_LOG_LEVEL_WARN`
/// delivers ERROR and WARN; `RP_LOG_LEVEL_OFF` delivers nothing); `callback`; `user_data`,
/// passed to every call; `user_data_free` (may be NULL), called exactly once with `user_data`
/// when this callback is replaced or cleared by a later `rp_log_set` — after the last call of
/// the callback in progress on any thread has returned (so possibly on that thread, just after
/// `rp_log_set` returned). With a NULL `callback` or `RP_LOG_LEVEL_OFF` the log is cleared and
/// this call's own `user_data_free(user_data)` runs before it returns.
///
/// Returns `RP_STATUS_OK`, or `RP_STATUS_INVALID_ARGUMENT` when `max_level` is not an
/// `rp_log_level` (then nothing changes and `user_data_free` is not called: `user_data` stays
/// the caller's).
///
/// Thread safety: may be called from any thread, at any time, including from inside the
/// callback.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_log_set(
    max_level: i32,
    callback: rp_log_callback,
    user_data: *mut c_void,
    user_data_free: rp_user_data_free_callback,
) -> rp_status {
    boundary(|| {
        let level = match u8::try_from(max_level) {
            Ok(0) => None,
            Ok(n) => Some(Level::from_u8(n).ok_or_else(|| bad_level(max_level))?),
            Err(_) => return Err(bad_level(max_level)),
        };
        let foreign = ForeignCallback::new(callback, user_data, user_data_free);
        let sink: Option<Arc<log::Sink>> = match (callback, level) {
            (Some(_), Some(_)) => Some(Arc::new(move |level: Level, component: &str, message: &str| {
                deliver(&foreign, level, component, message)
            })),
            // Dropping `foreign` here frees the user data: this callback is never called.
            _ => None,
        };
        log::set_sink(level.unwrap_or(Level::Error), sink);
        Ok(())
    })
}

#[cold]
fn bad_level(max_level: i32) -> Failure {
    Failure::new(
        rp_status::InvalidArgument,
        format!("max_level {max_level} is not an rp_log_level (0 = off ... 4 = debug)"),
    )
}

fn deliver(foreign: &ForeignCallback<rp_log_callback>, level: Level, component: &str, message: &str) {
    let Some(func) = foreign.func else { return };
    // Interior NULs cannot be passed as C strings; librp's messages quote peer text, so none
    // is expected, but a stray one is replaced rather than cutting the message short.
    let c = |s: &str| CString::new(s).unwrap_or_else(|_| CString::new(s.replace('\0', "\u{FFFD}")).unwrap_or_default());
    let (component, message) = (c(component), c(message));
    let level = match level {
        Level::Error => rp_log_level::Error,
        Level::Warn => rp_log_level::Warn,
        Level::Info => rp_log_level::Info,
        Level::Debug => rp_log_level::Debug,
    };
    // SAFETY: the application registered `func` with this `user_data` and documented it
    // callable from any librp thread; both strings outlive the call.
    unsafe { func(foreign.user_data, level, component.as_ptr(), message.as_ptr()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static FREED: AtomicUsize = AtomicUsize::new(0);
    static CALLS: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn count(_: *mut c_void, level: rp_log_level, component: *const c_char, _: *const c_char) {
        // SAFETY: librp passes a NUL-terminated component. Events of other tests are ignored.
        if matches!(level, rp_log_level::Warn) && unsafe { std::ffi::CStr::from_ptr(component) }.to_bytes() == b"t" {
            CALLS.fetch_add(1, Ordering::Relaxed);
        }
    }

    unsafe extern "C" fn free(_: *mut c_void) {
        FREED.fetch_add(1, Ordering::Relaxed);
    }

    #[test]
    fn set_replace_clear_frees_once() {
        let _g = crate::log::TEST_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: valid callbacks; user_data unused.
        unsafe {
            assert_eq!(rp_log_set(9, Some(count), std::ptr::null_mut(), Some(free)), rp_status::InvalidArgument);
            assert_eq!(FREED.load(Ordering::Relaxed), 0, "a refused call keeps the user data the caller's");
            assert_eq!(rp_log_set(2, Some(count), std::ptr::null_mut(), Some(free)), rp_status::Ok);
            crate::log!(Warn, "t", "one");
            crate::log!(Info, "t", "filtered");
            assert_eq!(rp_log_set(2, Some(count), std::ptr::null_mut(), Some(free)), rp_status::Ok);
            assert_eq!(FREED.load(Ordering::Relaxed), 1);
            assert_eq!(rp_log_set(0, None, std::ptr::null_mut(), None), rp_status::Ok);
            assert_eq!(FREED.load(Ordering::Relaxed), 2);
        }
        assert_eq!(CALLS.load(Ordering::Relaxed), 1);
    }
}
