package rp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// sessionPair makes a session on each end of a socket pair, each serving the peer's requests
// with serve in a Dispatch loop until the test ends.
func sessionPair(t *testing.T, serve func(side string) func(*SessionRequest)) (connecting, accepting *Session) {
	t.Helper()
	a, b := connPair(t)
	ca, err := AdoptConn(a)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := AdoptConn(b)
	if err != nil {
		t.Fatal(err)
	}
	connecting, err = NewSession(ca, SessionConnecting, serve("connecting"))
	if err != nil {
		t.Fatal(err)
	}
	accepting, err = NewSession(cb, SessionAccepting, serve("accepting"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, s := range []*Session{connecting, accepting} {
		wg.Add(1)
		go func(s *Session) {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := s.Dispatch(ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, ErrClosed) {
					t.Errorf("dispatch: %v", err)
					return
				}
			}
		}(s)
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		connecting.Close()
		accepting.Close()
	})
	return connecting, accepting
}

func echoing(side string) func(*SessionRequest) {
	return func(r *SessionRequest) {
		switch string(r.Payload) {
		case "refuse":
			_ = r.RespondError(1042, "refused by the "+side+" side")
		case "hold":
			// Answered much later, from another goroutine.
			go func() {
				time.Sleep(500 * time.Millisecond)
				_ = r.Respond([]byte("late"))
			}()
		default:
			if err := r.Respond([]byte(side + " echoes: " + string(r.Payload))); err != nil {
				panic(err)
			}
		}
	}
}

func TestSessionBothSidesCallEachOther(t *testing.T) {
	c, a := sessionPair(t, echoing)
	ctx := ctxTimeout(t, 5*time.Second)
	got, err := c.Call(ctx, 0xF100, []byte("hi"))
	if err != nil || string(got) != "accepting echoes: hi" {
		t.Fatalf("connecting side's call: %q, %v", got, err)
	}
	got, err = a.Call(ctx, 0xF100, []byte("ho"))
	if err != nil || string(got) != "connecting echoes: ho" {
		t.Fatalf("accepting side's call: %q, %v", got, err)
	}
	// Many calls from many goroutines at once, each answer matched to its call.
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				msg := strings.Repeat("x", g) + "-" + string(rune('a'+i%26))
				got, err := c.Call(ctx, 0xF100, []byte(msg))
				if err != nil || string(got) != "accepting echoes: "+msg {
					t.Errorf("call %d/%d: %q, %v", g, i, got, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

func TestSessionPeerErrorAndCancellation(t *testing.T) {
	c, _ := sessionPair(t, echoing)
	_, err := c.Call(ctxTimeout(t, 5*time.Second), 0xF100, []byte("refuse"))
	var e *Error
	if !errors.As(err, &e) || e.Status != StatusPeerError || !strings.Contains(e.Msg, "refused by the accepting side") {
		t.Fatalf("expected the peer's error, got %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Call(ctx, 0xF100, []byte("hold"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expected the context's error, got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Call returned %v after its context ended", d)
	}
}

func TestSessionWithoutDispatcherAndClose(t *testing.T) {
	a, b := connPair(t)
	ca, _ := AdoptConn(a)
	cb, _ := AdoptConn(b)
	caller, err := NewSession(ca, SessionConnecting, nil)
	if err != nil {
		t.Fatal(err)
	}
	silent, err := NewSession(cb, SessionAccepting, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = caller.Call(ctxTimeout(t, 5*time.Second), 0xF100, []byte("anyone?"))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("a peer without a dispatcher answers NOT_FOUND, got %v", err)
	}
	// The Conn was taken over.
	if err := ca.Send(&Frame{PayloadProtocol: 0x7001}); !errors.Is(err, ErrClosed) {
		t.Fatalf("the adopted Conn must be closed, got %v", err)
	}
	silent.Close()
	_, err = caller.Call(ctxTimeout(t, 5*time.Second), 0xF100, []byte("gone?"))
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("expected ErrClosed once the peer closed, got %v", err)
	}
	caller.Close()
	caller.Close() // idempotent
	if _, err := caller.Call(context.Background(), 1, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("use after Close: %v", err)
	}
}

func TestSessionDispatcherPanicIsRaisedInDispatch(t *testing.T) {
	a, b := connPair(t)
	ca, _ := AdoptConn(a)
	cb, _ := AdoptConn(b)
	caller, err := NewSession(ca, SessionConnecting, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Close()
	server, err := NewSession(cb, SessionAccepting, func(r *SessionRequest) { panic("dispatcher bug") })
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		_, _ = server.Dispatch(context.Background())
	}()
	_, err = caller.Call(ctxTimeout(t, 5*time.Second), 0xF100, []byte("boom"))
	if err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("the caller gets an error naming the panic, got %v", err)
	}
	if v := <-panicked; v != "dispatcher bug" {
		t.Fatalf("Dispatch must panic again with the dispatcher's value, got %v", v)
	}
}

// streaming serves "stream" by sending 100 chunks then an answer, and "tunnel" by reading the
// caller's chunks until it half-closes and answering with how many bytes came.
func streaming(side string) func(*SessionRequest) {
	return func(r *SessionRequest) {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			switch string(r.Payload) {
			case "stream":
				for i := 0; i < 100; i++ {
					if err := r.Send([]byte(fmt.Sprintf("c%d", i))); err != nil {
						_ = r.RespondError(1001, err.Error())
						return
					}
				}
				_ = r.CloseWrite()
				_ = r.Respond([]byte("done"))
			case "tunnel":
				total := 0
				for {
					chunk, err := r.Next(ctx)
					if errors.Is(err, ErrClosed) {
						break
					}
					if err != nil {
						_ = r.RespondError(1002, err.Error())
						return
					}
					total += len(chunk)
				}
				_ = r.Respond([]byte(fmt.Sprintf("%s got %d bytes", side, total)))
			default:
				_ = r.RespondError(1003, "unknown")
			}
		}()
	}
}

