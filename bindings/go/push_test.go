package rp

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPushRoundTripWithCallbacks(t *testing.T) {
	var mu sync.Mutex
	var events []string
	s := startServer(t, &ServerOptions{
		OnRegister: func(w *WorkerInfo) (bool, string) {
			if w.Identity == "mallory" {
				return false, "mallory is not welcome"
			}
			return true, ""
		},
		OnWorker: func(w *WorkerInfo, connected bool, reason string) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, w.Identity+map[bool]string{true: "+", false: "-"}[connected])
		},
	})
	// Registration decisions run inside Dispatch: serve them in the background.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dispatched := make(chan error, 1)
	go func() {
		for {
			if _, err := s.Dispatch(ctx); err != nil {
				dispatched <- err
				return
			}
		}
	}()

	_, err := Connect(ctxTimeout(t, 5*time.Second), s.Endpoint(), WorkerOptions{Identity: "mallory", PayloadProtocols: []uint32{0x7001}})
	if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "mallory is not welcome") {
		t.Fatalf("rejected registration: %v", err)
	}

	w := connectWorker(t, s, "alice")
	if w.ID() == 0 || w.Fd() < 0 {
		t.Fatalf("worker id %d fd %d", w.ID(), w.Fd())
	}
	ws := waitWorkers(t, s, 1)
	wi := ws[0]
	if wi.ID != w.ID() || wi.Identity != "alice" || wi.TaskQueue != "q" || wi.Node != "node-a" ||
		len(wi.PayloadProtocols) != 1 || wi.PayloadProtocols[0] != 0x7001 || len(wi.Namespaces) != 1 ||
		wi.Namespaces[0] != "ns1" || len(wi.ActivityTypes) != 1 || !wi.HasPeer {
		t.Fatalf("worker info %+v", wi)
	}

	go func() {
		for p, err := range w.Pushes(context.Background()) {
			if err != nil {
				return
			}
			if string(p.Payload) == "fail" {
				w.ReplyError(p.CorrelationID, 1042, "cannot do "+p.Traceparent)
				continue
			}
			w.Reply(p.CorrelationID, bytes.ToUpper(p.Payload))
		}
	}()
	res, err := s.PushWait(ctxTimeout(t, 5*time.Second), &PushRequest{PayloadProtocol: 0x7001, Payload: []byte("hello")})
	if err != nil || res.Failed || string(res.Payload) != "HELLO" {
		t.Fatalf("PushWait: %+v %v", res, err)
	}
	tp := "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"
	res, err = s.PushWait(ctxTimeout(t, 5*time.Second), &PushRequest{PayloadProtocol: 0x7001, Payload: []byte("fail"), Traceparent: tp, ToTaskQueue: "q"})
	if err != nil || !res.Failed || res.FailureCode != 1042 || res.FailureMessage != "cannot do "+tp {
		t.Fatalf("failure reply: %+v %v", res, err)
	}
	// Tickets: several in flight at once.
	var tickets []*PushTicket
	for i := 0; i < 5; i++ {
		tk, err := s.Push(&PushRequest{PayloadProtocol: 0x7001, Payload: []byte{'a' + byte(i)}, ToWorker: w.ID()})
		if err != nil {
			t.Fatal(err)
		}
		tickets = append(tickets, tk)
	}
	for i, tk := range tickets {
		r, err := tk.Wait(ctxTimeout(t, 5*time.Second))
		if err != nil || string(r.Payload) != string([]byte{'A' + byte(i)}) || !tk.Done() {
			t.Fatalf("ticket %d: %+v %v", i, r, err)
		}
		if _, err := tk.Wait(context.Background()); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("second Wait: %v", err)
		}
		tk.Close()
		tk.Close()
	}
	_, err = s.PushWait(ctxTimeout(t, 5*time.Second), &PushRequest{PayloadProtocol: 0x7001, ToTaskQueue: "nobody"})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("push to empty queue: %v", err)
	}

	w.Close()
	waitWorkers(t, s, 0)
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		got := strings.Join(events, " ")
		mu.Unlock()
		if got == "alice+ alice-" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker events %q", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-dispatched; !errors.Is(err, context.Canceled) {
		t.Fatalf("Dispatch after cancel: %v", err)
	}
}

