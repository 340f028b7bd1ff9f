// Package serialtest provides a scripted serial.Port for driver tests, in the
// style of periph.io's conntest.Playback: the test lists what the driver must
// write and what the "device" answers, in order, and Close checks that the
// whole script was used.
//
// Reads and writes are streams, as on a real UART: an expected write may be
// produced by several Write calls, and canned bytes may be consumed by several
// Reads. A mismatch never panics; it is returned by the failing call and
// remembered, so Close (and Err) report the first one.
package serialtest

import (
	"bytes"
	"fmt"
	"sync"
	"time"

	"kazasu/drivers/serial"
)

// Op is one step of a script. Exactly one of its fields is set.
type Op struct {
	// W: the driver must write exactly these bytes next.
	W []byte
	// R: the device sends these bytes; the driver's Reads get them.
	R []byte
	// Timeout: the device stays silent; the next Read returns
	// serial.ErrTimeout. If ReadTimeout is non-zero, the read timeout in
	// effect at that Read must equal it.
	Timeout     bool
	ReadTimeout time.Duration
	// Baud: the driver must call SetBaud(Baud) next.
	Baud int
	// Flush: the driver must call Flush next. Flush calls that meet any other
	// op are allowed and ignored (a driver may drain the line at will).
	Flush bool
	// Err: the next Read or Write fails with Err (for example an error
	// wrapping nfc.ErrReaderGone, as for an unplugged adapter).
	Err error
}

func (o Op) String() string {
	switch {
	case o.W != nil:
		return fmt.Sprintf("W[% X]", o.W)
	case o.R != nil:
		return fmt.Sprintf("R[% X]", o.R)
	case o.Timeout:
		return "Timeout"
	case o.Baud != 0:
		return fmt.Sprintf("Baud(%d)", o.Baud)
	case o.Flush:
		return "Flush"
	case o.Err != nil:
		return fmt.Sprintf("Err(%v)", o.Err)
	}
	return "Op{}"
}

// Playback is a scripted serial.Port. Set Ops (and optionally InitialBaud)
// before use.
type Playback struct {
	Ops []Op
	// InitialBaud is what Baud returns before any SetBaud; 0 means 115200.
	InitialBaud int

	mu      sync.Mutex
	count   int           // index of the current op
	off     int           // bytes of the current W or R op already used
	baud    int           //
	timeout time.Duration //
	closed  bool
	err     error // first mismatch
	written []byte
	flushes int
}

var _ serial.Port = (*Playback)(nil)

// String implements fmt.Stringer.
func (p *Playback) String() string { return "serialtest.Playback" }

func (p *Playback) fail(format string, args ...any) error {
	err := fmt.Errorf("serialtest: op #%d: "+format, append([]any{p.count}, args...)...)
	if p.err == nil {
		p.err = err
	}
	return err
}

func (p *Playback) cur() *Op {
	if p.count >= len(p.Ops) {
		return nil
	}
	return &p.Ops[p.count]
}

func (p *Playback) next() {
	p.count++
	p.off = 0
}

// Write implements serial.Port.
func (p *Playback) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, serial.ErrClosed
	}
	p.written = append(p.written, b...)
	n := 0
	for n < len(b) {
		op := p.cur()
		if op == nil {
			return n, p.fail("unexpected write [% X] after the end of the script", b[n:])
		}
		if op.Err != nil && op.W == nil {
			p.next()
			return n, op.Err
		}
		if op.W == nil {
			return n, p.fail("unexpected write [% X], expecting %v", b[n:], *op)
		}
		want := op.W[p.off:]
		k := min(len(want), len(b)-n)
		if !bytes.Equal(b[n:n+k], want[:k]) {
			return n, p.fail("write [% X] at byte %d of W[% X]: want [% X]", b[n:n+k], p.off, op.W, want[:k])
		}
		n += k
		p.off += k
		if p.off == len(op.W) {
			p.next()
		}
	}
	return n, nil
}

// Read implements serial.Port.
func (p *Playback) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, serial.ErrClosed
	}
	if len(b) == 0 {
		return 0, nil
	}
	op := p.cur()
	switch {
	case op == nil:
		return 0, p.fail("unexpected Read after the end of the script")
	case op.R != nil:
		n := copy(b, op.R[p.off:])
		p.off += n
		if p.off == len(op.R) {
			p.next()
		}
		return n, nil
	case op.Timeout:
		if op.ReadTimeout != 0 && op.ReadTimeout != p.timeout {
			return 0, p.fail("read timeout is %v, want %v", p.timeout, op.ReadTimeout)
		}
		p.next()
		return 0, serial.ErrTimeout
	case op.Err != nil:
		p.next()
		return 0, op.Err
	}
	return 0, p.fail("unexpected Read, expecting %v", *op)
}

// SetReadTimeout implements serial.Port.
func (p *Playback) SetReadTimeout(d time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d <= 0 {
		return p.fail("SetReadTimeout(%v): a port always has a positive read timeout", d)
	}
	p.timeout = d
	return nil
}

// ReadTimeout returns the read timeout last set.
func (p *Playback) ReadTimeout() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.timeout
}

// Flush implements serial.Port.
func (p *Playback) Flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return serial.ErrClosed
	}
	p.flushes++
	if op := p.cur(); op != nil && op.Flush {
		p.next()
	}
	return nil
}

// SetBaud implements serial.Port.
func (p *Playback) SetBaud(baud int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return serial.ErrClosed
	}
	op := p.cur()
	if op == nil || op.Baud == 0 {
		want := "the end of the script"
		if op != nil {
			want = op.String()
		}
		return p.fail("unexpected SetBaud(%d), expecting %s", baud, want)
	}
	if op.Baud != baud {
		return p.fail("SetBaud(%d), want SetBaud(%d)", baud, op.Baud)
	}
	p.next()
	if op.Err != nil {
		return op.Err
	}
	p.baud = baud
	return nil
}

// Baud implements serial.Port.
func (p *Playback) Baud() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.baud != 0 {
		return p.baud
	}
	if p.InitialBaud != 0 {
		return p.InitialBaud
	}
	return 115200
}

// Close implements serial.Port. It returns the first mismatch, or an error if
// ops are left over.
func (p *Playback) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	return p.check()
}

// Err returns the first mismatch, or an error naming the next unused op; nil
// when the whole script was used and nothing went wrong.
func (p *Playback) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.check()
}

func (p *Playback) check() error {
	if p.err != nil {
		return p.err
	}
	if p.count < len(p.Ops) {
		return fmt.Errorf("serialtest: script not finished: %d of %d ops used, next %v", p.count, len(p.Ops), p.Ops[p.count])
	}
	return nil
}

// Written returns every byte written so far.
func (p *Playback) Written() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]byte(nil), p.written...)
}

// Closed reports whether Close was called.
func (p *Playback) Closed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}
