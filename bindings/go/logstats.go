package rp

/*
#include <stdint.h>
#include <rp.h>
int32_t rpg_log_set(int32_t max_level, uintptr_t handle);
*/
import "C"

import (
	"runtime/cgo"
)

// LogLevel is how much a log event matters (rp_log_level). Lower is more severe.
type LogLevel int32

// Log levels.
const (
	LogOff   LogLevel = 0
	LogError LogLevel = 1
	LogWarn  LogLevel = 2
	LogInfo  LogLevel = 3
	LogDebug LogLevel = 4
)

// String is the level's lower-case name.
func (l LogLevel) String() string {
	switch l {
	case LogOff:
		return "off"
	case LogError:
		return "error"
	case LogWarn:
		return "warn"
	case LogInfo:
		return "info"
	case LogDebug:
		return "debug"
	}
	return "unknown"
}

type logBox struct {
	fn func(level LogLevel, component, message string)
}

// SetLog sets the process-wide log callback, receiving the events at maxLevel and more severe:
// refused connections and why, registrations, workers lost, protocol violations, timeouts.
// component is "push-server", "push-worker", "broker" or "session". librp is silent without
// one. fn runs on librp's own threads (the push server's and broker's event loops, a session's
// reader) as well as on goroutines calling librp, possibly several at once: it must be safe for
// concurrent use. It may call back into this package. A panic in fn is recovered and dropped.
// SetLog(LogOff, nil) (or ClearLog) clears it. Errors: ErrInvalidArgument (unknown level).
func SetLog(maxLevel LogLevel, fn func(level LogLevel, component, message string)) error {
	if fn == nil || maxLevel == LogOff {
		return ClearLogLevel(maxLevel)
	}
	h := cgo.NewHandle(&logBox{fn: fn})
	st := C.rpg_log_set(C.int32_t(maxLevel), C.uintptr_t(h))
	if st != C.RP_STATUS_OK {
		h.Delete() // not taken on failure
		return &Error{Status: Status(st), Msg: "max level " + maxLevel.String() + " is not a log level"}
	}
	return nil
}

// ClearLog clears the log callback: librp is silent again.
func ClearLog() error { return ClearLogLevel(LogOff) }

// ClearLogLevel clears the log callback; a level other than LogOff is still checked.
func ClearLogLevel(level LogLevel) error {
	if st := C.rpg_log_set(C.int32_t(level), 0); st != C.RP_STATUS_OK {
		return &Error{Status: Status(st), Msg: "not a log level"}
	}
	return nil
}

//export rpgoLog
func rpgoLog(h C.uintptr_t, level C.int32_t, component, message *C.char) {
	defer func() { _ = recover() }()
	box := cgo.Handle(h).Value().(*logBox)
	box.fn(LogLevel(level), C.GoString(component), C.GoString(message))
}

// PushServerStats is what a push server did since it was bound (rp_push_server_stats). Pushes add
// up: PushesSent = PushesAnswered + PushesFailed + PushesTimedOut + PushesLost + PushesInFlight.
type PushServerStats struct {
	ConnectionsAccepted       uint64 // connections accepted (before any check)
	ConnectionsOpen           uint64 // connections open now
	WorkersRegistered         uint64 // workers registered now
	RegistrationsAccepted     uint64
	RegistrationsRejected     uint64
	WorkersLost               uint64 // registered workers that went away before shutdown
	HandshakeTimeouts         uint64 // connections that did not register in time
	ProtocolViolations        uint64 // connections closed for an unexpected or malformed frame
	PushesInFlight            uint64 // pushes waiting for their reply now
	PushesSent                uint64 // pushes written to a worker
	PushesAnswered            uint64 // answered with a payload
	PushesFailed              uint64 // answered with the worker's failure
	PushesTimedOut            uint64 // deadline passed without a reply
	PushesLost                uint64 // the worker went away (or the server shut down) first
	PushesUnsent              uint64 // never written (no worker, buffer full, too late, too large)
	BytesIn                   uint64
	BytesOut                  uint64
	RefusedPeerRejected       uint64 // refusals by code: PEER_REJECTED
	RefusedRateLimited        uint64 // RATE_LIMITED
	RefusedServiceUnknown     uint64 // SERVICE_UNKNOWN
	RefusedVersionUnsupported uint64 // VERSION_UNSUPPORTED
	RefusedShuttingDown       uint64 // SHUTTING_DOWN
	RefusedOther              uint64 // any other code
}

// Stats returns what the server did since it was bound.
func (s *PushServer) Stats() (PushServerStats, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	maybeGC()
	if s.ptr == nil {
		return PushServerStats{}, errServerClosed()
	}
	var c C.rp_push_server_stats
	c.size = C.uint64_t(C.sizeof_rp_push_server_stats)
	if st := C.rp_push_server_get_stats(s.ptr, &c); st != C.RP_STATUS_OK {
		return PushServerStats{}, &Error{Status: Status(st), Msg: "rp_push_server_get_stats failed"}
	}
	return PushServerStats{
		uint64(c.connections_accepted), uint64(c.connections_open), uint64(c.workers_registered),
		uint64(c.registrations_accepted), uint64(c.registrations_rejected), uint64(c.workers_lost),
		uint64(c.handshake_timeouts), uint64(c.protocol_violations), uint64(c.pushes_in_flight),
		uint64(c.pushes_sent), uint64(c.pushes_answered), uint64(c.pushes_failed),
		uint64(c.pushes_timed_out), uint64(c.pushes_lost), uint64(c.pushes_unsent),
		uint64(c.bytes_in), uint64(c.bytes_out), uint64(c.refused_peer_rejected),
		uint64(c.refused_rate_limited), uint64(c.refused_service_unknown),
		uint64(c.refused_version_unsupported), uint64(c.refused_shutting_down), uint64(c.refused_other),
	}, nil
}

