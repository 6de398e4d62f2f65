//go:build rpdebug

package rp

import "runtime"

// maybeGC runs a collection before each C call in builds with the rpdebug tag, so that a
// handle whose owner became unreachable too early (a missing runtime.KeepAlive) is freed by
// its cleanup at once and the test fails loudly instead of rarely.
func maybeGC() { runtime.GC() }
