//go:build windows

package rp

import "syscall"

// dupDescriptor duplicates a handle (a named pipe's), not inheritable, for librp to own; the
// value fits in 32 bits, as Windows keeps handle values.
func dupDescriptor(fd int32) (int, error) {
	self, err := syscall.GetCurrentProcess()
	if err != nil {
		return -1, &Error{Status: StatusIO, Msg: "GetCurrentProcess: " + err.Error()}
	}
	var dup syscall.Handle
	if err := syscall.DuplicateHandle(self, syscall.Handle(fd), self, &dup, 0, false, syscall.DUPLICATE_SAME_ACCESS); err != nil {
		return -1, &Error{Status: StatusIO, Msg: "DuplicateHandle: " + err.Error()}
	}
	return int(int32(dup)), nil
}
