//go:build unix

package rp

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// sockPath returns a socket path in a fresh owner-only directory (short enough for sun_path).
func sockPath(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rpgo")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, name)
}

// connPair returns the two ends of a connection (a socket pair), for AdoptConn.
func connPair(t *testing.T) (syscall.Conn, syscall.Conn) {
	a, b := unixPair(t)
	return a, b
}

// openFds counts this process's open descriptors.
func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}
