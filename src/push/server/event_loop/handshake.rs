//! The handshake of a new connection: the Hello (service, version, token), the registration
//! (checked, then accepted at once or put to the application), and refusals.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use mio::Token;
use prost::Message;

use super::EventLoop;
use crate::control::{check_hello_fields, hello_reply_frame, negotiated, Refusal};
use crate::log::Peer;
use crate::push::proto::{Registration, RegistrationAck};
use crate::push::server::link::RegisteredWorker;
use crate::push::server::parse::{constant_time_eq, push_frame, Phase};
use crate::push::server::types::{RegistrationDecision, ServerEvent, WorkerInfo};
use crate::push::{check_registration, PUSH_PROTOCOL_VERSION};
use crate::stats;
use crate::wire::proto::{hello_reply, ErrorCode, FrameKind, Hello};
use crate::wire::MAX_BODY;

impl EventLoop {
    pub(super) fn on_hello(&mut self, token: Token, request_id: u64, hello: Hello) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        let check = check_hello_fields(&hello, conn.peer.as_ref()).and_then(|()| {
            if hello.service_name != self.opts.service_name {
                let mut refusal = Refusal::new(ErrorCode::ServiceUnknown, "service is not registered");
                refusal.details.insert(crate::push::SERVICE_DETAIL.into(), self.opts.service_name.clone());
                return Err(refusal);
            }
            if !hello.wanted_version.starts_with("1.") {
                return Err(Refusal::new(
                    ErrorCode::VersionUnsupported,
                    format!("push protocol {} is not served (this server speaks 1.x)", hello.wanted_version),
                ));
            }
            if !self.opts.auth_token.is_empty() && !constant_time_eq(&hello.auth_token, &self.opts.auth_token) {
                return Err(Refusal::new(ErrorCode::PeerRejected, "authentication failed"));
            }
            if self.shared.stopping.load(Ordering::Acquire) {
                return Err(Refusal::new(ErrorCode::ShuttingDown, "the server is shutting down"));
            }
            Ok(())
        });
        match check {
            // A refused Hello names the server's role, so the client can say what it reached
            // (framing-level refusals stay byte-identical to the reference broker's).
            Err(mut refusal) => {
                refusal.details.insert(crate::push::ROLE_DETAIL.into(), crate::push::PUSH_SERVER_ROLE.into());
                self.refuse(token, request_id, refusal)
            }
            Ok(()) => {
                let connection_id = self.next_connection_id;
                self.next_connection_id += 1;
                let reply = negotiated(PUSH_PROTOCOL_VERSION, connection_id, hello.client_keepalive_secs);
                conn.phase = Phase::Registering;
                let bytes = hello_reply_frame(request_id, hello_reply::Result::Negotiated(reply));
                self.send(token, &bytes);
            }
        }
    }

    pub(super) fn on_registration(&mut self, token: Token, request_id: u64, reg: Registration) {
        let worker_id = self.next_connection_id;
        self.next_connection_id += 1;
        let Some(conn) = self.conns.get_mut(&token) else { return };
        conn.worker_id = worker_id;
        conn.registration_request_id = request_id;
        if let Err(reason) = check_registration(&reg) {
            return self.answer_registration(token, RegistrationDecision::Reject(reason));
        }
        if self.opts.decide_registrations {
            conn.registration = Some(reg.clone());
            conn.phase = Phase::AwaitingDecision;
            let peer = conn.peer;
            let tls_identity = conn.link.sock.tls_identity();
            self.pending_decisions.insert(worker_id, token);
            self.shared.emit(ServerEvent::RegistrationRequest { worker_id, registration: reg, peer, tls_identity });
        } else {
            conn.registration = Some(reg);
            self.answer_registration(token, RegistrationDecision::Accept);
        }
    }

    pub(super) fn answer_registration(&mut self, token: Token, decision: RegistrationDecision) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        self.pending_decisions.remove(&conn.worker_id);
        let ack = match &decision {
            RegistrationDecision::Accept => {
                RegistrationAck { accepted: true, reason: String::new(), worker_id: conn.worker_id }
            }
            RegistrationDecision::Reject(reason) => {
                RegistrationAck { accepted: false, reason: reason.clone(), worker_id: 0 }
            }
        };
        let mut frame = Vec::new();
        push_frame(&mut frame, FrameKind::Response, conn.registration_request_id, &ack.encode_to_vec(), None)
            .expect("a registration ack is far below the frame cap");
        match decision {
            RegistrationDecision::Accept => {
                conn.phase = Phase::Registered;
                let registration = conn.registration.take().unwrap_or_default();
                let task_queue = registration.task_queue.clone();
                let payload_protocols = registration.payload_protocols.clone();
                let tls_identity = conn.link.sock.tls_identity();
                let info = WorkerInfo { id: conn.worker_id, registration, peer: conn.peer, tls_identity, in_flight: 0 };
                let link = Arc::clone(&conn.link);
                stats::bump(&self.shared.stats.registrations_accepted);
                crate::log!(
                    Info,
                    "push-server",
                    "worker {} registered from {}: identity {:?}, task queue {:?}",
                    info.id,
                    Peer(info.peer),
                    info.registration.identity,
                    info.registration.task_queue
                );
                // Decided later (not while the event loop reads this link, which raises the cap
                // itself): replies may now be as large as any frame.
                if let Ok(mut reader) = link.reader.try_lock() {
                    reader.set_max_body(MAX_BODY);
                }
                let _ = link.worker.set(RegisteredWorker { id: info.id, task_queue, payload_protocols });
                // The ack is queued before the worker can be picked, so every push queues behind
                // it; and the worker is known before the ack reaches it.
                link.lock_io().out.extend(&frame);
                self.shared.links.write().unwrap_or_else(|p| p.into_inner()).insert(info.id, link);
                self.shared.workers.lock().unwrap_or_else(|p| p.into_inner()).insert(info.id, info.clone());
                self.shared.emit(ServerEvent::WorkerConnected(info));
                self.flush(token);
            }
            RegistrationDecision::Reject(reason) => {
                stats::bump(&self.shared.stats.registrations_rejected);
                crate::log!(
                    Warn,
                    "push-server",
                    "registration of connection {} from {} rejected: {reason}",
                    token.0,
                    Peer(conn.peer)
                );
                conn.phase = Phase::Closing;
                self.send(token, &frame);
            }
        }
    }

    pub(super) fn refuse(&mut self, token: Token, request_id: u64, refusal: Refusal) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        conn.phase = Phase::Closing;
        self.shared.stats.refused.count(refusal.code);
        crate::log!(
            Warn,
            "push-server",
            "connection {} from {} refused ({}): {}",
            token.0,
            Peer(conn.peer),
            refusal.code_name(),
            refusal.reason
        );
        let bytes = hello_reply_frame(request_id, hello_reply::Result::Refused(refusal.to_message()));
        self.send(token, &bytes);
    }
}
