// Package nfc is the reader contract of kazasu: the small set of types and
// interfaces that every chip driver (PN532, libnfc, simulated) implements and
// that the card-application layers above consume.
//
// # Place in the stack
//
//	daemon → jpki → apdu → isodep → iso14443 (activation) → chip driver → transport
//
// This package sits beside that stack rather than in it: it holds only
// types, interfaces and error kinds, imports nothing from kazasu, and may be
// imported by every layer (like io for the standard library).
//
//   - A [Reader] is one physical or simulated reader. It polls for targets and
//     hands back a [Card].
//   - A [Card] is an activated ISO-DEP (ISO/IEC 14443-4) target: one APDU in,
//     one response out (SW1 SW2 included), whoever runs the block protocol.
//   - A [RawTransceiver] is what a chip driver offers to host-managed ISO-DEP
//     and to activation code: one ISO 14443-3 frame out, one frame in (CRC
//     added and stripped by the chip).
//
// Errors returned by implementations wrap one of the kinds below, so callers
// branch with errors.Is: [ErrTimeout], [ErrTransmission], [ErrProtocol],
// [ErrNoTarget], [ErrTargetGone], [ErrReaderGone], [ErrNotSupported].
package nfc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Error kinds. Every error from a reader, chip or protocol layer wraps exactly
// one of these, usually through *Error.
var (
	// ErrTimeout: the chip or the target did not answer in time.
	ErrTimeout = errors.New("timeout")
	// ErrTransmission: an RF or host-link transmission error (CRC, parity,
	// framing, checksum) that a retry may cure.
	ErrTransmission = errors.New("transmission error")
	// ErrProtocol: the peer broke the protocol (bad block, bad frame, wrong
	// response code). A retry rarely helps; the session should be ended.
	ErrProtocol = errors.New("protocol error")
	// ErrNoTarget: a poll cycle found nothing in the field.
	ErrNoTarget = errors.New("no target")
	// ErrTargetGone: the target left the field (or stopped answering) during
	// a session.
	ErrTargetGone = errors.New("target gone")
	// ErrReaderGone: the reader itself vanished (serial device unplugged,
	// bus error, chip not answering at all). Re-open the reader.
	ErrReaderGone = errors.New("reader gone")
	// ErrNotSupported: the reader or target cannot do what was asked.
	ErrNotSupported = errors.New("not supported")
)

