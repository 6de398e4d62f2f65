//! The service table: each entry checked when the broker is bound, and the service a Hello asks
//! for chosen under its version policy (the reference's order, then librp's block list).

use super::BrokerService;
use crate::control::Refusal;
use crate::error::Error;
use crate::wire::names;
use crate::wire::proto::{ErrorCode, Hello};

pub(super) fn check_service(s: &BrokerService) -> Result<(), Error> {
    let name = &s.service_name;
    if let Err(rule) = names::check_service_name(name) {
        return Err(Error::invalid_argument(format!("service name {name:?} is not {rule}")));
    }
    for v in s.allowed_versions.iter().chain(&s.blocked_versions).chain((!s.min_version.is_empty()).then_some(&s.min_version)) {
        if let Err(rule) = names::check_version(v) {
            return Err(Error::invalid_argument(format!("version {v:?} of service {name} is not {rule}")));
        }
    }
    if s.daemon_version.len() > 64 || s.backend_pipe.len() > 4096 {
        return Err(Error::invalid_argument(format!("daemon_version or backend_pipe of service {name} is too long")));
    }
    Ok(())
}

/// `MAJOR.MINOR.PATCH` as numbers (pre-release tags ignored for ordering).
fn version_triple(v: &str) -> (u64, u64, u64) {
    let core = v.split('-').next().unwrap_or("");
    let mut parts = core.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Retry hint of a refusal by version policy (the reference's).
const VERSION_POLICY_RETRY_MS: u64 = 30_000;

/// The version policy of one service, applied to a wanted version, in the reference's order
/// (`validate_version_policy`: the floor, then the allow list), then librp's block list.
fn check_version_policy(service: &BrokerService, wanted: &str) -> Result<(), Refusal> {
    if !service.min_version.is_empty() && version_triple(wanted) < version_triple(&service.min_version) {
        return Err(Refusal::new(ErrorCode::VersionBlocked, "wanted_version is below min_version")
            .with_retry_after_ms(VERSION_POLICY_RETRY_MS));
    }
    if !service.allowed_versions.is_empty() && !service.allowed_versions.iter().any(|a| a == wanted) {
        return Err(Refusal::new(ErrorCode::VersionBlocked, "wanted_version is not in version_allow_list")
            .with_retry_after_ms(VERSION_POLICY_RETRY_MS));
    }
    if service.blocked_versions.iter().any(|b| b == wanted) {
        return Err(Refusal::new(ErrorCode::VersionBlocked, format!("version {wanted} is blocked")));
    }
    Ok(())
}

/// The service a Hello asks for, if it is registered and its version policy admits the
/// wanted version.
pub(super) fn choose_service<'a>(services: &'a [BrokerService], hello: &Hello) -> Result<&'a BrokerService, Refusal> {
    let service = services
        .iter()
        .find(|s| s.service_name == hello.service_name)
        .ok_or_else(|| Refusal::new(ErrorCode::ServiceUnknown, "service is not registered"))?;
    check_version_policy(service, &hello.wanted_version)?;
    Ok(service)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::hello_reply_frame;
    use crate::wire::proto::hello_reply;
    #[test]
    fn version_policy() {
        let s = BrokerService {
            service_name: "svc".into(),
            allowed_versions: vec!["1.2.3".into(), "1.0.0".into()],
            blocked_versions: vec!["1.0.0".into()],
            min_version: "0.5.0".into(),
            ..Default::default()
        };
        assert!(check_version_policy(&s, "1.2.3").is_ok());
        assert_eq!(check_version_policy(&s, "1.0.0").unwrap_err().code, ErrorCode::VersionBlocked as i32);
        assert_eq!(check_version_policy(&s, "0.4.9").unwrap_err().code, ErrorCode::VersionBlocked as i32);
        let r = check_version_policy(&s, "2.0.0").unwrap_err();
        assert_eq!((r.code, r.retry_after_ms), (ErrorCode::VersionBlocked as i32, 30_000));
    }

    #[test]
    fn min_version_refusal_matches_the_vector() {
        let s = BrokerService { service_name: "svc".into(), min_version: "2.0.0".into(), ..Default::default() };
        let r = check_version_policy(&s, "1.2.3").unwrap_err();
        let bytes = hello_reply_frame(1, hello_reply::Result::Refused(r.to_message()));
        let want = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/hello_reply_refused_version_blocked.hex"
        ))
        .unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, want.trim());
    }
}

