package rp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// The worker on a liminal endpoint (liminal+tcp://host:port) against a fake liminal server:
// the bytes of the Connect, the WorkerRegister, the PushReply and the refusal record, the Pong,
// and the end of the connection on a Disconnect.

// liminalFrame builds one liminal frame: type, flags, stream, payload length, payload.
func liminalFrame(kind, flags byte, stream uint32, payload []byte) []byte {
	b := []byte{kind, flags}
	b = binary.BigEndian.AppendUint32(b, stream)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

func appendStr(b []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint32(b, uint32(len(s))), s...)
}

// readLiminalFrame reads one whole frame.
func readLiminalFrame(r io.Reader) ([]byte, error) {
	head := make([]byte, 10)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(head[6:])
	if n > 1<<16 {
		return nil, fmt.Errorf("frame announces %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(head, body...), nil
}

// fakeLiminal accepts one connection and runs script on it (under a 5 s deadline); the
// script's error, or nil, arrives on the returned channel.
func fakeLiminal(t *testing.T, script func(c net.Conn) error) (endpoint string, done <-chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			ch <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		ch <- script(c)
	}()
	return "liminal+tcp://" + l.Addr().String(), ch
}

// expectFrame reads a frame and compares it with want.
func expectFrame(c net.Conn, what string, want []byte) error {
	got, err := readLiminalFrame(c)
	if err != nil {
		return fmt.Errorf("reading the %s: %w", what, err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("the worker's %s:\n got  %x\n want %x", what, got, want)
	}
	return nil
}

func TestLiminalWorkerBytes(t *testing.T) {
	connect := liminalFrame(0x01, 0, 0, appendStr([]byte{0, 1, 0, 0, 0, 1, 0, 3}, "go-token"))
	var reg []byte
	reg = binary.BigEndian.AppendUint32(reg, 1)
	reg = appendStr(reg, "default")
	reg = appendStr(reg, "go.queue")
	reg = appendStr(append(reg, 1), "node-g") // node present
	reg = binary.BigEndian.AppendUint32(reg, 1)
	reg = appendStr(reg, "go.echo")
	reg = appendStr(reg, "go-liminal-worker")
	reg = binary.BigEndian.AppendUint32(reg, 1) // the descriptor tail
	reg = appendStr(appendStr(appendStr(reg, "go.echo"), `{"type":"string"}`), `{"type":"object"}`)
	push := func(id uint64, payload string) []byte {
		return liminalFrame(0x15, 0, 1, appendStr(binary.BigEndian.AppendUint64(nil, id), payload))
	}
	reply := liminalFrame(0x16, 0, 1, appendStr(binary.BigEndian.AppendUint64(nil, 7), `"GO"`))
	refusal := liminalFrame(0x16, 1, 1, appendStr(binary.BigEndian.AppendUint64(nil, 8), `{"code":"busy","words":"too \"busy\""}`))
	pong := liminalFrame(0x14, 0, 0, nil)

	endpoint, done := fakeLiminal(t, func(c net.Conn) error {
		if err := expectFrame(c, "Connect", connect); err != nil {
			return err
		}
		c.Write(liminalFrame(0x02, 0, 0, []byte{0, 1, 0, 2, 0, 0, 0, 0})) // 1.2
		if err := expectFrame(c, "WorkerRegister", liminalFrame(0x17, 0, 0, reg)); err != nil {
			return err
		}
		c.Write(liminalFrame(0x18, 0, 0, []byte{0}))
		var out []byte
		out = append(out, liminalFrame(0x13, 0, 0, nil)...) // Ping
		out = append(out, push(7, `"go"`)...)
		out = append(out, liminalFrame(0x42, 0, 9, []byte("skipped"))...) // unknown to a worker
		out = append(out, push(8, `"again"`)...)
		c.Write(out)
		// The Pong, the reply and the refusal, in the order the worker's reads made.
		want := map[string][]byte{"Pong": pong, "PushReply": reply, "refusal": refusal}
		for len(want) > 0 {
			got, err := readLiminalFrame(c)
			if err != nil {
				return fmt.Errorf("waiting for %d more frames: %w", len(want), err)
			}
			matched := false
			for name, w := range want {
				if bytes.Equal(got, w) {
					delete(want, name)
					matched = true
				}
			}
			if !matched {
				return fmt.Errorf("unexpected frame from the worker: %x", got)
			}
		}
		c.Write(liminalFrame(0x04, 0, 0, nil)) // Disconnect
		io.Copy(io.Discard, c)                 // until the worker goes
		return nil
	})

	w, err := Connect(ctxTimeout(t, 5*time.Second), endpoint, WorkerOptions{
		Identity: "go-liminal-worker", TaskQueue: "go.queue", Namespaces: []string{"default"},
		ActivityTypes: []string{"go.echo"}, Node: "node-g", AuthToken: []byte("go-token"),
		ActivityDescriptors: []ActivityDescriptor{{Name: "go.echo", InputSchemaJSON: `{"type":"string"}`, OutputSchemaJSON: `{"type":"object"}`}},
	})
	if err != nil {
		t.Fatalf("Connect: %v (server: %v)", err, serverErr(done))
	}
	defer w.Close()
	if w.ID() != 0 {
		t.Errorf("worker id %d on a liminal endpoint", w.ID())
	}
	p, err := w.Recv(ctxTimeout(t, 5*time.Second))
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	if p.CorrelationID != 7 || string(p.Payload) != `"go"` || p.PayloadProtocol != 0 || !p.Deadline.IsZero() || p.Traceparent != "" {
		t.Errorf("push %+v", p)
	}
	if err := w.Reply(p.CorrelationID, bytes.ToUpper(p.Payload)); err != nil {
		t.Fatalf("Reply: %v", err)
	}
	p, err = w.Recv(ctxTimeout(t, 5*time.Second))
	if err != nil || p.CorrelationID != 8 {
		t.Fatalf("second Recv: %+v %v", p, err)
	}
	if err := w.ReplyError(8, int32(StatusAgain), strings.Repeat("x", 1025)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("ReplyError with 1025 bytes of words: %v", err)
	}
	if err := w.ReplyError(8, int32(StatusAgain), `too "busy"`); err != nil {
		t.Fatalf("ReplyError: %v", err)
	}
	if _, err := w.Recv(ctxTimeout(t, 5*time.Second)); !errors.Is(err, ErrClosed) {
		t.Errorf("Recv after the Disconnect: %v", err)
	}
	w.Close()
	if err := <-done; err != nil {
		t.Fatalf("fake liminal server: %v", err)
	}
}

// serverErr gives the fake server's outcome if it is already known.
func serverErr(done <-chan error) error {
	select {
	case err := <-done:
		return err
	case <-time.After(100 * time.Millisecond):
		return nil
	}
}

func TestLiminalConnectErrorIsRefused(t *testing.T) {
	endpoint, done := fakeLiminal(t, func(c net.Conn) error {
		if _, err := readLiminalFrame(c); err != nil {
			return err
		}
		c.Write(liminalFrame(0x03, 0, 0, appendStr([]byte{0x00, 0x06, 1}, "revocation_binding_missing")))
		return nil
	})
	_, err := Connect(ctxTimeout(t, 5*time.Second), endpoint, WorkerOptions{Identity: "w", TaskQueue: "q"})
	var refused *RefusedError
	if !errors.As(err, &refused) || !strings.Contains(refused.Reason, "0x0006") ||
		!strings.Contains(refused.Reason, "revocation_binding_missing") || refused.Details["liminal.reason_code"] != "6" {
		t.Fatalf("Connect refused with 0x0006: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("fake liminal server: %v", err)
	}
}

func TestLiminalRefusesWhatItHasNoRoomFor(t *testing.T) {
	ctx := ctxTimeout(t, 5*time.Second)
	// Refused while the options are built: nothing is dialled (nothing listens on port 1).
	for name, opts := range map[string]WorkerOptions{
		"Service":          {Identity: "w", Service: "other-service"},
		"PayloadProtocols": {Identity: "w", PayloadProtocols: []uint32{0x7001}},
		"Identity of 993":  {Identity: strings.Repeat("i", 993)},
	} {
		if _, err := Connect(ctx, "liminal+tcp://127.0.0.1:1", opts); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s on a liminal endpoint: %v", name, err)
		}
	}
	_, err := Connect(ctx, "tcp://127.0.0.1:1", WorkerOptions{Identity: "w", ActivityDescriptors: []ActivityDescriptor{{Name: "a"}}})
	if !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("ActivityDescriptors on a librp endpoint: %v", err)
	}
}
