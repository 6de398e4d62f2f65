//! The boundary every extern body runs in: panics are caught and turned into
//! `RP_STATUS_PANIC`, failures are recorded as the calling thread's last error.

use std::any::Any;
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::ffi::c_char;
use std::fmt::{self, Write as _};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use super::status::rp_status;
use crate::control::Refusal;

/// A failed C call: the status to return and the text `rp_last_error_message` will show.
///
/// Boxed, so that an extern body's `Result<(), Failure>` is one pointer, returned in a register
/// on the success path; failures are rare and usually format a message anyway.
#[derive(Debug)]
pub struct Failure(Box<FailureData>);

/// What a [`Failure`] carries.
#[derive(Debug)]
pub(crate) struct FailureData {
    pub(crate) status: rp_status,
    pub(crate) message: Cow<'static, str>,
    /// Set when the failure is a broker's refusal, readable with `rp_last_refusal`.
    pub(crate) refusal: Option<Box<Refusal>>,
}

impl Failure {
    /// A failure with a status and message.
    #[cold]
    pub(crate) fn new(status: rp_status, message: impl Into<Cow<'static, str>>) -> Self {
        Failure(Box::new(FailureData { status, message: message.into(), refusal: None }))
    }

    /// A NULL pointer was passed for the argument `name`.
    #[cold]
    pub(crate) fn null(name: &'static str) -> Self {
        Failure::new(
            rp_status::NullArgument,
            format!("argument `{name}` is NULL"),
        )
    }
}

impl From<crate::Error> for Failure {
    #[cold]
    fn from(e: crate::Error) -> Self {
        let mut f = Failure::new(e.kind().into(), e.to_string());
        f.0.refusal = e.into_refusal();
        f
    }
}

impl From<crate::wire::WireError> for Failure {
    #[cold]
    fn from(e: crate::wire::WireError) -> Self {
        Failure::new(e.kind().into(), e.to_string())
    }
}

/// Result type of extern bodies.
pub(crate) type FfiResult = Result<(), Failure>;

thread_local! {
    /// Text of the most recent failure on this thread (the buffer is reused).
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
    /// Set while this thread runs inside a boundary, so the panic hook stays silent.
    static IN_BOUNDARY: Cell<bool> = const { Cell::new(false) };
    /// The refusal behind the most recent failure on this thread, if it was one.
    pub(crate) static LAST_REFUSAL: RefCell<Option<Box<Refusal>>> = const { RefCell::new(None) };
    /// Where the last panic inside a boundary happened.
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
    #[cfg(test)]
    pub(crate) static INJECT_PANIC: Cell<bool> = const { Cell::new(false) };
}

/// Records the text of a failure as this thread's last error.
pub(crate) fn set_last_error(message: &dyn fmt::Display) {
    LAST_ERROR.with_borrow_mut(|s| {
        s.clear();
        let _ = write!(s, "{message}");
    });
}

/// Runs a fallible extern body: returns `Ok` as `RP_STATUS_OK`, records and returns a failure's
/// status, and turns a panic into `RP_STATUS_PANIC` with "internal panic: ..." as the message.
///
/// Inlined: each extern function has exactly one boundary, so this adds no code, and the body's
/// arguments need not be packed into a closure for a call.
#[inline(always)]
pub(crate) fn boundary(body: impl FnOnce() -> FfiResult) -> rp_status {
    match catch(body) {
        Ok(Ok(())) => rp_status::Ok,
        Ok(Err(Failure(failure))) => {
            set_last_error(&failure.message);
            LAST_REFUSAL.set(failure.refusal);
            failure.status
        }
        Err(message) => {
            set_last_error(&message);
            rp_status::Panic
        }
    }
}

/// Runs an infallible extern body (a getter); a panic yields `neutral` and records the message.
#[inline(always)]
pub(crate) fn boundary_or<T>(neutral: T, body: impl FnOnce() -> T) -> T {
    match catch(body) {
        Ok(v) => v,
        Err(message) => {
            set_last_error(&message);
            neutral
        }
    }
}

