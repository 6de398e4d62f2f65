//go:build unix

package rp

import "syscall"

// dupDescriptor duplicates a descriptor, close-on-exec, for librp to own.
func dupDescriptor(fd int32) (int, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if errno != 0 {
		return -1, &Error{Status: StatusIO, Msg: "dup: " + errno.Error()}
	}
	return int(r), nil
}
