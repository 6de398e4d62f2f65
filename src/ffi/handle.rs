//! Opaque handles: each C-visible handle type names the Rust type behind it and how it is
//! owned, so conversions cannot mix up, say, a boxed handle with a shared one. This module is
//! the only place that turns a handle pointer back into Rust (`Box::from_raw`, pointer casts):
//! every other module goes through the typed helpers below.
//!
//! - [`OwnedBox`] (`rp_x *`): created by [`box_into_handle`], borrowed with [`box_ref`] /
//!   [`box_mut`], consumed by [`box_take`], freed by [`box_free`].
//! - [`OwnedArc`] (`const rp_x *`): [`arc_into_handle`], [`arc_ref`], [`arc_clone`], [`arc_free`].
//! - [`Borrowed`]: handles C only ever sees lent for one call ([`lend`], [`borrowed_ref`]).
//! - Out-pointers: [`out_arg`] checks one for NULL once and gives an [`Out`] that writes safely.

use std::marker::PhantomData;

use super::boundary::Failure;

/// Marker: the handle is a `Box<RustType>`; one owner, freed once.
pub(crate) struct OwnedBox;

/// Marker: the handle is an `Arc<RustType>`: shared, immutable, and freed when the last
/// reference is dropped. C sees such handles as `const rp_x *`.
pub(crate) struct OwnedArc;

/// Marker: C only ever receives this handle lent for the duration of one call (a callback
/// argument, a view into another handle); it is never created for C to own, never freed.
pub(crate) struct Borrowed;

/// Ties an opaque C type to the Rust value behind its pointers.
pub(crate) trait Castable {
    /// How the value is owned behind the pointer: [`OwnedBox`], [`OwnedArc`] or [`Borrowed`].
    type Ownership;
    /// The Rust value.
    type RustType;
}

/// Implements [`Castable`] for opaque C types: `castable!(rp_x => RustType: OwnedBox, ...)`.
///
/// The opaque structs themselves stay written out (`pub struct rp_x { _private: [u8; 0] }` with
/// their docs) because cbindgen reads the sources without expanding macros; rustls-ffi lets a
/// macro declare them too, at the price of a nightly `cargo expand` step to make the header.
macro_rules! castable {
    ($($c:ty => $rust:ty: $own:ident),+ $(,)?) => {
        $(impl $crate::ffi::handle::Castable for $c {
            type Ownership = $crate::ffi::handle::$own;
            type RustType = $rust;
        })+
    };
}
pub(crate) use castable;

/// Moves `value` to the heap and returns it as an opaque handle owned by the caller.
pub(crate) fn box_into_handle<C: Castable<Ownership = OwnedBox>>(value: C::RustType) -> *mut C {
    Box::into_raw(Box::new(value)).cast::<C>()
}

/// Borrows the value behind a boxed handle, or fails with `RP_STATUS_NULL_ARGUMENT`.
///
/// # Safety
/// `handle` is NULL or was returned by [`box_into_handle`] for this `C` (or [`lend`]) and not
/// yet freed, and no `&mut` to the same value is live for `'a`.
#[inline]
pub(crate) unsafe fn box_ref<'a, C: Castable<Ownership = OwnedBox>>(
    handle: *const C,
    name: &'static str,
) -> Result<&'a C::RustType, Failure> {
    // SAFETY: per the contract above, a non-NULL handle points to a live `C::RustType`.
    unsafe { handle.cast::<C::RustType>().as_ref() }.ok_or_else(|| Failure::null(name))
}

/// Borrows the value behind an optional boxed handle: `None` when it is NULL (nothing is
/// recorded: NULL is an answer, not an error).
///
/// # Safety
/// As for [`box_ref`].
#[inline]
pub(crate) unsafe fn box_opt<'a, C: Castable<Ownership = OwnedBox>>(handle: *const C) -> Option<&'a C::RustType> {
    // SAFETY: per the contract of `box_ref`.
    unsafe { handle.cast::<C::RustType>().as_ref() }
}

/// Borrows the value behind a boxed handle mutably, or fails with `RP_STATUS_NULL_ARGUMENT`.
///
/// # Safety
/// `handle` is NULL or was returned by [`box_into_handle`] for this `C` and not yet freed, and
/// no other reference to the same value is live for `'a` (the caller serialises `rp_x *` calls).
#[inline]
pub(crate) unsafe fn box_mut<'a, C: Castable<Ownership = OwnedBox>>(
    handle: *mut C,
    name: &'static str,
) -> Result<&'a mut C::RustType, Failure> {
    // SAFETY: per the contract above, a non-NULL handle points to a live, unaliased value.
    unsafe { handle.cast::<C::RustType>().as_mut() }.ok_or_else(|| Failure::null(name))
}

