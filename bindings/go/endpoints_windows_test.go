//go:build windows

package rp

import (
	"errors"
	"strings"
	"testing"
)

// A local endpoint on Windows is a named pipe: `\\.\pipe\NAME` and the bare NAME are the same
// pipe, whichever spelling the server and the worker use.
func TestPushRoundTripOverANamedPipeEitherSpelling(t *testing.T) {
	full := sockPath(t, "push")
	bare := strings.TrimPrefix(full, `\\.\pipe\`)
	roundTrip(t, full, bare)
	other := sockPath(t, "push")
	roundTrip(t, strings.TrimPrefix(other, `\\.\pipe\`), other)
}

// An abstract socket name (`@name`) is Linux's: on Windows it is an invalid argument.
func TestAbstractNameIsInvalidOnWindows(t *testing.T) {
	if _, err := Bind("@rpgo-abstract", nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Bind(@rpgo-abstract) = %v, want ErrInvalidArgument", err)
	}
}
