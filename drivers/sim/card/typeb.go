package card

import (
	"bytes"
	"time"

	"kazasu/drivers/iso14443"
	"kazasu/drivers/nfc"
)

// Type B activation (ISO/IEC 14443-3 §7, iso14443b.md §2): REQB/WUPB with
// N slots, slot-MARKER, ATQB, ATTRIB, HLTB. Frames carry no CRC.

// pupi is the PUPI of this power-up (a dual-technology token uses the
// first 4 bytes of its UID).
func (t *Token) pupi() []byte { return t.id[:4] }

// atqb builds 50 | PUPI | application data | protocol info (3 bytes, or 4
// with the extended ATQB's SFGI).
func (t *Token) atqb(extended bool) []byte {
	p := &t.prof
	fo := byte(0)
	if p.CID {
		fo |= 0x01 // b1: CID supported; b2 (NAD) never
	}
	out := make([]byte, 0, 13)
	out = append(out, 0x50)
	out = append(out, t.pupi()...)
	out = append(out, p.AppData[:]...)
	out = append(out, p.BitRates, p.FSCI<<4|0x01, p.FWI<<4|p.ADC<<2|fo)
	if extended {
		out = append(out, p.SFGI<<4)
	}
	return out
}

// afiMatches applies the AFI rule of ISO/IEC 14443-3 §7.7.2: AFI 00 calls
// every PICC; a family (x0) or sub-family (0y) selects all PICCs of it; any
// other value must match exactly.
func (t *Token) afiMatches(afi byte) bool {
	own := t.prof.AFI
	switch {
	case afi == 0, afi == own:
		return true
	case afi&0x0F == 0:
		return own&0xF0 == afi
	case afi&0xF0 == 0:
		return own&0x0F == afi
	}
	return false
}

func (t *Token) exchangeB(d []byte) ([]byte, time.Duration, bool) {
	if t.state == StateActive {
		if len(d) == 5 && d[0] == 0x50 && bytes.Equal(d[1:5], t.pupi()) {
			t.state = StateHalt // HLTB
			return []byte{0x00}, 0, true
		}
		// 0x50 and 0x05/0x1D are not valid ISO-DEP PCBs, so anything
		// else is a block for the ISO-DEP layer.
		return t.isoDEP(d)
	}
	switch {
	case len(d) == 3 && d[0] == 0x05: // REQB / WUPB
		wup := d[2]&0x08 != 0
		if t.state == StateHalt && !wup || !t.afiMatches(d[1]) {
			return nil, 0, false
		}
		if t.state == StateIdle || t.state == StateHalt {
			t.woke = t.state == StateHalt
		}
		t.tech = nfc.TechB
		t.extATQB = d[2]&0x10 != 0 && t.prof.ExtendedATQB
		n := uint64(1) << min(d[2]&0x07, 4) // N = 2^code; RFU codes read as 16
		t.slot = 1
		if n > 1 {
			t.slot += int(t.slots.Uint64() % n)
		}
		if t.slot == 1 {
			t.state = StateReady
			return t.atqb(t.extATQB), 0, true
		}
		t.state = StateReadyReq
		return nil, 0, false
	case len(d) == 1 && d[0]&0x0F == 0x05 && d[0] != 0x05: // slot-MARKER
		if t.state == StateReadyReq && int(d[0]>>4)+1 == t.slot {
			t.state = StateReady
			return t.atqb(t.extATQB), 0, true
		}
	case len(d) >= 9 && d[0] == 0x1D: // ATTRIB
		if t.state == StateReady && bytes.Equal(d[1:5], t.pupi()) {
			return t.attrib(d)
		}
	case len(d) == 5 && d[0] == 0x50: // HLTB
		if t.state == StateReady && bytes.Equal(d[1:5], t.pupi()) {
			t.state = StateHalt
			return []byte{0x00}, 0, true
		}
	}
	return nil, 0, false
}

// attrib handles 1D PUPI Param1..4 [INF]: Param2 holds DSI, DRI and FSDI,
// Param4 the CID. A bit rate the PICC does not offer in its ATQB, an RFU
// CID, or a CID the PICC cannot use gets no answer. The answer is
// MBLI<<4 | CID; higher-layer INF is accepted and not answered.
func (t *Token) attrib(d []byte) ([]byte, time.Duration, bool) {
	param2, param4 := d[6], d[8]
	if !t.bitRatesOK(param2>>6, param2>>4&0x03) {
		return nil, 0, false
	}
	cid := int(param4 & 0x0F)
	switch {
	case cid == 15:
		return nil, 0, false
	case !t.prof.CID && cid != 0:
		return nil, 0, false
	}
	t.picc.SetFSD(iso14443.FrameSize(param2 & 0x0F))
	if t.prof.CID {
		t.picc.SetCID(cid)
	} else {
		t.picc.SetCID(-1)
	}
	t.picc.Reset()
	t.state = StateActive
	return []byte{t.prof.MBLI<<4 | byte(cid)}, 0, true
}

// bitRatesOK checks DSI (PICC→PCD) and DRI (PCD→PICC) codes against the
// ATQB bit-rate byte: b7/b6/b5 = 848/424/212 PICC→PCD, b3/b2/b1 = PCD→PICC,
// b8 = same rate both ways. 106 kbit/s (code 0) is always supported.
func (t *Token) bitRatesOK(dsi, dri byte) bool {
	br := t.prof.BitRates
	if br&0x08 != 0 {
		br = 0 // b4 set: the byte is invalid, 106 only (iso14443b.md §2.3)
	}
	if br&0x80 != 0 && dsi != dri {
		return false
	}
	if dsi != 0 && br&(0x10<<(dsi-1)) == 0 {
		return false
	}
	if dri != 0 && br&(0x01<<(dri-1)) == 0 {
		return false
	}
	return true
}
