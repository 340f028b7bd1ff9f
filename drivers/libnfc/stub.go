//go:build !cgo || !libnfc

package libnfc

import (
	"context"
	"time"

	"kazasu/drivers/nfc"
)

// Available reports whether this build includes the libnfc backend.
const Available = false

// Options configure a libnfc reader.
type Options struct {
	// Tracer records APDUs (VERIFY redacted). Optional.
	Tracer nfc.Tracer
	// PresenceInterval is unused without libnfc.
	PresenceInterval time.Duration
}

// Reader is a libnfc reader. Without the libnfc build tag it cannot be opened.
type Reader struct{}

var _ nfc.Reader = (*Reader)(nil)

// Open always fails in this build: it was built without cgo or without the
// libnfc tag.
func Open(connstring string, opts Options) (*Reader, error) {
	return nil, nfc.Errorf("libnfc: open "+connstring, nfc.ErrNotSupported,
		"this binary was built without libnfc support (rebuild with CGO_ENABLED=1 -tags libnfc and libnfc-dev installed)")
}

// ListDevices always fails in this build.
func ListDevices() ([]string, error) {
	return nil, nfc.Errorf("libnfc: list devices", nfc.ErrNotSupported, "built without libnfc support")
}

// Version reports that libnfc is not linked.
func Version() string { return "" }

func (r *Reader) Info() nfc.Info                                          { return nfc.Info{Driver: "libnfc"} }
func (r *Reader) Poll(context.Context, nfc.PollOptions) (nfc.Card, error) { return nil, errStub }
func (r *Reader) SetField(context.Context, bool) error                    { return errStub }
func (r *Reader) Reset(context.Context) error                             { return errStub }
func (r *Reader) Close() error                                            { return nil }

var errStub = nfc.Errorf("libnfc", nfc.ErrNotSupported, "built without libnfc support")
