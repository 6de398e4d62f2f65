//go:build unix

// Unix only: the examples, as the documentation shows them, use Unix socket paths and socket
// pairs (on Windows the endpoints would be pipe names, see the tests).

package rp_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	rp "github.com/librp/rp/bindings/go"
)

// A worker in a select loop: a goroutine turns the worker's pushes into a channel, and one
// loop selects over them, the results of jobs the program pushed itself, a ticker for
// periodic work, and the context. When the server goes away the pushes channel is closed.
func Example_selectLoop() {
	dir, _ := os.MkdirTemp("", "rp-select")
	defer os.RemoveAll(dir)
	server, err := rp.Bind(filepath.Join(dir, "push.sock"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer server.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	worker, err := rp.Connect(ctx, server.Endpoint(), rp.WorkerOptions{
		Identity: "select-loop", TaskQueue: "uppercase", PayloadProtocols: []uint32{0x7001},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer worker.Close()

	// The worker's pushes as a channel, closed when the worker ends.
	pushes := make(chan *rp.Push)
	go func() {
		defer close(pushes)
		for push, err := range worker.Pushes(ctx) {
			if err != nil {
				return
			}
			select {
			case pushes <- push:
			case <-ctx.Done():
				return
			}
		}
	}()

	// Elsewhere in the program, jobs go to the worker; their results come back on a channel.
	results := make(chan string)
	go func() {
		for i := 1; i <= 3; i++ {
			res, err := server.PushWait(ctx, &rp.PushRequest{
				PayloadProtocol: 0x7001, ToTaskQueue: "uppercase", Payload: fmt.Appendf(nil, "job %d", i),
			})
			if err != nil {
				results <- err.Error()
				continue
			}
			results <- string(res.Payload)
		}
	}()

	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for got := 0; got < 3; {
		select {
		case push, ok := <-pushes:
			if !ok {
				fmt.Println("the worker ended early")
				return
			}
			if err := worker.Reply(push.CorrelationID, bytes.ToUpper(push.Payload)); err != nil {
				fmt.Println(err)
			}
		case r := <-results:
			fmt.Println(r)
			got++
		case <-tick.C:
			// Periodic work (health checks, metrics) shares the loop.
		case <-ctx.Done():
			fmt.Println(ctx.Err())
			return
		}
	}

	server.Close()
	select {
	case _, ok := <-pushes:
		fmt.Println("server closed; pushes channel open:", ok)
	case <-ctx.Done():
		fmt.Println(ctx.Err())
	}
	// Output:
	// JOB 1
	// JOB 2
	// JOB 3
	// server closed; pushes channel open: false
}
