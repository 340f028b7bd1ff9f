package serial

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	tarm "github.com/tarm/serial"

	"kazasu/drivers/nfc"
)

// DefaultReadTimeout is the read timeout of a freshly opened TTY.
const DefaultReadTimeout = time.Second

// vtime is the low-level read timeout given to tarm/serial: its minimum, one
// termios VTIME unit. It bounds how long Close and SetBaud wait for the
// background reader.
const vtime = 100 * time.Millisecond

// hangupReads is how many consecutive instant "timeouts" mean the line was
// hung up (a tty whose device vanished returns 0 bytes at once, forever).
const hangupReads = 3

// maxBuffered bounds the bytes kept for a reader that does not read. Beyond
// it the oldest bytes are dropped (a driver that stops reading has lost the
// frame anyway).
const maxBuffered = 64 << 10

// TTY is a Port on a Linux tty device, implemented with github.com/tarm/serial.
// Open it with [Open]. Its zero value is not usable.
type TTY struct {
	path string

	// ctl serialises Close, SetBaud and Reopen against each other.
	ctl sync.Mutex

	mu      sync.Mutex
	port    *tarm.Port    // nil when closed
	baud    int           //
	timeout time.Duration // read timeout
	buf     []byte        // received, not yet read
	err     error         // sticky error of the background reader
	closed  bool          // Close was called
	gen     uint64        // bumped when the background reader must stop
	flushAt time.Time     // last Flush: bytes a read returned before it are stale
	notify  chan struct{} // closed (and replaced) when buf, err or closed change
	done    chan struct{} // closed when the current background reader exits
}

var _ Port = (*TTY)(nil)
var _ ContextReader = (*TTY)(nil)

// Open opens the tty at path (e.g. "/dev/ttyAMA0", "/dev/ttyUSB0") at baud,
// 8N1, with no flow control and the [DefaultReadTimeout].
func Open(path string, baud int) (*TTY, error) {
	if !ValidBaud(baud) {
		return nil, errBaud(baud)
	}
	t := &TTY{path: path, baud: baud, timeout: DefaultReadTimeout, notify: make(chan struct{})}
	p, err := openTarm(path, baud)
	if err != nil {
		return nil, err
	}
	t.start(p)
	return t, nil
}

// String returns the device path.
func (t *TTY) String() string { return t.path }

// Path returns the device path the TTY was opened with.
func (t *TTY) Path() string { return t.path }

func openTarm(path string, baud int) (*tarm.Port, error) {
	p, err := tarm.OpenPort(&tarm.Config{Name: path, Baud: baud, ReadTimeout: vtime})
	if err != nil {
		return nil, classify("serial: open "+path, err)
	}
	return p, nil
}

// start launches the background reader for p. t.mu must not be held.
func (t *TTY) start(p *tarm.Port) {
	t.mu.Lock()
	t.port = p
	t.gen++
	gen := t.gen
	done := make(chan struct{})
	t.done = done
	t.mu.Unlock()
	go t.pump(p, gen, done)
}

// stopWait bounds how long stop waits for the background reader. Its read
// returns within vtime on every tty driver that honours VTIME; the bound is
// for those that do not, so that Close can never hang.
const stopWait = 10 * vtime

// stop ends the background reader and closes the tarm port. It waits for
// the reader (normally at most one vtime, never more than stopWait). t.mu
// must not be held.
func (t *TTY) stop() error {
	t.mu.Lock()
	p, done := t.port, t.done
	t.port = nil
	t.gen++
	t.mu.Unlock()
	if p == nil {
		return nil
	}
	timer := time.NewTimer(stopWait)
	defer timer.Stop()
	select {
	case <-done:
		return p.Close()
	case <-timer.C:
		// The reader is stuck in the kernel. Close in the background: the
		// descriptor is released when that read returns, and the reader
		// then sees the new generation and exits.
		go p.Close()
		return nil
	}
}

// wake tells waiting readers that something changed. t.mu must be held.
func (t *TTY) wake() {
	close(t.notify)
	t.notify = make(chan struct{})
}

