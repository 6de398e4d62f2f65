//! Opaque handles: each C-visible handle type names the Rust type behind it and how it is
//! owned, so conversions cannot mix up, say, a boxed handle with a shared one.

use super::boundary::Failure;

/// Marker: the handle is a `Box<RustType>`; one owner, freed once.
pub(crate) struct OwnedBox;

/// Ties an opaque C type to the Rust value behind its pointers.
pub(crate) trait Castable {
    /// How the value is owned behind the pointer.
    type Ownership;
    /// The Rust value.
    type RustType;
}

/// Moves `value` to the heap and returns it as an opaque handle owned by the caller.
pub(crate) fn box_into_handle<C: Castable<Ownership = OwnedBox>>(value: C::RustType) -> *mut C {
    Box::into_raw(Box::new(value)).cast::<C>()
}

/// Borrows the value behind a boxed handle, or fails with `RP_STATUS_NULL_ARGUMENT`.
///
/// # Safety
/// `handle` is NULL or was returned by [`box_into_handle`] for this `C` and not yet freed, and
/// no `&mut` to the same value is live for `'a`.
#[inline]
pub(crate) unsafe fn box_ref<'a, C: Castable<Ownership = OwnedBox>>(
    handle: *const C,
    name: &'static str,
) -> Result<&'a C::RustType, Failure> {
    // SAFETY: per the contract above, a non-NULL handle points to a live `C::RustType`.
    unsafe { handle.cast::<C::RustType>().as_ref() }.ok_or_else(|| Failure::null(name))
}

/// Frees a boxed handle; NULL is a no-op.
///
/// # Safety
/// `handle` is NULL or was returned by [`box_into_handle`] for this `C` and not yet freed.
pub(crate) unsafe fn box_free<C: Castable<Ownership = OwnedBox>>(handle: *mut C) {
    if !handle.is_null() {
        // SAFETY: per the contract above, this is the Box created by `box_into_handle`.
        drop(unsafe { Box::from_raw(handle.cast::<C::RustType>()) });
    }
}

/// Writes `value` through an out-pointer.
///
/// # Safety
/// `out` is non-NULL and valid for a write of `T`.
#[inline]
pub(crate) unsafe fn write_out<T>(out: *mut T, value: T) {
    // SAFETY: per the contract above.
    unsafe { out.write(value) }
}

/// Marker: the handle is an `Arc<RustType>`: shared, immutable, and freed when the last
/// reference is dropped. C sees such handles as `const rp_x *`.
pub(crate) struct OwnedArc;

/// Moves `value` into a new `Arc` and returns one reference as an opaque handle.
pub(crate) fn arc_into_handle<C: Castable<Ownership = OwnedArc>>(value: C::RustType) -> *const C {
    std::sync::Arc::into_raw(std::sync::Arc::new(value)).cast::<C>()
}

/// Borrows the value behind a shared handle, or fails with `RP_STATUS_NULL_ARGUMENT`.
///
/// # Safety
/// `handle` is NULL or was returned by [`arc_into_handle`] / [`arc_clone`] for this `C`, and
/// that reference is not freed for `'a`.
#[inline]
pub(crate) unsafe fn arc_ref<'a, C: Castable<Ownership = OwnedArc>>(
    handle: *const C,
    name: &'static str,
) -> Result<&'a C::RustType, Failure> {
    // SAFETY: per the contract above, a non-NULL handle points to the value inside a live Arc.
    unsafe { handle.cast::<C::RustType>().as_ref() }.ok_or_else(|| Failure::null(name))
}

/// Adds one reference to a shared handle and returns it (the same pointer).
///
/// # Safety
/// As for [`arc_ref`].
pub(crate) unsafe fn arc_clone<C: Castable<Ownership = OwnedArc>>(
    handle: *const C,
    name: &'static str,
) -> Result<*const C, Failure> {
    if handle.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: per the contract above, `handle` came from `Arc::into_raw` and is still live.
    unsafe { std::sync::Arc::increment_strong_count(handle.cast::<C::RustType>()) };
    Ok(handle)
}

/// Drops one reference of a shared handle; NULL is a no-op.
///
/// # Safety
/// `handle` is NULL or a reference returned by [`arc_into_handle`] / [`arc_clone`] for this
/// `C`, dropped only once.
pub(crate) unsafe fn arc_free<C: Castable<Ownership = OwnedArc>>(handle: *const C) {
    if !handle.is_null() {
        // SAFETY: per the contract above, this reference came from `Arc::into_raw`.
        drop(unsafe { std::sync::Arc::from_raw(handle.cast::<C::RustType>()) });
    }
}
