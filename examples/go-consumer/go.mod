// A separate module that uses the Go binding. The replace line points at a checkout of librp
// (the require line's version is then a placeholder); to fetch the module by version instead,
// drop the replace line and require that version.
module example.com/goconsumer

go 1.24

require github.com/librp/rp/bindings/go v0.0.0

replace github.com/librp/rp/bindings/go => ../../bindings/go