func TestRecvHonoursContextAndClose(t *testing.T) {
	s := startServer(t, nil)
	w := connectWorker(t, s, "idle")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := w.Recv(ctx); done <- err }()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Recv after cancel: %v", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Recv took %v to notice the cancel", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Recv did not return after cancel")
	}
	if _, err := w.Recv(ctxTimeout(t, 80*time.Millisecond)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Recv past deadline: %v", err)
	}
	if _, err := w.TryRecv(0); !errors.Is(err, ErrTimeout) {
		t.Fatalf("TryRecv(0) with nothing queued: %v", err)
	}

	// Close from another goroutine unblocks a Recv without a deadline.
	go func() { _, err := w.Recv(context.Background()); done <- err }()
	time.Sleep(100 * time.Millisecond)
	w.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Recv after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Recv did not return after Close")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Reply(1, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Reply after Close: %v", err)
	}
	if w.Fd() != -1 {
		t.Fatal("Fd after Close")
	}
}

func TestServerGoneClosesWorker(t *testing.T) {
	s, err := Bind(sockPath(t, "s.sock"), nil)
	if err != nil {
		t.Fatal(err)
	}
	w := connectWorker(t, s, "w")
	waitWorkers(t, s, 1)
	s.Close()
	s.Close()
	if _, err := w.Recv(ctxTimeout(t, 5*time.Second)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Recv after server shutdown: %v", err)
	}
	if _, err := s.Push(&PushRequest{PayloadProtocol: 0x7001}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Push after Close: %v", err)
	}
	if _, err := s.Workers(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Workers after Close: %v", err)
	}
}

