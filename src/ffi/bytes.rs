//! Buffers across the boundary: borrowed views (`rp_bytes`, `rp_str`), the library-owned
//! `rp_msg`, and checked conversions of the pointers C passes in.

use std::ffi::c_char;

use super::boundary::{boundary_or, Failure};
use super::handle::{box_free, box_ref, castable};
use super::status::rp_status;

/// A borrowed byte range. `ptr` may be NULL when `len` is 0.
///
/// Who owns the bytes and until when they live is stated wherever an `rp_bytes` appears.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct rp_bytes {
    /// First byte.
    pub ptr: *const u8,
    /// Number of bytes.
    pub len: usize,
}

/// A borrowed UTF-8 string: not NUL-terminated, no interior NUL guaranteed. `ptr` may be NULL
/// when `len` is 0. Print it with `printf("%.*s", (int)s.len, s.ptr)`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct rp_str {
    /// First byte.
    pub ptr: *const c_char,
    /// Length in bytes.
    pub len: usize,
}

impl rp_bytes {
    /// A view of `s` (borrowed for as long as `s` lives).
    #[inline]
    pub(crate) fn from_slice(s: &[u8]) -> Self {
        rp_bytes {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }
}

impl rp_str {
    /// A view of `s` (borrowed for as long as `s` lives).
    #[inline]
    pub(crate) fn from_str(s: &str) -> Self {
        rp_str {
            ptr: s.as_ptr().cast(),
            len: s.len(),
        }
    }
}

/// A `(ptr, len)` input buffer as a slice. `(NULL, 0)` is the empty buffer.
///
/// # Safety
/// A non-NULL `ptr` points to `len` readable bytes that stay unchanged for `'a`.
#[inline]
pub(crate) unsafe fn slice_arg<'a>(
    ptr: *const u8,
    len: usize,
    name: &'static str,
) -> Result<&'a [u8], Failure> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(Failure::null(name))
        };
    }
    if len > isize::MAX as usize {
        return Err(Failure::new(
            rp_status::InvalidArgument,
            format!("{name}: length too large"),
        ));
    }
    // SAFETY: non-NULL, `len` readable bytes per the contract, and len <= isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// An argument's name as a type. The hot entry points check their arguments with the `*_named`
/// helpers below, whose failure paths are one function per argument: no name has to be kept at
/// hand on the success path for a failure path shared by several arguments.
pub(crate) trait ArgName {
    /// The name, as the failure message gives it.
    const NAME: &'static str;
}

/// Declares argument-name types for the `*_named` helpers.
macro_rules! arg_names {
    ($($ty:ident = $name:literal;)*) => {
        $(
            #[doc = concat!("The argument name `", $name, "`.")]
            pub(crate) struct $ty;
            impl $crate::ffi::bytes::ArgName for $ty {
                const NAME: &'static str = $name;
            }
        )*
    };
}
pub(crate) use arg_names;

/// The failure of [`slice_arg_named`] / [`slice_out_named`]: NULL with a length, or a length
/// above `isize::MAX` (`what`: "length" or "capacity").
#[cold]
#[inline(never)]
fn range_failure<N: ArgName>(null: bool, what: &'static str) -> Failure {
    if null {
        Failure::null(N::NAME)
    } else {
        Failure::new(rp_status::InvalidArgument, format!("{}: {what} too large", N::NAME))
    }
}

