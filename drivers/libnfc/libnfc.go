//go:build cgo && libnfc

package libnfc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	cl "github.com/clausecker/nfc/v2"

	"kazasu/drivers/nfc"
)

// Available reports whether this build includes the libnfc backend.
const Available = true

// Options configure a libnfc reader.
type Options struct {
	// Tracer records APDUs (VERIFY redacted). Optional.
	Tracer nfc.Tracer
	// PresenceInterval is unused by libnfc itself; kept for symmetry with the
	// other backends.
	PresenceInterval time.Duration
}

// maxCommandAPDU is libnfc's limit for one InDataExchange on PN53x: it never
// chains host→card (pn532.md §5.7).
const maxCommandAPDU = 262

// maxResponse bounds the receive buffer: libnfc reassembles MI chains into it.
const maxResponse = 65536 + 2

// Reader is one libnfc device. Calls are serialised; Close and context
// cancellation abort a blocking libnfc call with AbortCommand.
type Reader struct {
	conn string
	opts Options

	mu     sync.Mutex // serialises libnfc calls
	dev    cl.Device
	closed bool
	info   nfc.Info
	card   *card // the selected card, if any
}

var _ nfc.Reader = (*Reader)(nil)

// Version is the linked libnfc's version string, e.g. "1.8.0".
func Version() string { return cl.Version() }

// ListDevices lists the connection strings libnfc finds (NUL bytes trimmed).
func ListDevices() ([]string, error) {
	devs, err := cl.ListDevices()
	if err != nil {
		return nil, wrapErr("libnfc: list devices", err)
	}
	for i, d := range devs {
		devs[i] = strings.TrimRight(d, "\x00")
	}
	return devs, nil
}

