//go:build unix

// Unix only: socket files, their mode and group; a Windows pipe has an owner-only DACL instead.

package rp

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A push server and a broker open their path socket to one group: the socket file gets the
// mode and group, the directory librp creates is 0710 with that group; a mode with bits for
// others is refused.
func TestSocketAccessOpensASocketToOneGroup(t *testing.T) {
	dir := t.TempDir()
	gid := int64(os.Getegid())
	check := func(sock string) {
		t.Helper()
		fi, err := os.Lstat(sock)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != 0o660 || int64(st.Gid) != gid {
			t.Fatalf("%s: mode %o group %d, want 0660 and %d", sock, fi.Mode().Perm(), st.Gid, gid)
		}
		di, err := os.Lstat(filepath.Dir(sock))
		if err != nil {
			t.Fatal(err)
		}
		if di.Mode().Perm() != 0o710 {
			t.Fatalf("%s: directory mode %o, want 0710", sock, di.Mode().Perm())
		}
	}
	access := &SocketAccess{Mode: 0o660, Group: gid}
	sock := filepath.Join(dir, "p", "p.sock")
	s, err := Bind(sock, &ServerOptions{AllowOtherUIDs: true, SocketAccess: access})
	if err != nil {
		t.Fatal(err)
	}
	check(sock)
	s.Close()
	bsock := filepath.Join(dir, "b", "b.sock")
	b, err := BindBroker(bsock, &BrokerServerOptions{AllowOtherUIDs: true, SocketAccess: access})
	if err != nil {
		t.Fatal(err)
	}
	check(bsock)
	b.Close()

	_, err = Bind(filepath.Join(dir, "q", "q.sock"), &ServerOptions{SocketAccess: &SocketAccess{Mode: 0o666, Group: -1}})
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "others nothing") {
		t.Fatalf("mode 0666: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "q")); !os.IsNotExist(err) {
		t.Fatal("a refused mode created the socket directory")
	}
}
