//go:build unix

// Unix only: the daemon listens with net.Listen("unix"); Go's standard library has no
// named-pipe listener.

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

// A Go daemon serves its legacy wire, v1 consumer frames and identity probes on one Unix
// socket through a Mux, to three clients at once.
func TestMuxDaemonOnUnixSocket(t *testing.T) {
	path := sockPath(t, "daemon.sock")
	id := testIdentity(t, path)
	m, err := NewMux(id, []uint32{0x7001}, legacyDetect)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := serveConn(m, c)
				if err != nil && !errors.Is(err, ErrUnservedProtocol) {
					t.Logf("daemon connection: %v", err)
				}
				errs <- err
			}()
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	// Legacy client, written in two pieces.
	legacy := dial()
	msg := []byte{legacyMagic, 5, 'h', 'e', 'l', 'l', 'o'}
	legacy.Write(msg[:3])
	time.Sleep(20 * time.Millisecond)
	legacy.Write(msg[3:])
	echo := make([]byte, len(msg))
	legacy.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(legacy, echo); err != nil || !bytes.Equal(echo, msg) {
		t.Fatalf("legacy echo %q %v", echo, err)
	}

	// v1 client: two requests in one write.
	v1 := dial()
	var out []byte
	for i, p := range []string{"ping", "pong"} {
		out, err = AppendFrame(out, &Frame{PayloadProtocol: 0x7001, RequestID: uint64(10 + i), Payload: []byte(p), Traceparent: "tp"})
		if err != nil {
			t.Fatal(err)
		}
	}
	v1.Write(out)
	v1r := &frameReader{c: v1}
	for i, want := range []string{"PING", "PONG"} {
		f := v1r.next(t)
		if f.Kind != KindResponse || f.RequestID != uint64(10+i) || string(f.Payload) != want || f.Traceparent != "tp" {
			t.Fatalf("v1 response %+v", f)
		}
	}

	// Identity probe: the reply echoes the nonce and carries this identity.
	prober := dial()
	nonce := bytes.Repeat([]byte{0x5a}, 32)
	probe, _ := EncodeFrame(&Frame{PayloadProtocol: ProtocolIdentityProbe, RequestID: 7, Payload: nonce})
	prober.Write(probe)
	f := (&frameReader{c: prober}).next(t)
	want, err := id.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if f.Kind != KindResponse || f.RequestID != 7 || !bytes.Equal(f.Payload[:32], nonce) || !bytes.Equal(f.Payload[32:], want) {
		t.Fatalf("probe reply %+v (identity %x)", f, want)
	}

	// A frame of a protocol the daemon does not serve ends that connection.
	bad := dial()
	b, _ := EncodeFrame(&Frame{PayloadProtocol: 0x7002, RequestID: 1})
	bad.Write(b)
	bad.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := bad.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("unserved protocol: read %d %v", n, err)
	}
	for _, c := range []net.Conn{legacy, v1, prober} {
		c.Close()
	}
	l.Close()
	wg.Wait()
	close(errs)
	var unserved int
	for err := range errs {
		if errors.Is(err, ErrUnservedProtocol) {
			unserved++
		} else if err != nil {
			t.Errorf("connection ended with %v", err)
		}
	}
	if unserved != 1 {
		t.Fatalf("%d connections ended with ErrUnservedProtocol", unserved)
	}
}
