//go:build unix

// Unix only: the handoff passes descriptors over Unix socket pairs (SCM_RIGHTS), which Windows lacks
// (the Windows handoff, a DuplicateHandle of a pipe, is tested in Rust: tests/handoff_pipes.rs).

package rp

import (
	"encoding/hex"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// offerVector is tests/vectors/handoff_offer.hex: a HandoffOffer, request id = correlation id
// = 77, whose token (bytes 15..31) is 0x10..0x1f.
func offerVector(t *testing.T) []byte {
	raw, err := os.ReadFile("../../tests/vectors/handoff_offer.hex")
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const offerTokenOffset = 15

func unixPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	conv := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "pair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	return conv(fds[0]), conv(fds[1])
}

func TestHandoffServeOfferAndAccept(t *testing.T) {
	store, err := NewHandoffStore(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	offer := offerVector(t)
	if err := store.Insert(offer[offerTokenOffset : offerTokenOffset+15]); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("short token: %v", err)
	}
	if err := store.Insert(offer[offerTokenOffset : offerTokenOffset+HandoffTokenLen]); err != nil {
		t.Fatal(err)
	}

	// Framed control connection: accepted once, then the replay is rejected.
	broker, backend := unixPair(t)
	for i, want := range []bool{true, false} {
		if _, err := broker.Write(offer); err != nil {
			t.Fatal(err)
		}
		ok, corr, err := store.ServeOffer(backend, time.Second)
		if err != nil || ok != want || corr != 77 {
			t.Fatalf("offer %d: accepted=%v corr=%d err=%v", i, ok, corr, err)
		}
		ack := make([]byte, 256)
		broker.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := broker.Read(ack)
		if err != nil {
			t.Fatal(err)
		}
		f, _, err := DecodeFrame(ack[:n], 0)
		if err != nil || f.Kind != KindResponse || f.RequestID != 77 || f.PayloadProtocol != ProtocolHandoff {
			t.Fatalf("ack %+v %v", f, err)
		}
	}
	if _, _, err := store.ServeOffer(backend, 20*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("no offer: %v", err)
	}

	// Descriptor passing: the broker hands over one end of a client connection.
	tok, err := store.Issue()
	if err != nil {
		t.Fatal(err)
	}
	if tok2, _ := store.Issue(); tok2 == tok {
		t.Fatal("two issued tokens are equal")
	}
	copy(offer[offerTokenOffset:], tok[:])
	client, handed := unixPair(t)
	hf, err := handed.File()
	if err != nil {
		t.Fatal(err)
	}
	// As a broker sends it: the descriptor with the offer's 16 token bytes alone, then the offer.
	send := func(o []byte) {
		token := o[offerTokenOffset : offerTokenOffset+HandoffTokenLen]
		if _, _, err := broker.WriteMsgUnix(token, syscall.UnixRights(int(hf.Fd())), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := broker.Write(o); err != nil {
			t.Fatal(err)
		}
	}
	send(offer)
	adopted, err := store.Accept(backend, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer adopted.Close()
	if _, err := adopted.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 2)
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := client.Read(got); err != nil || string(got) != "hi" {
		t.Fatalf("through the adopted descriptor: %q %v", got, err)
	}
	broker.SetReadDeadline(time.Now().Add(5 * time.Second))
	broker.Read(make([]byte, 256)) // the ack

	send(offer) // replayed token
	if _, err := store.Accept(backend, time.Second); !errors.Is(err, ErrRejected) {
		t.Fatalf("replayed token: %v", err)
	}
	hf.Close()

	full, _ := NewHandoffStore(1, time.Minute)
	defer full.Close()
	full.Issue()
	if _, err := full.Issue(); !errors.Is(err, ErrAgain) {
		t.Fatalf("full store: %v", err)
	}
	full.Close()
	if _, err := full.Issue(); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
