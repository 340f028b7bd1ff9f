package pn532emu

import (
	"bytes"
	"context"
	"time"

	"kazasu/drivers/nfc"
	"kazasu/drivers/sim/rf"
)

// target is one target the firmware has activated (Tg 1 or 2).
type target struct {
	tg     byte
	tech   nfc.Tech
	picc   rf.PICC
	active bool // false after InDeselect (the chip keeps the data for InSelect)

	// Type B
	atqb      []byte // 12 or 13 bytes, from 0x50
	attribRes []byte
	afi       byte
	// Type A
	sensRes [2]byte // as the PN532 reports it: byte order reversed from air
	selRes  byte
	uid     []byte
	ats     []byte // with TL

	isoDEP bool
	cid    int // -1: no CID in blocks
	fsc    int // frame size the PICC accepts
	fwt    time.Duration

	// ISO-DEP PCD state (ISO/IEC 14443-4 §7.5.4)
	bn        byte // current block number (Rule A: 0 after activation)
	rxChain   bool // the PICC is chaining and the host must send 40 Tg to go on
	txChain   bool // the host is chaining (Tg MI) and the PICC has ACKed so far
	lastBlock []byte
	busy      time.Duration // processing the PICC still has to finish (a late answer)
}

// pcdFSD is the frame size the PN532 firmware announces (FSDI 5, 64 bytes,
// pn532.md §6).
const (
	pcdFSD  = 64
	pcdFSDI = 5
)

// air sends one frame to the field and returns the answer of want (or of
// the first PICC when want is nil), accounting frame times, turnaround and
// PICC processing; on silence it accounts wait. ok is false on silence.
func (e *Emulator) air(ctx context.Context, want rf.PICC, fr rf.Frame, wait time.Duration) (rf.Answer, bool, error) {
	crc := 2
	if fr.Tech == nfc.TechA && fr.Bits != 0 {
		crc = 0 // short frame
	}
	if err := e.spend(ctx, CatAir, frameAirTime(fr.Tech, len(fr.Data)+crc, fr.Bits)); err != nil {
		return rf.Answer{}, false, err
	}
	answers := e.field.Exchange(fr)
	for _, a := range answers {
		if want != nil && a.PICC != want {
			continue
		}
		if err := e.spend(ctx, CatCard, a.Proc); err != nil {
			return rf.Answer{}, false, err
		}
		n := len(a.Frame.Data) + 2
		if fr.Tech == nfc.TechA && len(a.Frame.Data) <= 2 && crcLessA(fr) {
			n = len(a.Frame.Data) // ATQA, UID CLn and SAK-less answers carry no CRC
		}
		if err := e.spend(ctx, CatAir, turnaround(fr.Tech)+frameAirTime(fr.Tech, n, a.Frame.Bits)); err != nil {
			return rf.Answer{}, false, err
		}
		return a, true, nil
	}
	if err := e.spend(ctx, CatAir, wait); err != nil {
		return rf.Answer{}, false, err
	}
	return rf.Answer{}, false, ctx.Err()
}

// crcLessA reports whether the Type A command's answer carries no CRC_A
// (REQA/WUPA → ATQA, anticollision → UID CLn).
func crcLessA(fr rf.Frame) bool {
	return fr.Bits != 0 || len(fr.Data) == 2 && fr.Data[1] == 0x20
}

// ---- InListPassiveTarget / InAutoPoll ----

