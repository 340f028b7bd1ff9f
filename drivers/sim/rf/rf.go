// Package rf models the radio field shared by a simulated reader chip (the
// PN532 emulator, or the direct simulated reader) and simulated PICCs (cards
// and phones). It is virtual hardware: nothing in the real stack imports it.
//
// Frames are exchanged without CRC: the reader side adds and checks CRC_A or
// CRC_B on a real chip, and a [Field] can inject CRC errors as faults instead.
package rf

import (
	"sync"
	"time"

	"kazasu/drivers/nfc"
)

// Frame is one ISO 14443-3 frame on air, without CRC.
type Frame struct {
	Tech nfc.Tech
	Data []byte
	// Bits is the number of valid bits in the last byte for Type A
	// bit-oriented frames (7 for REQA/WUPA short frames); 0 means whole bytes.
	Bits int
}

// PICC is a simulated proximity card at ISO 14443-3 level: it answers REQ/WUP,
// anticollision, ATTRIB or RATS, and then ISO-DEP blocks.
type PICC interface {
	// Techs lists the technologies the PICC answers on.
	Techs() []nfc.Tech
	// FieldOn powers the PICC up (volatile state reset, IDLE state).
	FieldOn()
	// FieldOff powers it down: all volatile state, including any security
	// status, is lost.
	FieldOff()
	// Exchange delivers one PCD frame. The PICC returns its answer, or
	// ok=false for silence (the PCD sees a timeout). proc is the PICC's
	// processing time before it starts answering, for the timing model.
	Exchange(f Frame) (resp Frame, proc time.Duration, ok bool)
}

// Applet is ISO 7816-4 card content behind ISO-DEP: one command APDU in, one
// response APDU (data + SW1 SW2) out, plus the time the card spends on it.
type Applet interface {
	Process(apdu []byte) (resp []byte, proc time.Duration)
	// Reset is called when the card loses power (leaves the field).
	Reset()
}

// Field is the set of PICCs in a reader's RF field. It is safe for
// concurrent use: scenarios add and remove PICCs while the reader polls.
type Field struct {
	mu    sync.Mutex
	on    bool
	piccs []PICC
}

// SetOn switches the field; PICCs in it are powered up or down.
func (f *Field) SetOn(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.on == on {
		return
	}
	f.on = on
	for _, p := range f.piccs {
		if on {
			p.FieldOn()
		} else {
			p.FieldOff()
		}
	}
}

// On reports whether the field is on.
func (f *Field) On() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.on
}

// Add places p in the field (a tap). It is powered up if the field is on.
func (f *Field) Add(p PICC) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.piccs = append(f.piccs, p)
	if f.on {
		p.FieldOn()
	}
}

// Remove takes p out of the field (the card is pulled away); it loses power.
func (f *Field) Remove(p PICC) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, q := range f.piccs {
		if q == p {
			f.piccs = append(f.piccs[:i], f.piccs[i+1:]...)
			p.FieldOff()
			return
		}
	}
}

// Clear removes every PICC.
func (f *Field) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.piccs {
		p.FieldOff()
	}
	f.piccs = nil
}

// PICCs returns the PICCs in the field, in the order they were added.
func (f *Field) PICCs() []PICC {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]PICC(nil), f.piccs...)
}

// Exchange sends frame to every powered PICC that answers on its technology
// and returns the answers. With the field off nothing answers. More than one
// answer is a collision for the caller to resolve.
func (f *Field) Exchange(fr Frame) []Answer {
	f.mu.Lock()
	piccs := append([]PICC(nil), f.piccs...)
	on := f.on
	f.mu.Unlock()
	if !on {
		return nil
	}
	var out []Answer
	for _, p := range piccs {
		if !hasTech(p.Techs(), fr.Tech) {
			continue
		}
		if resp, proc, ok := p.Exchange(fr); ok {
			out = append(out, Answer{PICC: p, Frame: resp, Proc: proc})
		}
	}
	return out
}

// Answer is one PICC's answer to a frame.
type Answer struct {
	PICC  PICC
	Frame Frame
	Proc  time.Duration
}

func hasTech(ts []nfc.Tech, t nfc.Tech) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}