// PushWorkerStats is what a worker did since it connected (rp_push_worker_stats).
type PushWorkerStats struct {
	PushesReceived    uint64
	PushesQueued      uint64 // received, not yet taken by Recv, now
	PushesOutstanding uint64 // taken, not yet answered, now
	RepliesSent       uint64
	FailuresSent      uint64
	CancelsReceived   uint64 // pushes the server cancelled (deadline passed)
	BytesIn           uint64
	BytesOut          uint64
	Reconnects        uint64 // times it connected and registered again after a loss (ReconnectPolicy)
}

// Stats returns what the worker did since it connected.
func (w *Worker) Stats() (PushWorkerStats, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	maybeGC()
	if w.ptr == nil {
		return PushWorkerStats{}, &Error{Status: StatusClosed, Msg: "worker closed"}
	}
	var c C.rp_push_worker_stats
	c.size = C.uint64_t(C.sizeof_rp_push_worker_stats)
	if st := C.rp_push_worker_get_stats(w.ptr, &c); st != C.RP_STATUS_OK {
		return PushWorkerStats{}, &Error{Status: Status(st), Msg: "rp_push_worker_get_stats failed"}
	}
	return PushWorkerStats{
		uint64(c.pushes_received), uint64(c.pushes_queued), uint64(c.pushes_outstanding),
		uint64(c.replies_sent), uint64(c.failures_sent), uint64(c.cancels_received),
		uint64(c.bytes_in), uint64(c.bytes_out), uint64(c.reconnects),
	}, nil
}

// BrokerServerStats is what a broker server did since it was bound (rp_broker_server_stats); the
// METRICS admin verb reports the same numbers.
type BrokerServerStats struct {
	ConnectionsAccepted       uint64
	ConnectionsOpen           uint64 // now, excluding those handed to a backend
	HellosNegotiated          uint64
	AdminRequests             uint64
	HelloTimeouts             uint64
	HandoffsStarted           uint64
	HandoffsAccepted          uint64
	HandoffsFailed            uint64
	RefusedPeerRejected       uint64 // refusals by code
	RefusedRateLimited        uint64
	RefusedServiceUnknown     uint64
	RefusedVersionUnsupported uint64
	RefusedVersionBlocked     uint64
	RefusedShuttingDown       uint64
	RefusedOther              uint64
}

// Stats returns what the broker did since it was bound.
func (s *BrokerServer) Stats() (BrokerServerStats, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	maybeGC()
	if s.ptr == nil {
		return BrokerServerStats{}, &Error{Status: StatusClosed, Msg: "broker closed"}
	}
	var c C.rp_broker_server_stats
	c.size = C.uint64_t(C.sizeof_rp_broker_server_stats)
	if st := C.rp_broker_server_get_stats(s.ptr, &c); st != C.RP_STATUS_OK {
		return BrokerServerStats{}, &Error{Status: Status(st), Msg: "rp_broker_server_get_stats failed"}
	}
	return BrokerServerStats{
		uint64(c.connections_accepted), uint64(c.connections_open), uint64(c.hellos_negotiated),
		uint64(c.admin_requests), uint64(c.hello_timeouts), uint64(c.handoffs_started),
		uint64(c.handoffs_accepted), uint64(c.handoffs_failed), uint64(c.refused_peer_rejected),
		uint64(c.refused_rate_limited), uint64(c.refused_service_unknown),
		uint64(c.refused_version_unsupported), uint64(c.refused_version_blocked),
		uint64(c.refused_shutting_down), uint64(c.refused_other),
	}, nil
}

// SessionStats is what a session did since it started (rp_session_stats).
type SessionStats struct {
	CallsStarted         uint64
	CallsSucceeded       uint64
	CallsFailed          uint64 // peer error, timeout, cancel, session ended
	CallsTimedOut        uint64 // of the failed calls
	CallsPending         uint64 // now
	RequestsReceived     uint64
	RequestsAnswered     uint64 // by the application
	RequestsAutoAnswered uint64 // by librp (no dispatcher, queue full, dropped, too late)
	RequestsQueued       uint64 // now
}

// Stats returns what the session did since it started.
func (s *Session) Stats() (SessionStats, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	maybeGC()
	if s.ptr == nil {
		return SessionStats{}, errSessionClosed()
	}
	var c C.rp_session_stats
	c.size = C.uint64_t(C.sizeof_rp_session_stats)
	if st := C.rp_session_get_stats(s.ptr, &c); st != C.RP_STATUS_OK {
		return SessionStats{}, &Error{Status: Status(st), Msg: "rp_session_get_stats failed"}
	}
	return SessionStats{
		uint64(c.calls_started), uint64(c.calls_succeeded), uint64(c.calls_failed),
		uint64(c.calls_timed_out), uint64(c.calls_pending), uint64(c.requests_received),
		uint64(c.requests_answered), uint64(c.requests_auto_answered), uint64(c.requests_queued),
	}, nil
}