func TestConnectFailures(t *testing.T) {
	_, err := Connect(ctxTimeout(t, 5*time.Second), sockPath(t, "nobody.sock"), WorkerOptions{Identity: "x"})
	if !errors.Is(err, ErrIO) {
		t.Fatalf("connect to nothing: %v", err)
	}
	s := startServer(t, &ServerOptions{Service: "svc-a"})
	_, err = Connect(ctxTimeout(t, 5*time.Second), s.Endpoint(), WorkerOptions{Identity: "x", Service: "svc-b", PayloadProtocols: []uint32{0x7001}})
	var re *RefusedError
	if !errors.As(err, &re) || !errors.Is(err, ErrRefused) || re.Code != CodeServiceUnknown {
		t.Fatalf("wrong service: %#v", err)
	}
	if _, err := Connect(ctxTimeout(t, 5*time.Second), "tcp://", WorkerOptions{Identity: "x"}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("malformed endpoint: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Connect(ctx, s.Endpoint(), WorkerOptions{Identity: "x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
	// A socket file has nothing below it (a pipe name has no directories: on Windows this
	// names another pipe).
	if runtime.GOOS != "windows" {
		if _, err := Bind(s.Endpoint()+"/bad\x00", nil); err == nil {
			t.Fatal("Bind on a path below a socket succeeded")
		}
	}
}

func TestDispatchHandlerErrorsAndPanics(t *testing.T) {
	s := startServer(t, nil)
	w := connectWorker(t, s, "h")
	waitWorkers(t, s, 1)
	calls := 0
	err := w.Handle(func(p *Push) error {
		calls++
		switch string(p.Payload) {
		case "panic":
			panic("handler boom")
		case "err":
			return errors.New("plain failure")
		case "rperr":
			return &Error{Status: StatusNotFound, Msg: "no such thing"}
		}
		return w.Reply(p.CorrelationID, append([]byte("ok:"), p.Payload...))
	})
	if err != nil {
		t.Fatal(err)
	}
	push := func(payload string) *PushTicket {
		tk, err := s.Push(&PushRequest{PayloadProtocol: 0x7001, Payload: []byte(payload)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tk.Close() })
		return tk
	}
	tk := push("x")
	if n, err := w.Dispatch(ctxTimeout(t, 5*time.Second), 1); n != 1 || err != nil {
		t.Fatalf("Dispatch: %d %v", n, err)
	}
	if r, err := tk.Wait(ctxTimeout(t, 5*time.Second)); err != nil || string(r.Payload) != "ok:x" {
		t.Fatalf("%+v %v", r, err)
	}
	tk = push("err")
	w.Dispatch(ctxTimeout(t, 5*time.Second), 1)
	if r, err := tk.Wait(ctxTimeout(t, 5*time.Second)); err != nil || !r.Failed || r.FailureCode != HandlerErrorCode || r.FailureMessage != "plain failure" {
		t.Fatalf("plain error: %+v %v", r, err)
	}
	tk = push("rperr")
	w.Dispatch(ctxTimeout(t, 5*time.Second), 1)
	if r, err := tk.Wait(ctxTimeout(t, 5*time.Second)); err != nil || !r.Failed || r.FailureCode != int32(StatusNotFound) {
		t.Fatalf("rp error: %+v %v", r, err)
	}

	tk = push("panic")
	func() {
		defer func() {
			if r := recover(); r != "handler boom" {
				t.Fatalf("recovered %v, want the handler's panic", r)
			}
		}()
		w.Dispatch(ctxTimeout(t, 5*time.Second), 1)
		t.Fatal("Dispatch did not re-panic")
	}()
	if r, err := tk.Wait(ctxTimeout(t, 5*time.Second)); err != nil || !r.Failed || r.FailureCode != int32(StatusPanic) {
		t.Fatalf("panicking handler's push: %+v %v", r, err)
	}
	// The worker still works after the panic.
	tk = push("y")
	w.Dispatch(ctxTimeout(t, 5*time.Second), 0)
	if r, err := tk.Wait(ctxTimeout(t, 5*time.Second)); err != nil || string(r.Payload) != "ok:y" {
		t.Fatalf("%+v %v", r, err)
	}
	if calls != 5 {
		t.Fatalf("handler ran %d times", calls)
	}
	if err := w.Handle(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Dispatch(ctxTimeout(t, time.Second), 1); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Dispatch without handler: %v", err)
	}
}

func TestRegistrationCallbackPanic(t *testing.T) {
	s := startServer(t, &ServerOptions{OnRegister: func(w *WorkerInfo) (bool, string) { panic("register boom") }})
	errc := make(chan error, 1)
	go func() {
		_, err := Connect(ctxTimeout(t, 5*time.Second), s.Endpoint(), WorkerOptions{Identity: "p", PayloadProtocols: []uint32{0x7001}})
		errc <- err
	}()
	func() {
		defer func() {
			if r := recover(); r != "register boom" {
				t.Fatalf("recovered %v", r)
			}
		}()
		s.Dispatch(ctxTimeout(t, 5*time.Second))
		t.Fatal("Dispatch did not re-panic")
	}()
	if err := <-errc; !errors.Is(err, ErrRejected) {
		t.Fatalf("worker whose registration callback panicked: %v", err)
	}
}

// A worker dropped without Close is freed by its cleanup once unreachable (the leak net):
// the server then sees it leave.
func TestForgottenWorkerIsFreedByCleanup(t *testing.T) {
	s := startServer(t, nil)
	w, err := Connect(ctxTimeout(t, 5*time.Second), s.Endpoint(), WorkerOptions{Identity: "forgotten", PayloadProtocols: []uint32{0x7001}})
	if err != nil {
		t.Fatal(err)
	}
	waitWorkers(t, s, 1)
	runtime.KeepAlive(w) // reachable until listed; unreachable (never closed) from here on
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		ws, err := s.Workers()
		if err != nil {
			t.Fatal(err)
		}
		if len(ws) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the forgotten worker was never freed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A server's per-user connection share is enforced from Go options: a second worker of this
// user is refused RATE_LIMITED with a retry hint, and admitted once the first leaves.
func TestMaxConnectionsPerUID(t *testing.T) {
	s := startServer(t, &ServerOptions{MaxConnectionsPerUID: 1, FrameTimeout: 5 * time.Second})
	first := connectWorker(t, s, "first")
	_, err := Connect(ctxTimeout(t, 5*time.Second), s.Endpoint(), WorkerOptions{Identity: "second", PayloadProtocols: []uint32{0x7001}})
	var re *RefusedError
	if !errors.As(err, &re) || re.Code != CodeRateLimited || re.RetryAfter <= 0 {
		t.Fatalf("second worker of the same user: %#v", err)
	}
	first.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		w, err := Connect(ctxTimeout(t, 5*time.Second), s.Endpoint(), WorkerOptions{Identity: "third", PayloadProtocols: []uint32{0x7001}})
		if err == nil {
			w.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the freed slot was not usable again: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
