package rp

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// examplesDir is where the C examples were built (scripts/test.sh sets RP_EXAMPLES_DIR).
func examplesDir(t *testing.T) string {
	dir := os.Getenv("RP_EXAMPLES_DIR")
	if dir == "" {
		t.Skip("RP_EXAMPLES_DIR is not set (the build directory holding the C examples)")
	}
	return dir
}

// Go workers answer the pushes of the C push_server example (examples/c/push_server.c), which
// exits 0 only when every job was answered.
func TestGoWorkersAnswerCPushServer(t *testing.T) {
	bin := filepath.Join(examplesDir(t), "push_server")
	ep := sockPath(t, "c-server.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, ep, "8", "2")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	answered := make([]int, 2)
	for i, name := range []string{"go-alice", "go-bob"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var w *Worker
			var err error
			for { // the server may not listen yet
				w, err = Connect(ctx, ep, WorkerOptions{Identity: name, TaskQueue: "uppercase",
					PayloadProtocols: []uint32{0x7001}, ActivityTypes: []string{"uppercase"}})
				if !errors.Is(err, ErrIO) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				t.Errorf("%s: connect: %v", name, err)
				return
			}
			defer w.Close()
			for p, err := range w.Pushes(ctx) {
				if err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
				if p.PayloadProtocol != 0x7001 || p.Deadline.IsZero() {
					t.Errorf("%s: push %+v", name, p)
				}
				if err := w.Reply(p.CorrelationID, bytes.ToUpper(p.Payload)); err != nil {
					t.Errorf("%s: reply: %v", name, err)
				}
				answered[i]++
			}
		}()
	}
	err := cmd.Wait()
	wg.Wait() // the workers end when the server shuts down (ErrClosed ends Pushes)
	if err != nil {
		t.Fatalf("push_server: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "8 of 8 jobs answered") ||
		!strings.Contains(out.String(), `"JOB 1: MAKE THIS LOUD"`) {
		t.Fatalf("push_server output:\n%s", out.String())
	}
	if answered[0]+answered[1] != 8 {
		t.Fatalf("answered %v", answered)
	}
}

// The rp-go-worker program (cmd/rp-go-worker), started before the C push_server example
// listens, answers its pushes alongside the C push_worker example and exits 0 when the server
// shuts down.
func TestGoWorkerProgramWithCPushServer(t *testing.T) {
	dir := examplesDir(t)
	worker := filepath.Join(t.TempDir(), "rp-go-worker")
	build := exec.Command("go", "build", "-o", worker, "./cmd/rp-go-worker")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/rp-go-worker: %v\n%s", err, out)
	}
	ep := sockPath(t, "c-server.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wout, cout, sout bytes.Buffer
	w := exec.CommandContext(ctx, worker, ep, "go-worker") // before the server: it retries
	w.Stdout, w.Stderr = &wout, &wout
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	srv := exec.CommandContext(ctx, filepath.Join(dir, "push_server"), ep, "8", "2")
	srv.Stdout, srv.Stderr = &sout, &sout
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	cw := exec.CommandContext(ctx, filepath.Join(dir, "push_worker"), ep, "c-worker")
	cw.Stdout, cw.Stderr = &cout, &cout
	if err := cw.Start(); err != nil {
		t.Fatal(err)
	}
	serr := srv.Wait()
	werr := w.Wait()
	cerr := cw.Wait()
	if serr != nil || werr != nil || cerr != nil {
		t.Fatalf("push_server: %v\n%s\nrp-go-worker: %v\n%s\npush_worker: %v\n%s", serr, sout.String(),
			werr, wout.String(), cerr, cout.String())
	}
	if !strings.Contains(sout.String(), "8 of 8 jobs answered") {
		t.Fatalf("push_server output:\n%s", sout.String())
	}
	if !strings.Contains(wout.String(), "worker go-worker: registered as worker") ||
		!strings.Contains(wout.String(), "worker go-worker: push ") ||
		!strings.Contains(wout.String(), "worker go-worker: done") {
		t.Fatalf("rp-go-worker output:\n%s", wout.String())
	}
	if !strings.Contains(sout.String(), "registered: go-worker") {
		t.Fatalf("push_server did not list the Go worker:\n%s", sout.String())
	}
	// Every reply the server printed is its job in upper case.
	replies := 0
	for _, line := range strings.Split(sout.String(), "\n") {
		if _, reply, ok := strings.Cut(line, " -> "); ok {
			replies++
			if reply != strings.ToUpper(reply) || !strings.HasPrefix(reply, `"JOB `) {
				t.Fatalf("reply not in upper case: %s", line)
			}
		}
	}
	if replies != 8 {
		t.Fatalf("%d replies in:\n%s", replies, sout.String())
	}
}
