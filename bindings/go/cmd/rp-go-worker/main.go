// Command rp-go-worker registers with a push server for the task queue "uppercase" on payload
// protocol 0x7001 and answers each push with its payload in upper case (the contract of
// examples/c/push_worker.c, in Go).
//
//	rp-go-worker ENDPOINT NAME
//
// It retries connecting for up to 5 s while nothing listens, and exits 0 when the server
// closes the connection (1 on any other failure, 2 on bad usage). ENDPOINT may also be a
// liminal server's, liminal+tcp://host:port (no payload protocol is registered there).
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	rp "github.com/librp/rp/bindings/go"
)

func connect(ctx context.Context, endpoint, name string) (*rp.Worker, error) {
	opts := rp.WorkerOptions{
		Identity:         name,
		TaskQueue:        "uppercase",
		PayloadProtocols: []uint32{0x7001},
		ActivityTypes:    []string{"uppercase"},
	}
	if strings.HasPrefix(endpoint, "liminal+tcp://") {
		opts.PayloadProtocols = nil // a liminal server has no payload protocols
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		w, err := rp.Connect(ctx, endpoint, opts)
		if !errors.Is(err, rp.ErrIO) || time.Now().After(deadline) {
			return w, err
		}
		time.Sleep(50 * time.Millisecond) // the server is not listening yet
	}
}

func run(endpoint, name string) error {
	ctx := context.Background()
	w, err := connect(ctx, endpoint, name)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer w.Close()
	fmt.Printf("worker %s: registered as worker %d\n", name, w.ID())
	for p, err := range w.Pushes(ctx) {
		if err != nil {
			return err
		}
		fmt.Printf("worker %s: push %d %q\n", name, p.CorrelationID, p.Payload)
		if err := w.Reply(p.CorrelationID, bytes.ToUpper(p.Payload)); err != nil {
			if errors.Is(err, rp.ErrClosed) {
				break
			}
			return fmt.Errorf("reply: %w", err)
		}
	}
	fmt.Printf("worker %s: done (server closed)\n", name)
	return nil
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: rp-go-worker ENDPOINT NAME")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintf(os.Stderr, "rp-go-worker: %v\n", err)
		os.Exit(1)
	}
}
