package rp

/*
#include <stdlib.h>
#include "shims.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"
)

// Status is a librp status code (rp_status). The values never change.
type Status int32

// The librp status codes.
const (
	StatusOK                 Status = C.RP_STATUS_OK
	StatusAgain              Status = C.RP_STATUS_AGAIN
	StatusTimeout            Status = C.RP_STATUS_TIMEOUT
	StatusClosed             Status = C.RP_STATUS_CLOSED
	StatusDisabled           Status = C.RP_STATUS_DISABLED
	StatusCancelled          Status = C.RP_STATUS_CANCELLED
	StatusInterrupted        Status = C.RP_STATUS_INTERRUPTED
	StatusIncomplete         Status = C.RP_STATUS_INCOMPLETE
	StatusBufferTooSmall     Status = C.RP_STATUS_BUFFER_TOO_SMALL
	StatusNullArgument       Status = C.RP_STATUS_NULL_ARGUMENT
	StatusInvalidArgument    Status = C.RP_STATUS_INVALID_ARGUMENT
	StatusInvalidUTF8        Status = C.RP_STATUS_INVALID_UTF8
	StatusNotFound           Status = C.RP_STATUS_NOT_FOUND
	StatusProtocol           Status = C.RP_STATUS_PROTOCOL
	StatusUnsupportedFraming Status = C.RP_STATUS_UNSUPPORTED_FRAMING
	StatusTooLarge           Status = C.RP_STATUS_TOO_LARGE
	StatusTruncated          Status = C.RP_STATUS_TRUNCATED
	StatusMalformed          Status = C.RP_STATUS_MALFORMED
	StatusUnservedProtocol   Status = C.RP_STATUS_UNSERVED_PROTOCOL
	StatusFirstPartyFrame    Status = C.RP_STATUS_FIRST_PARTY_FRAME
	StatusMalformedProbe     Status = C.RP_STATUS_MALFORMED_PROBE
	StatusRefused            Status = C.RP_STATUS_REFUSED
	StatusRejected           Status = C.RP_STATUS_REJECTED
	StatusPermissionDenied   Status = C.RP_STATUS_PERMISSION_DENIED
	StatusPeerError          Status = C.RP_STATUS_PEER_ERROR
	StatusIO                 Status = C.RP_STATUS_IO
	StatusConfig             Status = C.RP_STATUS_CONFIG
	StatusNoMemory           Status = C.RP_STATUS_NO_MEMORY
	StatusPanic              Status = C.RP_STATUS_PANIC
)

// String returns librp's static name for the status.
func (s Status) String() string { return C.GoString(C.rp_status_str(C.int32_t(s))) }

// Error is a failed librp call: its status and the message librp recorded for it.
type Error struct {
	Status Status
	Msg    string
}

// Error gives "rp: STATUS: MESSAGE", naming the status once (librp's messages often start
// with it).
func (e *Error) Error() string {
	word := e.Status.String()
	if e.Msg == "" {
		return "rp: " + word
	}
	if rest, ok := strings.CutPrefix(e.Msg, word); ok && (rest == "" || strings.ContainsRune(": (", rune(rest[0]))) {
		return "rp: " + e.Msg
	}
	return "rp: " + word + ": " + e.Msg
}

// Is reports whether target is an *Error with the same status, so that
// errors.Is(err, rp.ErrTimeout) holds for every timeout whatever its message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == e.Status
}

// Sentinels for errors.Is. Only the status is compared.
var (
	ErrAgain              = &Error{Status: StatusAgain}
	ErrTimeout            = &Error{Status: StatusTimeout}
	ErrClosed             = &Error{Status: StatusClosed}
	ErrDisabled           = &Error{Status: StatusDisabled}
	ErrCancelled          = &Error{Status: StatusCancelled}
	ErrInterrupted        = &Error{Status: StatusInterrupted}
	ErrIncomplete         = &Error{Status: StatusIncomplete}
	ErrBufferTooSmall     = &Error{Status: StatusBufferTooSmall}
	ErrNullArgument       = &Error{Status: StatusNullArgument}
	ErrInvalidArgument    = &Error{Status: StatusInvalidArgument}
	ErrInvalidUTF8        = &Error{Status: StatusInvalidUTF8}
	ErrNotFound           = &Error{Status: StatusNotFound}
	ErrProtocol           = &Error{Status: StatusProtocol}
	ErrUnsupportedFraming = &Error{Status: StatusUnsupportedFraming}
	ErrTooLarge           = &Error{Status: StatusTooLarge}
	ErrTruncated          = &Error{Status: StatusTruncated}
	ErrMalformed          = &Error{Status: StatusMalformed}
	ErrUnservedProtocol   = &Error{Status: StatusUnservedProtocol}
	ErrFirstPartyFrame    = &Error{Status: StatusFirstPartyFrame}
	ErrMalformedProbe     = &Error{Status: StatusMalformedProbe}
	ErrRefused            = &Error{Status: StatusRefused}
	ErrRejected           = &Error{Status: StatusRejected}
	ErrPermissionDenied   = &Error{Status: StatusPermissionDenied}
	ErrPeerError          = &Error{Status: StatusPeerError}
	ErrIO                 = &Error{Status: StatusIO}
	ErrConfig             = &Error{Status: StatusConfig}
	ErrNoMemory           = &Error{Status: StatusNoMemory}
	ErrPanic              = &Error{Status: StatusPanic}
)

// ErrorCode is the protocol's reason for a refusal (rp_error_code). Newer servers may send
// values not listed here.
type ErrorCode int32

// The protocol's refusal codes.
const (
	CodeUnspecified        ErrorCode = C.RP_ERROR_CODE_UNSPECIFIED
	CodeVersionUnsupported ErrorCode = C.RP_ERROR_CODE_VERSION_UNSUPPORTED
	CodeServiceUnknown     ErrorCode = C.RP_ERROR_CODE_SERVICE_UNKNOWN
	CodeBackendSpawnFailed ErrorCode = C.RP_ERROR_CODE_BACKEND_SPAWN_FAILED
	CodeRateLimited        ErrorCode = C.RP_ERROR_CODE_RATE_LIMITED
	CodeShuttingDown       ErrorCode = C.RP_ERROR_CODE_SHUTTING_DOWN
	CodePeerRejected       ErrorCode = C.RP_ERROR_CODE_PEER_REJECTED
	CodeInternal           ErrorCode = C.RP_ERROR_CODE_INTERNAL
	CodeVersionBlocked     ErrorCode = C.RP_ERROR_CODE_VERSION_BLOCKED
	CodeFDPressure         ErrorCode = C.RP_ERROR_CODE_FD_PRESSURE
)

// RefusedError is a server's refusal (status [StatusRefused]): its code, reason, retry hint
// and details. errors.Is(err, rp.ErrRefused) holds for it.
type RefusedError struct {
	Code       ErrorCode
	Reason     string
	RetryAfter time.Duration // 0 = no hint
	Details    map[string]string
	Msg        string // librp's description of the failure
}

// Error gives librp's description (the code's name, the reason, and what the refusal says
// about the peer when librp can tell), and the retry hint.
func (e *RefusedError) Error() string {
	s := fmt.Sprintf("rp: refused (code %d): %s", e.Code, e.Reason)
	if e.Msg != "" {
		s = (&Error{Status: StatusRefused, Msg: e.Msg}).Error()
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %v)", e.RetryAfter)
	}
	return s
}

// Is matches [ErrRefused].
func (e *RefusedError) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == StatusRefused
}

// Unwrap gives the plain *Error form of the refusal.
func (e *RefusedError) Unwrap() error { return &Error{Status: StatusRefused, Msg: e.Msg} }

func goStr(p *C.char, n C.size_t) string {
	if p == nil || n == 0 {
		return ""
	}
	return C.GoStringN(p, C.int(n))
}

func rpStr(s C.rp_str) string { return goStr(s.ptr, s.len) }

func rpBytes(b C.rp_bytes) []byte {
	if b.ptr == nil || b.len == 0 {
		return []byte{}
	}
	return C.GoBytes(unsafe.Pointer(b.ptr), C.int(b.len))
}

// takeErr turns a shim's outcome into a Go error and releases the C memory it holds. It
// re-panics with the value stashed by a callback that panicked during the call.
func takeErr(st C.int32_t, e *C.rpg_err) error {
	panicked, pv := takePanic(uint64(e.panic_id))
	msg := goStr(e.msg, e.msg_len)
	if e.msg != nil {
		C.free(unsafe.Pointer(e.msg))
		e.msg = nil
	}
	var err error
	if e.refusal != nil {
		err = refusalFrom(e.refusal, msg)
		C.rp_refusal_free(e.refusal)
		e.refusal = nil
	} else if st != C.RP_STATUS_OK {
		err = &Error{Status: Status(st), Msg: msg}
	}
	if panicked {
		panic(pv)
	}
	return err
}

func refusalFrom(r *C.rp_refusal, msg string) *RefusedError {
	re := &RefusedError{
		Code:       ErrorCode(C.rp_refusal_code(r)),
		Reason:     rpStr(C.rp_refusal_reason(r)),
		RetryAfter: time.Duration(C.rp_refusal_retry_after_ms(r)) * time.Millisecond,
		Msg:        msg,
	}
	n := int(C.rp_refusal_detail_count(r))
	if n > 0 {
		re.Details = make(map[string]string, n)
		for i := 0; i < n; i++ {
			var k, v C.rp_str
			if C.rp_refusal_detail(r, C.size_t(i), &k, &v) == C.RP_STATUS_OK {
				re.Details[rpStr(k)] = rpStr(v)
			}
		}
	}
	return re
}

// ctxErr returns the context's error once it is done.
func ctxErr(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	default:
		return nil
	}
}

// isStatus reports whether err is an *Error (or refusal) with status s.
func isStatus(err error, s Status) bool { return errors.Is(err, &Error{Status: s}) }
