package rp

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// eventLog collects a worker's events as OnEvent delivers them.
type eventLog struct {
	mu   sync.Mutex
	seen []WorkerEvent
}

func (l *eventLog) add(e WorkerEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, e)
}

func (l *eventLog) kinds() []WorkerEventKind {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []WorkerEventKind
	for _, e := range l.seen {
		out = append(out, e.Kind)
	}
	return out
}

func reconnectingWorker(t *testing.T, endpoint string, attempts uint32, log *eventLog) *Worker {
	t.Helper()
	w, err := Connect(ctxTimeout(t, 5*time.Second), endpoint, WorkerOptions{
		Identity: "go-reconnect", TaskQueue: "q", PayloadProtocols: []uint32{0x7001},
		Reconnect: &ReconnectPolicy{MinDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond, MaxAttempts: attempts},
		OnEvent:   log.add,
	})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func TestWorkerReconnectsToANewServerOnTheSamePath(t *testing.T) {
	path := sockPath(t, "push.sock")
	s, err := Bind(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var log eventLog
	w := reconnectingWorker(t, path, 0, &log)
	fd, firstID := w.Fd(), w.ID()
	if _, err := s.Push(&PushRequest{PayloadProtocol: 0x7001, Payload: []byte("old")}); err != nil {
		t.Fatal(err)
	}
	old, err := w.Recv(ctxTimeout(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	s.Close() // the push is in flight

	// A Recv blocked through the outage returns the new server's push.
	got := make(chan *Push, 1)
	go func() {
		p, err := w.Recv(ctxTimeout(t, 10*time.Second))
		if err != nil {
			t.Errorf("Recv across the reconnection: %v", err)
		}
		got <- p
	}()
	time.Sleep(50 * time.Millisecond)
	s2, err := Bind(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	waitWorkers(t, s2, 1)
	type answer struct {
		res *PushResult
		err error
	}
	answered := make(chan answer, 1)
	go func() {
		res, err := s2.PushWait(ctxTimeout(t, 10*time.Second), &PushRequest{PayloadProtocol: 0x7001, Payload: []byte("new")})
		answered <- answer{res, err}
	}()
	p := <-got
	if p == nil || string(p.Payload) != "new" || p.CorrelationID == old.CorrelationID {
		t.Fatalf("push after the reconnection: %+v (old id %d)", p, old.CorrelationID)
	}
	if err := w.Reply(old.CorrelationID, []byte("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("late reply to the lost connection's push: %v", err)
	}
	if err := w.Reply(p.CorrelationID, []byte("echo:new")); err != nil {
		t.Fatal(err)
	}
	a := <-answered
	if a.err != nil || string(a.res.Payload) != "echo:new" {
		t.Fatalf("PushWait: %+v %v", a.res, a.err)
	}
	st, _ := w.Stats()
	// The new server counts worker ids from the start too: the id is its registration's.
	if st.Reconnects != 1 || st.RepliesSent != 1 || w.Fd() != fd || w.ID() != waitWorkers(t, s2, 1)[0].ID {
		t.Fatalf("stats %+v fd %d/%d id %d (first %d)", st, w.Fd(), fd, w.ID(), firstID)
	}
	k := log.kinds()
	if len(k) < 4 || k[0] != WorkerConnected || k[1] != WorkerLost || k[2] != WorkerReconnecting || k[len(k)-1] != WorkerConnected {
		t.Fatalf("events %v", k)
	}
}

func TestWorkerGivesUpAndRecvReturnsClosed(t *testing.T) {
	path := sockPath(t, "push.sock")
	s, err := Bind(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var log eventLog
	w := reconnectingWorker(t, path, 2, &log)
	s.Close()
	_, err = w.Recv(ctxTimeout(t, 10*time.Second))
	if !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "gave up reconnecting") {
		t.Fatalf("Recv after giving up: %v", err)
	}
	log.mu.Lock()
	last := log.seen[len(log.seen)-1]
	log.mu.Unlock()
	if last.Kind != WorkerGaveUp || last.Attempt != 2 || last.Status == 0 || last.Message == "" {
		t.Fatalf("last event %+v", last)
	}
	if last.Kind.String() != "gave up" {
		t.Fatalf("kind name %q", last.Kind.String())
	}
}

func TestCloseDuringTheBackoffReturnsAtOnce(t *testing.T) {
	path := sockPath(t, "push.sock")
	s, err := Bind(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan WorkerEvent, 16)
	w, err := Connect(ctxTimeout(t, 5*time.Second), path, WorkerOptions{
		Identity: "go-reconnect", PayloadProtocols: []uint32{0x7001},
		Reconnect: &ReconnectPolicy{MinDelay: 30 * time.Second, MaxDelay: time.Minute, EqualJitter: true},
		OnEvent: func(e WorkerEvent) {
			select {
			case events <- e:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := w.Recv(context.Background())
		done <- err
	}()
	s.Close()
	deadline := time.After(5 * time.Second)
	for reconnecting := false; !reconnecting; {
		select {
		case e := <-events:
			reconnecting = e.Kind == WorkerReconnecting
		case <-deadline:
			t.Fatal("no reconnecting event")
		}
	}
	start := time.Now()
	w.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Recv after Close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Recv still blocked after Close")
	}
	if time.Since(start) > time.Second {
		t.Fatalf("Close took %v", time.Since(start))
	}
}
