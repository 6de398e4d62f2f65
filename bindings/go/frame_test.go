package rp

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestVersionMatchesHeader(t *testing.T) {
	if VersionNumber() != HeaderVersion {
		t.Fatalf("library %d (%s), header %d", VersionNumber(), Version(), HeaderVersion)
	}
}

func TestFrameRoundTripBorrowsBuffer(t *testing.T) {
	dl := time.UnixMilli(1_900_000_000_123)
	in := Frame{Kind: KindEvent, PayloadProtocol: 0x7001, RequestID: 99, Deadline: dl,
		Payload: []byte("hello"), Traceparent: "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01", Tracestate: "k=v"}
	buf, err := EncodeFrame(&in)
	if err != nil {
		t.Fatal(err)
	}
	if buf[0] != 1 || int(buf[1])+FrameHeaderLen != len(buf) {
		t.Fatalf("header %x for %d bytes", buf[:FrameHeaderLen], len(buf))
	}
	trailing := append(append([]byte{}, buf...), 0xAA, 0xBB)
	out, n, err := DecodeFrame(trailing, 0)
	if err != nil || n != len(buf) {
		t.Fatalf("decode: n=%d err=%v", n, err)
	}
	if out.Kind != KindEvent || out.PayloadProtocol != 0x7001 || out.RequestID != 99 ||
		!out.Deadline.Equal(dl) || string(out.Payload) != "hello" ||
		out.Traceparent != in.Traceparent || out.Tracestate != "k=v" || out.EnvelopeVersion != 1 {
		t.Fatalf("decoded %+v", out)
	}
	// The payload is a view into the caller's buffer, not a copy.
	i := bytes.Index(trailing, []byte("hello"))
	trailing[i] = 'J'
	if string(out.Payload) != "Jello" {
		t.Fatalf("payload is not a view of the buffer: %q", out.Payload)
	}
	if cap(out.Payload) != len(out.Payload) {
		t.Fatalf("payload view can grow into the buffer: cap %d", cap(out.Payload))
	}
}

func TestDecodeErrors(t *testing.T) {
	buf, err := EncodeFrame(&Frame{PayloadProtocol: 0x7001, Payload: make([]byte, 100)})
	if err != nil {
		t.Fatal(err)
	}
	_, need, err := DecodeFrame(buf[:10], 0)
	if !errors.Is(err, ErrIncomplete) || need < len(buf) {
		t.Fatalf("partial frame: need=%d err=%v", need, err)
	}
	_, _, err = DecodeFrame([]byte{9, 0, 0, 0, 0}, 0)
	if !errors.Is(err, ErrUnsupportedFraming) {
		t.Fatalf("bad framing byte: %v", err)
	}
	var rerr *Error
	if !errors.As(err, &rerr) || rerr.Msg == "" || errors.Is(err, ErrTimeout) {
		t.Fatalf("error value %#v", err)
	}
	_, _, err = DecodeFrame([]byte{1, 0xff, 0xff, 0xff, 0x7f}, 0)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge announced body: %v", err)
	}
	if _, err := EncodeFrame(&Frame{Traceparent: "\xff\xfe"}); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("invalid UTF-8 traceparent: %v", err)
	}
}

func TestAppendResponse(t *testing.T) {
	req := Frame{PayloadProtocol: 0x7002, RequestID: 7, Traceparent: "tp", Payload: []byte("ignored")}
	prefix := []byte("xx")
	out, err := AppendResponse(prefix, &req, bytes.Repeat([]byte{'z'}, 4096))
	if err != nil {
		t.Fatal(err)
	}
	if string(out[:2]) != "xx" {
		t.Fatal("prefix lost")
	}
	f, n, err := DecodeFrame(out[2:], 0)
	if err != nil || n != len(out)-2 {
		t.Fatal(n, err)
	}
	if f.Kind != KindResponse || f.RequestID != 7 || f.PayloadProtocol != 0x7002 ||
		f.Traceparent != "tp" || len(f.Payload) != 4096 {
		t.Fatalf("response %+v", f)
	}
}

func TestStatusStrings(t *testing.T) {
	if StatusTimeout.String() == StatusClosed.String() || StatusTimeout.String() == "" {
		t.Fatal("status names")
	}
	e := &Error{Status: StatusNotFound, Msg: "no such worker"}
	if !errors.Is(e, ErrNotFound) || errors.Is(e, ErrClosed) {
		t.Fatal("Is")
	}
}