/// Runs `body` with the panic hook silenced for this thread; a panic becomes its message.
#[inline(always)]
fn catch<T>(body: impl FnOnce() -> T) -> Result<T, String> {
    install_quiet_panic_hook();
    let was_inside = IN_BOUNDARY.replace(true);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        #[cfg(test)]
        if INJECT_PANIC.take() {
            panic!("injected test panic");
        }
        body()
    }));
    IN_BOUNDARY.set(was_inside);
    result.map_err(|payload| {
        let location = PANIC_LOCATION
            .take()
            .map(|l| format!(" at {l}"))
            .unwrap_or_default();
        format!("internal panic: {}{location}", payload_text(&*payload))
    })
}

fn payload_text(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(non-string panic payload)"
    }
}

/// librp never writes to stderr: a panic inside a boundary is reported through the last
/// error only. Panics elsewhere in the process still reach the previous hook.
fn install_quiet_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if IN_BOUNDARY.get() {
                let location = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()));
                PANIC_LOCATION.set(location);
            } else {
                previous(info);
            }
        }));
    });
}

/// Copies the text of the calling thread's most recent failure into `buf`.
///
/// Semantics are those of `snprintf`: at most `cap - 1` bytes are copied and the result is
/// always NUL-terminated when `cap > 0`. `buf` may be NULL when `cap` is 0, to ask for the length.
///
/// Returns the full length of the message in bytes, excluding the NUL (0 if no failure has been
/// recorded on this thread). The message is only meaningful right after a call on this thread
/// returned a status other than `RP_STATUS_OK`; successful calls do not clear it.
///
/// Thread safety: reads thread-local state; may be called from any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_last_error_message(buf: *mut c_char, cap: usize) -> usize {
    boundary_or(0, || {
        LAST_ERROR.with_borrow(|msg| {
            let bytes = msg.as_bytes();
            if !buf.is_null() && cap > 0 {
                let n = bytes.len().min(cap - 1);
                // SAFETY: the caller guarantees `buf` points to `cap` writable bytes; we write
                // `n + 1 <= cap` bytes and the source is our own string, so they cannot overlap.
                unsafe {
                    std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf as *mut u8, n);
                    *buf.add(n) = 0;
                }
            }
            bytes.len()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        let mut buf = [0 as c_char; 256];
        // SAFETY: buf has 256 writable bytes.
        let n = unsafe { rp_last_error_message(buf.as_mut_ptr(), buf.len()) };
        // SAFETY: rp_last_error_message NUL-terminates within the buffer.
        let s = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(n, s.len());
        s
    }

    #[test]
    fn failure_sets_status_and_message() {
        let status = boundary(|| Err(Failure::new(rp_status::Timeout, "no reply within 5 ms")));
        assert_eq!(status, rp_status::Timeout);
        assert_eq!(last_error(), "no reply within 5 ms");
    }

    #[test]
    fn panic_becomes_status_not_abort() {
        let status = boundary(|| panic!("boom {}", 42));
        assert_eq!(status, rp_status::Panic);
        let msg = last_error();
        assert!(msg.starts_with("internal panic: boom 42 at "), "{msg}");
        assert!(msg.contains("boundary.rs"), "{msg}");
        assert_eq!(boundary_or(7u32, || panic!("getter")), 7);
        assert!(last_error().starts_with("internal panic: getter"));
        // The boundary still works normally afterwards.
        assert_eq!(boundary(|| Ok(())), rp_status::Ok);
    }

    #[test]
    fn last_error_has_snprintf_semantics() {
        set_last_error(&"abcdef");
        let mut small = [1 as c_char; 4];
        // SAFETY: `small` has 4 writable bytes.
        let n = unsafe { rp_last_error_message(small.as_mut_ptr(), small.len()) };
        assert_eq!(n, 6);
        assert_eq!(small.map(|c| c as u8), *b"abc\0");
        // SAFETY: NULL with cap 0 only asks for the length.
        assert_eq!(unsafe { rp_last_error_message(std::ptr::null_mut(), 0) }, 6);
    }
}