// pump moves bytes from the tty to t.buf until it fails or gen changes.
func (t *TTY) pump(p *tarm.Port, gen uint64, done chan struct{}) {
	defer close(done)
	b := make([]byte, 1024)
	instant := 0
	for {
		start := time.Now()
		n, err := p.Read(b)
		returned := time.Now()
		elapsed := returned.Sub(start)
		nodeGone := false
		if n == 0 && (err == nil || err == io.EOF) {
			_, serr := os.Stat(t.path)
			nodeGone = errors.Is(serr, os.ErrNotExist)
		}

		t.mu.Lock()
		if t.gen != gen {
			t.mu.Unlock()
			return
		}
		// With VMIN 0 a read returns as soon as a byte is there, so bytes
		// returned after the last Flush arrived after it (or within the
		// scheduling latency of it) and are kept; bytes returned before it
		// were in our hands when the caller asked to forget them.
		if n > 0 && !returned.Before(t.flushAt) {
			t.buf = append(t.buf, b[:n]...)
			if over := len(t.buf) - maxBuffered; over > 0 {
				t.buf = append(t.buf[:0], t.buf[over:]...)
			}
			t.wake()
		}
		var fail error
		switch {
		case n > 0:
			instant = 0
		case err == nil || err == io.EOF:
			// tarm's VTIME timeout. A tty that was hung up returns the same
			// thing, but at once; so does one whose node was removed.
			if elapsed < vtime/2 {
				instant++
			} else {
				instant = 0
			}
			if instant >= hangupReads {
				fail = nfc.Errorf("serial: read "+t.path, nfc.ErrReaderGone, "line hung up")
			} else if nodeGone {
				fail = nfc.Errorf("serial: read "+t.path, nfc.ErrReaderGone, "device node is gone")
			}
		default:
			fail = classify("serial: read "+t.path, err)
		}
		if fail != nil {
			t.err = fail
			t.wake()
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
	}
}

// classify wraps an OS error: a vanished device becomes nfc.ErrReaderGone.
func classify(op string, err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EIO, syscall.ENXIO, syscall.ENODEV, syscall.ENOENT, syscall.EBADF:
			return nfc.Wrap(op, nfc.ErrReaderGone, err)
		}
	}
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrClosed) {
		return nfc.Wrap(op, nfc.ErrReaderGone, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Read implements Port.
func (t *TTY) Read(p []byte) (int, error) {
	return t.ReadContext(context.Background(), p)
}

// ReadContext implements ContextReader: Read that also returns when ctx is
// done, with an error wrapping ctx.Err() and nfc.ErrTimeout.
func (t *TTY) ReadContext(ctx context.Context, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var timer *time.Timer
	for {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return 0, ErrClosed
		}
		if len(t.buf) > 0 {
			n := copy(p, t.buf)
			t.buf = append(t.buf[:0], t.buf[n:]...)
			t.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return n, nil
		}
		if t.err != nil {
			err := t.err
			t.mu.Unlock()
			return 0, err
		}
		if timer == nil {
			timer = time.NewTimer(t.timeout)
			defer timer.Stop()
		}
		ch := t.notify
		t.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			return 0, ErrTimeout
		case <-ctx.Done():
			return 0, &nfc.Error{Op: "serial: read", Kind: nfc.ErrTimeout, Err: ctx.Err()}
		}
	}
}

// Write implements Port.
func (t *TTY) Write(p []byte) (int, error) {
	t.mu.Lock()
	port, closed, sticky := t.port, t.closed, t.err
	t.mu.Unlock()
	if closed {
		return 0, ErrClosed
	}
	if port == nil {
		return 0, nfc.Errorf("serial: write "+t.path, nfc.ErrReaderGone, "port is not open")
	}
	if sticky != nil && errors.Is(sticky, nfc.ErrReaderGone) {
		return 0, sticky
	}
	n, err := port.Write(p)
	if err != nil {
		return n, classify("serial: write "+t.path, err)
	}
	return n, nil
}

// SetReadTimeout implements Port.
func (t *TTY) SetReadTimeout(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("serial: read timeout %v: must be positive", d)
	}
	t.mu.Lock()
	t.timeout = d
	t.mu.Unlock()
	return nil
}

// Flush implements Port. tarm/serial's own Flush is TCIOFLUSH, which would
// also drop queued output (an abort ACK still on its way to the chip), so
// Flush drops input only: the background reader empties the kernel's input
// queue as bytes arrive, and everything it returned before this call is
// discarded.
func (t *TTY) Flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	t.buf = t.buf[:0]
	t.flushAt = time.Now()
	return nil
}

// Baud implements Port.
func (t *TTY) Baud() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.baud
}

// SetBaud implements Port by reopening the device at the new rate (tarm has
// no way to change it in place). Buffered input is dropped. If the new rate
// cannot be set the port is reopened at the old one and the error returned.
func (t *TTY) SetBaud(baud int) error {
	if !ValidBaud(baud) {
		return errBaud(baud)
	}
	t.ctl.Lock()
	defer t.ctl.Unlock()
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	if baud == t.baud && t.port != nil && t.err == nil {
		t.mu.Unlock()
		return nil
	}
	old := t.baud
	t.mu.Unlock()
	return t.reopen(baud, old)
}

// Reopen closes and opens the device again at the current rate, clearing a
// sticky error: after nfc.ErrReaderGone, call it once the device is back.
func (t *TTY) Reopen() error {
	t.ctl.Lock()
	defer t.ctl.Unlock()
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	b := t.baud
	t.mu.Unlock()
	return t.reopen(b, b)
}

// reopen stops the reader, opens at baud (falling back to old) and restarts
// the reader. t.ctl must be held.
func (t *TTY) reopen(baud, old int) error {
	cerr := t.stop()
	_ = cerr // the old descriptor may already be dead; the open below decides
	p, err := openTarm(t.path, baud)
	if err != nil && old != baud {
		if p2, err2 := openTarm(t.path, old); err2 == nil {
			t.mu.Lock()
			t.buf, t.err = t.buf[:0], nil
			t.mu.Unlock()
			t.start(p2)
		}
		return err
	}
	if err != nil {
		t.mu.Lock()
		t.err = err
		t.wake()
		t.mu.Unlock()
		return err
	}
	t.mu.Lock()
	t.baud = baud
	t.buf, t.err = t.buf[:0], nil
	t.mu.Unlock()
	t.start(p)
	return nil
}

// Close implements Port. Blocked Reads return ErrClosed at once; Close waits
// about 100 ms (at most 1 s) for the background reader. A second Close
// returns nil.
func (t *TTY) Close() error {
	t.ctl.Lock()
	defer t.ctl.Unlock()
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.wake()
	t.mu.Unlock()
	if err := t.stop(); err != nil {
		return classify("serial: close "+t.path, err)
	}
	return nil
}