// inListPassiveTarget: MaxTg BrTy [InitiatorData] → NbTg {TargetData}.
// Under MxRtyPassiveActivation FF with nothing in the field the chip polls
// until the host aborts it (ACK or a new command): it never answers.
func (e *Emulator) inListPassiveTarget(ctx context.Context, a []byte) ([]byte, error) {
	if len(a) < 2 || a[0] < 1 || a[0] > 2 {
		return nil, errSyntax
	}
	maxTg, brTy, init := int(a[0]), a[1], a[2:]
	var tech nfc.Tech
	var afi byte
	var uid []byte
	switch brTy {
	case 0x00:
		tech = nfc.TechA
		if len(init) > 0 {
			var ok bool
			if uid, ok = plainUID(init); !ok {
				return nil, errSyntax
			}
		}
	case 0x03:
		tech = nfc.TechB
		if len(init) < 1 || len(init) > 2 || len(init) == 2 && init[1] > 1 {
			return nil, errSyntax
		}
		afi = init[0]
	case 0x01, 0x02, 0x04:
		// FeliCa and Jewel: no such PICC can exist in an rf.Field, so the
		// poll finds nothing (after checking its parameters).
		if brTy != 0x04 && len(init) != 5 || brTy == 0x04 && len(init) != 0 {
			return nil, errSyntax
		}
	default:
		return nil, errSyntax
	}
	e.releaseAll(ctx)
	e.setField(ctx, true)
	retries := e.maxRetry[2]
	for try := 0; ; try++ {
		var found []*target
		if tech != 0 {
			for len(found) < maxTg {
				t, st := e.activate(ctx, tech, afi, uid, len(found)+1, found)
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if t == nil || st != stOK {
					break
				}
				found = append(found, t)
			}
		} else if err := e.spend(ctx, CatPoll, atqbWindow); err != nil {
			return nil, err
		}
		if len(found) > 0 {
			e.targets = found
			e.setFraming(tech)
			out := []byte{byte(len(found))}
			for _, t := range found {
				out = append(out, t.targetData()...)
			}
			return out, nil
		}
		if retries != 0xFF && try >= int(retries) {
			return []byte{0x00}, nil
		}
		if retries == 0xFF {
			// Infinite retries: poll again after a short pause, until the
			// host aborts. Real waiting (not modelled), so a scenario can
			// tap a card meanwhile.
			if err := waitReal(ctx, 5*time.Millisecond); err != nil {
				return nil, err
			}
		}
	}
}

