package pn532emu

import (
	"context"
	"time"

	"kazasu/drivers/sim/rf"
)

// The chip's PCD side of ISO/IEC 14443-4 (ISO-DEP), run by the firmware for
// InDataExchange on a -4 target: PCB with block numbers (Rules A, B, 1–8),
// the CID the firmware assigned, chaining in both directions within the
// FSC/FSD of the target and the chip (64 bytes), S(WTX) answered with the
// same WTXM, and R(NAK)/retransmission recovery (2 attempts) before giving
// up with status 01. iso14443b.md §4.

// ΔFWT added to every wait for a silent PICC (49152/fc ≈ 3.6 ms).
var fwtMargin = cycles(49152)

// fwtMax is FWT(max) = 2^26/fc ≈ 4.95 s, the cap of a WTX-extended wait.
var fwtMax = cycles(1 << 26)

const (
	isoDEPRetries = 2
	maxWTX        = 1000 // WTX requests accepted per block before giving up
	maxDataIn     = MaxPD - 2
)

// header returns the PCB (with the CID bit when a CID is in use) and the
// CID byte.
func (t *target) header(pcb byte) []byte {
	if t.cid >= 0 {
		return []byte{pcb | 0x08, byte(t.cid)}
	}
	return []byte{pcb}
}

func (t *target) hdrLen() int {
	if t.cid >= 0 {
		return 2
	}
	return 1
}

type blockKind uint8

const (
	blockInvalid blockKind = iota
	blockI
	blockR
	blockS
)

// parseBlock checks a block from the PICC: PCB coding, CID (present exactly
// when the PCD uses one, and equal to it), NAD skipped, size within FSD.
func (t *target) parseBlock(b []byte) (blockKind, byte, []byte) {
	if len(b) < 1 || len(b)+2 > pcdFSD {
		return blockInvalid, 0, nil
	}
	pcb := b[0]
	var kind blockKind
	switch {
	case pcb&0xE2 == 0x02:
		kind = blockI
	case pcb&0xE6 == 0xA2:
		kind = blockR
	case pcb&0xC7 == 0xC2:
		kind = blockS
	default:
		return blockInvalid, 0, nil
	}
	i := 1
	if pcb&0x08 != 0 {
		if t.cid < 0 || len(b) < 2 || int(b[1]&0x0F) != t.cid {
			return blockInvalid, 0, nil
		}
		i = 2
	} else if t.cid >= 0 {
		return blockInvalid, 0, nil
	}
	if kind == blockI && pcb&0x04 != 0 {
		if len(b) < i+1 {
			return blockInvalid, 0, nil
		}
		i++
	}
	return kind, pcb, b[i:]
}

// airFWT is air for an ISO-DEP block with the frame waiting time
// enforced: a PICC whose processing outlasts wait has answered too late,
// the chip has given up (and will recover per Rule 4); the PICC is still
// busy for the rest of its processing, which delays its next answer.
func (e *Emulator) airFWT(ctx context.Context, t *target, fr rf.Frame, wait time.Duration) (rf.Answer, bool, error) {
	if t.busy > 0 {
		// The PICC cannot listen before it has finished.
		d := t.busy
		t.busy = 0
		if err := e.spend(ctx, CatCard, d); err != nil {
			return rf.Answer{}, false, err
		}
	}
	crc := 2
	if err := e.spend(ctx, CatAir, frameAirTime(fr.Tech, len(fr.Data)+crc, 0)); err != nil {
		return rf.Answer{}, false, err
	}
	for _, a := range e.field.Exchange(fr) {
		if a.PICC != t.picc {
			continue
		}
		if a.Proc > wait {
			t.busy = a.Proc - wait
			return rf.Answer{}, false, e.spend(ctx, CatAir, wait)
		}
		if err := e.spend(ctx, CatCard, a.Proc); err != nil {
			return rf.Answer{}, false, err
		}
		if err := e.spend(ctx, CatAir, turnaround(fr.Tech)+frameAirTime(fr.Tech, len(a.Frame.Data)+crc, 0)); err != nil {
			return rf.Answer{}, false, err
		}
		return a, true, nil
	}
	return rf.Answer{}, false, e.spend(ctx, CatAir, wait)
}

