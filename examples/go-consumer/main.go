// A program outside this repository that uses the Go binding: it builds against an installed
// librp (pkg-config rp) and round-trips one frame. go.mod shows how it finds the module.
package main

import (
	"bytes"
	"fmt"
	"os"

	rp "github.com/librp/rp/bindings/go"
)

func main() {
	wire, err := rp.EncodeFrame(&rp.Frame{PayloadProtocol: 0x7001, RequestID: 7, Payload: []byte("hello from Go")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	back, n, err := rp.DecodeFrame(wire, 0)
	if err != nil || n != len(wire) || !bytes.Equal(back.Payload, []byte("hello from Go")) {
		fmt.Fprintln(os.Stderr, "round trip failed:", err)
		os.Exit(1)
	}
	fmt.Printf("Go over librp %s: %d-byte frame round-tripped\n", rp.Version(), len(wire))
}