/// [`slice_arg`] with the argument's name as a type.
///
/// # Safety
/// As for [`slice_arg`].
#[inline(always)]
pub(crate) unsafe fn slice_arg_named<'a, N: ArgName>(ptr: *const u8, len: usize) -> Result<&'a [u8], Failure> {
    if ptr.is_null() {
        return if len == 0 { Ok(&[]) } else { Err(range_failure::<N>(true, "length")) };
    }
    if len > isize::MAX as usize {
        return Err(range_failure::<N>(false, "length"));
    }
    // SAFETY: non-NULL, `len` readable bytes per the contract, and len <= isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// [`slice_out`] with the argument's name as a type.
///
/// # Safety
/// As for [`slice_out`].
#[inline(always)]
pub(crate) unsafe fn slice_out_named<'a, N: ArgName>(ptr: *mut u8, cap: usize) -> Result<&'a mut [u8], Failure> {
    if ptr.is_null() {
        return if cap == 0 { Ok(&mut []) } else { Err(range_failure::<N>(true, "capacity")) };
    }
    if cap > isize::MAX as usize {
        return Err(range_failure::<N>(false, "capacity"));
    }
    // SAFETY: non-NULL, `cap` writable unaliased bytes per the contract, and cap <= isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, cap) })
}

/// The failure of a NULL argument `N`, one function per argument.
#[cold]
#[inline(never)]
pub(crate) fn null_named<N: ArgName>() -> Failure {
    Failure::null(N::NAME)
}

/// The failure of a string argument `N` that is not UTF-8.
#[cold]
#[inline(never)]
fn utf8_failure<N: ArgName>(e: std::str::Utf8Error) -> Failure {
    Failure::new(rp_status::InvalidUtf8, format!("{} is not valid UTF-8 ({e})", N::NAME))
}

impl rp_str {
    /// [`rp_str::as_str`] with the argument's name as a type.
    ///
    /// # Safety
    /// As for [`rp_str::as_str`].
    #[inline(always)]
    pub(crate) unsafe fn as_str_named<'a, N: ArgName>(&self) -> Result<&'a str, Failure> {
        if self.len == 0 {
            return Ok("");
        }
        // SAFETY: forwarded contract.
        let bytes = unsafe { slice_arg_named::<N>(self.ptr as *const u8, self.len) }?;
        std::str::from_utf8(bytes).map_err(utf8_failure::<N>)
    }
}

/// A NUL-terminated UTF-8 `const char *` argument as `&str`: NULL and invalid UTF-8 fail.
///
/// # Safety
/// A non-NULL `ptr` points to a NUL-terminated string that stays unchanged for `'a`.
pub(crate) unsafe fn cstr_arg<'a>(
    ptr: *const c_char,
    name: &'static str,
) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: non-NULL and NUL-terminated per the contract.
    let bytes = unsafe { std::ffi::CStr::from_ptr(ptr) }.to_bytes();
    std::str::from_utf8(bytes).map_err(|e| {
        Failure::new(
            rp_status::InvalidUtf8,
            format!("{name} is not valid UTF-8 ({e})"),
        )
    })
}

/// Checks the string argument `name` against a rule of `crate::wire::names` (or any check that
/// returns its rule as text): `RP_STATUS_INVALID_ARGUMENT` naming the argument, its value and the
/// rule.
pub(crate) fn rule_arg<'a>(
    value: &'a str,
    name: &'static str,
    check: fn(&str) -> Result<(), &'static str>,
) -> Result<&'a str, Failure> {
    check(value).map(|()| value).map_err(|rule| {
        let shown = if value.len() <= 80 { format!("{value:?}") } else { format!("of {} bytes", value.len()) };
        Failure::new(rp_status::InvalidArgument, format!("{name} {shown} is invalid: it must be {rule}"))
    })
}

/// Checks that the string argument `name` is `min..=max` bytes long: else
/// `RP_STATUS_INVALID_ARGUMENT` stating the rule.
pub(crate) fn len_arg<'a>(value: &'a str, name: &'static str, min: usize, max: usize) -> Result<&'a str, Failure> {
    if (min..=max).contains(&value.len()) {
        return Ok(value);
    }
    Err(Failure::new(
        rp_status::InvalidArgument,
        format!("{name} is {} bytes long: it must be {min}-{max} bytes", value.len()),
    ))
}

/// A `(ptr, cap)` output buffer as a mutable slice. `(NULL, 0)` is the empty buffer.
///
/// # Safety
/// A non-NULL `ptr` points to `cap` writable bytes not aliased for `'a`.
#[inline]
pub(crate) unsafe fn slice_out<'a>(
    ptr: *mut u8,
    cap: usize,
    name: &'static str,
) -> Result<&'a mut [u8], Failure> {
    if ptr.is_null() {
        return if cap == 0 {
            Ok(&mut [])
        } else {
            Err(Failure::null(name))
        };
    }
    if cap > isize::MAX as usize {
        return Err(Failure::new(
            rp_status::InvalidArgument,
            format!("{name}: capacity too large"),
        ));
    }
    // SAFETY: non-NULL, `cap` writable unaliased bytes per the contract, and cap <= isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, cap) })
}

