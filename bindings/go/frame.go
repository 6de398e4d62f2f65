package rp

/*
#include "shims.h"
*/
import "C"

import (
	"runtime"
	"time"
	"unsafe"
)

// FrameKind is a frame's kind (rp_frame_kind).
type FrameKind int32

// Frame kinds.
const (
	KindRequest  FrameKind = C.RP_FRAME_KIND_REQUEST
	KindResponse FrameKind = C.RP_FRAME_KIND_RESPONSE
	KindEvent    FrameKind = C.RP_FRAME_KIND_EVENT
	KindCancel   FrameKind = C.RP_FRAME_KIND_CANCEL
)

// Frame is one v1 frame. When it comes from [DecodeFrame] or [Mux.Poll], Payload is a
// sub-slice of the caller's buffer (no copy): it is valid while that buffer is unchanged.
type Frame struct {
	EnvelopeVersion uint32 // 0 is sent as 1
	Kind            FrameKind
	PayloadProtocol uint32
	PayloadEncoding int32
	RequestID       uint64
	Deadline        time.Time // zero = none
	Payload         []byte
	Traceparent     string
	Tracestate      string
}

func unixMs(t time.Time) C.uint64_t {
	if t.IsZero() {
		return 0
	}
	return C.uint64_t(t.UnixMilli())
}

func fromUnixMs(ms C.uint64_t) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms))
}

func (f *Frame) header() C.rpg_frame {
	v := f.EnvelopeVersion
	if v == 0 {
		v = 1
	}
	return C.rpg_frame{
		envelope_version: C.uint32_t(v),
		kind:             C.int32_t(f.Kind),
		payload_protocol: C.uint32_t(f.PayloadProtocol),
		payload_encoding: C.int32_t(f.PayloadEncoding),
		request_id:       C.uint64_t(f.RequestID),
		deadline_unix_ms: unixMs(f.Deadline),
		payload_len:      C.size_t(len(f.Payload)),
		traceparent_len:  C.size_t(len(f.Traceparent)),
		tracestate_len:   C.size_t(len(f.Tracestate)),
	}
}

func strPtr(s string) *C.char {
	if s == "" {
		return nil
	}
	return (*C.char)(unsafe.Pointer(unsafe.StringData(s)))
}

// frameFrom rebuilds a frame whose byte fields are offsets into buf.
func frameFrom(f *C.rpg_frame, buf []byte) Frame {
	sub := func(off, n C.size_t) []byte {
		if n == 0 {
			return nil
		}
		return buf[int(off) : int(off)+int(n) : int(off)+int(n)]
	}
	return Frame{
		EnvelopeVersion: uint32(f.envelope_version),
		Kind:            FrameKind(f.kind),
		PayloadProtocol: uint32(f.payload_protocol),
		PayloadEncoding: int32(f.payload_encoding),
		RequestID:       uint64(f.request_id),
		Deadline:        fromUnixMs(f.deadline_unix_ms),
		Payload:         sub(f.payload_off, f.payload_len),
		Traceparent:     string(sub(f.traceparent_off, f.traceparent_len)),
		Tracestate:      string(sub(f.tracestate_off, f.tracestate_len)),
	}
}

// growEncode runs an encoder that reports the size it needs, appending to dst.
func growEncode(dst []byte, guess int, enc func(buf *C.uint8_t, cap C.size_t, outLen *C.size_t, e *C.rpg_err) C.int32_t) ([]byte, error) {
	for {
		if cap(dst)-len(dst) < guess {
			n := make([]byte, len(dst), len(dst)+guess)
			copy(n, dst)
			dst = n
		}
		spare := dst[len(dst):cap(dst)]
		var outLen C.size_t
		var e C.rpg_err
		st := enc(bytesPtr(spare), C.size_t(len(spare)), &outLen, &e)
		if st == C.RP_STATUS_BUFFER_TOO_SMALL && int(outLen) > len(spare) {
			_ = takeErr(0, &e)
			guess = int(outLen)
			continue
		}
		if err := takeErr(st, &e); err != nil {
			return dst, err
		}
		return dst[:len(dst)+int(outLen)], nil
	}
}

// AppendFrame encodes f (header and body) and appends it to dst.
func AppendFrame(dst []byte, f *Frame) ([]byte, error) {
	h := f.header()
	guess := 64 + len(f.Payload) + len(f.Traceparent) + len(f.Tracestate)
	out, err := growEncode(dst, guess, func(buf *C.uint8_t, cp C.size_t, outLen *C.size_t, e *C.rpg_err) C.int32_t {
		return C.rpg_frame_encode(&h, bytesPtr(f.Payload), strPtr(f.Traceparent), strPtr(f.Tracestate), buf, cp, outLen, e)
	})
	runtime.KeepAlive(f)
	return out, err
}

// EncodeFrame encodes f into a new slice.
func EncodeFrame(f *Frame) ([]byte, error) { return AppendFrame(nil, f) }

// AppendResponse appends the RESPONSE frame answering req (same payload protocol, request id
// and trace context) with payload.
func AppendResponse(dst []byte, req *Frame, payload []byte) ([]byte, error) {
	h := req.header()
	h.payload_len = 0
	guess := 64 + len(payload) + len(req.Traceparent) + len(req.Tracestate)
	out, err := growEncode(dst, guess, func(buf *C.uint8_t, cp C.size_t, outLen *C.size_t, e *C.rpg_err) C.int32_t {
		return C.rpg_frame_encode_response(&h, strPtr(req.Traceparent), strPtr(req.Tracestate), bytesPtr(payload), C.size_t(len(payload)), buf, cp, outLen, e)
	})
	runtime.KeepAlive(req)
	runtime.KeepAlive(payload)
	return out, err
}

// DecodeFrame decodes the frame at the front of buf. maxBody is the body cap (0 =
// FrameMaxBody; use HelloMaxBody for a connection's first frame).
//
// It returns the frame and the bytes it occupies. When buf holds only part of a frame the
// error is [ErrIncomplete] and n is the total number of bytes needed (at least). The frame's
// Payload points into buf.
func DecodeFrame(buf []byte, maxBody int) (f Frame, n int, err error) {
	var cf C.rpg_frame
	var outLen C.size_t
	var e C.rpg_err
	st := C.rpg_frame_decode(bytesPtr(buf), C.size_t(len(buf)), C.uint32_t(maxBody), &cf, &outLen, &e)
	runtime.KeepAlive(buf)
	if err := takeErr(st, &e); err != nil {
		return Frame{}, int(outLen), err
	}
	return frameFrom(&cf, buf), int(outLen), nil
}