// setFraming leaves the CIU as the firmware does after an activation:
// TxMode/RxMode framing for the technology, CRC generation and check on.
func (e *Emulator) setFraming(tech nfc.Tech) {
	fr := byte(0)
	if tech == nfc.TechB {
		fr = framingB
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range []uint16{regTxMode, regRxMode} {
		e.regs[r] = e.regs[r]&^framingMask | fr | crcEn
	}
}

// releaseAll forgets the targets of a previous poll before a new one,
// deselecting those still active (S(DESELECT), or HLTA for a Type A
// target without ISO-DEP). pn532.md does not say what the firmware does
// here (§11.2); this reading is the one under which libnfc's list-then-
// select works with a card that, like a real one, ignores WUPB while
// ACTIVE: the listing loop leaves the last target active.
func (e *Emulator) releaseAll(ctx context.Context) {
	if e.rfOn {
		for _, t := range e.targets {
			e.deselect(ctx, t)
		}
	}
	e.targets = nil
}

// plainUID accepts the InitiatorData UID of a Type A poll, with or
// without its cascade tags (UM: "including CT"): 4 bytes; 7, or 8 as
// 88 + 7; 10, or 12 as 88 + 3 + 88 + 3 + 4. It returns the UID without CTs.
func plainUID(b []byte) ([]byte, bool) {
	switch {
	case len(b) == 4 || len(b) == 7 || len(b) == 10:
		return b, true
	case len(b) == 8 && b[0] == 0x88:
		return b[1:], true
	case len(b) == 12 && b[0] == 0x88 && b[4] == 0x88:
		return append(append([]byte(nil), b[1:4]...), b[5:]...), true
	}
	return nil, false
}

// waitReal blocks for d of wall time or until ctx ends.
func waitReal(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// targetData is the TargetData of InListPassiveTarget and InAutoPoll.
func (t *target) targetData() []byte {
	out := []byte{t.tg}
	if t.tech == nfc.TechB {
		out = append(out, t.atqb[:12]...)
		out = append(out, byte(len(t.attribRes)))
		return append(out, t.attribRes...)
	}
	out = append(out, t.sensRes[0], t.sensRes[1], t.selRes, byte(len(t.uid)))
	out = append(out, t.uid...)
	return append(out, t.ats...)
}

// activate runs one activation attempt for tech and returns the target, or
// nil when nothing answered. others are targets already activated in this
// command (they are in ACTIVE state and ignore REQ/WUP).
func (e *Emulator) activate(ctx context.Context, tech nfc.Tech, afi byte, uid []byte, tg int, others []*target) (*target, byte) {
	if tech == nfc.TechB {
		return e.activateB(ctx, afi, nil, byte(tg), others)
	}
	return e.activateA(ctx, uid, nil, byte(tg), others, e.params&paramAutoRATS != 0)
}

// activateB: WUPB (single slot), ATQB, and for an ISO 14443-4 PICC the
// firmware's own ATTRIB with CID 1 (when the PICC supports CID) and FSD 64.
// The PN532's choice of WUPB over REQB is not documented (pn532.md §11.2);
// WUPB is used so that a PICC halted by InDeselect is found again, which
// is what libnfc's listing loop copes with either way. If want is set, only
// that PICC is accepted (InSelect).
func (e *Emulator) activateB(ctx context.Context, afi byte, want *target, tg byte, others []*target) (*target, byte) {
	var wp rf.PICC
	if want != nil {
		wp = want.picc
	}
	ans, ok, err := e.airAny(ctx, wp, rf.Frame{Tech: nfc.TechB, Data: []byte{0x05, afi, 0x08}}, atqbWindow, others)
	if err != nil || !ok {
		return nil, stTimeout
	}
	atqb := ans.Frame.Data
	if (len(atqb) != 12 && len(atqb) != 13) || atqb[0] != 0x50 {
		return nil, stRFProtocol
	}
	if want != nil && !bytes.Equal(want.atqb[1:5], atqb[1:5]) {
		return nil, stCardExchanged
	}
	t := &target{tg: tg, tech: nfc.TechB, picc: ans.PICC, atqb: append([]byte(nil), atqb...), afi: afi, cid: -1, active: true}
	proto := atqb[10]
	fo := atqb[11] & 0x03
	t.fsc = frameSize(int(proto >> 4))
	t.fwt = fwt(int(atqb[11] >> 4))
	if proto&0x09 != 0x01 {
		// Not ISO 14443-4: no ATTRIB (pn532.md §11.3 is open; this is the
		// reading where the firmware only sends ATTRIB when it will run
		// ISO-DEP itself).
		return t, stOK
	}
	cid := byte(0)
	if fo&0x01 != 0 {
		cid = tg // CID 1 for the first target (libnfc's "if on PN532, CID=1"), 2 for a second
	}
	attrib := []byte{0x1D, atqb[1], atqb[2], atqb[3], atqb[4], 0x00, pcdFSDI, proto & 0x07, cid}
	res, ok, err := e.air(ctx, t.picc, rf.Frame{Tech: nfc.TechB, Data: attrib}, t.fwt)
	if err != nil || !ok {
		return nil, stTimeout
	}
	if len(res.Frame.Data) < 1 || res.Frame.Data[0]&0x0F != cid {
		return nil, stRFProtocol
	}
	t.attribRes = append([]byte(nil), res.Frame.Data...)
	t.isoDEP = true
	if fo&0x01 != 0 {
		t.cid = int(cid)
	}
	return t, stOK
}

// airAny is air for an activation command: any powered PICC not in others
// may answer (the first answer wins; a real collision is not modelled).
func (e *Emulator) airAny(ctx context.Context, want rf.PICC, fr rf.Frame, wait time.Duration, others []*target) (rf.Answer, bool, error) {
	a, n, err := e.airCount(ctx, want, fr, wait, others)
	return a, n > 0, err
}

// airCount is airAny that also reports how many PICCs answered (more than
// one is a collision; the first answer is returned).
func (e *Emulator) airCount(ctx context.Context, want rf.PICC, fr rf.Frame, wait time.Duration, others []*target) (rf.Answer, int, error) {
	crc := 2
	if fr.Tech == nfc.TechA && fr.Bits != 0 {
		crc = 0
	}
	if err := e.spend(ctx, CatAir, frameAirTime(fr.Tech, len(fr.Data)+crc, fr.Bits)); err != nil {
		return rf.Answer{}, 0, err
	}
	var first rf.Answer
	count := 0
	for _, a := range e.field.Exchange(fr) {
		if want != nil && a.PICC != want || isOther(a.PICC, others) {
			continue
		}
		if count++; count > 1 {
			continue
		}
		first = a
		n := len(a.Frame.Data) + 2
		if fr.Tech == nfc.TechA && crcLessA(fr) {
			n = len(a.Frame.Data)
		}
		if err := e.spend(ctx, CatCard, a.Proc); err != nil {
			return rf.Answer{}, 0, err
		}
		if err := e.spend(ctx, CatAir, turnaround(fr.Tech)+frameAirTime(fr.Tech, n, a.Frame.Bits)); err != nil {
			return rf.Answer{}, 0, err
		}
	}
	if count > 0 {
		return first, count, nil
	}
	return rf.Answer{}, 0, e.spend(ctx, CatPoll, wait)
}

func isOther(p rf.PICC, others []*target) bool {
	for _, t := range others {
		if t.picc == p {
			return true
		}
	}
	return false
}

// activateA: WUPA, anticollision and select per cascade level, and for an
// ISO 14443-4 PICC (SAK bit 6) with fAutomaticRATS the firmware's RATS
// (FSDI 5 = 64 bytes; CID 0, used only when fDIDUsed is set and the ATS
// says the PICC supports it). uid, if set, restricts the poll to that UID.
func (e *Emulator) activateA(ctx context.Context, uid []byte, want *target, tg byte, others []*target, rats bool) (*target, byte) {
	var wp rf.PICC
	if want != nil {
		wp = want.picc
	}
	ans, ok, err := e.airAny(ctx, wp, rf.Frame{Tech: nfc.TechA, Data: []byte{0x52}, Bits: 7}, atqbWindow, others)
	if err != nil || !ok {
		return nil, stTimeout
	}
	if len(ans.Frame.Data) != 2 {
		return nil, stRFProtocol
	}
	p := ans.PICC
	t := &target{tg: tg, tech: nfc.TechA, picc: p, cid: -1, active: true, fsc: 32, fwt: fwt(4)}
	t.sensRes = [2]byte{ans.Frame.Data[1], ans.Frame.Data[0]}
	var full []byte
	for _, sel := range []byte{0x93, 0x95, 0x97} {
		r, ok, err := e.air(ctx, p, rf.Frame{Tech: nfc.TechA, Data: []byte{sel, 0x20}}, atqbWindow)
		if err != nil || !ok {
			return nil, stTimeout
		}
		cl := r.Frame.Data
		if len(cl) != 5 || cl[0]^cl[1]^cl[2]^cl[3] != cl[4] {
			return nil, 0x23 // UID BCC wrong
		}
		s, ok, err := e.air(ctx, p, rf.Frame{Tech: nfc.TechA, Data: append([]byte{sel, 0x70}, cl...)}, atqbWindow)
		if err != nil || !ok {
			return nil, stTimeout
		}
		if len(s.Frame.Data) != 1 {
			return nil, stRFProtocol
		}
		sak := s.Frame.Data[0]
		if sak&0x04 != 0 {
			if cl[0] != 0x88 {
				return nil, stRFProtocol
			}
			full = append(full, cl[1:4]...)
			continue
		}
		full = append(full, cl[:4]...)
		t.selRes = sak
		break
	}
	if t.selRes == 0 && len(full) < 4 || len(full) != 4 && len(full) != 7 && len(full) != 10 {
		return nil, stRFProtocol
	}
	t.uid = full
	if len(uid) > 0 && !bytes.Equal(uid, full) {
		e.halt(ctx, t) // another card than the one asked for
		return nil, stTimeout
	}
	if want != nil && !bytes.Equal(want.uid, full) {
		e.halt(ctx, t)
		return nil, stCardExchanged
	}
	if t.selRes&0x20 == 0 || !rats {
		return t, stOK
	}
	r, ok, err := e.air(ctx, p, rf.Frame{Tech: nfc.TechA, Data: []byte{0xE0, pcdFSDI << 4}}, fwt(4)*2)
	if err != nil || !ok {
		return nil, stTimeout
	}
	ats := r.Frame.Data
	if len(ats) < 1 || int(ats[0]) != len(ats) {
		return nil, stRFProtocol
	}
	t.ats = append([]byte(nil), ats...)
	t.isoDEP = true
	if len(ats) > 1 {
		t0 := ats[1]
		t.fsc = frameSize(int(t0 & 0x0F))
		i := 2
		if t0&0x10 != 0 { // TA
			i++
		}
		if t0&0x20 != 0 && i < len(ats) { // TB: FWI in the high nibble
			t.fwt = fwt(int(ats[i] >> 4))
			i++
		}
		if t0&0x40 != 0 && i < len(ats) && ats[i]&0x02 != 0 && e.params&paramDIDUsed != 0 {
			t.cid = 0
		}
	}
	return t, stOK
}

// inAutoPoll: PollNr Period Type1 [Type2 …] → NbTg {Type Len TargetData}.
// Types handled: 00 generic 106 A, 10 MIFARE (any Type A, no RATS), 20
// ISO 14443-4 A, 03 generic 106 B, 23 ISO 14443-4 B. Other types (FeliCa,
// Jewel, DEP) are accepted and find nothing. PollNr FF polls until a
// target appears or the host aborts.
func (e *Emulator) inAutoPoll(ctx context.Context, a []byte) ([]byte, error) {
	if len(a) < 3 || len(a) > 17 || a[0] == 0 || a[1] < 1 || a[1] > 0x0F {
		return nil, errSyntax
	}
	pollNr, period, types := a[0], time.Duration(a[1])*150*time.Millisecond, a[2:]
	for _, ty := range types {
		switch ty {
		case 0x00, 0x01, 0x02, 0x03, 0x04, 0x10, 0x11, 0x12, 0x20, 0x23, 0x40, 0x41, 0x42, 0x80, 0x81, 0x82:
		default:
			return nil, errSyntax
		}
	}
	e.releaseAll(ctx)
	e.setField(ctx, true)
	for n := 0; pollNr == 0xFF || n < int(pollNr); n++ {
		for _, ty := range types {
			var t *target
			switch ty {
			case 0x00, 0x10:
				t, _ = e.activateA(ctx, nil, nil, 1, nil, false)
			case 0x20:
				t, _ = e.activateA(ctx, nil, nil, 1, nil, true)
				if t != nil && !t.isoDEP {
					e.halt(ctx, t) // not of the type asked for: back to HALT
					t = nil
				}
			case 0x03, 0x23:
				t, _ = e.activateB(ctx, 0x00, nil, 1, nil)
				if t != nil && ty == 0x23 && !t.isoDEP {
					e.halt(ctx, t)
					t = nil
				}
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if t != nil {
				e.targets = []*target{t}
				e.setFraming(t.tech)
				td := t.targetData()
				return append([]byte{0x01, ty, byte(len(td))}, td...), nil
			}
		}
		if err := e.spend(ctx, CatPoll, period); err != nil {
			return nil, err
		}
		if pollNr == 0xFF {
			if err := waitReal(ctx, 5*time.Millisecond); err != nil {
				return nil, err
			}
		}
	}
	return []byte{0x00}, nil
}

// halt puts a selected PICC that is not wanted back to HALT: HLTA for
// Type A, HLTB with its PUPI for Type B (answered with 00).
func (e *Emulator) halt(ctx context.Context, t *target) {
	fr := rf.Frame{Tech: nfc.TechA, Data: []byte{0x50, 0x00}}
	if t.tech == nfc.TechB {
		fr = rf.Frame{Tech: nfc.TechB, Data: append([]byte{0x50}, t.atqb[1:5]...)}
	}
	_, _, _ = e.air(ctx, t.picc, fr, time.Millisecond)
}

// ---- InSelect / InDeselect / InRelease ----

func (e *Emulator) findTarget(tg byte) *target {
	for _, t := range e.targets {
		if t.tg == tg {
			return t
		}
	}
	return nil
}

// inSelect: Tg → Status. Re-activates a target kept after InDeselect.
func (e *Emulator) inSelect(ctx context.Context, a []byte) ([]byte, error) {
	if len(a) != 1 {
		return nil, errSyntax
	}
	t := e.findTarget(a[0])
	if t == nil {
		return []byte{stNotAcceptable}, nil
	}
	if t.active {
		return []byte{stOK}, nil
	}
	var nt *target
	var st byte
	if t.tech == nfc.TechB {
		nt, st = e.activateB(ctx, t.afi, t, t.tg, nil)
		if nt == nil && st == stTimeout {
			st = stCardDisappeared
		}
	} else {
		nt, st = e.activateA(ctx, nil, t, t.tg, nil, t.isoDEP)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if nt == nil {
		return []byte{st}, nil
	}
	*t = *nt
	e.setFraming(t.tech)
	return []byte{stOK}, nil
}

// inDeselect: Tg (0 = all) → Status. An ISO-DEP target gets S(DESELECT);
// the chip keeps its data so InSelect can resume it.
func (e *Emulator) inDeselect(ctx context.Context, a []byte) ([]byte, error) {
	if len(a) != 1 {
		return nil, errSyntax
	}
	ts := e.targets
	if a[0] != 0 {
		t := e.findTarget(a[0])
		if t == nil {
			return []byte{stNotAcceptable}, nil
		}
		ts = []*target{t}
	}
	st := byte(stOK)
	for _, t := range ts {
		if s := e.deselect(ctx, t); s != stOK {
			st = s
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return []byte{st}, nil
}

// deselect sends S(DESELECT) to an active ISO-DEP target (a Type A
// non-ISO-DEP target gets HLTA) and marks it inactive.
func (e *Emulator) deselect(ctx context.Context, t *target) byte {
	if !t.active {
		return stOK
	}
	t.active = false
	t.rxChain, t.txChain = false, false
	if !t.isoDEP {
		e.halt(ctx, t)
		return stOK
	}
	blk := t.header(0xC2)
	r, ok, err := e.air(ctx, t.picc, rf.Frame{Tech: t.tech, Data: blk}, cycles(71680))
	if err != nil || !ok {
		return stTimeout
	}
	if !bytes.Equal(r.Frame.Data, blk) {
		return stFormat
	}
	return stOK
}

// inRelease: Tg (0 = all) → Status. The chip forgets the target; an active
// ISO-DEP target is deselected first.
func (e *Emulator) inRelease(ctx context.Context, a []byte) ([]byte, error) {
	if len(a) != 1 {
		return nil, errSyntax
	}
	if a[0] == 0 {
		for _, t := range e.targets {
			e.deselect(ctx, t)
		}
		e.targets = nil
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return []byte{stOK}, nil
	}
	t := e.findTarget(a[0])
	if t == nil {
		return []byte{stNotAcceptable}, nil
	}
	e.deselect(ctx, t)
	var keep []*target
	for _, x := range e.targets {
		if x != t {
			keep = append(keep, x)
		}
	}
	e.targets = keep
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return []byte{stOK}, nil
}

// ---- InCommunicateThru ----

// inCommunicateThru: DataOut → Status DataIn. The frame goes to the field
// with the framing of CIU TxMode (bits 1–0: 11 = Type B, else Type A) and
// TxLastBits of BitFraming; CRC is added and checked by the chip when
// TxMode/RxMode bit 7 is set, otherwise the host supplies it (and it is
// checked here, since the simulated field carries frames without CRC) and
// receives it. The wait is RFConfiguration item 02's third byte; code 00
// means no timeout (the chip waits until aborted). A timeout is retried
// MaxRtyCOM times (RFConfiguration item 04; FF: until aborted). Two PICCs
// answering at once give status 06 (Type A collision) or 02 (Type B: the
// superposed answer fails its CRC).
func (e *Emulator) inCommunicateThru(ctx context.Context, a []byte) ([]byte, error) {
	if len(a) > 263 {
		return nil, errSyntax
	}
	e.mu.Lock()
	txMode, rxMode, bitFraming := e.regs[regTxMode], e.regs[regRxMode], e.regs[regBitFraming]
	e.mu.Unlock()
	tech := nfc.TechA
	if txMode&framingMask == framingB {
		tech = nfc.TechB
	}
	data := append([]byte(nil), a...)
	if txMode&crcEn == 0 && len(data) > 0 {
		if len(data) < 3 || !crcOK(tech, data) {
			// A frame with a bad CRC is not answered by any PICC.
			data = nil
		} else {
			data = data[:len(data)-2]
		}
	}
	timeout := rfTimeout(e.timings[2])
	var fr rf.Frame
	var want rf.PICC
	if len(data) > 0 {
		fr = rf.Frame{Tech: tech, Data: data, Bits: int(bitFraming & 0x07)}
		if t := e.currentTarget(); t != nil && t.tech == tech {
			want = t.picc
		}
	}
	// One try plus MaxRtyCOM retries on timeout; FF retries until aborted.
	var ans rf.Answer
	for try := 0; ; try++ {
		n := 0
		if len(data) > 0 && e.rfOn {
			var err error
			ans, n, err = e.airCount(ctx, want, fr, timeout, nil)
			if err != nil {
				return nil, err
			}
		} else if err := e.spend(ctx, CatAir, timeout); err != nil {
			return nil, err
		}
		if n > 1 {
			// Several PICCs answered at once: a collision (Type A) or, with
			// Type B's NRZ/BPSK, a frame that fails its CRC.
			if tech == nfc.TechA {
				return []byte{stCollision}, nil
			}
			return []byte{stCRC}, nil
		}
		if n == 1 {
			break
		}
		if timeout == 0 {
			<-ctx.Done() // no timeout: the chip waits until aborted
			return nil, ctx.Err()
		}
		if e.maxRtyCOM != 0xFF && try >= int(e.maxRtyCOM) {
			return []byte{stTimeout}, nil
		}
		if e.maxRtyCOM == 0xFF {
			if err := waitReal(ctx, time.Millisecond); err != nil {
				return nil, err
			}
		}
	}
	out := append([]byte{stOK}, ans.Frame.Data...)
	if rxMode&crcEn == 0 {
		out = appendCRC(tech, out)
	}
	if len(out) > MaxPD-1 {
		return []byte{stRFBuffer}, nil
	}
	return out, nil
}

// currentTarget is the target InDataExchange and InCommunicateThru talk to
// (the first active one).
func (e *Emulator) currentTarget() *target {
	for _, t := range e.targets {
		if t.active {
			return t
		}
	}
	return nil
}

// ---- presence check (Diagnose 06) ----

// presenceCheck sends R(NAK) with the current block number to the current
// ISO-DEP target: 00 if it answers (R(ACK), Rule 12), 01 if it is silent,
// 27 if there is no ISO-DEP target.
func (e *Emulator) presenceCheck(ctx context.Context) byte {
	t := e.currentTarget()
	if t == nil || !t.isoDEP {
		return stNotAcceptable
	}
	_, ok, err := e.air(ctx, t.picc, rf.Frame{Tech: t.tech, Data: t.header(0xB2 | t.bn)}, t.fwt)
	if err != nil || !ok {
		return stTimeout
	}
	return stOK
}