// Open opens the libnfc device named by connstring ("pn532_uart:/dev/ttyUSB0",
// "pn53x_usb:", "" for libnfc's default device) and initialises it as an
// initiator with finite selection.
func Open(connstring string, opts Options) (*Reader, error) {
	op := "libnfc: open " + connstring
	dev, err := cl.Open(connstring)
	if err != nil {
		return nil, nfc.Wrap(op, nfc.ErrReaderGone, err)
	}
	r := &Reader{conn: connstring, opts: opts, dev: dev}
	if err := r.init(); err != nil {
		dev.Close()
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return r, nil
}

// init sets the device up as an initiator that gives up when no target is in
// the field.
func (r *Reader) init() error {
	if err := r.dev.InitiatorInit(); err != nil {
		return wrapErr("libnfc: initiator init", err)
	}
	if err := r.dev.SetPropertyBool(cl.InfiniteSelect, false); err != nil {
		return wrapErr("libnfc: infinite select off", err)
	}
	name := r.dev.String()
	chip, fw := "", ""
	// libnfc names PN53x devices like "pn532_uart:/dev/..."; Information()
	// holds "chip: PN532 v1.6".
	if s, err := r.dev.Information(); err == nil {
		for _, line := range strings.Split(s, "\n") {
			line = strings.TrimSpace(line)
			if rest, ok := strings.CutPrefix(line, "chip:"); ok {
				f := strings.Fields(rest)
				if len(f) > 0 {
					chip = f[0]
				}
				if len(f) > 1 {
					fw = strings.TrimPrefix(f[1], "v")
				}
			}
		}
	}
	r.info = nfc.Info{Driver: "libnfc", Path: r.conn, Chip: chip, Firmware: fw, Supported: []nfc.Tech{nfc.TechB, nfc.TechA}}
	if chip == "" {
		r.info.Chip = name
	}
	return nil
}

// Info describes the reader.
func (r *Reader) Info() nfc.Info { return r.info }

// call runs f (one blocking libnfc call) with ctx cancellation turned into
// AbortCommand. r.mu must be held.
func (r *Reader) call(ctx context.Context, f func() error) error {
	if r.closed {
		return nfc.Errorf("libnfc", nfc.ErrReaderGone, "reader closed")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = r.dev.AbortCommand()
		<-done
		return ctx.Err()
	}
}

// Poll runs one poll cycle over opts.Techs() and returns the first ISO-DEP
// target libnfc selects.
func (r *Reader) Poll(ctx context.Context, opts nfc.PollOptions) (nfc.Card, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.card != nil {
		r.card.released = true
		r.card = nil
	}
	for _, tech := range opts.Techs() {
		var t cl.Target
		var init []byte
		m := cl.Modulation{Type: cl.ISO14443a, BaudRate: cl.Nbr106}
		if tech == nfc.TechB {
			m.Type = cl.ISO14443b
			init = []byte{opts.AFI}
		}
		err := r.call(ctx, func() (err error) {
			defer func() {
				// clausecker/nfc v2.2.0 panics decoding the zeroed target
				// libnfc leaves when nothing was found.
				if p := recover(); p != nil {
					t, err = nil, nfc.ErrNoTarget
				}
			}()
			t, err = r.dev.InitiatorSelectPassiveTarget(m, init)
			return err
		})
		if err != nil {
			if errors.Is(err, nfc.ErrNoTarget) || isCode(err, cl.ETIMEOUT) {
				continue
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, wrapErr("libnfc: select "+tech.String(), err)
		}
		target, ok := toTarget(t)
		if !ok {
			// Not ISO-DEP (e.g. a MIFARE Classic): not ours.
			continue
		}
		c := &card{r: r, target: target, libTarget: t}
		r.card = c
		return c, nil
	}
	return nil, nfc.Errorf("libnfc: poll", nfc.ErrNoTarget, "no ISO-DEP target in the field")
}

// toTarget converts libnfc's target description; ok is false for targets
// that do not speak ISO 14443-4.
func toTarget(t cl.Target) (nfc.Target, bool) {
	switch v := t.(type) {
	case *cl.ISO14443bTarget:
		atqb := make([]byte, 0, 12)
		atqb = append(atqb, 0x50)
		atqb = append(atqb, v.Pupi[:]...)
		atqb = append(atqb, v.ApplicationData[:]...)
		atqb = append(atqb, v.ProtocolInfo[:]...)
		pi := v.ProtocolInfo
		if pi[1]&0x01 == 0 { // Protocol_Type b1: ISO 14443-4 compliant
			return nfc.Target{}, false
		}
		fsci := int(pi[1] >> 4)
		fwi := int(pi[2] >> 4)
		return nfc.Target{
			Tech: nfc.TechB, ID: append([]byte(nil), v.Pupi[:]...), ATQB: atqb,
			AttribRes: []byte{v.CardIdentifier},
			FSC:       fsTable(fsci), FSD: 64, FWT: fwt(fwi), CID: int(v.CardIdentifier & 0x0F),
			BitRatePCD: 106, BitRatePICC: 106, Mode: nfc.ISODepChip,
		}, true
	case *cl.ISO14443aTarget:
		if v.Sak&0x20 == 0 || v.AtsLen == 0 { // not ISO 14443-4 compliant
			return nfc.Target{}, false
		}
		n := min(v.UIDLen, len(v.UID))
		// libnfc stores the ATS without its TL byte (T0 first); the
		// contract's Target.ATS carries it, as on air.
		body := v.Ats[:min(v.AtsLen, len(v.Ats))]
		ats := append([]byte{byte(len(body) + 1)}, body...)
		fsc, fwtv := 32, fwt(4)
		if len(body) > 0 {
			t0 := body[0]
			fsc = fsTable(int(t0 & 0x0F))
			i := 1
			if t0&0x10 != 0 {
				i++
			}
			if t0&0x20 != 0 && i < len(body) {
				fwtv = fwt(int(body[i] >> 4))
			}
		}
		return nfc.Target{
			Tech: nfc.TechA, ID: append([]byte(nil), v.UID[:n]...), ATQA: v.Atqa[:], SAK: v.Sak, ATS: ats,
			FSC: fsc, FSD: 64, FWT: fwtv, CID: -1, BitRatePCD: 106, BitRatePICC: 106, Mode: nfc.ISODepChip,
		}, true
	}
	return nfc.Target{}, false
}

// fsTable maps FSCI to the frame size (ISO 14443-3; RFU clamped to 256).
func fsTable(i int) int {
	t := []int{16, 24, 32, 40, 48, 64, 96, 128, 256}
	if i < 0 || i >= len(t) {
		return 256
	}
	return t[i]
}

// fwt maps FWI to the frame waiting time (RFU 15 treated as 4).
func fwt(fwi int) time.Duration {
	if fwi > 14 {
		fwi = 4
	}
	return time.Duration(float64(int64(256*16)<<fwi) / 13.56e6 * float64(time.Second))
}

// SetField switches the RF field.
func (r *Reader) SetField(ctx context.Context, on bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.call(ctx, func() error {
		return wrapErr("libnfc: field", r.dev.SetPropertyBool(cl.ActivateField, on))
	})
}

// Reset closes and re-opens the device.
func (r *Reader) Reset(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nfc.Errorf("libnfc: reset", nfc.ErrReaderGone, "reader closed")
	}
	r.card = nil
	r.dev.Close()
	dev, err := cl.Open(r.conn)
	if err != nil {
		r.closed = true
		return nfc.Wrap("libnfc: reset: reopen "+r.conn, nfc.ErrReaderGone, err)
	}
	r.dev = dev
	return r.init()
}

// Close releases the device; a blocking call in flight is aborted.
func (r *Reader) Close() error {
	// Abort first, without the lock, so a blocked call returns.
	_ = r.dev.AbortCommand()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	r.card = nil
	return r.dev.Close()
}

// card is a target selected by libnfc.
type card struct {
	r         *Reader
	target    nfc.Target
	libTarget cl.Target
	released  bool
}

var _ nfc.Card = (*card)(nil)
var _ nfc.Limits = (*card)(nil)

func (c *card) Target() nfc.Target { return c.target }

// MaxAPDU: libnfc sends at most 262 bytes; answers are reassembled.
func (c *card) MaxAPDU() (int, int) { return maxCommandAPDU, maxResponse }

func (c *card) trace(out bool, b []byte) {
	if c.r.opts.Tracer == nil {
		return
	}
	if out {
		b = nfc.RedactVerify(b)
	}
	c.r.opts.Tracer.Trace(nfc.TraceEvent{Time: time.Now(), Layer: nfc.LayerAPDU, Out: out, Data: append([]byte(nil), b...)})
}

// Transceive sends one APDU through libnfc (InDataExchange on PN53x).
func (c *card) Transceive(ctx context.Context, apdu []byte) ([]byte, error) {
	const op = "libnfc: transceive"
	if len(apdu) == 0 {
		return nil, nfc.Errorf(op, nfc.ErrProtocol, "empty APDU")
	}
	if len(apdu) > maxCommandAPDU {
		return nil, nfc.Errorf(op, nfc.ErrNotSupported, "%d-byte APDU exceeds libnfc's %d-byte limit (no host→card chaining)", len(apdu), maxCommandAPDU)
	}
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	if c.released || c.r.card != c {
		return nil, nfc.Errorf(op, nfc.ErrTargetGone, "card released")
	}
	// libnfc's timeout is in ms; 0 means forever, so a context without a
	// deadline gets a bound from the card's FWT with WTX head room.
	timeout := 5000
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(1, int(time.Until(dl)/time.Millisecond))
	}
	c.trace(true, apdu)
	rx := make([]byte, maxResponse)
	var n int
	err := c.r.call(ctx, func() (err error) {
		n, err = c.r.dev.InitiatorTransceiveBytes(apdu, rx, timeout)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, wrapErr(op, err)
	}
	if n < 2 || n > len(rx) {
		return nil, nfc.Errorf(op, nfc.ErrProtocol, "response of %d bytes has no status word", n)
	}
	resp := append([]byte(nil), rx[:n]...)
	c.trace(false, resp)
	return resp, nil
}

// Present checks the target with libnfc's presence check.
func (c *card) Present(ctx context.Context) error {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	if c.released || c.r.card != c {
		return nfc.Errorf("libnfc: presence", nfc.ErrTargetGone, "card released")
	}
	err := c.r.call(ctx, func() error { return c.r.dev.InitiatorTargetIsPresent(nil) })
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return nfc.Wrap("libnfc: presence", nfc.ErrTargetGone, err)
	}
	return nil
}

