package rp

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"testing"
	"time"
)

// A blocking call whose context is cancelled returns ctx's error at once: the wait is woken,
// not polled. Each call is cancelled several times; the median delay from cancel to return
// must stay under 10 ms (a 50 ms polling slice gives a median near 25 ms). Afterwards no
// goroutine and no descriptor is left over, and the handle still works: waits on tickets and
// served requests are interrupted, leaving the push, call or request going on.
func TestCancelWakesBlockedCalls(t *testing.T) {
	s := startServer(t, &ServerOptions{OnWorker: func(*WorkerInfo, bool, string) {}})
	w := connectWorker(t, s, "idle")
	hw := connectWorker(t, s, "handling")
	holder := connectWorker(t, s, "holder")
	waitWorkers(t, s, 3)
	for { // take the registration event so that Dispatch has nothing pending
		n, err := s.Dispatch(ctxTimeout(t, 50*time.Millisecond))
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil || n == 0 {
			t.Fatalf("PushServer.Dispatch: %d, %v", n, err)
		}
	}
	handled := 0
	if err := hw.Handle(func(*Push) error { handled++; return nil }); err != nil {
		t.Fatal(err)
	}
	a, b := connPair(t)
	conn, err := AdoptConn(a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cb, err := AdoptConn(b)
	if err != nil {
		t.Fatal(err)
	}
	served, err := NewSession(cb, SessionAccepting, func(r *SessionRequest) { _ = r.Respond(nil) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { served.Close() })
	// A caller whose peer never answers (nobody reads the other end).
	a2, _ := connPair(t)
	callerConn, err := AdoptConn(a2)
	if err != nil {
		t.Fatal(err)
	}
	caller, err := NewSession(callerConn, SessionConnecting, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { caller.Close() })
	// A push a worker holds without answering, a call nobody answers and a request whose caller
	// streams nothing: their waits are interrupted, and each goes on for the next wait.
	tk, err := s.Push(&PushRequest{PayloadProtocol: 0x7001, Payload: []byte("held"), ToWorker: workerID(t, s, "holder")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tk.Close() })
	if _, err := holder.Recv(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	quiet, err := caller.Start(0xF100, []byte("quiet"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { quiet.Close() })
	reqs := make(chan *SessionRequest, 1)
	tunnelCaller, _ := sessionPair(t, func(side string) func(*SessionRequest) {
		return func(r *SessionRequest) { reqs <- r }
	})
	tunnel, err := tunnelCaller.Start(0xF100, []byte("tunnel"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tunnel.Close() })
	heldReq := <-reqs

	// The longest median delay allowed: a woken wait returns at once; SessionTicket.Wait is bound
	// by the session's own 20 ms read slices (the caller reads its own reply), plus slack for
	// the rpdebug build's collection before every C call. On Windows, where waits on named pipes
	// look every 1-5 ms and the tests run under Wine, each bound has 15 ms more.
	woken, sessionRead := 10*time.Millisecond, 35*time.Millisecond
	if runtime.GOOS == "windows" {
		woken, sessionRead = woken+15*time.Millisecond, sessionRead+15*time.Millisecond
	}
	calls := []struct {
		name     string
		maxDelay time.Duration
		call     func(ctx context.Context) error
	}{
		{"Worker.Recv", woken, func(ctx context.Context) error { _, err := w.Recv(ctx); return err }},
		{"Worker.Dispatch", woken, func(ctx context.Context) error { _, err := hw.Dispatch(ctx, 0); return err }},
		{"PushServer.Dispatch", woken, func(ctx context.Context) error { _, err := s.Dispatch(ctx); return err }},
		{"Conn.Recv", woken, func(ctx context.Context) error { _, err := conn.Recv(ctx); return err }},
		{"Session.Dispatch", woken, func(ctx context.Context) error { _, err := served.Dispatch(ctx); return err }},
		{"SessionTicket.Wait", sessionRead, func(ctx context.Context) error {
			c, err := caller.Start(0xF100, []byte("hold"))
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Wait(ctx)
			return err
		}},
		{"PushTicket.Wait", woken, func(ctx context.Context) error { _, err := tk.Wait(ctx); return err }},
		{"SessionTicket.Next", sessionRead, func(ctx context.Context) error { _, err := quiet.Next(ctx); return err }},
		{"SessionRequest.Next", sessionRead, func(ctx context.Context) error { _, err := heldReq.Next(ctx); return err }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			// Warm up: a handle makes its descriptor on first use.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
			_ = c.call(ctx)
			cancel()
			for _, d := range []time.Duration{time.Second, -1} { // with and without a deadline
				goroutines, fds := runtime.NumGoroutine(), openFds(t)
				var delays []time.Duration
				for i := 0; i < 9; i++ {
					var ctx context.Context
					var cancel context.CancelFunc
					if d > 0 {
						ctx, cancel = context.WithTimeout(context.Background(), d)
					} else {
						ctx, cancel = context.WithCancel(context.Background())
					}
					done := make(chan error, 1)
					go func() { done <- c.call(ctx) }()
					time.Sleep(time.Duration(5+i) * time.Millisecond)
					start := time.Now()
					cancel()
					select {
					case err := <-done:
						delays = append(delays, time.Since(start))
						if !errors.Is(err, context.Canceled) {
							t.Fatalf("after cancel: %v, want context.Canceled", err)
						}
					case <-time.After(5 * time.Second):
						t.Fatal("the call did not return after cancel")
					}
				}
				slices.Sort(delays)
				if delays[len(delays)/2] > c.maxDelay {
					t.Errorf("median delay from cancel to return %v (all: %v)", delays[len(delays)/2], delays)
				}
				deadline := time.Now().Add(2 * time.Second)
				for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				if n := runtime.NumGoroutine(); n > goroutines {
					t.Errorf("%d goroutines after the calls, %d before", n, goroutines)
				}
				if n := openFds(t); n > fds {
					t.Errorf("%d descriptors after the calls, %d before", n, fds)
				}
			}
		})
	}
	if handled != 0 {
		t.Fatalf("the handler ran %d times with no push sent", handled)
	}
	// The interrupted waits left their push, call and request going on.
	if tk.Done() || quiet.done() {
		t.Fatal("an interrupted wait ended its push or call")
	}
	if err := tunnel.Send([]byte("c")); err != nil {
		t.Fatal(err)
	}
	if chunk, err := heldReq.Next(ctxTimeout(t, 5*time.Second)); err != nil || string(chunk) != "c" {
		t.Fatalf("SessionRequest.Next after interrupted waits: %q, %v", chunk, err)
	}
	_ = heldReq.Respond(nil)

	// The handles still work: a push sent after the cancelled waits reaches Recv.
	tkIdle, err := s.Push(&PushRequest{PayloadProtocol: 0x7001, Payload: []byte("x"), ToWorker: workerID(t, s, "idle")})
	if err != nil {
		t.Fatal(err)
	}
	defer tkIdle.Close()
	p, err := w.Recv(ctxTimeout(t, 5*time.Second))
	if err != nil || string(p.Payload) != "x" {
		t.Fatalf("Recv after cancelled waits: %v, %v", p, err)
	}
}

func workerID(t *testing.T, s *PushServer, identity string) uint64 {
	t.Helper()
	ws, err := s.Workers()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.Identity == identity {
			return w.ID
		}
	}
	t.Fatalf("no worker %q", identity)
	return 0
}

// Close wakes a call waiting with a context that can end (the poll on the handle's
// descriptor), as it wakes one waiting without.
func TestCloseWakesCallsWaitingWithAContext(t *testing.T) {
	w := connectWorker(t, startServer(t, nil), "idle")
	s := startServer(t, &ServerOptions{OnWorker: func(*WorkerInfo, bool, string) {}}) // no workers: no events
	a, b := connPair(t)
	conn, err := AdoptConn(a)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := AdoptConn(b)
	if err != nil {
		t.Fatal(err)
	}
	served, err := NewSession(cb, SessionAccepting, func(r *SessionRequest) { _ = r.Respond(nil) })
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		call  func(ctx context.Context) error
		close func() error
	}{
		{"Worker.Recv", func(ctx context.Context) error { _, err := w.Recv(ctx); return err }, w.Close},
		{"PushServer.Dispatch", func(ctx context.Context) error { _, err := s.Dispatch(ctx); return err }, s.Close},
		{"Conn.Recv", func(ctx context.Context) error { _, err := conn.Recv(ctx); return err }, conn.Close},
		{"Session.Dispatch", func(ctx context.Context) error { _, err := served.Dispatch(ctx); return err }, served.Close},
	} {
		done := make(chan error, 1)
		go func() { done <- c.call(ctxTimeout(t, 10*time.Second)) }()
		time.Sleep(20 * time.Millisecond)
		start := time.Now()
		c.close()
		select {
		case err := <-done:
			if !errors.Is(err, ErrClosed) {
				t.Errorf("%s after Close: %v, want ErrClosed", c.name, err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("%s returned %v after Close", c.name, d)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not return after Close", c.name)
		}
	}
}
