package rp

import (
	"reflect"
	"testing"
)

// WorkerOptions.MaxQueued changed nothing and is withdrawn.
func TestWorkerOptionsHaveNoMaxQueued(t *testing.T) {
	if _, ok := reflect.TypeOf(WorkerOptions{}).FieldByName("MaxQueued"); ok {
		t.Error("WorkerOptions still has the no-op MaxQueued field")
	}
}
