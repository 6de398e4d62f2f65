//! The admin verbs a broker answers on a connection's first frame (HEALTHZ, READYZ, STATUS,
//! LIST_INSTANCES, SHUTDOWN, METRICS) and the frames that carry the answers.

use std::sync::atomic::Ordering;
use std::time::Duration;

use prost::Message;

use super::Shared;
use crate::stats::BrokerServerStats;
use crate::wire::proto::{AdminReply, AdminReplyKind, AdminRequest, AdminVerb, FrameKind};
use crate::wire::{registry, FrameView, WireError};

/// Most bytes of `AdminRequest.service_name` the broker accepts (longer: exit code 2).
pub const ADMIN_MAX_SERVICE_NAME: usize = 64;
/// Most bytes of `AdminRequest.output_path` the broker accepts (longer: exit code 2).
pub const ADMIN_MAX_OUTPUT_PATH: usize = 4096;

/// Appends the answer to admin request `request_id` to `out`: METRICS in OpenMetrics, the
/// others as text with the exit code the reference uses (2 for an unsupported verb or a field
/// over its limit). SHUTDOWN starts the shutdown. `services` and `connections` are what STATUS
/// reports.
pub(super) fn answer(
    request_id: u64,
    request: &AdminRequest,
    shared: &Shared,
    services: &[&str],
    connections: usize,
    out: &mut Vec<u8>,
) -> Result<(), WireError> {
    let verb = AdminVerb::try_from(request.verb);
    let within_limits =
        request.service_name.len() <= ADMIN_MAX_SERVICE_NAME && request.output_path.len() <= ADMIN_MAX_OUTPUT_PATH;
    if within_limits && verb == Ok(AdminVerb::Metrics) {
        let body = render_metrics(&shared.stats.snapshot(), shared.started.elapsed());
        return admin_reply(request_id, AdminReplyKind::Openmetrics, OPENMETRICS_TYPE, body, 0, out);
    }
    let (body, exit_code) = match verb {
        _ if request.service_name.len() > ADMIN_MAX_SERVICE_NAME => {
            (format!("service_name exceeds {ADMIN_MAX_SERVICE_NAME} bytes"), 2)
        }
        _ if request.output_path.len() > ADMIN_MAX_OUTPUT_PATH => {
            (format!("output_path exceeds {ADMIN_MAX_OUTPUT_PATH} bytes"), 2)
        }
        Ok(AdminVerb::Healthz | AdminVerb::Readyz) => {
            if shared.shutting_down.load(Ordering::Acquire) {
                ("shutting down".to_owned(), 1)
            } else {
                ("ok".to_owned(), 0)
            }
        }
        Ok(AdminVerb::Status | AdminVerb::ListInstances) => {
            (format!("services: {}; connections: {connections}", services.join(",")), 0)
        }
        Ok(AdminVerb::Shutdown) => {
            shared.shutting_down.store(true, Ordering::Release);
            ("shutting down".to_owned(), 0)
        }
        Ok(other) => (format!("verb {} ({}) is not supported by this broker", other.as_str_name(), request.verb), 2),
        Err(_) => (format!("verb {} is not supported by this broker", request.verb), 2),
    };
    admin_reply_frame(request_id, body, exit_code, out)
}

/// Appends the admin RESPONSE frame answering request `request_id` to `out`.
pub(super) fn admin_reply_frame(request_id: u64, body: String, exit_code: u32, out: &mut Vec<u8>) -> Result<(), WireError> {
    admin_reply(request_id, AdminReplyKind::Text, "text/plain", body, exit_code, out)
}

/// The content type of the METRICS verb's answer, as running-process sends it.
const OPENMETRICS_TYPE: &str = "application/openmetrics-text";

