package rp

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// roundTrip binds a push server at bindAt, connects a worker at connectVia (the server's
// Endpoint() when empty; else the same endpoint spelled another way), and pushes one payload
// through it.
func roundTrip(t *testing.T, bindAt, connectVia string) *PushServer {
	t.Helper()
	s, err := Bind(bindAt, nil)
	if err != nil {
		t.Fatalf("Bind(%s): %v", bindAt, err)
	}
	t.Cleanup(func() { s.Close() })
	if connectVia == "" {
		connectVia = s.Endpoint()
	}
	w, err := Connect(ctxTimeout(t, 5*time.Second), connectVia, WorkerOptions{Identity: "w", PayloadProtocols: []uint32{0x7001}})
	if err != nil {
		t.Fatalf("Connect(%s): %v", connectVia, err)
	}
	t.Cleanup(func() { w.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		for p, err := range w.Pushes(ctx) {
			if err != nil {
				return
			}
			w.Reply(p.CorrelationID, bytes.ToUpper(p.Payload))
		}
	}()
	res, err := s.PushWait(ctxTimeout(t, 5*time.Second), &PushRequest{PayloadProtocol: 0x7001, Payload: []byte("over " + connectVia)})
	if err != nil || res.Failed || string(res.Payload) != strings.ToUpper("over "+connectVia) {
		t.Fatalf("PushWait over %s: %+v %v", connectVia, res, err)
	}
	return s
}

// A push server on TCP (port 0: the endpoint names the port taken) and a worker round-trip a
// push.
func TestPushRoundTripOverTCP(t *testing.T) {
	s := roundTrip(t, "tcp://127.0.0.1:0", "")
	if !strings.HasPrefix(s.Endpoint(), "tcp://127.0.0.1:") || strings.HasSuffix(s.Endpoint(), ":0") {
		t.Fatalf("Endpoint() = %q", s.Endpoint())
	}
}
