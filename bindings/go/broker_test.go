//go:build unix

// Unix only: the backends here are Go daemons listening with net.Listen("unix"), and Go's
// standard library has no named-pipe listener (on Windows librp's broker is tested in Rust:
// tests/broker.rs, tests/broker_server.rs, tests/handoff_pipes.rs).

package rp

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// startBackend serves v1 requests on protocol 0x7001 on a fresh Unix socket with a Mux
// (serveConn answers with the payload in upper case); it stops when the test ends.
func startBackend(t *testing.T) string {
	t.Helper()
	path := sockPath(t, "backend.sock")
	m, err := NewMux(testIdentity(t, path), []uint32{0x7001}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				serveConn(m, c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
		m.Close()
	})
	return path
}

func exchange(t *testing.T, c *Conn, id uint64, text string) {
	t.Helper()
	if err := c.Send(&Frame{PayloadProtocol: 0x7001, RequestID: id, Payload: []byte(text)}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	f, err := c.Recv(ctxTimeout(t, 5*time.Second))
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	want := bytes.ToUpper([]byte(text))
	if f.Kind != KindResponse || f.RequestID != id || f.PayloadProtocol != 0x7001 || !bytes.Equal(f.Payload, want) {
		t.Fatalf("reply %+v, want RESPONSE %d %q", f, id, want)
	}
}

// A client reaches a Go backend through a Go-hosted broker (Hello, then a new connection to
// the negotiated backend), then again by hello-skip from the cached endpoint.
func TestBrokerNegotiatedThenHelloSkip(t *testing.T) {
	backend := startBackend(t)
	b := startBroker(t, &BrokerServerOptions{Services: []BrokerService{
		{Name: "echo", Backend: backend, DaemonVersion: "1.2.3"},
	}})
	ctx := ctxTimeout(t, 10*time.Second)
	opts := BrokerOptions{Endpoint: b.Endpoint(), Service: "echo", WantedVersion: "1.2.3", ClientVersion: "go-test/1"}
	c, res, err := ConnectBroker(ctx, opts)
	if err != nil {
		t.Fatalf("ConnectBroker: %v", err)
	}
	defer c.Close()
	if res.Route != RouteNegotiated || res.Endpoint != backend || res.DaemonVersion != "1.2.3" || res.ConnectionID == 0 {
		t.Fatalf("result %+v", res)
	}
	if res.Route.String() != "negotiated" {
		t.Fatalf("route name %q", res.Route)
	}
	exchange(t, c, 7, "through the broker")
	if c.Fd() < 0 {
		t.Fatal("no descriptor")
	}
	pid, uid, _, err := c.PeerCredentials()
	if err != nil || pid != uint32(os.Getpid()) || uid != uint32(os.Getuid()) {
		t.Fatalf("peer credentials pid %d uid %d: %v", pid, uid, err)
	}
	if _, err := c.TryRecv(0); !errors.Is(err, ErrTimeout) {
		t.Fatalf("TryRecv with nothing sent: %v", err)
	}

	opts.CachedEndpoint = res.Endpoint
	c2, res2, err := ConnectBroker(ctx, opts)
	if err != nil {
		t.Fatalf("ConnectBroker (cached): %v", err)
	}
	if res2.Route != RouteHelloSkip || res2.Endpoint != backend || res2.DaemonVersion != "" {
		t.Fatalf("cached result %+v", res2)
	}
	exchange(t, c2, 8, "skipped the hello")
	c2.Close()
	c2.Close() // idempotent
	if err := c2.Send(&Frame{PayloadProtocol: 0x7001}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if _, err := c2.Recv(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Recv after Close: %v", err)
	}
	if c2.Fd() != -1 {
		t.Fatal("Fd after Close")
	}

	// A dead cached endpoint falls back to the Hello.
	opts.CachedEndpoint = sockPath(t, "gone.sock")
	c3, res3, err := ConnectBroker(ctx, opts)
	if err != nil {
		t.Fatalf("ConnectBroker (dead cache): %v", err)
	}
	defer c3.Close()
	if res3.Route != RouteNegotiated {
		t.Fatalf("dead cache route %v", res3.Route)
	}
}

// Refusals carry the broker's code, reason and retry hint.
func TestBrokerRefusals(t *testing.T) {
	backend := startBackend(t)
	b := startBroker(t, &BrokerServerOptions{Services: []BrokerService{
		{Name: "echo", Backend: backend, DaemonVersion: "1.2.3", MinVersion: "0.5.0", Block: []string{"1.0.0"}},
		{Name: "picky", Backend: backend, DaemonVersion: "2.0.0", Allow: []string{"2.0.0"}},
	}})
	ctx := ctxTimeout(t, 10*time.Second)
	for _, tc := range []struct {
		service, version string
		code             ErrorCode
		retry            bool
	}{
		{"nosuch", "1.2.3", CodeServiceUnknown, false},
		{"echo", "1.0.0", CodeVersionBlocked, false},
		{"echo", "0.4.0", CodeVersionBlocked, true},
		{"picky", "1.2.3", CodeVersionBlocked, true},
	} {
		c, res, err := ConnectBroker(ctx, BrokerOptions{Endpoint: b.Endpoint(), Service: tc.service, WantedVersion: tc.version})
		var re *RefusedError
		if !errors.As(err, &re) || c != nil || res != nil {
			t.Fatalf("%s %s: got %v, %v, %v; want a refusal", tc.service, tc.version, c, res, err)
		}
		if !errors.Is(err, ErrRefused) || re.Code != tc.code || re.Reason == "" || (re.RetryAfter > 0) != tc.retry {
			t.Fatalf("%s %s: refusal %+v, want code %d retry %v", tc.service, tc.version, re, tc.code, tc.retry)
		}
	}

	rep, err := AdminRequest(ctx, b.Endpoint(), AdminHealthz, "")
	if err != nil || rep.ExitCode != 0 || string(rep.Body) != "ok" {
		t.Fatalf("healthz: %+v, %v", rep, err)
	}

	b.BeginShutdown()
	_, _, err = ConnectBroker(ctx, BrokerOptions{Endpoint: b.Endpoint(), Service: "echo", WantedVersion: "1.2.3"})
	var re *RefusedError
	if !errors.As(err, &re) || re.Code != CodeShuttingDown || re.RetryAfter <= 0 {
		t.Fatalf("after BeginShutdown: %v", err)
	}
	b.Close()
	b.Close() // idempotent
	b.BeginShutdown()
	_, _, err = ConnectBroker(ctx, BrokerOptions{Endpoint: b.Endpoint(), Service: "echo", WantedVersion: "1.2.3"})
	if !errors.Is(err, ErrIO) {
		t.Fatalf("after Close: %v", err)
	}
}

// The rate limit refuses with a retry hint.
func TestBrokerRateLimited(t *testing.T) {
	backend := startBackend(t)
	b := startBroker(t, &BrokerServerOptions{RateLimit: 1, RateWindow: time.Minute, Services: []BrokerService{
		{Name: "echo", Backend: backend, DaemonVersion: "1.2.3"},
	}})
	ctx := ctxTimeout(t, 10*time.Second)
	opts := BrokerOptions{Endpoint: b.Endpoint(), Service: "echo", WantedVersion: "1.2.3"}
	c, _, err := ConnectBroker(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	_, _, err = ConnectBroker(ctx, opts)
	var re *RefusedError
	if !errors.As(err, &re) || re.Code != CodeRateLimited || re.RetryAfter <= 0 {
		t.Fatalf("second Hello: %v", err)
	}
}

// Recv returns when its context is done, and when another goroutine closes the Conn.
func TestConnRecvCancelAndClose(t *testing.T) {
	backend := startBackend(t)
	b := startBroker(t, &BrokerServerOptions{Services: []BrokerService{
		{Name: "echo", Backend: backend, DaemonVersion: "1.2.3"},
	}})
	c, _, err := ConnectBroker(ctxTimeout(t, 5*time.Second), BrokerOptions{Endpoint: b.Endpoint(), Service: "echo", WantedVersion: "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(100 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	if _, err := c.Recv(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv with a cancelled context: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cancellation noticed after %v", d)
	}
	exchange(t, c, 1, "still usable") // nothing was lost

	done := make(chan error, 1)
	go func() {
		_, err := c.Recv(context.Background())
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("blocked Recv after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake Recv")
	}

	// A context already done: no connect at all.
	_, _, err = ConnectBroker(ctx, BrokerOptions{Endpoint: b.Endpoint(), Service: "echo", WantedVersion: "1.2.3"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ConnectBroker with a done context: %v", err)
	}
}

// RUNNING_PROCESS_DISABLE=1 fails a connect that honours it with ErrDisabled.
func TestBrokerDisabledByEnv(t *testing.T) {
	t.Setenv("RUNNING_PROCESS_DISABLE", "1")
	if d, err := DisabledByEnv(); err != nil || !d {
		t.Fatalf("DisabledByEnv: %v, %v", d, err)
	}
	_, _, err := ConnectBroker(ctxTimeout(t, 5*time.Second), BrokerOptions{Endpoint: sockPath(t, "none.sock"),
		Service: "echo", WantedVersion: "1.2.3", HonorDisableEnv: true})
	if !errors.Is(err, ErrDisabled) {
		t.Fatalf("ConnectBroker: %v", err)
	}
	t.Setenv("RUNNING_PROCESS_DISABLE", "maybe")
	if _, err := DisabledByEnv(); !errors.Is(err, ErrConfig) {
		t.Fatalf("DisabledByEnv(maybe): %v", err)
	}
}

// A handed-off connection adopted by a Go backend becomes a Conn (AdoptConn).
func TestBrokerHandoffToGoBackend(t *testing.T) {
	store, err := NewHandoffStore(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	backend := startBackend(t)
	hoPath := sockPath(t, "handoff.sock")
	l, err := net.Listen("unix", hoPath)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	served := make(chan error, 1)
	go func() {
		served <- func() error {
			c, err := l.Accept()
			if err != nil {
				return err
			}
			defer c.Close()
			f, err := store.Accept(c.(*net.UnixConn), 3*time.Second)
			if err != nil {
				return err
			}
			defer f.Close()
			conn, err := AdoptConn(f)
			if err != nil {
				return err
			}
			defer conn.Close()
			req, err := conn.Recv(ctxTimeout(t, 5*time.Second))
			if err != nil {
				return err
			}
			resp := &Frame{Kind: KindResponse, PayloadProtocol: req.PayloadProtocol, RequestID: req.RequestID,
				Payload: bytes.ToUpper(req.Payload)}
			if err := conn.Send(resp); err != nil {
				return err
			}
			_, err = conn.Recv(ctxTimeout(t, 5*time.Second)) // until the client closes
			if !errors.Is(err, ErrClosed) {
				return err
			}
			return nil
		}()
	}()
	b := startBroker(t, &BrokerServerOptions{Services: []BrokerService{
		{Name: "echo-ho", Backend: backend, DaemonVersion: "1.2.3", HandoffEndpoint: hoPath, HandoffStore: store},
	}})
	c, res, err := ConnectBroker(ctxTimeout(t, 10*time.Second), BrokerOptions{Endpoint: b.Endpoint(),
		Service: "echo-ho", WantedVersion: "1.2.3", AdoptHandoff: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Route != RouteHandedOff {
		t.Fatalf("route %v", res.Route)
	}
	exchange(t, c, 3, "handed over")
	c.Close()
	if err := <-served; err != nil {
		t.Fatalf("backend: %v", err)
	}
}

// ConnectBroker returns when its context is cancelled while a silent broker never answers
// the Hello.
func TestConnectBrokerCancelledDuringHello(t *testing.T) {
	path := sockPath(t, "silent.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	held := make(chan net.Conn, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			held <- c // read nothing, answer nothing
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(150*time.Millisecond, cancel)
	start := time.Now()
	_, _, err = ConnectBroker(ctx, BrokerOptions{Endpoint: path, Service: "echo", WantedVersion: "1.2.3", Timeout: 3 * time.Second})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ConnectBroker: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("returned %v after the cancel", d)
	}
	select {
	case c := <-held:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the broker never saw the connection")
	}
}
