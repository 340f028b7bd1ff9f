package pn532emu

import (
	"fmt"
	"time"
)

// FaultKind is a host-link fault the emulator can inject. Card-level
// faults (removal, WTX storms, error status words) are wrappers around
// rf.PICC in package scenario.
type FaultKind uint8

const (
	// FaultChecksum: the response to host frame N goes out with a wrong DCS.
	FaultChecksum FaultKind = iota + 1
	// FaultRxChecksum: host frame N arrives damaged (as if its DCS were
	// wrong): the chip ignores it, so the host sees no ACK.
	FaultRxChecksum
	// FaultDrop: Count bytes are lost from the middle of the response to
	// host frame N.
	FaultDrop
	// FaultACKDelay: the ACK of host frame N is sent Delay late (wall
	// time, whatever the clock: the point is to trip the host's timeout).
	FaultACKDelay
	// FaultNoACK: the ACK of host frame N is lost; the response still
	// follows.
	FaultNoACK
	// FaultGone: when host frame N arrives the reader disappears: the
	// host link is closed (a pty server removes its link too).
	FaultGone
)

func (k FaultKind) String() string {
	switch k {
	case FaultChecksum:
		return "checksum"
	case FaultRxChecksum:
		return "rx-checksum"
	case FaultDrop:
		return "drop"
	case FaultACKDelay:
		return "ack-delay"
	case FaultNoACK:
		return "no-ack"
	case FaultGone:
		return "gone"
	}
	return fmt.Sprintf("FaultKind(%d)", uint8(k))
}

// Fault is one host-link fault, tied to the Nth command frame the host sends
// (1-based, counted from New, across resets; ACK and NACK frames do not
// count).
type Fault struct {
	Kind  FaultKind
	Frame int
	Count int           // FaultDrop: bytes dropped (default 1)
	Delay time.Duration // FaultACKDelay
}

func (f Fault) String() string {
	s := fmt.Sprintf("%v at host frame %d", f.Kind, f.Frame)
	switch f.Kind {
	case FaultDrop:
		s += fmt.Sprintf(", %d bytes", f.Count)
	case FaultACKDelay:
		s += fmt.Sprintf(", %v", f.Delay)
	}
	return s
}

// activeFaults is what applies to one command frame.
type activeFaults struct {
	gone, rxCorrupt, noACK bool
	ackDelay               time.Duration
	txCorrupt              bool
	drop                   int
}

// Inject adds a host-link fault while the chip runs (for a frame number
// still to come: see Frames).
func (e *Emulator) Inject(f Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = append(e.faults, f)
}

func (e *Emulator) faultsFor(n int) activeFaults {
	var a activeFaults
	e.mu.Lock()
	all := append(append([]Fault(nil), e.opts.Faults...), e.faults...)
	e.mu.Unlock()
	for _, f := range all {
		if f.Frame != n {
			continue
		}
		switch f.Kind {
		case FaultChecksum:
			a.txCorrupt = true
		case FaultRxChecksum:
			a.rxCorrupt = true
		case FaultDrop:
			c := f.Count
			if c <= 0 {
				c = 1
			}
			a.drop += c
		case FaultACKDelay:
			a.ackDelay += f.Delay
		case FaultNoACK:
			a.noACK = true
		case FaultGone:
			a.gone = true
		}
	}
	return a
}

// mangle applies the response faults to a frame (a copy is returned).
func (a activeFaults) mangle(frame []byte) []byte {
	if !a.txCorrupt && a.drop == 0 {
		return frame
	}
	out := append([]byte(nil), frame...)
	if a.txCorrupt && len(out) >= 2 {
		out[len(out)-2] ^= 0x55 // the DCS
	}
	if a.drop > 0 {
		mid := len(out) / 2
		d := a.drop
		if d > len(out)-mid {
			d = len(out) - mid
		}
		out = append(out[:mid], out[mid+d:]...)
	}
	return out
}
