// Package picctest provides small simulated PICCs built from raw bytes, for
// tests of readers and of the PN532 emulator: a Type B card (REQB/WUPB,
// ATQB, ATTRIB, HLTB; ISO/IEC 14443-3 §7) and a Type A card (REQA/WUPA,
// anticollision and select per cascade level, RATS; §6 and -4 §5), both
// running the PICC side of ISO-DEP (ISO/IEC 14443-4 §7: block numbers
// from 1, Rules C–E and 9–13, chaining both ways, S(DESELECT), optional
// S(WTX)) in front of an rf.Applet.
//
// They are deliberately plain: the project's real simulated cards and
// phones live in drivers/sim/card. These exist so that the emulator's tests
// do not depend on them.
package picctest

import (
	"bytes"
	"sync"
	"time"

	"kazasu/drivers/nfc"
	"kazasu/drivers/sim/rf"
)

// AppletFunc adapts a function to rf.Applet.
type AppletFunc func(apdu []byte) ([]byte, time.Duration)

// Process calls f.
func (f AppletFunc) Process(apdu []byte) ([]byte, time.Duration) { return f(apdu) }

// Reset does nothing.
func (AppletFunc) Reset() {}

// Echo is an applet that answers every APDU with the APDU itself followed
// by 90 00.
var Echo = AppletFunc(func(apdu []byte) ([]byte, time.Duration) {
	return append(append([]byte(nil), apdu...), 0x90, 0x00), 0
})

type state uint8

const (
	stIdle state = iota
	stReady
	stActive
	stHalt
)

// dep is the PICC side of ISO-DEP.
type dep struct {
	applet rf.Applet
	cid    int // -1: none
	fsd    int
	wtx    int // S(WTX) requests before each answer
	proc   time.Duration

	bn       byte
	rx       []byte // command being received (PCD chaining)
	tx       []byte // rest of a response being sent (PICC chaining)
	last     []byte // last block sent (Rule 11)
	wtxLeft  int
	pending  []byte // response withheld while WTX requests run
	Received [][]byte
}

func (d *dep) reset(cid, fsd int) {
	*d = dep{applet: d.applet, wtx: d.wtx, proc: d.proc, cid: cid, fsd: fsd, bn: 1, Received: d.Received}
}

func (d *dep) hdr(pcb byte) []byte {
	if d.cid >= 0 {
		return []byte{pcb | 0x08, byte(d.cid)}
	}
	return []byte{pcb}
}

func (d *dep) send(b []byte) []byte { d.last = b; return b }

// nextBlock sends the next part of d.tx.
func (d *dep) nextBlock() []byte {
	max := d.fsd - 2 - len(d.hdr(0))
	n := len(d.tx)
	pcb := 0x02 | d.bn
	if n > max {
		n = max
		pcb |= 0x10
	}
	b := append(d.hdr(pcb), d.tx[:n]...)
	d.tx = d.tx[n:]
	return d.send(b)
}

// block handles one block; ok=false for silence. deselected reports S(DESELECT).
func (d *dep) block(b []byte) (resp []byte, proc time.Duration, ok, deselected bool) {
	if len(b) < 1 {
		return nil, 0, false, false
	}
	pcb := b[0]
	i := 1
	if pcb&0x08 != 0 {
		if len(b) < 2 || d.cid < 0 || int(b[1]&0x0F) != d.cid {
			return nil, 0, false, false
		}
		i = 2
	} else if d.cid > 0 {
		return nil, 0, false, false
	}
	inf := b[i:]
	switch {
	case pcb&0xE2 == 0x02: // I-block
		if pcb&0x04 != 0 && len(inf) > 0 {
			inf = inf[1:]
		}
		d.bn ^= 1 // Rule D
		d.rx = append(d.rx, inf...)
		if pcb&0x10 != 0 {
			return d.send(d.hdr(0xA2 | d.bn)), 0, true, false // Rule 2
		}
		apdu := d.rx
		d.rx = nil
		d.Received = append(d.Received, apdu)
		resp, p := d.applet.Process(apdu)
		d.tx = append([]byte(nil), resp...)
		if d.wtx > 0 {
			d.wtxLeft = d.wtx
			return d.send(append(d.hdr(0xF2), 0x01)), p + d.proc, true, false
		}
		return d.nextBlock(), p + d.proc, true, false
	case pcb&0xE6 == 0xA2: // R-block
		if pcb&0x01 == d.bn {
			return d.last, 0, d.last != nil, false // Rule 11
		}
		if pcb&0x10 != 0 {
			return d.send(d.hdr(0xA2 | d.bn)), 0, true, false // Rule 12
		}
		if len(d.tx) == 0 {
			return nil, 0, false, false
		}
		d.bn ^= 1 // Rule E
		return d.nextBlock(), 0, true, false
	case pcb&0xF7 == 0xC2: // S(DESELECT)
		return d.hdr(0xC2), 0, true, true
	case pcb&0xF7 == 0xF2 && len(inf) == 1: // S(WTX) response
		if d.wtxLeft--; d.wtxLeft > 0 {
			return d.send(append(d.hdr(0xF2), 0x01)), 0, true, false
		}
		return d.nextBlock(), 0, true, false
	}
	return nil, 0, false, false
}

