// Package rp is the Go binding of librp, the running-process v1 broker protocol library.
//
// It wraps the C API of librp (include/rp.h) through cgo: push workers ([Connect], [Worker]),
// push servers ([Bind], [PushServer]), the sans-io endpoint multiplexer ([NewMux], [Mux]), daemon
// identities ([DaemonIdentity]), one-time handoff tokens ([HandoffStore]), v1 frames ([Frame]), the
// broker client ([ConnectBroker], [Conn], [AdminRequest]), the broker server
// ([BindBroker], [BrokerServer]) and sessions, calls in both directions over one connection
// ([NewSession], [Session]).
//
// # Building
//
// The package finds librp with pkg-config (`#cgo pkg-config: rp`). Against an installed librp:
//
//	go build ./...
//
// Against the source tree, stage an install and point pkg-config (and the loader) at it:
//
//	cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release
//	cmake --build build/release
//	cmake --install build/release --prefix build/stage
//	cd bindings/go
//	PKG_CONFIG_PATH=$PWD/../../build/stage/lib/pkgconfig \
//	LD_LIBRARY_PATH=$PWD/../../build/stage/lib go test -race ./...
//
// Without an install, give the flags by hand and make the pkg-config step a no-op (cgo runs
// $PKG_CONFIG; `true` reports no flags). From bindings/go, with ROOT the source tree and the
// CMake Release build in build/release:
//
//	PKG_CONFIG=true CGO_CFLAGS="-I$ROOT/include" \
//	CGO_LDFLAGS="-L$ROOT/build/release/lib -lrp -Wl,-rpath,$ROOT/build/release/lib" go test ./...
//
// # Conventions
//
//   - Every handle has an explicit, idempotent Close; methods called after Close return
//     [ErrClosed]. A cleanup attached with runtime.AddCleanup frees a forgotten handle when
//     it becomes unreachable, as a leak net only: do not rely on it.
//   - Failures are *[Error] values carrying the librp status and message; compare them with
//     errors.Is against the sentinels ([ErrTimeout], [ErrClosed], ...). A refusal by a server
//     is a *[RefusedError] with the server's code, reason and retry hint.
//   - Blocking calls take a context.Context and return its error once it is done: at once
//     (the context's end wakes the waiting C call, or interrupts a wait on a ticket or a
//     request, which goes on; a session wait that is reading the connection itself notices
//     within the session's 20 ms read slice).
//   - C never keeps a Go pointer: callbacks are reached through runtime/cgo.Handle values that
//     librp releases with the callback's user_data_free; byte slices passed to librp are only
//     borrowed for the duration of the call.
//   - Callbacks run on the goroutine that called the librp function which runs them
//     ([Worker.Dispatch], [PushServer.Dispatch], [Mux.Poll]). A panic in a callback is recovered
//     before it can reach librp, librp sees a failure status, and the panic is raised again
//     in that goroutine once the C call has returned.
package rp

/*
#cgo pkg-config: rp
#include "shims.h"
*/
import "C"

// Version returns the version of the loaded librp as "MAJOR.MINOR.PATCH".
func Version() string { return C.GoString(C.rp_version_string()) }

// VersionNumber returns the loaded librp's version as major*10000 + minor*100 + patch.
func VersionNumber() uint32 { return uint32(C.rp_version_number()) }

// HeaderVersion is the version of the rp.h this package was compiled against, in the form of
// VersionNumber.
const HeaderVersion = uint32(C.RP_VERSION_MAJOR*10000 + C.RP_VERSION_MINOR*100 + C.RP_VERSION_PATCH)

// Payload protocols and limits of the v1 wire (see rp.h).
const (
	ProtocolControl       = uint32(C.RP_PROTOCOL_CONTROL)
	ProtocolIdentityProbe = uint32(C.RP_PROTOCOL_IDENTITY_PROBE)
	ProtocolHandoff       = uint32(C.RP_PROTOCOL_HANDOFF)
	ProtocolSession       = uint32(C.RP_PROTOCOL_SESSION)
	FrameHeaderLen        = int(C.RP_FRAME_HEADER_LEN)
	FrameMaxBody          = int(C.RP_FRAME_MAX_BODY)
	HelloMaxBody          = int(C.RP_HELLO_MAX_BODY)
	HandoffTokenLen       = int(C.RP_HANDOFF_TOKEN_LEN)
)
