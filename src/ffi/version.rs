//! Version macros and run-time version queries.

use std::ffi::c_char;

use super::boundary::boundary_or;

/// Major version of the headers (`RP_VERSION_MAJOR`).
pub const RP_VERSION_MAJOR: u32 = 0;
/// Minor version of the headers (`RP_VERSION_MINOR`).
pub const RP_VERSION_MINOR: u32 = 2;
/// Patch version of the headers (`RP_VERSION_PATCH`).
pub const RP_VERSION_PATCH: u32 = 0;

const VERSION_STRING: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
) {
    Ok(s) => s,
    Err(_) => panic!("version has no interior NUL"),
};

/// The version of the loaded library as "MAJOR.MINOR.PATCH".
///
/// Returns a static NUL-terminated string; never free it. Compare with the `RP_VERSION_*`
/// macros to detect a header/library mismatch.
///
/// Thread safety: may be called from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn rp_version_string() -> *const c_char {
    VERSION_STRING.as_ptr()
}

/// The version of the loaded library as one number, `RP_MAKE_VERSION(major, minor, patch)`
/// (`major * 10000 + minor * 100 + patch`); equals `RP_VERSION` when header and library agree.
///
/// Thread safety: may be called from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn rp_version_number() -> u32 {
    boundary_or(0, || {
        RP_VERSION_MAJOR * 10000 + RP_VERSION_MINOR * 100 + RP_VERSION_PATCH
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macros_match_the_crate_version() {
        let part = |s: &str| s.parse::<u32>().unwrap();
        assert_eq!(RP_VERSION_MAJOR, part(env!("CARGO_PKG_VERSION_MAJOR")));
        assert_eq!(RP_VERSION_MINOR, part(env!("CARGO_PKG_VERSION_MINOR")));
        assert_eq!(RP_VERSION_PATCH, part(env!("CARGO_PKG_VERSION_PATCH")));
        // SAFETY: static NUL-terminated string.
        let s = unsafe { std::ffi::CStr::from_ptr(rp_version_string()) };
        assert_eq!(s.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