// TypeB is a Type B PICC. Set the exported fields before use.
type TypeB struct {
	// ATQB is the 12- or 13-byte ATQB, 0x50 first.
	ATQB []byte
	// MBLI goes in the high nibble of the ATTRIB answer.
	MBLI byte
	// Applet answers APDUs (Echo if nil).
	Applet rf.Applet
	// WTX is the number of S(WTX) requests sent before each response.
	WTX int
	// Proc is added processing time per APDU.
	Proc time.Duration

	mu    sync.Mutex
	st    state
	d     dep
	Log   []rf.Frame // every frame received (for assertions)
	Apdus [][]byte   // every APDU received
}

// MyNumberATQB is an ATQB shaped like a My Number Card's: PUPI 01020304,
// application data 00 00 05 E0, protocol info B3 81 A1 (iso14443b.md §2.3).
var MyNumberATQB = []byte{0x50, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x05, 0xE0, 0xB3, 0x81, 0xA1}

// Techs returns Type B.
func (c *TypeB) Techs() []nfc.Tech { return []nfc.Tech{nfc.TechB} }

// FieldOn resets the card (IDLE).
func (c *TypeB) FieldOn() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st = stIdle
	if c.Applet != nil {
		c.Applet.Reset()
	}
}

// FieldOff powers the card down.
func (c *TypeB) FieldOff() { c.FieldOn() }

// Exchange handles one frame.
func (c *TypeB) Exchange(f rf.Frame) (rf.Frame, time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Log = append(c.Log, rf.Frame{Tech: f.Tech, Data: append([]byte(nil), f.Data...)})
	out := func(b []byte, p time.Duration) (rf.Frame, time.Duration, bool) {
		return rf.Frame{Tech: nfc.TechB, Data: b}, p, true
	}
	d := f.Data
	switch {
	case len(d) == 3 && d[0] == 0x05: // REQB / WUPB
		if (d[1] != 0 && d[1] != c.ATQB[5]) || c.st == stActive || c.st == stHalt && d[2]&0x08 == 0 {
			break
		}
		c.st = stReady
		return out(append([]byte(nil), c.ATQB...), 0)
	case len(d) >= 9 && d[0] == 0x1D: // ATTRIB
		if c.st != stReady && c.st != stIdle || !bytes.Equal(d[1:5], c.ATQB[1:5]) {
			break
		}
		cid := int(d[8] & 0x0F)
		if c.ATQB[11]&0x01 == 0 {
			cid = -1
		}
		if c.d.applet == nil {
			c.d.applet = c.Applet
			if c.d.applet == nil {
				c.d.applet = Echo
			}
		}
		c.d.wtx, c.d.proc = c.WTX, c.Proc
		c.d.reset(cid, frameSize(int(d[6]&0x0F)))
		if cid < 0 {
			cid = 0
		}
		c.st = stActive
		return out([]byte{c.MBLI<<4 | byte(cid)}, 0)
	case len(d) == 5 && d[0] == 0x50: // HLTB
		if bytes.Equal(d[1:5], c.ATQB[1:5]) && (c.st == stReady || c.st == stActive) {
			c.st = stHalt
			return out([]byte{0x00}, 0)
		}
	default:
		if c.st != stActive {
			break
		}
		n := len(c.d.Received)
		r, p, ok, desel := c.d.block(d)
		if len(c.d.Received) > n {
			c.Apdus = append(c.Apdus, c.d.Received[n:]...)
		}
		if desel {
			c.st = stHalt
		}
		if ok {
			return out(r, p)
		}
	}
	return rf.Frame{}, 0, false
}

