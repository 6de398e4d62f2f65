package rp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

const legacyMagic = 'L' // the test daemon's own wire: 'L', length byte, body

func legacyDetect(buf []byte) LegacyVerdict {
	if buf[0] == legacyMagic {
		return Legacy
	}
	return NotLegacy
}

func testIdentity(t testing.TB, path string) *DaemonIdentity {
	t.Helper()
	id, err := NewDaemonIdentity()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { id.Close() })
	for _, err := range []error{
		id.SetPID(4242), id.SetExePath("/usr/bin/demo-daemon"), id.SetEndpoint("demo", path),
		id.SetBootID("0f0e0d0c-0b0a-0908-0706-050403020100"), id.SetStartedAt(time.UnixMilli(1_700_000_000_000)),
		id.SetIdleTimeout(30 * time.Second), id.SetExeHash("blake3", bytes.Repeat([]byte{7}, 32)),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return id
}

// serveConn is a daemon's connection loop driven by Mux.Poll: legacy messages are echoed,
// probes answered, consumer requests answered with the payload in upper case.
func serveConn(m *Mux, c net.Conn) error {
	defer c.Close()
	var buf []byte
	chunk := make([]byte, 4096)
	for {
		ev, err := m.Poll(buf)
		if err != nil {
			return err
		}
		switch ev.Kind {
		case MuxNeedMoreBytes:
			n, err := c.Read(chunk)
			if err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
			buf = append(buf, chunk[:n]...)
			continue
		case MuxLegacy:
			if len(buf) < 2 || len(buf) < 2+int(buf[1]) {
				n, err := c.Read(chunk)
				if err != nil {
					return err
				}
				buf = append(buf, chunk[:n]...)
				continue
			}
			ev.Consumed = 2 + int(buf[1])
			if _, err := c.Write(buf[:ev.Consumed]); err != nil {
				return err
			}
		case MuxProbeAnswered:
			if _, err := c.Write(ev.Reply); err != nil {
				return err
			}
		case MuxPayload:
			out, err := AppendResponse(nil, &ev.Frame, bytes.ToUpper(ev.Frame.Payload))
			if err != nil {
				return err
			}
			if _, err := c.Write(out); err != nil {
				return err
			}
		}
		buf = append(buf[:0], buf[ev.Consumed:]...)
	}
}

// frameReader reads v1 frames from a connection, keeping bytes that arrive early.
type frameReader struct {
	c   net.Conn
	buf []byte
}

func (r *frameReader) next(t testing.TB) Frame {
	t.Helper()
	r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	chunk := make([]byte, 4096)
	for {
		f, n, err := DecodeFrame(r.buf, 0)
		if err == nil {
			f.Payload = append([]byte(nil), f.Payload...)
			r.buf = r.buf[n:]
			return f
		}
		if !errors.Is(err, ErrIncomplete) {
			t.Fatal(err)
		}
		k, err := r.c.Read(chunk)
		if err != nil {
			t.Fatal(err)
		}
		r.buf = append(r.buf, chunk[:k]...)
	}
}

func TestMuxVerdictsAndErrors(t *testing.T) {
	id := testIdentity(t, "/tmp/x.sock")
	m, err := NewMux(id, []uint32{0x7001, 0xF00D}, func(buf []byte) LegacyVerdict {
		switch buf[0] {
		case 'P':
			panic("detector boom")
		case '?':
			return NeedMore
		case 'X':
			return LegacyVerdict(9)
		}
		return legacyDetect(buf)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if ev, err := m.Poll(nil); err != nil || ev.Kind != MuxNeedMoreBytes {
		t.Fatalf("empty: %+v %v", ev, err)
	}
	if ev, err := m.Poll([]byte("?abc")); err != nil || ev.Kind != MuxNeedMoreBytes || ev.Consumed != 0 {
		t.Fatalf("need more: %+v %v", ev, err)
	}
	if ev, err := m.Poll([]byte("Labc")); err != nil || ev.Kind != MuxLegacy {
		t.Fatalf("legacy: %+v %v", ev, err)
	}
	if _, err := m.Poll([]byte("X")); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("bad verdict: %v", err)
	}
	ctl, _ := EncodeFrame(&Frame{PayloadProtocol: ProtocolControl})
	if _, err := m.Poll(ctl); !errors.Is(err, ErrFirstPartyFrame) {
		t.Fatalf("control frame: %v", err)
	}
	fr, _ := EncodeFrame(&Frame{PayloadProtocol: 0xF00D, RequestID: 3, Payload: []byte("abc")})
	if ev, err := m.Poll(fr[:len(fr)-1]); err != nil || ev.Kind != MuxNeedMoreBytes {
		t.Fatalf("partial frame: %+v %v", ev, err)
	}
	ev, err := m.Poll(fr)
	if err != nil || ev.Kind != MuxPayload || ev.Consumed != len(fr) || string(ev.Frame.Payload) != "abc" {
		t.Fatalf("payload: %+v %v", ev, err)
	}
	if &ev.Frame.Payload[0] != &fr[bytes.Index(fr, []byte("abc"))] {
		t.Fatal("payload is not a view into the polled slice")
	}
	func() {
		defer func() {
			if r := recover(); r != "detector boom" {
				t.Fatalf("recovered %v", r)
			}
		}()
		m.Poll([]byte("P"))
		t.Fatal("Poll did not re-panic")
	}()
	if _, err := NewMux(id, []uint32{ProtocolHandoff}, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("serving a first-party protocol: %v", err)
	}

	// Many goroutines poll one mux at once (the detector runs on each).
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				ev, err := m.Poll(fr)
				if err != nil || ev.Kind != MuxPayload || string(ev.Frame.Payload) != "abc" {
					t.Errorf("concurrent poll: %+v %v", ev, err)
					return
				}
				if ev, err := m.Poll([]byte("Lx")); err != nil || ev.Kind != MuxLegacy {
					t.Errorf("concurrent legacy poll: %+v %v", ev, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	m.Close()
	m.Close()
	if _, err := m.Poll(fr); !errors.Is(err, ErrClosed) {
		t.Fatalf("Poll after Close: %v", err)
	}
}