/// A descriptor as the C API gives it out: an `int32_t`. On Windows it is a `HANDLE` or
/// `SOCKET` value, which Windows keeps within 32 bits (sign-extended) so that 32- and 64-bit
/// processes can exchange them; C turns it back with `(HANDLE)(intptr_t)fd`.
pub(crate) fn descriptor_out(raw: crate::transport::RawDescriptor) -> i32 {
    #[cfg(windows)]
    return raw as i32;
    #[cfg(not(windows))]
    raw
}

/// The one reading of a timeout from C, for every `timeout_ms` argument and `*_timeout_ms`
/// option: 0 = do not wait (try once, `Some(0)`), -1 = no limit (`None`), > 0 = milliseconds;
/// anything else is `RP_STATUS_INVALID_ARGUMENT` with the rule in the message.
pub(crate) fn timeout_arg(timeout_ms: i32) -> Result<Option<std::time::Duration>, Failure> {
    match timeout_ms {
        -1 => Ok(None),
        ms if ms >= 0 => Ok(Some(std::time::Duration::from_millis(ms as u64))),
        other => Err(Failure::new(
            rp_status::InvalidArgument,
            format!(
                "timeout {other} ms is not valid: use 0 (do not wait), -1 (no limit) or a positive number of milliseconds"
            ),
        )),
    }
}

/// [`timeout_arg`] for an option the core keeps as a `Duration`: no limit becomes
/// [`crate::transport::NO_LIMIT`].
pub(crate) fn limit_arg(timeout_ms: i32) -> Result<std::time::Duration, Failure> {
    Ok(timeout_arg(timeout_ms)?.unwrap_or(crate::transport::NO_LIMIT))
}

/// A byte buffer owned by librp (an encoded frame, a received payload, ...).
///
/// Methods: `rp_msg_data`, `rp_msg_len`, `rp_msg_free`.
///
/// Exclusive handle (Send): the caller owns it and frees it with `rp_msg_free`.
pub struct rp_msg {
    _private: [u8; 0],
}

castable!(rp_msg => Vec<u8>: OwnedBox);

/// The bytes of a message.
///
/// Returns a pointer to `rp_msg_len(msg)` bytes, valid until `msg` is freed; NULL if `msg` is NULL.
///
/// Thread safety: may be called concurrently with other reads of the same `msg`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_msg_data(msg: *const rp_msg) -> *const u8 {
    boundary_or(std::ptr::null(), || {
        // SAFETY: `msg` is NULL or a live rp_msg per the API contract.
        match unsafe { box_ref::<rp_msg>(msg, "msg") } {
            Ok(v) => v.as_ptr(),
            Err(_) => std::ptr::null(),
        }
    })
}

/// The length of a message in bytes; 0 if `msg` is NULL.
///
/// Thread safety: may be called concurrently with other reads of the same `msg`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_msg_len(msg: *const rp_msg) -> usize {
    boundary_or(0, || {
        // SAFETY: `msg` is NULL or a live rp_msg per the API contract.
        unsafe { box_ref::<rp_msg>(msg, "msg") }.map_or(0, |v| v.len())
    })
}

/// Frees a message. NULL is a no-op. Must not be called twice with the same value.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_msg_free(msg: *mut rp_msg) {
    boundary_or((), || {
        // SAFETY: `msg` is NULL or a live rp_msg owned by the caller, freed once.
        unsafe { box_free(msg) }
    })
}

/// A path socket's access from the C arguments: permission bits and a group id (-1 = keep the
/// process's group).
pub(crate) fn socket_access_arg(mode: u32, group: i64) -> Result<crate::transport::SocketAccess, crate::Error> {
    let group = match group {
        -1 => None,
        g if (0..i64::from(u32::MAX)).contains(&g) => Some(g as u32),
        g => return Err(crate::Error::invalid_argument(format!("group {g} is not a group id (or -1)"))),
    };
    let access = crate::transport::SocketAccess { mode, group };
    access.check()?;
    Ok(access)
}
