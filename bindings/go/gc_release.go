//go:build !rpdebug

package rp

func maybeGC() {}
