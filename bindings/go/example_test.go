//go:build unix

// Unix only: the examples, as the documentation shows them, use Unix socket paths and socket
// pairs (on Windows the endpoints would be pipe names, see the tests).

package rp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	rp "github.com/librp/rp/bindings/go"
)

// A push server and a worker in one process: the worker answers each push in upper case.
func Example() {
	dir, _ := os.MkdirTemp("", "rp-example")
	defer os.RemoveAll(dir)
	server, err := rp.Bind(filepath.Join(dir, "push.sock"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer server.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	worker, err := rp.Connect(ctx, server.Endpoint(), rp.WorkerOptions{
		Identity: "upper", TaskQueue: "uppercase", PayloadProtocols: []uint32{0x7001},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer worker.Close()
	go func() {
		for push, err := range worker.Pushes(ctx) {
			if err != nil {
				return
			}
			worker.Reply(push.CorrelationID, bytes.ToUpper(push.Payload))
		}
	}()

	res, err := server.PushWait(ctx, &rp.PushRequest{PayloadProtocol: 0x7001, ToTaskQueue: "uppercase", Payload: []byte("hello")})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", res.Payload)
	// Output: HELLO
}

// A daemon classifies what a connection sent with a Mux: its own legacy wire, or v1 frames.
func ExampleMux_Poll() {
	id, _ := rp.NewDaemonIdentity()
	defer id.Close()
	mux, err := rp.NewMux(id, []uint32{0x7001}, func(buf []byte) rp.LegacyVerdict {
		if buf[0] == '#' {
			return rp.Legacy
		}
		return rp.NotLegacy
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mux.Close()

	buf, _ := rp.EncodeFrame(&rp.Frame{PayloadProtocol: 0x7001, RequestID: 1, Payload: []byte("ping")})
	for _, input := range [][]byte{[]byte("#legacy"), buf[:3], buf} {
		ev, err := mux.Poll(input)
		if err != nil {
			fmt.Println(err)
			continue
		}
		switch ev.Kind {
		case rp.MuxLegacy:
			fmt.Println("legacy")
		case rp.MuxNeedMoreBytes:
			fmt.Println("need more bytes")
		case rp.MuxPayload:
			fmt.Printf("request %d: %s (%d bytes)\n", ev.Frame.RequestID, ev.Frame.Payload, ev.Consumed)
		}
	}
	// Output:
	// legacy
	// need more bytes
	// request 1: ping (19 bytes)
}

// Failures are values: compare them with errors.Is.
func ExampleError() {
	_, _, err := rp.DecodeFrame([]byte{7, 0, 0, 0, 0}, 0)
	fmt.Println(errors.Is(err, rp.ErrUnsupportedFraming), errors.Is(err, rp.ErrTimeout))
	// Output: true false
}

// A client reaches a service's backend through a librp broker, then skips the Hello next time
// with the endpoint it cached. The backend here is a Conn adopted from each accepted socket.
func ExampleConnectBroker() {
	dir, _ := os.MkdirTemp("", "rp-example")
	defer os.RemoveAll(dir)
	backend, err := net.Listen("unix", filepath.Join(dir, "backend.sock"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer backend.Close()
	go func() { // echo every request
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			conn, err := rp.AdoptConn(c.(*net.UnixConn))
			c.Close() // the Conn has its own descriptor
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				for {
					f, err := conn.Recv(context.Background())
					if err != nil {
						return
					}
					f.Kind = rp.KindResponse
					conn.Send(f)
				}
			}()
		}
	}()
	broker, err := rp.BindBroker(filepath.Join(dir, "broker.sock"), &rp.BrokerServerOptions{
		Services: []rp.BrokerService{{Name: "demo", Backend: filepath.Join(dir, "backend.sock"), DaemonVersion: "1.0.0"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer broker.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	opts := rp.BrokerOptions{Endpoint: broker.Endpoint(), Service: "demo", WantedVersion: "1.0.0"}
	for _, text := range []string{"hi there", "again"} {
		conn, res, err := rp.ConnectBroker(ctx, opts)
		if err != nil {
			fmt.Println(err)
			return
		}
		conn.Send(&rp.Frame{PayloadProtocol: 0x7001, RequestID: 1, Payload: []byte(text)})
		reply, err := conn.Recv(ctx)
		conn.Close()
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s: %s\n", res.Route, reply.Payload)
		opts.CachedEndpoint = res.Endpoint
	}

	_, _, err = rp.ConnectBroker(ctx, rp.BrokerOptions{Endpoint: broker.Endpoint(), Service: "nosuch", WantedVersion: "1.0.0"})
	var refused *rp.RefusedError
	if errors.As(err, &refused) {
		fmt.Println("refused:", refused.Code == rp.CodeServiceUnknown)
	}
	// Output:
	// negotiated: hi there
	// hello-skip: again
	// refused: true
}

// Two sessions over one socket pair: the accepting side upper-cases what the connecting side
// sends it. Either side may call the other; here only one does.
func ExampleNewSession() {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		panic(err)
	}
	adopt := func(fd int) *rp.Conn {
		f := os.NewFile(uintptr(fd), "session")
		defer f.Close() // the Conn keeps its own duplicate
		c, err := net.FileConn(f)
		if err != nil {
			panic(err)
		}
		defer c.Close()
		conn, err := rp.AdoptConn(c.(*net.UnixConn))
		if err != nil {
			panic(err)
		}
		return conn
	}

	client, err := rp.NewSession(adopt(fds[0]), rp.SessionConnecting, nil)
	if err != nil {
		panic(err)
	}
	defer client.Close()
	server, err := rp.NewSession(adopt(fds[1]), rp.SessionAccepting, func(req *rp.SessionRequest) {
		_ = req.Respond(bytes.ToUpper(req.Payload))
	})
	if err != nil {
		panic(err)
	}
	defer server.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if _, err := server.Dispatch(ctx); err != nil {
				return
			}
		}
	}()

	reply, err := client.Call(ctx, 0x7001, []byte("hello"))
	if err != nil {
		panic(err)
	}
	fmt.Println(string(reply))
	// Output: HELLO
}
