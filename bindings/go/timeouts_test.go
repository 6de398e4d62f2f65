package rp

import (
	"testing"
	"time"
)

// A Go duration maps onto librp's one timeout rule the same way everywhere: negative = no
// limit (-1), 0 = do not wait, otherwise milliseconds rounded up (a short wait never becomes
// "do not wait"); options keep 0 for librp's default.
func TestDurationsMapOntoTheTimeoutRule(t *testing.T) {
	for _, c := range []struct {
		d         time.Duration
		wait, opt int32
	}{
		{-time.Nanosecond, -1, -1},
		{-time.Hour, -1, -1},
		{0, 0, 0},
		{time.Microsecond, 1, 1},
		{1500 * time.Microsecond, 2, 2},
		{time.Second, 1000, 1000},
		{1000 * time.Hour, 1<<31 - 1, 1<<31 - 1},
	} {
		if got := int32(timeoutMs(c.d)); got != c.wait {
			t.Errorf("timeoutMs(%v) = %d, want %d", c.d, got, c.wait)
		}
		if got := int32(optionMs(c.d)); got != c.opt {
			t.Errorf("optionMs(%v) = %d, want %d", c.d, got, c.opt)
		}
	}
}