// TypeA is a Type A PICC. Set the exported fields before use.
type TypeA struct {
	// ATQA as sent on air (LSB first), e.g. 04 00.
	ATQA [2]byte
	// UID: 4, 7 or 10 bytes.
	UID []byte
	// SAK of the last cascade level (0x20: ISO 14443-4).
	SAK byte
	// ATS with its TL byte (for SAK 0x20).
	ATS []byte
	// Applet answers APDUs (Echo if nil).
	Applet rf.Applet

	mu    sync.Mutex
	st    state
	level int
	d     dep
	Apdus [][]byte
}

// Techs returns Type A.
func (c *TypeA) Techs() []nfc.Tech { return []nfc.Tech{nfc.TechA} }

// FieldOn resets the card.
func (c *TypeA) FieldOn() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st, c.level = stIdle, 0
}

// FieldOff powers the card down.
func (c *TypeA) FieldOff() { c.FieldOn() }

// cascade returns the 4 UID bytes of level l (1-based) and whether more
// levels follow.
func (c *TypeA) cascade(l int) ([]byte, bool) {
	levels := (len(c.UID) - 1) / 3 // 4 → 1, 7 → 2, 10 → 3
	if l == levels {
		return c.UID[len(c.UID)-4:], false
	}
	return append([]byte{0x88}, c.UID[3*(l-1):3*(l-1)+3]...), true
}

// Exchange handles one frame.
func (c *TypeA) Exchange(f rf.Frame) (rf.Frame, time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := func(b []byte) (rf.Frame, time.Duration, bool) {
		return rf.Frame{Tech: nfc.TechA, Data: b}, 0, true
	}
	d := f.Data
	switch {
	case f.Bits == 7 && len(d) == 1 && (d[0] == 0x26 || d[0] == 0x52):
		if c.st == stIdle || c.st == stHalt && d[0] == 0x52 {
			c.st, c.level = stReady, 1
			return out([]byte{c.ATQA[0], c.ATQA[1]})
		}
	case c.st == stReady && len(d) >= 2 && (d[0] == 0x93 || d[0] == 0x95 || d[0] == 0x97):
		l := int(d[0]-0x93)/2 + 1
		if l != c.level {
			break
		}
		cl, more := c.cascade(l)
		if d[1] == 0x20 {
			return out(append(append([]byte(nil), cl...), cl[0]^cl[1]^cl[2]^cl[3]))
		}
		if d[1] == 0x70 && len(d) == 7 && bytes.Equal(d[2:6], cl) {
			if more {
				c.level++
				return out([]byte{0x04})
			}
			c.st = stActive
			return out([]byte{c.SAK})
		}
	case c.st == stActive && len(d) == 2 && d[0] == 0x50 && d[1] == 0x00:
		c.st = stHalt
		return rf.Frame{}, 0, false
	case c.st == stActive && len(d) == 2 && d[0] == 0xE0 && c.SAK&0x20 != 0:
		cid := -1
		if len(c.ATS) > 1 && c.ATS[1]&0x40 != 0 {
			cid = int(d[1] & 0x0F)
		}
		if c.d.applet == nil {
			c.d.applet = c.Applet
			if c.d.applet == nil {
				c.d.applet = Echo
			}
		}
		c.d.reset(cid, frameSize(int(d[1]>>4)))
		if cid == 0 {
			c.d.cid = -1 // CID 0 may be omitted; this card omits it
		}
		return out(append([]byte(nil), c.ATS...))
	case c.st == stActive && c.d.fsd > 0:
		n := len(c.d.Received)
		r, p, ok, desel := c.d.block(d)
		if len(c.d.Received) > n {
			c.Apdus = append(c.Apdus, c.d.Received[n:]...)
		}
		if desel {
			c.st = stHalt
		}
		if ok {
			return rf.Frame{Tech: nfc.TechA, Data: r}, p, true
		}
	}
	return rf.Frame{}, 0, false
}

func frameSize(code int) int {
	table := [...]int{16, 24, 32, 40, 48, 64, 96, 128, 256}
	if code < 0 || code >= len(table) {
		return 256
	}
	return table[code]
}