// transact sends blk and returns the PICC's next I-block or, when the PCD
// is chaining, accepts its R(ACK). recovery is what to send after a
// timeout or an invalid block (R(NAK) normally, the R(ACK) again while the
// PICC is chaining, Rules 4 and 5).
func (e *Emulator) transact(ctx context.Context, t *target, blk []byte, chaining bool, recovery []byte) ([]byte, byte, error) {
	send := blk
	wait := t.fwt
	errs, wtx := 0, 0
	for {
		ans, ok, err := e.airFWT(ctx, t, rf.Frame{Tech: t.tech, Data: send}, wait+fwtMargin)
		if err != nil {
			return nil, 0, err
		}
		wait = t.fwt
		if !ok {
			if errs >= isoDEPRetries {
				return nil, stTimeout, nil
			}
			errs++
			send = recovery
			continue
		}
		kind, pcb, inf := t.parseBlock(ans.Frame.Data)
		switch kind {
		case blockS:
			if pcb&0x30 != 0x30 || len(inf) != 1 || inf[0]&0x3F == 0 || inf[0]&0x3F > 59 {
				return nil, stFormat, nil
			}
			if wtx++; wtx > maxWTX {
				return nil, stTimeout, nil
			}
			m := inf[0] & 0x3F
			wait = t.fwt * time.Duration(m)
			if wait > fwtMax {
				wait = fwtMax
			}
			send = append(t.header(0xF2), m)
			continue
		case blockR:
			if pcb&0x10 != 0 { // a PICC never sends R(NAK)
				return nil, stFormat, nil
			}
			if pcb&0x01 == t.bn {
				if !chaining {
					return nil, stFormat, nil
				}
				t.bn ^= 1 // Rule B
				return nil, stOK, nil
			}
			// Rule 6: R(ACK) with another block number: send the I-block again.
			if errs >= isoDEPRetries {
				return nil, stFormat, nil
			}
			errs++
			send = blk
			continue
		case blockI:
			if chaining || pcb&0x01 != t.bn {
				return nil, stFormat, nil
			}
			t.bn ^= 1 // Rule B
			return ans.Frame.Data, stOK, nil
		}
		if errs >= isoDEPRetries {
			return nil, stFormat, nil
		}
		errs++
		send = recovery
	}
}

// isoDEPExchange runs InDataExchange's ISO-DEP part: send data (more: the
// host sets Tg bit 6 and will send the rest later), receive the answer,
// and stop early with MI when DataIn is full.
func (e *Emulator) isoDEPExchange(ctx context.Context, t *target, data []byte, more bool) (byte, []byte, error) {
	if t.rxChain {
		if len(data) > 0 || more {
			t.rxChain = false
			return stNotAcceptable, nil, nil
		}
		return e.receive(ctx, t, nil)
	}
	maxINF := t.fsc - 2 - t.hdrLen()
	if maxINF < 1 {
		maxINF = 1
	}
	for first := true; first || len(data) > 0; first = false {
		n := len(data)
		if n > maxINF {
			n = maxINF
		}
		chunk := data[:n]
		data = data[n:]
		chained := len(data) > 0 || more
		pcb := 0x02 | t.bn
		if chained {
			pcb |= 0x10
		}
		blk := append(t.header(pcb), chunk...)
		t.lastBlock = blk
		r, st, err := e.transact(ctx, t, blk, chained, t.header(0xB2|t.bn))
		if err != nil || st != stOK {
			t.txChain = false
			return st, nil, err
		}
		if chained {
			continue
		}
		t.txChain = false
		return e.receive(ctx, t, r)
	}
	t.txChain = true
	return stOK, nil, nil
}

// receive collects the PICC's answer from first (nil: ask for the next
// block of a chain in progress), up to what fits in one response frame.
func (e *Emulator) receive(ctx context.Context, t *target, first []byte) (byte, []byte, error) {
	var out []byte
	blk := first
	perBlock := pcdFSD - 2 - t.hdrLen()
	for {
		if blk == nil {
			ack := t.header(0xA2 | t.bn)
			r, st, err := e.transact(ctx, t, ack, false, ack)
			if err != nil || st != stOK {
				t.rxChain = false
				return st, nil, err
			}
			blk = r
		}
		_, pcb, inf := t.parseBlock(blk)
		out = append(out, inf...)
		blk = nil
		if pcb&0x10 == 0 {
			t.rxChain = false
			return stOK, out, nil
		}
		if len(out)+perBlock > maxDataIn {
			t.rxChain = true
			return statusMI, out, nil
		}
	}
}

// inDataExchange: Tg DataOut → Status DataIn. Tg bit 6 (MI) says more host
// data follows in the next InDataExchange. Status bit 6 (MI) says more
// DataIn follows: the host sends InDataExchange with the same Tg and no
// data to get it. Status bit 7 (NAD) is never set.
func (e *Emulator) inDataExchange(ctx context.Context, a []byte) ([]byte, error) {
	if len(a) < 1 || len(a) > 1+262 || a[0]&0x80 != 0 {
		return nil, errSyntax
	}
	tg, more, data := a[0]&0x3F, a[0]&0x40 != 0, a[1:]
	t := e.findTarget(tg)
	if t == nil || !t.active {
		return []byte{stNotAcceptable}, nil
	}
	if !t.isoDEP {
		if more {
			return []byte{stNotAcceptable}, nil
		}
		ans, ok, err := e.air(ctx, t.picc, rf.Frame{Tech: t.tech, Data: data}, rfTimeout(e.timings[2]))
		if err != nil {
			return nil, err
		}
		if !ok {
			return []byte{stTimeout}, nil
		}
		if len(ans.Frame.Data) > maxDataIn {
			return []byte{stRFBuffer}, nil
		}
		return append([]byte{stOK}, ans.Frame.Data...), nil
	}
	st, in, err := e.isoDEPExchange(ctx, t, data, more)
	if err != nil {
		return nil, err
	}
	e.lastErr = st &^ statusMI
	return append([]byte{st}, in...), nil
}
