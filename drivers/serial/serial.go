// Package serial is kazasu's UART transport: a small Port interface that a
// chip driver (drivers/pn532's HSU adapter) talks to, and its Linux
// implementation on top of github.com/tarm/serial.
//
// # Place in the stack
//
//	chip driver (drivers/pn532) → serial.Port → tty (termios)
//
// The package knows nothing about NFC chips. It imports only the reader
// contract (drivers/nfc) for its error kinds, so that a caller can branch on
// errors.Is(err, nfc.ErrTimeout) and errors.Is(err, nfc.ErrReaderGone) without
// knowing which transport it sits on.
//
// # Why a Port of our own
//
// periph.io's uart package thinks in hertz and Port→Conn; UART users think in
// baud, and a PN532 needs its rate changed at run time (SetSerialBaudRate).
// A Port is therefore an io.ReadWriteCloser plus the few things a driver
// needs: a read timeout (always set: there is no "wait forever"), Flush, and
// SetBaud.
//
// # The tarm/serial quirks this package hides
//
// Measured on ptys (see the project notes, deps.md §3):
//
//   - A tarm read timeout is termios VTIME: tenths of a second, at least one,
//     rounded down. [TTY] keeps VTIME at its minimum (100 ms) and runs one
//     background reader per open port that moves bytes into a buffer; Read
//     waits on that buffer with a Go timer. The effective read-timeout
//     resolution is therefore that of the Go runtime timer (well under a
//     millisecond), and bytes are handed over as soon as the kernel has them
//     (VMIN 0 returns on the first byte). The cost is one wake-up per 100 ms
//     while the port is idle.
//   - A timed-out tarm read returns (0, io.EOF). Here a timeout is
//     [ErrTimeout]; io.EOF is never returned.
//   - tarm's Close can block while a read without timeout is pending. Here
//     every low-level read has a timeout, Read never blocks in the kernel, and
//     Close wakes blocked Reads at once (they return [ErrClosed]); Close itself
//     waits one VTIME period for the background reader to exit (never more
//     than a second, even on a tty driver that ignores VTIME).
//   - tarm cannot change the rate of an open port. [TTY.SetBaud] reopens the
//     device at the new rate behind the same *TTY, so the driver keeps its
//     Port value.
//   - A vanished device (USB adapter unplugged, pty master closed) shows up as
//     EIO/ENXIO/ENODEV, as a read that returns "timeout" instantly again and
//     again (hang-up), or as a device node that no longer exists. All of them
//     give errors wrapping nfc.ErrReaderGone; [TTY.Reopen] opens the path
//     again once the device is back.
package serial

import (
	"context"
	"io"
	"os"
	"time"

	"kazasu/drivers/nfc"
)

// Port is a UART as a chip driver sees it.
//
// Implementations are safe for one reader and one writer at a time; Close,
// Flush, SetBaud and SetReadTimeout may be called from any goroutine.
type Port interface {
	// Read reads at least one byte, waiting at most the read timeout for the
	// first one. A timeout gives (0, err) with errors.Is(err, ErrTimeout) (and
	// nfc.ErrTimeout); it never gives io.EOF.
	io.Reader
	// Write writes all of p or returns an error.
	io.Writer
	// Close releases the port and wakes blocked Reads.
	io.Closer
	// SetReadTimeout sets how long each later Read waits for its first byte.
	// d must be positive: a Port always has a read timeout.
	SetReadTimeout(d time.Duration) error
	// Flush discards bytes received but not yet read (stale input before a
	// new command). Output is never discarded: a frame that Write accepted
	// goes out, even when Flush follows at once.
	Flush() error
	// SetBaud changes the line rate (8N1 stays). Bytes in flight are lost.
	SetBaud(baud int) error
	// Baud returns the current line rate.
	Baud() int
}

// ContextReader is an optional interface of a Port whose Read can also be
// ended by a context (the read timeout still applies). A driver uses it so
// that cancelling an operation does not wait for the read timeout.
type ContextReader interface {
	ReadContext(ctx context.Context, p []byte) (int, error)
}

// Errors returned by ports. Each wraps an nfc error kind.
var (
	// ErrTimeout: no byte arrived within the read timeout.
	ErrTimeout error = &nfc.Error{Op: "serial: read", Kind: nfc.ErrTimeout}
	// ErrClosed: the port was closed (by this process).
	ErrClosed error = &nfc.Error{Op: "serial", Kind: nfc.ErrReaderGone, Err: os.ErrClosed}
)

// StandardBauds lists the rates a Linux tty (and tarm/serial) accepts, in
// ascending order. The PN532 HSU itself knows 9600…921600 and 1288000; the
// last is not a termios rate and cannot be used here.
var StandardBauds = []int{
	50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600,
	19200, 38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600,
	1000000, 1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000,
}

// ValidBaud reports whether baud is in [StandardBauds].
func ValidBaud(baud int) bool {
	for _, b := range StandardBauds {
		if b == baud {
			return true
		}
	}
	return false
}

// ByteTime returns how long n bytes take on the wire at baud (10 bits per
// byte: start, 8 data, stop). It is the floor for any timeout that covers a
// transfer of n bytes.
func ByteTime(baud, n int) time.Duration {
	if baud <= 0 || n <= 0 {
		return 0
	}
	return time.Duration(int64(n) * 10 * int64(time.Second) / int64(baud))
}

// errBaud is returned for rates outside StandardBauds.
func errBaud(baud int) error {
	return nfc.Errorf("serial: SetBaud", nfc.ErrNotSupported, "%d baud is not a termios rate", baud)
}
