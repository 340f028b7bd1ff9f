package scenario

import (
	"sync"
	"sync/atomic"
	"time"

	"kazasu/drivers/nfc"
	"kazasu/drivers/sim/rf"
)

// Faulty wraps a PICC and injects the card faults of a scenario. It follows
// the ISO-DEP conversation after ATTRIB (Type B) or RATS (Type A) to count
// APDUs: an APDU starts with the first I-block from the PCD that is not part
// of a PCD chain. Faults:
//
//   - CardRemove: just before APDU N reaches the card, the wrapper takes the
//     card out of Field (or, with no Field, goes silent until the next
//     power-up) and the I-block gets no answer.
//   - CardWTXStorm: the answer to APDU N is held back behind Count S(WTX)
//     requests (WTXM 1); each S(WTX) response from the PCD draws the next.
//   - CardSW: APDU N goes to the card, which executes it; the wrapper
//     collects the card's whole answer (R(ACK)s to the card if it chains)
//     and gives the PCD a single I-block holding only the status word.
//     Block numbers between the PCD and the card are translated from then
//     on, so both sides keep following ISO/IEC 14443-4 §7.5.4.
type Faulty struct {
	rf.PICC
	Faults []CardFault
	Field  *rf.Field

	counter *atomic.Int64
	mu      sync.Mutex
	own     atomic.Int64
	active  bool
	inChain bool
	cur     int
	flip    byte
	gone    bool
	storm   int
	stash   *rf.Frame
}

// NewFaulty wraps p with faults; field (may be nil) is where CardRemove
// takes the card from.
func NewFaulty(p rf.PICC, faults []CardFault, field *rf.Field) *Faulty {
	return &Faulty{PICC: p, Faults: faults, Field: field}
}

// APDUs returns the APDU count the wrapper has seen (shared by a Runner's
// cards).
func (w *Faulty) APDUs() int { return int(w.count().Load()) }

func (w *Faulty) count() *atomic.Int64 {
	if w.counter != nil {
		return w.counter
	}
	return &w.own
}

func (w *Faulty) reset() {
	w.active, w.inChain, w.gone = false, false, false
	w.flip, w.storm, w.stash = 0, 0, nil
}

// FieldOn powers the card up.
func (w *Faulty) FieldOn() {
	w.mu.Lock()
	w.reset()
	w.mu.Unlock()
	w.PICC.FieldOn()
}

// FieldOff powers the card down.
func (w *Faulty) FieldOff() {
	w.mu.Lock()
	w.reset()
	w.mu.Unlock()
	w.PICC.FieldOff()
}

func (w *Faulty) fault(kind CardFaultKind, apdu int) (CardFault, bool) {
	for _, f := range w.Faults {
		if f.Kind == kind && f.APDU == apdu {
			return f, true
		}
	}
	return CardFault{}, false
}

func isI(pcb byte) bool     { return pcb&0xE2 == 0x02 }
func isR(pcb byte) bool     { return pcb&0xE6 == 0xA2 }
func isWTX(pcb byte) bool   { return pcb&0xF7 == 0xF2 }
func isDesel(b byte) bool   { return b&0xF7 == 0xC2 }
func isBlock(pcb byte) bool { return isI(pcb) || isR(pcb) || pcb&0xC7 == 0xC2 }

// hdr returns the PCB with the CID of the PCD's frame d, if it has one.
func hdr(pcb byte, d []byte) []byte {
	if d[0]&0x08 != 0 && len(d) > 1 {
		return []byte{pcb | 0x08, d[1]}
	}
	return []byte{pcb}
}

// Exchange delivers one PCD frame, with faults applied.
func (w *Faulty) Exchange(f rf.Frame) (rf.Frame, time.Duration, bool) {
	w.mu.Lock()
	if w.gone {
		w.mu.Unlock()
		return rf.Frame{}, 0, false
	}
	d := f.Data
	if !w.active || len(d) == 0 || (f.Tech == nfc.TechA && f.Bits != 0) || !isBlock(d[0]) {
		w.mu.Unlock()
		resp, proc, ok := w.PICC.Exchange(f)
		w.mu.Lock()
		defer w.mu.Unlock()
		if ok && len(d) > 0 {
			switch {
			case d[0] == 0x1D && f.Tech == nfc.TechB, d[0] == 0xE0 && f.Tech == nfc.TechA:
				w.active, w.inChain, w.flip = true, false, 0
			case d[0] == 0x50:
				w.active = false
			}
		}
		return resp, proc, ok
	}
	pcb := d[0]
	// S(WTX) response from the PCD during a storm.
	if isWTX(pcb) && w.stash != nil {
		defer w.mu.Unlock()
		if w.storm > 0 {
			w.storm--
			return rf.Frame{Tech: f.Tech, Data: append(hdr(0xF2, d), 0x01)}, 0, true
		}
		s := *w.stash
		w.stash = nil
		return s, 0, true
	}
	var sw *CardFault
	storm := 0
	if isI(pcb) {
		first, last := !w.inChain, pcb&0x10 == 0
		if first {
			w.cur = int(w.count().Add(1))
			if _, ok := w.fault(CardRemove, w.cur); ok {
				w.gone = true
				w.mu.Unlock()
				if w.Field != nil {
					w.Field.Remove(w)
				}
				return rf.Frame{}, 0, false
			}
		}
		w.inChain = !last
		if last {
			if fl, ok := w.fault(CardSW, w.cur); ok {
				sw = &fl
			}
			if fl, ok := w.fault(CardWTXStorm, w.cur); ok {
				storm = fl.Count
			}
		}
	}
	fwd := append([]byte(nil), d...)
	if isI(pcb) || isR(pcb) {
		fwd[0] ^= w.flip
	}
	w.mu.Unlock()
	resp, proc, ok := w.PICC.Exchange(rf.Frame{Tech: f.Tech, Data: fwd, Bits: f.Bits})
	w.mu.Lock()
	defer w.mu.Unlock()
	if !ok {
		return resp, proc, false
	}
	if isDesel(pcb) {
		w.active = false
		return resp, proc, true
	}
	if sw != nil {
		k := 1
		r := resp.Data
		for len(r) > 0 && isI(r[0]) && r[0]&0x10 != 0 {
			ack := hdr(0xA2|(r[0]&0x01)^0x01, d)
			w.mu.Unlock()
			next, p, ok2 := w.PICC.Exchange(rf.Frame{Tech: f.Tech, Data: ack})
			w.mu.Lock()
			proc += p
			if !ok2 {
				break
			}
			r = next.Data
			k++
		}
		w.flip ^= byte((k + 1) & 1)
		out := append(hdr(0x02|pcb&0x01, d), byte(sw.SW>>8), byte(sw.SW))
		resp = rf.Frame{Tech: f.Tech, Data: out}
	} else if len(resp.Data) > 0 && (isI(resp.Data[0]) || isR(resp.Data[0])) {
		resp.Data = append([]byte(nil), resp.Data...)
		resp.Data[0] ^= w.flip
	}
	if storm > 0 {
		s := resp
		w.stash = &s
		w.storm = storm - 1
		return rf.Frame{Tech: f.Tech, Data: append(hdr(0xF2, d), 0x01)}, proc, true
	}
	return resp, proc, true
}