// Release deselects the target.
func (c *card) Release(ctx context.Context) error {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	if c.released || c.r.card != c {
		return nil
	}
	c.released = true
	c.r.card = nil
	err := c.r.call(ctx, func() error { return c.r.dev.InitiatorDeselectTarget() })
	// libnfc returns InDeselect's positive byte count, which the binding
	// reports as an error (deps.md §1a gotcha 1).
	var e cl.Error
	if errors.As(err, &e) && e > 0 {
		return nil
	}
	return wrapErr("libnfc: deselect", err)
}

// isCode reports whether err is the libnfc error code.
func isCode(err error, code int) bool {
	var e cl.Error
	return errors.As(err, &e) && int(e) == code
}

// wrapErr maps libnfc error codes to the contract's kinds.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var e cl.Error
	if !errors.As(err, &e) {
		return nfc.Wrap(op, nfc.ErrProtocol, err)
	}
	kind := nfc.ErrProtocol
	switch int(e) {
	case cl.ETIMEOUT:
		kind = nfc.ErrTimeout
	case cl.ERFTRANS:
		kind = nfc.ErrTransmission
	case cl.ETGRELEASED:
		kind = nfc.ErrTargetGone
	case cl.EIO, cl.ENOTSUCHDEV:
		kind = nfc.ErrReaderGone
	case cl.EOPABORTED:
		kind = nfc.ErrTimeout
	case cl.EDEVNOTSUPP, cl.ENOTIMPL:
		kind = nfc.ErrNotSupported
	}
	return nfc.Wrap(op, kind, err)
}
