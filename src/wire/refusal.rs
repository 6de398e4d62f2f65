//! A server's refusal of a Hello ([`Refusal`]): the wire `Refused` message in Rust form. It lives
//! with the wire, under the control plane and the error type that carry it.

use std::collections::BTreeMap;

use super::proto::{ErrorCode, Refused};
use super::PROTOCOL_VERSION;

/// A server's refusal of a Hello: the wire `Refused` message in Rust form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Raw `ErrorCode` value (see [`ErrorCode`]).
    pub code: i32,
    /// Human-readable reason.
    pub reason: String,
    /// How long to wait before retrying; 0 = no hint.
    pub retry_after_ms: u64,
    /// Extra key/value details.
    pub details: BTreeMap<String, String>,
}

impl Refusal {
    /// A refusal with a code and reason.
    pub fn new(code: ErrorCode, reason: impl Into<String>) -> Self {
        Refusal { code: code as i32, reason: reason.into(), retry_after_ms: 0, details: BTreeMap::new() }
    }

    /// Adds a retry hint.
    pub fn with_retry_after_ms(mut self, ms: u64) -> Self {
        self.retry_after_ms = ms;
        self
    }

    /// The code's name as the protocol spells it (`SERVICE_UNKNOWN`, ...), or "UNKNOWN".
    pub fn code_name(&self) -> &'static str {
        ErrorCode::try_from(self.code)
            .map(|c| c.as_str_name().trim_start_matches("ERROR_CODE_"))
            .unwrap_or("UNKNOWN")
    }

    /// The wire message.
    pub fn to_message(&self) -> Refused {
        Refused {
            reason: self.reason.clone(),
            daemon_min_protocol: PROTOCOL_VERSION,
            daemon_max_protocol: PROTOCOL_VERSION,
            code: self.code,
            details: self.details.clone(),
            retry_after_ms: self.retry_after_ms,
        }
    }

    /// From the wire message.
    pub fn from_message(r: Refused) -> Self {
        Refusal { code: r.code, reason: r.reason, retry_after_ms: r.retry_after_ms, details: r.details }
    }
}
