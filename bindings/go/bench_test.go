package rp

import (
	"context"
	"errors"
	"testing"
	"time"
)

// BenchmarkPushRoundTrip: one push from the server to a worker blocked in Recv with a
// cancellable context, its reply, and the ticket's Wait. Over a Unix socket.
func BenchmarkPushRoundTrip(b *testing.B) {
	s := startServer(b, nil)
	w := connectWorker(b, s, "bench")
	waitWorkers(b, s, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() {
		for {
			p, err := w.Recv(ctx)
			if err != nil {
				served <- err
				return
			}
			if err := w.Reply(p.CorrelationID, p.Payload); err != nil {
				served <- err
				return
			}
		}
	}()
	req := &PushRequest{PayloadProtocol: 0x7001, Payload: []byte("ping")}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tk, err := s.Push(req)
		if err != nil {
			b.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := tk.Wait(wctx)
		wcancel()
		tk.Close()
		if err != nil || string(r.Payload) != "ping" {
			b.Fatalf("%v %v", r, err)
		}
	}
	b.StopTimer()
	cancel()
	if err := <-served; !errors.Is(err, context.Canceled) {
		b.Fatal(err)
	}
}
