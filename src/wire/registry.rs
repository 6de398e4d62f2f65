//! The payload-protocol registry: which ids are first-party, which are consumers'.


/// Control plane: Hello / HelloReply.
pub const CONTROL: u32 = 0x0000;
/// Admin verbs: AdminRequest / AdminReply.
pub const ADMIN: u32 = 0xAD01;
/// Backend-handle identity probe.
pub const IDENTITY_PROBE: u32 = 0xB232;
/// Broker/backend handoff: HandoffOffer / HandoffAck.
pub const HANDOFF: u32 = 0xD0FF;
/// SESSION data plane.
pub const SESSION: u32 = 0x5350;
/// librp's push protocol (registration, pushes, replies), in the private-use range.
pub const LIBRP_PUSH: u32 = 0xF0B5;
/// First id of the registered consumer range.
pub const CONSUMER_FIRST: u32 = 0x7000;
/// Last id of the registered consumer range.
pub const CONSUMER_LAST: u32 = 0x7EFF;
/// First id of the private-use range.
pub const PRIVATE_USE_FIRST: u32 = 0xF000;
/// Last id of the private-use range.
pub const PRIVATE_USE_LAST: u32 = 0xFFFF;

/// Which part of the registry an id falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolClass {
    /// 0x0000, 0xAD01, 0xB232, 0xD0FF: never a consumer protocol.
    FirstParty,
    /// 0x5350, the SESSION data plane.
    Session,
    /// 0x7000–0x7EFF, registered consumer protocols.
    Consumer,
    /// 0xF000–0xFFFF, private use.
    PrivateUse,
    /// Anything else.
    Unassigned,
}

/// Classifies a payload-protocol id.
pub fn classify(id: u32) -> ProtocolClass {
    match id {
        CONTROL | ADMIN | IDENTITY_PROBE | HANDOFF => ProtocolClass::FirstParty,
        SESSION => ProtocolClass::Session,
        CONSUMER_FIRST..=CONSUMER_LAST => ProtocolClass::Consumer,
        PRIVATE_USE_FIRST..=PRIVATE_USE_LAST => ProtocolClass::PrivateUse,
        _ => ProtocolClass::Unassigned,
    }
}

/// True for the ids the broker itself owns.
pub fn is_first_party(id: u32) -> bool {
    classify(id) == ProtocolClass::FirstParty
}

/// Checks that an endpoint may serve `id` as a consumer protocol: the consumer range,
/// the private-use range, or SESSION. First-party and unassigned ids are refused with the rule
/// they break (the callers report it as an invalid argument).
pub fn check_servable(id: u32) -> Result<(), String> {
    match classify(id) {
        ProtocolClass::Consumer | ProtocolClass::PrivateUse | ProtocolClass::Session => Ok(()),
        ProtocolClass::FirstParty => Err(format!(
            "payload protocol 0x{id:04X} is first-party and cannot be served as a consumer protocol"
        )),
        ProtocolClass::Unassigned => Err(format!(
            "payload protocol 0x{id:04X} is outside the consumer (0x7000-0x7EFF) and private-use (0xF000-0xFFFF) ranges"
        )),
    }
}

/// The registry name of a well-known id, if it has one.
pub fn name(id: u32) -> Option<&'static str> {
    Some(match id {
        CONTROL => "control",
        ADMIN => "admin",
        IDENTITY_PROBE => "identity-probe",
        HANDOFF => "handoff",
        SESSION => "session",
        LIBRP_PUSH => "librp-push",
        0x7A63 => "zccache",
        0x7C4C => "clud",
        0x7EB1 => "fbuild",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_the_registry() {
        for id in [CONTROL, ADMIN, IDENTITY_PROBE, HANDOFF] {
            assert!(is_first_party(id));
            assert!(check_servable(id).is_err());
        }
        assert_eq!(classify(SESSION), ProtocolClass::Session);
        assert_eq!(classify(0x7000), ProtocolClass::Consumer);
        assert_eq!(classify(0x7EFF), ProtocolClass::Consumer);
        assert_eq!(classify(0x7F00), ProtocolClass::Unassigned);
        assert_eq!(classify(0xF000), ProtocolClass::PrivateUse);
        assert_eq!(classify(0x1_0000), ProtocolClass::Unassigned);
        assert!(check_servable(0x7001).is_ok());
        assert!(check_servable(0xF123).is_ok());
        assert!(check_servable(0x1234).is_err());
        assert_eq!(name(0x7A63), Some("zccache"));
    }
}
