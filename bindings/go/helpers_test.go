package rp

import (
	"context"
	"testing"
	"time"
)

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// startServer binds a push server on a fresh socket; it is closed when the test ends.
func startServer(t testing.TB, opts *ServerOptions) *PushServer {
	t.Helper()
	s, err := Bind(sockPath(t, "push.sock"), opts)
	if err != nil {
		t.Fatalf("Bind: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func connectWorker(t testing.TB, s *PushServer, identity string) *Worker {
	t.Helper()
	w, err := Connect(ctxTimeout(t, 5*time.Second), s.Endpoint(), WorkerOptions{
		Identity: identity, TaskQueue: "q", PayloadProtocols: []uint32{0x7001},
		Namespaces: []string{"ns1"}, ActivityTypes: []string{"upper"}, Node: "node-a",
	})
	if err != nil {
		t.Fatalf("Connect(%s): %v", identity, err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// waitWorkers waits until the server lists n workers.
func waitWorkers(t testing.TB, s *PushServer, n int) []WorkerInfo {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ws, err := s.Workers()
		if err != nil {
			t.Fatal(err)
		}
		if len(ws) == n {
			return ws
		}
		if time.Now().After(deadline) {
			t.Fatalf("server lists %d workers, want %d", len(ws), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startBroker runs a Go-hosted librp broker; it is closed when the test ends.
func startBroker(t *testing.T, opts *BrokerServerOptions) *BrokerServer {
	t.Helper()
	b, err := BindBroker(sockPath(t, "broker.sock"), opts)
	if err != nil {
		t.Fatalf("BindBroker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