// Error is the error type of the reader layers: an operation, one kind from
// the list above, and the underlying cause.
type Error struct {
	Op   string // e.g. "pn532: InDataExchange"
	Kind error  // one of the Err* kinds
	Err  error  // underlying cause, may be nil
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Kind != nil {
		b.WriteString(": ")
		b.WriteString(e.Kind.Error())
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap gives both the kind and the cause to errors.Is / errors.As.
func (e *Error) Unwrap() []error {
	var out []error
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// Errorf builds an *Error of the given kind with a formatted cause.
func Errorf(op string, kind error, format string, args ...any) error {
	return &Error{Op: op, Kind: kind, Err: fmt.Errorf(format, args...)}
}

// Wrap builds an *Error of the given kind around err. A nil err gives nil.
func Wrap(op string, kind error, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Kind: kind, Err: err}
}

// Kind returns the error kind wrapped by err, or nil if there is none.
func Kind(err error) error {
	for _, k := range []error{ErrTimeout, ErrTransmission, ErrProtocol, ErrNoTarget, ErrTargetGone, ErrReaderGone, ErrNotSupported} {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

// Tech is the RF technology of a target.
type Tech uint8

const (
	TechA Tech = 1 // ISO/IEC 14443 Type A (phones must offer it; HCE)
	TechB Tech = 2 // ISO/IEC 14443 Type B (the My Number Card)
)

func (t Tech) String() string {
	switch t {
	case TechA:
		return "A"
	case TechB:
		return "B"
	}
	return fmt.Sprintf("Tech(%d)", uint8(t))
}

// ISODepMode says who runs the ISO 14443-4 block protocol for a Card.
type ISODepMode uint8

const (
	// ISODepAuto lets the reader pick (the faster mode it knows of).
	ISODepAuto ISODepMode = iota
	// ISODepChip: the reader chip runs ISO-DEP (PN532 InDataExchange).
	ISODepChip
	// ISODepHost: the host runs ISO-DEP in software over raw frames.
	ISODepHost
)

func (m ISODepMode) String() string {
	switch m {
	case ISODepAuto:
		return "auto"
	case ISODepChip:
		return "chip"
	case ISODepHost:
		return "host"
	}
	return fmt.Sprintf("ISODepMode(%d)", uint8(m))
}

// Target describes an activated ISO-DEP target as seen by the reader.
type Target struct {
	Tech Tech
	// ID is the PUPI (Type B) or UID/NFCID1 (Type A). Phones randomise it
	// on every tap: never use it as an identity.
	ID []byte
	// Type B: the ATQB as received (starting with 0x50, 12 or 13 bytes) and
	// the answer to ATTRIB (MBLI|CID first).
	ATQB      []byte
	AttribRes []byte
	// Type A: ATQA (SENS_RES, 2 bytes), SAK (SEL_RES) and the ATS (with its
	// TL byte).
	ATQA []byte
	SAK  byte
	ATS  []byte
	// FSC is the largest frame the target accepts, FSD the largest the
	// reader accepts (bytes, PCB and CRC included).
	FSC, FSD int
	// FWT is the frame waiting time from FWI; SFGT the start-up guard time.
	FWT, SFGT time.Duration
	// CID is the card identifier in use, or -1 when none is sent.
	CID int
	// BitRate in kbit/s in each direction (106, 212, 424, 848).
	BitRatePCD, BitRatePICC int
	// Mode says who runs ISO-DEP for this target.
	Mode ISODepMode
}

// String gives a one-line summary, e.g. "B PUPI 11223344 FSC 256 FWT 309ms".
func (t Target) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v ", t.Tech)
	if t.Tech == TechB {
		fmt.Fprintf(&b, "PUPI %X", t.ID)
	} else {
		fmt.Fprintf(&b, "UID %X", t.ID)
	}
	fmt.Fprintf(&b, " FSC %d FSD %d FWT %v", t.FSC, t.FSD, t.FWT.Round(time.Microsecond))
	if t.CID >= 0 {
		fmt.Fprintf(&b, " CID %d", t.CID)
	}
	if t.BitRatePCD != 0 {
		fmt.Fprintf(&b, " %d/%d kbps", t.BitRatePCD, t.BitRatePICC)
	}
	fmt.Fprintf(&b, " ISO-DEP %v", t.Mode)
	return b.String()
}

// Card is an activated ISO-DEP target.
type Card interface {
	// Target describes the card as activated.
	Target() Target
	// Transceive sends one command APDU and returns the whole response APDU
	// (data followed by SW1 SW2). Chaining in both directions is the
	// implementation's business. The context bounds the whole exchange,
	// including any S(WTX) extensions the card asks for.
	Transceive(ctx context.Context, apdu []byte) ([]byte, error)
	// Present returns nil while the card is still in the field and answers,
	// an error wrapping ErrTargetGone when it has left.
	Present(ctx context.Context) error
	// Release ends the session with the card (S(DESELECT) or equivalent).
	// The card must be polled again before further use.
	Release(ctx context.Context) error
}

// Limits is an optional interface of Card: the largest APDUs the whole path
// (reader, driver and card frame sizes) carries. Zero means unknown.
type Limits interface {
	MaxAPDU() (command, response int)
}

// PollOptions control one poll cycle.
type PollOptions struct {
	// Order lists the technologies to try, in order. Empty means B then A.
	Order []Tech
	// Mode asks for chip- or host-managed ISO-DEP. Auto picks the default.
	Mode ISODepMode
	// ModeFor, if set, chooses the ISO-DEP mode once the target is known
	// (e.g. from a quirk profile matched by its ATQB or ATS), on readers that
	// can still choose after activation at no cost (PN532: chip-activated,
	// then host-managed or not). Auto keeps Mode. Other readers ignore it.
	ModeFor func(Target) ISODepMode
	// AFI is the Type B application family identifier (0 = all).
	AFI byte
}

// Techs returns the poll order, applying the default.
func (o PollOptions) Techs() []Tech {
	if len(o.Order) == 0 {
		return []Tech{TechB, TechA}
	}
	return o.Order
}

// Info describes a reader.
type Info struct {
	Driver    string // "pn532_uart", "pn532_i2c", "pn532_spi", "libnfc", "sim"
	Path      string // connection string as opened
	Chip      string // e.g. "PN532"
	Firmware  string // e.g. "1.6"
	Supported []Tech // technologies the chip can poll for
}

// Reader is one reader. Implementations are safe for use by one goroutine
// at a time; Close may be called from any goroutine and cancels what is in
// flight.
type Reader interface {
	Info() Info
	// Poll runs one poll cycle over opts.Techs() and returns the first ISO-DEP
	// target it activates, or an error wrapping ErrNoTarget.
	Poll(ctx context.Context, opts PollOptions) (Card, error)
	// SetField switches the RF field on or off. Off resets every target.
	SetField(ctx context.Context, on bool) error
	// Reset brings the reader back to its initial, working state (chip
	// reset, re-initialisation). Any Card from before is invalid.
	Reset(ctx context.Context) error
	// Close releases the reader and its transport.
	Close() error
}

// WaitForCard polls r until a card is found, ctx is done, or an error other
// than ErrNoTarget/ErrTimeout occurs. interval is the pause between cycles.
func WaitForCard(ctx context.Context, r Reader, opts PollOptions, interval time.Duration) (Card, error) {
	for {
		c, err := r.Poll(ctx, opts)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, ErrNoTarget) && !errors.Is(err, ErrTimeout) {
			return nil, err
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// WaitRemoved returns when c has left the field (nil), or when ctx is done.
// interval is the pause between presence checks.
func WaitRemoved(ctx context.Context, c Card, interval time.Duration) error {
	for {
		if err := c.Present(ctx); err != nil {
			if errors.Is(err, ErrTargetGone) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrTransmission) {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// RawTransceiver sends one ISO 14443-3 frame to the target and returns the
// target's answer. The chip appends and checks the CRC, so neither frame
// carries it. timeout bounds the wait for the answer on air (FWT plus
// margin); an expired timeout gives an error wrapping ErrTimeout.
type RawTransceiver interface {
	TransceiveRaw(ctx context.Context, frame []byte, timeout time.Duration) ([]byte, error)
}

// SizedRawTransceiver is a RawTransceiver that can be told the longest
// answer expected (max bytes, CRC excluded). Chips behind I2C or SPI size
// their host reads by it; a longer answer still gets through, only slower.
type SizedRawTransceiver interface {
	RawTransceiver
	TransceiveRawSized(ctx context.Context, frame []byte, timeout time.Duration, max int) ([]byte, error)
}
