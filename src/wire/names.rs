//! The naming rules of the v1 protocol, in one place: service names and versions as a broker
//! checks them in a Hello, also applied by librp's option calls to the values they receive.
//!
//! Each check returns the rule as text on failure, so callers put it in their own message (a
//! refusal reason on the wire, an `INVALID_ARGUMENT` message at the C boundary).

/// The service-name rule, as shown in error messages.
pub const SERVICE_NAME_RULE: &str = "1-64 characters of [a-z0-9-]";
/// The version rule, as shown in error messages.
pub const VERSION_RULE: &str =
    "MAJOR.MINOR.PATCH of decimal digits with an optional -suffix of [a-z0-9.], at most 64 characters";
/// Longest service name.
pub const SERVICE_NAME_MAX: usize = 64;
/// Longest version (a Hello's `wanted_version`).
pub const VERSION_MAX: usize = 64;

/// Checks a service name: 1–64 characters of `[a-z0-9-]` (no uppercase: names become pipe and
/// socket names, and case-only differences would merge on case-insensitive systems).
pub fn check_service_name(name: &str) -> Result<(), &'static str> {
    let ok = !name.is_empty()
        && name.len() <= SERVICE_NAME_MAX
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(SERVICE_NAME_RULE)
    }
}

/// Checks a version: `MAJOR.MINOR.PATCH` (each non-empty decimal digits) with an optional
/// `-suffix` of `[a-z0-9.]`, at most 64 characters.
pub fn check_version(version: &str) -> Result<(), &'static str> {
    let (core, suffix) = match version.split_once('-') {
        Some((core, suffix)) => (core, Some(suffix)),
        None => (version, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let mut parts = core.split('.');
    let ok = version.len() <= VERSION_MAX
        && parts.next().is_some_and(digits)
        && parts.next().is_some_and(digits)
        && parts.next().is_some_and(digits)
        && parts.next().is_none()
        && suffix.is_none_or(|s| {
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.')
        });
    if ok {
        Ok(())
    } else {
        Err(VERSION_RULE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names() {
        for ok in ["a", "zccache", "my-svc-2", &"x".repeat(64)] {
            assert_eq!(check_service_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "Zccache", "a_b", "a.b", "a b", "é", &"x".repeat(65)] {
            assert_eq!(check_service_name(bad), Err(SERVICE_NAME_RULE), "{bad}");
        }
    }

    #[test]
    fn versions() {
        for ok in ["1.0.0", "0.0.1-alpha.1", "2.3.4-rc.1.beta", "01.2.3", "10.20.30"] {
            assert_eq!(check_version(ok), Ok(()), "{ok}");
        }
        let long = format!("1.0.0-{}", "a".repeat(59));
        for bad in ["", "1.0", "1.0.0.0", "1.0.0-", "1.0.0-ALPHA", "1.0.0-a-b", "1.0.0-a b", "v1.0.0", "1.x.0", &long] {
            assert_eq!(check_version(bad), Err(VERSION_RULE), "{bad}");
        }
        assert_eq!(check_version(&long[..64]), Ok(()));
    }
}
