package card

import (
	"bytes"
	"time"

	"kazasu/drivers/iso14443"
	"kazasu/drivers/nfc"
	"kazasu/drivers/sim/rf"
)

// Type A activation (ISO/IEC 14443-3 §6, -4 §5): REQA/WUPA → ATQA,
// anticollision and SELECT per cascade level → SAK, RATS → ATS, HLTA.
// Frames carry no CRC and no parity; ATQA is given in air order (LSB byte
// first). Bit-oriented anticollision (NVB with a bit count) is not
// modelled: the token answers only whole-byte NVB values.

// Cascade levels' SEL codes.
var selCodes = [3]byte{0x93, 0x95, 0x97}

const cascadeTag = 0x88

// levels is the number of cascade levels of the UID.
func (t *Token) levels() int { return len(t.id) / 3 } // 4 → 1, 7 → 2, 10 → 3

// cascade returns UID CLn of a level followed by its BCC.
func (t *Token) cascade(level int) []byte {
	var cl []byte
	if level < t.levels()-1 {
		cl = []byte{cascadeTag, t.id[3*level], t.id[3*level+1], t.id[3*level+2]}
	} else {
		cl = append([]byte(nil), t.id[3*level:3*level+4]...)
	}
	return append(cl, cl[0]^cl[1]^cl[2]^cl[3])
}

// atqa: b8b7 of the first byte = UID size (single, double, triple), b3 =
// bit frame anticollision.
func (t *Token) atqa() []byte {
	return []byte{byte(t.levels()-1)<<6 | 0x04, 0x00}
}

// ats is TL T0 TA TB TC T1…Tk: T0 = 70 | FSCI (TA, TB, TC present), TB =
// FWI<<4 | SFGI, TC b2 = CID supported.
func (t *Token) ats() []byte {
	p := &t.prof
	tc := byte(0)
	if p.CID {
		tc = 0x02
	}
	out := []byte{byte(5 + len(p.Historical)), 0x70 | p.FSCI, p.TA, p.FWI<<4 | p.SFGI, tc}
	return append(out, p.Historical...)
}

// fallBack is the answer to an unexpected frame during activation: back
// to IDLE, or to HALT when the activation started with a wake-up from HALT.
func (t *Token) fallBack() {
	if t.woke {
		t.state = StateHalt
	} else {
		t.state = StateIdle
	}
}

func (t *Token) exchangeA(f rf.Frame) ([]byte, time.Duration, bool) {
	d := f.Data
	if t.state == StateProtocol {
		if t.ppsOK && len(d) >= 2 && d[0]&0xF0 == 0xD0 {
			return t.pps(d)
		}
		t.ppsOK = false
		return t.isoDEP(d)
	}
	if f.Bits == 7 && len(d) == 1 && (d[0] == 0x26 || d[0] == 0x52) {
		wup := d[0] == 0x52
		switch t.state {
		case StateIdle:
			t.woke = false
		case StateHalt:
			if !wup {
				return nil, 0, false
			}
			t.woke = true
		default:
			t.fallBack()
			return nil, 0, false
		}
		t.tech, t.level, t.state = nfc.TechA, 0, StateReady
		return t.atqa(), 0, true
	}
	switch t.state {
	case StateReady:
		return t.anticollision(d)
	case StateActive:
		switch {
		case len(d) == 2 && d[0] == 0xE0:
			return t.rats(d[1])
		case len(d) == 2 && d[0] == 0x50 && d[1] == 0x00: // HLTA
			t.state = StateHalt
			return nil, 0, false
		}
		t.fallBack()
	}
	return nil, 0, false
}

// anticollision answers SEL NVB [UID bytes]: with NVB 70 and the full CLn
// + BCC it is SELECT (SAK 04 while more levels follow, 20 = ISO 14443-4
// compliant at the last); with NVB 20…60 it sends the rest of CLn + BCC
// after the bytes the PCD already knows.
func (t *Token) anticollision(d []byte) ([]byte, time.Duration, bool) {
	if len(d) < 2 || d[0] != selCodes[t.level] {
		t.fallBack()
		return nil, 0, false
	}
	nvb := d[1]
	cl := t.cascade(t.level)
	switch {
	case nvb == 0x70 && len(d) == 7:
		if !bytes.Equal(d[2:], cl) {
			return nil, 0, false
		}
		if t.level+1 < t.levels() {
			t.level++
			return []byte{0x04}, 0, true
		}
		t.state = StateActive
		return []byte{0x20}, 0, true
	case nvb >= 0x20 && nvb <= 0x60 && nvb&0x0F == 0 && len(d) == int(nvb>>4):
		n := int(nvb>>4) - 2
		if !bytes.Equal(d[2:], cl[:n]) {
			return nil, 0, false
		}
		return append([]byte(nil), cl[n:]...), 0, true
	}
	return nil, 0, false
}

// rats answers E0 | FSDI<<4 | CID with the ATS and enters ISO-DEP.
func (t *Token) rats(param byte) ([]byte, time.Duration, bool) {
	cid := int(param & 0x0F)
	if cid == 15 {
		t.fallBack()
		return nil, 0, false
	}
	t.picc.SetFSD(iso14443.FrameSize(param >> 4))
	if t.prof.CID {
		t.picc.SetCID(cid)
	} else {
		t.picc.SetCID(-1)
	}
	t.picc.Reset()
	t.state = StateProtocol
	t.ppsOK = true
	t.ppsCID = cid
	return t.ats(), 0, true
}

// pps answers a Protocol and Parameter Selection request (ISO/IEC 14443-4
// §5.6), allowed only as the first frame after the ATS: PPSS = D | CID,
// PPS0 = 11 (PPS1 follows) or 01, PPS1 = 0 0 DSI DRI. The answer is PPSS.
// A bit rate TA does not offer, another CID or a malformed request gets no
// answer.
func (t *Token) pps(d []byte) ([]byte, time.Duration, bool) {
	t.ppsOK = false
	if int(d[0]&0x0F) != t.ppsCID {
		return nil, 0, false
	}
	switch {
	case len(d) == 2 && d[1] == 0x01:
	case len(d) == 3 && d[1] == 0x11 && d[2]&0xF0 == 0:
		dsi, dri := d[2]>>2&0x03, d[2]&0x03
		ta := t.prof.TA
		if ta&0x08 != 0 {
			ta = 0 // b4 set: RFU, 106 only
		}
		if ta&0x80 != 0 && dsi != dri ||
			dsi != 0 && ta&(0x10<<(dsi-1)) == 0 ||
			dri != 0 && ta&(0x01<<(dri-1)) == 0 {
			return nil, 0, false
		}
	default:
		return nil, 0, false
	}
	return []byte{d[0]}, 0, true
}
