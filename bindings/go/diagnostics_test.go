package rp

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Error() names the status once; before, librp's message repeated it
// ("rp: protocol violation: protocol violation: ...").
func TestErrorNamesStatusOnce(t *testing.T) {
	s := startServer(t, nil)
	ctx := ctxTimeout(t, 5*time.Second)
	// A broker client that reached a push server is told the peer is not a broker.
	_, _, err := ConnectBroker(ctx, BrokerOptions{Endpoint: s.Endpoint(), Service: "librp-push", WantedVersion: "1.0.0"})
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("ConnectBroker to a push server: %v, want ErrProtocol", err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "rp: protocol violation: ") || strings.Count(msg, "protocol violation") != 1 ||
		!strings.Contains(msg, "is not a broker") {
		t.Errorf("Error() = %q", msg)
	}
	for _, c := range []struct {
		err  *Error
		want string
	}{
		{&Error{Status: StatusClosed, Msg: "closed: closed locally"}, "rp: closed: closed locally"},
		{&Error{Status: StatusIO, Msg: "connect: x"}, "rp: i/o error: connect: x"},
		{&Error{Status: StatusTimeout}, "rp: timed out"},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
	}
}

// A worker pointed at a broker is told what the peer is.
func TestWorkerToldItReachedABroker(t *testing.T) {
	b, err := BindBroker(sockPath(t, "broker.sock"), &BrokerServerOptions{
		Services: []BrokerService{{Name: "echo", Backend: "/tmp/nowhere.sock", DaemonVersion: "1.0.0"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = Connect(ctxTimeout(t, 5*time.Second), b.Endpoint(), WorkerOptions{Identity: "w"})
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Code != CodeServiceUnknown {
		t.Fatalf("Connect to a broker: %v, want a SERVICE_UNKNOWN refusal", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "is not a librp push server") || strings.Count(msg, "refused") != 1 {
		t.Errorf("Error() = %q", msg)
	}
}