func TestSessionStreamAndTunnel(t *testing.T) {
	c, _ := sessionPair(t, streaming)
	ctx := ctxTimeout(t, 10*time.Second)

	call, err := c.Start(0xF100, []byte("stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer call.Close()
	if call.ID%2 != 1 {
		t.Fatalf("connecting side's call id %d is not odd", call.ID)
	}
	for i := 0; i < 100; i++ {
		chunk, err := call.Next(ctx)
		if err != nil || string(chunk) != fmt.Sprintf("c%d", i) {
			t.Fatalf("chunk %d: %q, %v", i, chunk, err)
		}
	}
	if _, err := call.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("after the stream: %v, want ErrClosed", err)
	}
	if got, err := call.Wait(ctx); err != nil || string(got) != "done" {
		t.Fatalf("answer: %q, %v", got, err)
	}

	tunnel, err := c.Start(0xF100, []byte("tunnel"))
	if err != nil {
		t.Fatal(err)
	}
	defer tunnel.Close()
	for i := 0; i < 50; i++ {
		if err := tunnel.Send(make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tunnel.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := tunnel.Send([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after CloseWrite: %v, want ErrClosed", err)
	}
	if got, err := tunnel.Wait(ctx); err != nil || string(got) != "accepting got 50000 bytes" {
		t.Fatalf("tunnel answer: %q, %v", got, err)
	}

	// Next gives up with ctx and the call goes on; Close cancels it; the closed call says so.
	held, err := c.Start(0xF100, []byte("tunnel"))
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), 60*time.Millisecond)
	defer cancel()
	if _, err := held.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with an expired ctx: %v", err)
	}
	held.Close()
	held.Close()
	if _, err := held.Wait(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close: %v, want ErrClosed", err)
	}
}
