//! The payload-protocol registry for C.

use super::boundary::boundary_or;
use crate::wire::registry::{self, ProtocolClass};

/// Control plane: Hello / HelloReply (0x0000).
pub const RP_PROTOCOL_CONTROL: u32 = 0x0000;
/// Admin verbs (0xAD01).
pub const RP_PROTOCOL_ADMIN: u32 = 0xAD01;
/// Backend-handle identity probe (0xB232).
pub const RP_PROTOCOL_IDENTITY_PROBE: u32 = 0xB232;
/// Broker/backend connection handoff (0xD0FF).
pub const RP_PROTOCOL_HANDOFF: u32 = 0xD0FF;
/// SESSION data plane (0x5350).
pub const RP_PROTOCOL_SESSION: u32 = 0x5350;
/// First id of the registered consumer range (0x7000).
pub const RP_PROTOCOL_CONSUMER_FIRST: u32 = 0x7000;
/// Last id of the registered consumer range (0x7EFF).
pub const RP_PROTOCOL_CONSUMER_LAST: u32 = 0x7EFF;
/// First id of the private-use range (0xF000).
pub const RP_PROTOCOL_PRIVATE_USE_FIRST: u32 = 0xF000;
/// Last id of the private-use range (0xFFFF).
pub const RP_PROTOCOL_PRIVATE_USE_LAST: u32 = 0xFFFF;

/// Where a payload-protocol id sits in the registry.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rp_protocol_class {
    /// 0x0000, 0xAD01, 0xB232, 0xD0FF: owned by the broker; never a consumer protocol.
    FirstParty = 0,
    /// 0x5350, the SESSION data plane.
    Session = 1,
    /// 0x7000–0x7EFF: registered consumer protocols.
    Consumer = 2,
    /// 0xF000–0xFFFF: private use.
    PrivateUse = 3,
    /// Any other id.
    Unassigned = 4,
}

/// Classifies a payload-protocol id. A backend may serve `RP_PROTOCOL_CLASS_CONSUMER`,
/// `RP_PROTOCOL_CLASS_PRIVATE_USE` and `RP_PROTOCOL_CLASS_SESSION` ids, nothing else.
///
/// Thread safety: may be called from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn rp_protocol_classify(id: u32) -> rp_protocol_class {
    boundary_or(rp_protocol_class::Unassigned, || {
        match registry::classify(id) {
            ProtocolClass::FirstParty => rp_protocol_class::FirstParty,
            ProtocolClass::Session => rp_protocol_class::Session,
            ProtocolClass::Consumer => rp_protocol_class::Consumer,
            ProtocolClass::PrivateUse => rp_protocol_class::PrivateUse,
            ProtocolClass::Unassigned => rp_protocol_class::Unassigned,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_the_core() {
        assert_eq!(RP_PROTOCOL_CONTROL, registry::CONTROL);
        assert_eq!(RP_PROTOCOL_ADMIN, registry::ADMIN);
        assert_eq!(RP_PROTOCOL_IDENTITY_PROBE, registry::IDENTITY_PROBE);
        assert_eq!(RP_PROTOCOL_HANDOFF, registry::HANDOFF);
        assert_eq!(RP_PROTOCOL_SESSION, registry::SESSION);
        assert_eq!(RP_PROTOCOL_CONSUMER_FIRST, registry::CONSUMER_FIRST);
        assert_eq!(RP_PROTOCOL_CONSUMER_LAST, registry::CONSUMER_LAST);
        assert_eq!(RP_PROTOCOL_PRIVATE_USE_FIRST, registry::PRIVATE_USE_FIRST);
        assert_eq!(RP_PROTOCOL_PRIVATE_USE_LAST, registry::PRIVATE_USE_LAST);
        assert_eq!(rp_protocol_classify(0xD0FF), rp_protocol_class::FirstParty);
        assert_eq!(rp_protocol_classify(0x7A63), rp_protocol_class::Consumer);
    }
}
