module github.com/librp/rp/bindings/go

go 1.24
