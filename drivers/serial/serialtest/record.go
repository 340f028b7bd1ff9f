package serialtest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"kazasu/drivers/serial"
)

// Record wraps a real Port and records what goes through it as a script
// for Playback (periph's conntest.Record), so that transcripts for driver
// tests can be taken from hardware. Consecutive writes, and consecutive
// reads, are merged into one op each; Flush calls are not recorded
// (Playback ignores unscripted ones).
type Record struct {
	Port serial.Port

	mu  sync.Mutex
	ops []Op
}

var _ serial.Port = (*Record)(nil)

func (r *Record) add(op Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.ops); n > 0 {
		last := &r.ops[n-1]
		switch {
		case op.W != nil && last.W != nil:
			last.W = append(last.W, op.W...)
			return
		case op.R != nil && last.R != nil:
			last.R = append(last.R, op.R...)
			return
		}
	}
	r.ops = append(r.ops, op)
}

// Ops returns the recorded script.
func (r *Record) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...)
}

// Write implements serial.Port.
func (r *Record) Write(b []byte) (int, error) {
	n, err := r.Port.Write(b)
	if n > 0 {
		r.add(Op{W: append([]byte(nil), b[:n]...)})
	}
	if err != nil {
		r.add(Op{Err: err})
	}
	return n, err
}

// Read implements serial.Port.
func (r *Record) Read(b []byte) (int, error) {
	n, err := r.Port.Read(b)
	if n > 0 {
		r.add(Op{R: append([]byte(nil), b[:n]...)})
	}
	switch {
	case errors.Is(err, serial.ErrTimeout):
		r.add(Op{Timeout: true})
	case err != nil:
		r.add(Op{Err: err})
	}
	return n, err
}

// SetReadTimeout implements serial.Port.
func (r *Record) SetReadTimeout(d time.Duration) error { return r.Port.SetReadTimeout(d) }

// Flush implements serial.Port.
func (r *Record) Flush() error { return r.Port.Flush() }

// SetBaud implements serial.Port.
func (r *Record) SetBaud(baud int) error {
	err := r.Port.SetBaud(baud)
	if err == nil {
		r.add(Op{Baud: baud})
	}
	return err
}

// Baud implements serial.Port.
func (r *Record) Baud() int { return r.Port.Baud() }

// Close implements serial.Port.
func (r *Record) Close() error { return r.Port.Close() }

// String prints the script as Go source for a []serialtest.Op literal.
func (r *Record) String() string {
	var b strings.Builder
	for _, op := range r.Ops() {
		switch {
		case op.W != nil:
			fmt.Fprintf(&b, "{W: %s},\n", goBytes(op.W))
		case op.R != nil:
			fmt.Fprintf(&b, "{R: %s},\n", goBytes(op.R))
		case op.Timeout:
			b.WriteString("{Timeout: true},\n")
		case op.Baud != 0:
			fmt.Fprintf(&b, "{Baud: %d},\n", op.Baud)
		case op.Err != nil:
			fmt.Fprintf(&b, "{Err: errors.New(%q)},\n", op.Err.Error())
		}
	}
	return b.String()
}

func goBytes(p []byte) string {
	var b strings.Builder
	b.WriteString("[]byte{")
	for i, v := range p {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "0x%02X", v)
	}
	b.WriteString("}")
	return b.String()
}
