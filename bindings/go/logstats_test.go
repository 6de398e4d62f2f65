package rp

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

type logRecord struct {
	level     LogLevel
	component string
	message   string
}

type logSink struct {
	mu     sync.Mutex
	events []logRecord
}

func (s *logSink) add(level LogLevel, component, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, logRecord{level, component, message})
}

func (s *logSink) has(level LogLevel, component, needle string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if e.level == level && e.component == component && strings.Contains(e.message, needle) {
			return true
		}
	}
	return false
}

func (s *logSink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

func TestLogAndStats(t *testing.T) {
	sink := &logSink{}
	var srv *PushServer
	var reentrant sync.WaitGroup
	reentrant.Add(1)
	var once sync.Once
	if err := SetLog(LogInfo, func(level LogLevel, component, message string) {
		sink.add(level, component, message)
		if strings.Contains(message, "registered from") {
			// Back into librp from the server's event-loop thread, then a panic that is dropped.
			once.Do(func() {
				if st, err := srv.Stats(); err == nil && st.RegistrationsAccepted >= 0 {
					reentrant.Done()
				}
			})
			panic("dropped")
		}
	}); err != nil {
		t.Fatal(err)
	}
	defer ClearLog()
	srv = startServer(t, nil)

	_, err := Connect(ctxTimeout(t, 5*time.Second), srv.Endpoint(), WorkerOptions{Identity: "w", Service: "other"})
	var refused *RefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("Connect with the wrong service: %v", err)
	}
	w := connectWorker(t, srv, "w")
	done := make(chan struct{})
	go func() {
		defer close(done)
		if p, err := w.Recv(ctxTimeout(t, 5*time.Second)); err == nil {
			w.Reply(p.CorrelationID, []byte("pong"))
		}
	}()
	if _, err := srv.PushWait(ctxTimeout(t, 5*time.Second), &PushRequest{PayloadProtocol: 0x7001, Payload: []byte("ping")}); err != nil {
		t.Fatal(err)
	}
	<-done
	reentrant.Wait()

	st, err := srv.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.RefusedServiceUnknown != 1 || st.RegistrationsAccepted != 1 || st.WorkersRegistered != 1 ||
		st.PushesSent != 1 || st.PushesAnswered != 1 || st.PushesInFlight != 0 || st.BytesIn == 0 || st.BytesOut == 0 {
		t.Errorf("server stats %+v", st)
	}
	ws, err := w.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if ws.PushesReceived != 1 || ws.RepliesSent != 1 || ws.BytesOut == 0 {
		t.Errorf("worker stats %+v", ws)
	}
	for _, want := range []logRecord{
		{LogWarn, "push-server", "refused (SERVICE_UNKNOWN): service is not registered"},
		{LogInfo, "push-server", `registered from pid`},
		{LogInfo, "push-worker", "registered with " + srv.Endpoint()},
	} {
		if !sink.has(want.level, want.component, want.message) {
			t.Errorf("not logged: %+v (got %+v)", want, sink.events)
		}
	}
	if sink.has(LogDebug, "push-server", "accepted from") {
		t.Error("a DEBUG event passed an INFO filter")
	}

	if err := SetLog(LogLevel(7), func(LogLevel, string, string) {}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("SetLog(7): %v", err)
	}
	if err := ClearLog(); err != nil {
		t.Fatal(err)
	}
	n := sink.len()
	w.Close()
	srv.Close()
	if sink.len() != n {
		t.Errorf("events after ClearLog: %+v", sink.events[n:])
	}
	if _, err := srv.Stats(); !errors.Is(err, ErrClosed) {
		t.Errorf("Stats after Close: %v", err)
	}
}

func TestBrokerStatsMatchMetrics(t *testing.T) {
	b, err := BindBroker(sockPath(t, "broker.sock"), &BrokerServerOptions{
		Services: []BrokerService{{Name: "echo", Backend: "/nonexistent", DaemonVersion: "1.0.0"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	reply, err := AdminRequest(ctxTimeout(t, 5*time.Second), b.Endpoint(), AdminMetrics, "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.AdminRequests != 1 || st.ConnectionsAccepted != 1 {
		t.Errorf("broker stats %+v", st)
	}
	if !strings.Contains(string(reply.Body), "librp_broker_admin_requests_total 1\n") || reply.Kind != AdminOpenMetrics {
		t.Errorf("METRICS reply %+v", reply)
	}
}
