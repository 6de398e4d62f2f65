package rp

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// expectInvalid fails unless err is ErrInvalidArgument with needle in its message.
func expectInvalid(t *testing.T, what string, err error, needle string) {
	t.Helper()
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), needle) {
		t.Errorf("%s: got %v, want ErrInvalidArgument mentioning %q", what, err, needle)
	}
}

// Values are checked by the call that takes them: nothing listens at the
// endpoint, so a check left to the peer would show up as ErrIO instead.
func TestValidationBeforeConnecting(t *testing.T) {
	ep := sockPath(t, "nobody.sock")
	ctx := ctxTimeout(t, 5*time.Second)
	_, err := Connect(ctx, ep, WorkerOptions{Identity: ""})
	expectInvalid(t, "empty identity", err, "1-256 bytes")
	_, err = Connect(ctx, ep, WorkerOptions{Identity: strings.Repeat("w", 299)})
	expectInvalid(t, "299-byte identity", err, "identity is 299 bytes long")
	_, err = Connect(ctx, ep, WorkerOptions{Identity: "w", Service: "Push_Service"})
	expectInvalid(t, "service name", err, "1-64 characters of [a-z0-9-]")

	_, _, err = ConnectBroker(ctx, BrokerOptions{Endpoint: ep, Service: "Echo", WantedVersion: "1.2.3"})
	expectInvalid(t, "broker service name", err, `service_name "Echo" is invalid`)
	_, _, err = ConnectBroker(ctx, BrokerOptions{Endpoint: ep, Service: "echo", WantedVersion: "1.2"})
	expectInvalid(t, "wanted version", err, "MAJOR.MINOR.PATCH")
}

func TestValidationPushRefusesFirstPartyProtocol(t *testing.T) {
	s := startServer(t, nil)
	_, err := s.Push(&PushRequest{PayloadProtocol: 0xAD01, Payload: []byte("x")})
	expectInvalid(t, "first-party payload protocol", err, "first-party")
	_, err = s.Push(&PushRequest{PayloadProtocol: 0x7001, ToProtocol: 0xD0FF})
	expectInvalid(t, "first-party target protocol", err, "first-party")
}