/// Takes the value out of a boxed handle, which is consumed (freed), or fails with
/// `RP_STATUS_NULL_ARGUMENT`.
///
/// # Safety
/// As for [`box_free`].
pub(crate) unsafe fn box_take<C: Castable<Ownership = OwnedBox>>(
    handle: *mut C,
    name: &'static str,
) -> Result<C::RustType, Failure> {
    if handle.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: per the contract above, this is the Box created by `box_into_handle`.
    Ok(*unsafe { Box::from_raw(handle.cast::<C::RustType>()) })
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

/// Lends `value` to C as a handle valid only while the borrow lasts (for example the push a
/// handler callback receives). C must not free it or keep it.
#[inline]
pub(crate) fn lend<C: Castable>(value: &C::RustType) -> *const C {
    (value as *const C::RustType).cast::<C>()
}

/// Borrows the value behind a lent handle, or fails with `RP_STATUS_NULL_ARGUMENT`.
///
/// # Safety
/// `handle` is NULL or was made by [`lend`] for this `C` from a value still borrowed for `'a`.
#[inline]
pub(crate) unsafe fn borrowed_ref<'a, C: Castable<Ownership = Borrowed>>(
    handle: *const C,
    name: &'static str,
) -> Result<&'a C::RustType, Failure> {
    // SAFETY: per the contract above.
    unsafe { handle.cast::<C::RustType>().as_ref() }.ok_or_else(|| Failure::null(name))
}

/// An out-pointer checked non-NULL: [`Out::write`] stores the result.
pub(crate) struct Out<'a, T> {
    ptr: *mut T,
    _out: PhantomData<&'a mut T>,
}

impl<T> Out<'_, T> {
    /// Stores `value` (the previous contents, caller-owned memory, are not dropped).
    #[inline]
    pub(crate) fn write(self, value: T) {
        // SAFETY: `out_arg` checked `ptr` non-NULL, and its contract makes it valid for a write.
        unsafe { self.ptr.write(value) }
    }
}

/// Checks an out-pointer: NULL fails with `RP_STATUS_NULL_ARGUMENT` naming `name`.
///
/// # Safety
/// `out` is NULL or valid for a write of `T` for `'a`.
#[inline]
pub(crate) unsafe fn out_arg<'a, T>(out: *mut T, name: &'static str) -> Result<Out<'a, T>, Failure> {
    if out.is_null() {
        return Err(Failure::null(name));
    }
    Ok(Out { ptr: out, _out: PhantomData })
}

/// [`out_arg`] with the argument's name as a type (see `ArgName`).
///
/// # Safety
/// As for [`out_arg`].
#[inline(always)]
pub(crate) unsafe fn out_arg_named<'a, T, N: super::bytes::ArgName>(out: *mut T) -> Result<Out<'a, T>, Failure> {
    if out.is_null() {
        return Err(super::bytes::null_named::<N>());
    }
    Ok(Out { ptr: out, _out: PhantomData })
}

/// An optional out-pointer: `None` when it is NULL.
///
/// # Safety
/// As for [`out_arg`].
#[inline]
pub(crate) unsafe fn opt_out<'a, T>(out: *mut T) -> Option<Out<'a, T>> {
    (!out.is_null()).then_some(Out { ptr: out, _out: PhantomData })
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

/// A new `Arc` reference to the value behind a shared handle (NULL gives `None`); the handle's
/// own reference is untouched.
///
/// # Safety
/// As for [`arc_ref`].
pub(crate) unsafe fn arc_clone_value<C: Castable<Ownership = OwnedArc>>(
    handle: *const C,
) -> Option<std::sync::Arc<C::RustType>> {
    if handle.is_null() {
        return None;
    }
    let raw = handle.cast::<C::RustType>();
    // SAFETY: per the contract above, `raw` came from `Arc::into_raw` and is still live; the
    // count is raised first so the `Arc` made here owns a reference of its own.
    unsafe {
        std::sync::Arc::increment_strong_count(raw);
        Some(std::sync::Arc::from_raw(raw))
    }
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