/// The METRICS verb's OpenMetrics body: running-process's frozen v1 families in its order
/// (Hellos by outcome, open connections and uptime filled in; the families about spawning
/// backends, which this broker does not do, without samples), then librp's own counters.
/// Every number is the one [`BrokerServer::stats`] reports.
pub(crate) fn render_metrics(s: &BrokerServerStats, uptime: Duration) -> String {
    use std::fmt::Write as _;
    const P: &str = "running_process_broker_v1_";
    let r = &s.refused;
    let mut out = String::new();
    let _ = writeln!(out, "# TYPE {P}hello_total counter");
    for (outcome, n) in [
        ("negotiated", s.hellos_negotiated),
        ("peer_rejected", r.peer_rejected),
        ("rate_limited", r.rate_limited),
        ("service_unknown", r.service_unknown),
        ("version_unsupported", r.version_unsupported),
        ("version_blocked", r.version_blocked),
        ("shutting_down", r.shutting_down),
        ("refused_other", r.other),
    ] {
        let _ = writeln!(out, "{P}hello_total{{outcome=\"{outcome}\"}} {n}");
    }
    for (name, kind) in [
        ("hello_duration_seconds", "histogram"),
        ("active_backends", "gauge"),
        ("spawn_attempts_total", "counter"),
        ("spawn_budget_remaining", "gauge"),
    ] {
        let _ = writeln!(out, "# TYPE {P}{name} {kind}");
    }
    let _ = writeln!(out, "# TYPE {P}connections_open gauge\n{P}connections_open {}", s.connections_open);
    let _ = writeln!(out, "# TYPE {P}fd_usage_ratio gauge\n{P}fd_usage_ratio 0");
    let _ = writeln!(out, "# TYPE {P}uptime_seconds gauge\n{P}uptime_seconds {}", uptime.as_secs());
    for (name, n) in [
        ("connections_accepted_total", s.connections_accepted),
        ("admin_requests_total", s.admin_requests),
        ("hello_timeouts_total", s.hello_timeouts),
    ] {
        let _ = writeln!(out, "# TYPE librp_broker_{name} counter\nlibrp_broker_{name} {n}");
    }
    let _ = writeln!(out, "# TYPE librp_broker_handoffs_total counter");
    for (outcome, n) in [("started", s.handoffs_started), ("accepted", s.handoffs_accepted), ("failed", s.handoffs_failed)] {
        let _ = writeln!(out, "librp_broker_handoffs_total{{outcome=\"{outcome}\"}} {n}");
    }
    out.push_str("# EOF\n");
    out
}

/// Appends an admin RESPONSE frame of any kind to `out`.
fn admin_reply(
    request_id: u64,
    kind: AdminReplyKind,
    content_type: &str,
    body: String,
    exit_code: u32,
    out: &mut Vec<u8>,
) -> Result<(), WireError> {
    let reply = AdminReply { kind: kind as i32, body, exit_code, content_type: content_type.into() };
    let payload = reply.encode_to_vec();
    let frame = FrameView {
        kind: FrameKind::Response as i32,
        payload_protocol: registry::ADMIN,
        payload: &payload,
        request_id,
        ..FrameView::default()
    };
    frame.encode_to_vec(out).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_frame, Decoded};

    fn reply(request: AdminRequest, shared: &Shared) -> AdminReply {
        let mut out = Vec::new();
        answer(7, &request, shared, &["a", "b"], 3, &mut out).unwrap();
        let Decoded::Frame { frame, .. } = decode_frame(&out, u32::MAX).unwrap() else { panic!("no frame") };
        assert_eq!((frame.request_id, frame.payload_protocol), (7, registry::ADMIN));
        AdminReply::decode(frame.payload).unwrap()
    }

    #[test]
    fn verbs_limits_and_shutdown() {
        let shared = Shared::new(false).unwrap();
        let ask = |verb: AdminVerb| AdminRequest { verb: verb as i32, ..Default::default() };
        let r = reply(ask(AdminVerb::Healthz), &shared);
        assert_eq!((r.body.as_str(), r.exit_code), ("ok", 0));
        let r = reply(ask(AdminVerb::Status), &shared);
        assert_eq!((r.body.as_str(), r.exit_code), ("services: a,b; connections: 3", 0));
        let long = AdminRequest { service_name: "x".repeat(ADMIN_MAX_SERVICE_NAME + 1), ..ask(AdminVerb::Metrics) };
        assert_eq!(reply(long, &shared).exit_code, 2);
        let r = reply(ask(AdminVerb::Metrics), &shared);
        assert_eq!((r.kind, r.content_type.as_str()), (AdminReplyKind::Openmetrics as i32, OPENMETRICS_TYPE));
        assert!(r.body.ends_with("# EOF\n"));
        assert_eq!(reply(AdminRequest { verb: 9999, ..Default::default() }, &shared).exit_code, 2);
        assert_eq!(reply(ask(AdminVerb::Shutdown), &shared).exit_code, 0);
        let r = reply(ask(AdminVerb::Readyz), &shared);
        assert_eq!((r.body.as_str(), r.exit_code), ("shutting down", 1));
    }
}
