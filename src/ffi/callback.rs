//! Callbacks registered from C: the function, its `user_data`, and the `user_data_free` that
//! runs exactly once — when the callback is replaced, unregistered, or its owner is freed.

use std::ffi::c_void;

/// `void (*user_data_free)(void *user_data)`.
pub type rp_user_data_free_callback = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// A C callback with its user data. `F` is the `extern "C" fn` type.
pub(crate) struct ForeignCallback<F: Copy> {
    pub(crate) func: F,
    pub(crate) user_data: *mut c_void,
    free: rp_user_data_free_callback,
}

// SAFETY: librp only calls the callback on a thread the application chose by calling the
// documented dispatch function; the header states that `user_data` must be usable from any
// thread that calls it, and freed from any thread (the one that replaces or frees its owner).
unsafe impl<F: Copy> Send for ForeignCallback<F> {}
// SAFETY: as above; the callback is only read (never mutated) through shared references.
unsafe impl<F: Copy> Sync for ForeignCallback<F> {}

impl<F: Copy> ForeignCallback<F> {
    /// Takes ownership of `user_data` (to be released with `free`).
    pub(crate) fn new(func: F, user_data: *mut c_void, free: rp_user_data_free_callback) -> Self {
        ForeignCallback { func, user_data, free }
    }
}

impl<F: Copy> Drop for ForeignCallback<F> {
    fn drop(&mut self) {
        if let Some(free) = self.free.take() {
            // SAFETY: the application registered `free` for exactly this `user_data`, and it is
            // called once: `take()` clears it.
            unsafe { free(self.user_data) }
        }
    }
}
