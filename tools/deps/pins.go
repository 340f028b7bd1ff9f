//go:build tools

// Package deps pins the project's direct dependencies so that `go mod tidy`
// keeps their exact versions in go.mod even before code uses them. The Go
// module proxy used here refuses @latest for some of these modules (see
// ../shared/docs/deps.md), so versions are always pinned by hand.
package deps

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/clausecker/nfc/v2"
	_ "github.com/coreos/go-systemd/v22/daemon"
	_ "github.com/creack/pty"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/tarm/serial"
	_ "go.etcd.io/bbolt"
	_ "golang.org/x/crypto/cryptobyte"
	_ "golang.org/x/crypto/ocsp"
	_ "modernc.org/sqlite"
	_ "periph.io/x/conn/v3/i2c"
	_ "periph.io/x/conn/v3/spi"
	_ "periph.io/x/host/v3"
)
