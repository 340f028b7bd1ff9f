package iso14443

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrFrame is wrapped by every decoding error of this package: the bytes
// are not the frame the caller asked to parse.
var ErrFrame = errors.New("iso14443: malformed frame")

// Type B command and answer codes (ISO/IEC 14443-3 §7).
const (
	APf        = 0x05 // anticollision prefix of REQB/WUPB
	CmdATTRIB  = 0x1D // ATTRIB command byte
	CmdHLTB    = 0x50 // HLTB command byte (PCD→PICC)
	ATQBPrefix = 0x50 // first byte of an ATQB (PICC→PCD)
	HLTBAnswer = 0x00 // the PICC's answer to HLTB
)

// cursor reads a frame front to back; every read is bounds-checked and a
// failed read poisons the cursor, so a parser checks ok once at the end.
type cursor struct {
	b  []byte
	ok bool
}

func newCursor(b []byte) *cursor { return &cursor{b: b, ok: true} }

func (c *cursor) u8() byte {
	if !c.ok || len(c.b) < 1 {
		c.ok = false
		return 0
	}
	v := c.b[0]
	c.b = c.b[1:]
	return v
}

func (c *cursor) bytes(n int) []byte {
	if !c.ok || n < 0 || len(c.b) < n {
		c.ok = false
		return nil
	}
	v := c.b[:n:n]
	c.b = c.b[n:]
	return v
}

func (c *cursor) rest() []byte {
	v := c.b
	c.b = nil
	return v
}

func (c *cursor) empty() bool { return c.ok && len(c.b) == 0 }

func frameErr(what string, b []byte, format string, args ...any) error {
	return fmt.Errorf("%w: %s % X: %s", ErrFrame, what, b, fmt.Sprintf(format, args...))
}

// ReqB is a REQB or WUPB command (§7.7): APf AFI PARAM.
type ReqB struct {
	AFI byte
	// Slots is the number of anticollision slots N: 1, 2, 4, 8 or 16.
	Slots int
	// WakeUp makes it a WUPB (PARAM b4), which also wakes HALTed PICCs.
	WakeUp bool
	// Extended says the PCD supports the extended ATQB (PARAM b5).
	Extended bool
}

// Bytes encodes the command (without CRC_B). Slots is rounded up to a power
// of two and capped at 16; 0 encodes as 1.
func (r ReqB) Bytes() []byte {
	param := byte(0)
	for n := 1; n < r.Slots && param < 4; n <<= 1 {
		param++
	}
	if r.WakeUp {
		param |= 0x08
	}
	if r.Extended {
		param |= 0x10
	}
	return []byte{APf, r.AFI, param}
}

// ParseReqB decodes a REQB/WUPB command (PICC side). N codes 101–111 (RFU)
// are read as 1 slot; PARAM b8–b6 (RFU, b6 the NFC Forum advanced-features
// flag) are ignored.
func ParseReqB(b []byte) (ReqB, error) {
	c := newCursor(b)
	apf, afi, param := c.u8(), c.u8(), c.u8()
	if !c.empty() || apf != APf {
		return ReqB{}, frameErr("REQB", b, "want 05 AFI PARAM")
	}
	r := ReqB{AFI: afi, Slots: 1, WakeUp: param&0x08 != 0, Extended: param&0x10 != 0}
	if n := param & 0x07; n <= 4 {
		r.Slots = 1 << n
	}
	return r, nil
}

func (r ReqB) String() string {
	name := "REQB"
	if r.WakeUp {
		name = "WUPB"
	}
	s := fmt.Sprintf("%s AFI %02X N %d", name, r.AFI, r.Slots)
	if r.Extended {
		s += " ext"
	}
	return s
}

// SlotMarker returns the slot-MARKER for slot n (2…16): APn = (n−1)<<4 | 5.
func SlotMarker(n int) ([]byte, error) {
	if n < 2 || n > 16 {
		return nil, fmt.Errorf("iso14443: slot-MARKER for slot %d: want 2…16", n)
	}
	return []byte{byte(n-1)<<4 | APf}, nil
}

// ParseSlotMarker returns the slot number (2…16) of a slot-MARKER.
func ParseSlotMarker(b []byte) (int, error) {
	if len(b) != 1 || b[0]&0x0F != APf || b[0] == APf {
		return 0, frameErr("slot-MARKER", b, "want one byte n5, n = 1…F")
	}
	return int(b[0]>>4) + 1, nil
}

// ATQB is the answer of a Type B PICC to REQB/WUPB (§7.9): 50, PUPI,
// application data, and 3 (or, extended, 4) protocol-info bytes. Fields hold
// the codes as received; the methods give the values a PCD uses, with RFU
// codes clamped (see Notes).
type ATQB struct {
	PUPI    [4]byte
	AppData [4]byte
	// BitRates is protocol-info byte 1 as received.
	BitRates byte
	// FSCI is the maximum-frame-size code (byte 2, b8–b5).
	FSCI byte
	// ProtocolType is byte 2, b4–b1: b1 = ISO/IEC 14443-4 compliant,
	// b3–b2 = minimum TR2 code, b4 must be 0.
	ProtocolType byte
	// FWI is byte 3, b8–b5.
	FWI byte
	// ADC is byte 3, b4–b3 (application data coding).
	ADC byte
	// FO is byte 3, b2–b1: b2 = NAD supported, b1 = CID supported.
	FO byte
	// Extended is set for a 13-byte ATQB; SFGI is its byte 4, b8–b5.
	Extended bool
	SFGI     byte
	// Byte4Low keeps byte 4, b4–b1 (RFU), so Bytes round-trips.
	Byte4Low byte
}

// ParseATQB decodes an ATQB of 12 or 13 bytes (CRC removed).
func ParseATQB(b []byte) (ATQB, error) {
	var a ATQB
	c := newCursor(b)
	if c.u8() != ATQBPrefix {
		return ATQB{}, frameErr("ATQB", b, "first byte is not 50")
	}
	copy(a.PUPI[:], c.bytes(4))
	copy(a.AppData[:], c.bytes(4))
	a.BitRates = c.u8()
	p2, p3 := c.u8(), c.u8()
	a.FSCI, a.ProtocolType = p2>>4, p2&0x0F
	a.FWI, a.ADC, a.FO = p3>>4, p3>>2&3, p3&3
	if !c.ok {
		return ATQB{}, frameErr("ATQB", b, "%d bytes, want 12 or 13", len(b))
	}
	if len(c.b) == 1 {
		p4 := c.u8()
		a.Extended, a.SFGI, a.Byte4Low = true, p4>>4, p4&0x0F
	}
	if !c.empty() {
		return ATQB{}, frameErr("ATQB", b, "%d bytes, want 12 or 13", len(b))
	}
	return a, nil
}

// Bytes encodes the ATQB (PICC side), without CRC_B. Codes are masked to
// their field widths.
func (a ATQB) Bytes() []byte {
	out := make([]byte, 0, 13)
	out = append(out, ATQBPrefix)
	out = append(out, a.PUPI[:]...)
	out = append(out, a.AppData[:]...)
	out = append(out, a.BitRates, (a.FSCI&0x0F)<<4|a.ProtocolType&0x0F, (a.FWI&0x0F)<<4|(a.ADC&3)<<2|a.FO&3)
	if a.Extended {
		out = append(out, (a.SFGI&0x0F)<<4|a.Byte4Low&0x0F)
	}
	return out
}

// FSC returns the largest frame the PICC accepts, in bytes.
func (a ATQB) FSC() int { return FrameSize(a.FSCI) }

// FWT returns the frame waiting time (FWI 15 read as 4).
func (a ATQB) FWT() time.Duration { return FWT(a.FWI) }

// SFGT returns the start-up frame guard time (0 unless extended).
func (a ATQB) SFGT() time.Duration {
	if !a.Extended {
		return 0
	}
	return SFGT(a.SFGI)
}

// ISODEP reports whether the PICC complies with ISO/IEC 14443-4
// (Protocol_Type b1).
func (a ATQB) ISODEP() bool { return a.ProtocolType&1 != 0 }

// TR2 returns the minimum TR2 code (Protocol_Type b3–b2, 0…3).
func (a ATQB) TR2() byte { return a.ProtocolType >> 1 & 3 }

// MinTR2 returns the minimum frame delay PICC→PCD the TR2 code asks for:
// 1792, 3328, 5376 or 9472 /fc (≈132, 245, 396, 699 µs; iso14443b.md §3.6,
// NXP's values — M confidence).
func (a ATQB) MinTR2() time.Duration {
	return [4]time.Duration{1792, 3328, 5376, 9472}[a.TR2()] * time.Second / fcHz
}

// CID reports whether the PICC supports CID (FO b1).
func (a ATQB) CID() bool { return a.FO&1 != 0 }

// NAD reports whether the PICC supports NAD (FO b2).
func (a ATQB) NAD() bool { return a.FO&2 != 0 }

// effectiveRates is protocol-info byte 1 as a PCD reads it: with the RFU
// bit b4 set the whole byte counts as 00 (106 kbit/s only).
func (a ATQB) effectiveRates() byte {
	if a.BitRates&0x08 != 0 {
		return 0
	}
	return a.BitRates
}

// SameRate reports whether the PICC needs the same bit rate both ways (b8).
func (a ATQB) SameRate() bool { return a.effectiveRates()&0x80 != 0 }

// RatesPICCToPCD lists the bit rates the PICC can send at (106 always).
func (a ATQB) RatesPICCToPCD() []BitRate { return rates(a.effectiveRates() >> 4) }

// RatesPCDToPICC lists the bit rates the PICC can receive at (106 always).
func (a ATQB) RatesPCDToPICC() []BitRate { return rates(a.effectiveRates()) }

func rates(bits byte) []BitRate {
	out := []BitRate{BitRate106}
	for i, r := range []BitRate{BitRate212, BitRate424, BitRate848} {
		if bits&(1<<i) != 0 {
			out = append(out, r)
		}
	}
	return out
}

// Notes lists the leniencies applied when reading the ATQB: RFU codes that
// were clamped and values a strict PCD would refuse. Empty for a clean ATQB.
func (a ATQB) Notes() []string {
	var n []string
	if a.BitRates&0x08 != 0 {
		n = append(n, "bit-rate byte has RFU b4 set: 106 kbit/s only")
	}
	if a.FSCI > MaxFSCI {
		n = append(n, fmt.Sprintf("FSCI %X is RFU: FSC 256", a.FSCI))
	}
	if a.ProtocolType&0x08 != 0 {
		n = append(n, "Protocol_Type b4 set (RFU; NFC Forum refuses such a PICC)")
	}
	if a.FWI == 15 {
		n = append(n, "FWI 15 is RFU: FWI 4")
	}
	if a.Extended && a.SFGI == 15 {
		n = append(n, "SFGI 15 is RFU: SFGI 0")
	}
	return n
}

// String summarises the ATQB, e.g.
// "PUPI 11223344 app 00000000 FSC 256 FWT 309.3ms ISO-DEP rates 106,212,424/106,212,424 same CID".
// Rates are PICC→PCD/PCD→PICC.
func (a ATQB) String() string {
	var s strings.Builder
	fmt.Fprintf(&s, "PUPI %X app %X FSC %d FWT %v", a.PUPI, a.AppData, a.FSC(), a.FWT().Round(100*time.Nanosecond))
	if a.ISODEP() {
		s.WriteString(" ISO-DEP")
	} else {
		s.WriteString(" not-ISO-DEP")
	}
	if a.TR2() != 0 {
		fmt.Fprintf(&s, " TR2 %d", a.TR2())
	}
	fmt.Fprintf(&s, " rates %s/%s", rateList(a.RatesPICCToPCD()), rateList(a.RatesPCDToPICC()))
	if a.SameRate() {
		s.WriteString(" same")
	}
	if a.ADC != 0 {
		fmt.Fprintf(&s, " ADC %d", a.ADC)
	}
	if a.CID() {
		s.WriteString(" CID")
	}
	if a.NAD() {
		s.WriteString(" NAD")
	}
	if a.Extended {
		fmt.Fprintf(&s, " SFGT %v", a.SFGT().Round(100*time.Nanosecond))
	}
	return s.String()
}

func rateList(rs []BitRate) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprint(int(r))
	}
	return strings.Join(parts, ",")
}

// Attrib is the ATTRIB command (§7.10): 1D, PUPI, Param 1–4, optional
// higher-layer INF.
type Attrib struct {
	PUPI [4]byte
	// Param1: b8–b7 minimum TR0, b6–b5 minimum TR1, b4 EOF suppression,
	// b3 SOF suppression (0 = defaults, what kazasu sends).
	Param1 byte
	// DSI and DRI are the PICC→PCD and PCD→PICC bit-rate codes (0…3 = 106…848).
	DSI, DRI byte
	// FSDI codes the largest frame the PCD receives.
	FSDI byte
	// ProtocolType echoes the ATQB's Protocol_Type (Param3 b4–b1).
	ProtocolType byte
	// CID is the card identifier assigned (Param4 b4–b1, 0…14).
	CID byte
	// INF is the optional higher-layer information.
	INF []byte
}

// Bytes encodes the ATTRIB without CRC_B.
func (a Attrib) Bytes() []byte {
	out := make([]byte, 0, 9+len(a.INF))
	out = append(out, CmdATTRIB)
	out = append(out, a.PUPI[:]...)
	out = append(out, a.Param1, (a.DSI&3)<<6|(a.DRI&3)<<4|a.FSDI&0x0F, a.ProtocolType&0x0F, a.CID&0x0F)
	return append(out, a.INF...)
}

// ParseAttrib decodes an ATTRIB (PICC side). RFU bits of Param3/Param4 are
// ignored; CID 15 (RFU) is refused.
func ParseAttrib(b []byte) (Attrib, error) {
	var a Attrib
	c := newCursor(b)
	if c.u8() != CmdATTRIB {
		return Attrib{}, frameErr("ATTRIB", b, "first byte is not 1D")
	}
	copy(a.PUPI[:], c.bytes(4))
	a.Param1 = c.u8()
	p2 := c.u8()
	a.DSI, a.DRI, a.FSDI = p2>>6, p2>>4&3, p2&0x0F
	a.ProtocolType = c.u8() & 0x0F
	a.CID = c.u8() & 0x0F
	if !c.ok {
		return Attrib{}, frameErr("ATTRIB", b, "%d bytes, want at least 9", len(b))
	}
	if a.CID == 15 {
		return Attrib{}, frameErr("ATTRIB", b, "CID 15 is RFU")
	}
	a.INF = c.rest()
	return a, nil
}

// FSD returns the largest frame the PCD receives, in bytes.
func (a Attrib) FSD() int { return FrameSize(a.FSDI) }

// RatePICCToPCD and RatePCDToPICC return the bit rates ATTRIB selects.
func (a Attrib) RatePICCToPCD() BitRate { return bitRateOf(a.DSI) }

// RatePCDToPICC returns the PCD→PICC bit rate (DRI).
func (a Attrib) RatePCDToPICC() BitRate { return bitRateOf(a.DRI) }

func (a Attrib) String() string {
	return fmt.Sprintf("ATTRIB PUPI %X FSD %d %d/%d CID %d", a.PUPI, a.FSD(), int(a.RatePICCToPCD()), int(a.RatePCDToPICC()), a.CID)
}

// AttribResp is the answer to ATTRIB: MBLI|CID, then optional higher-layer
// response bytes.
type AttribResp struct {
	// MBLI codes the PICC's maximum buffer length (0 = not given).
	MBLI byte
	CID  byte
	INF  []byte
}

// ParseAttribResp decodes the answer to ATTRIB.
func ParseAttribResp(b []byte) (AttribResp, error) {
	c := newCursor(b)
	first := c.u8()
	if !c.ok {
		return AttribResp{}, frameErr("answer to ATTRIB", b, "empty")
	}
	return AttribResp{MBLI: first >> 4, CID: first & 0x0F, INF: c.rest()}, nil
}

// Bytes encodes the answer (PICC side).
func (r AttribResp) Bytes() []byte {
	return append([]byte{(r.MBLI&0x0F)<<4 | r.CID&0x0F}, r.INF...)
}

func (r AttribResp) String() string {
	return fmt.Sprintf("answer to ATTRIB MBLI %d CID %d", r.MBLI, r.CID)
}

// MBL returns the maximum buffer length for a PICC with frame size fsc:
// FSC·2^(MBLI−1), or 0 when MBLI is 0 (no information).
func (r AttribResp) MBL(fsc int) int {
	if r.MBLI == 0 {
		return 0
	}
	return fsc << (r.MBLI - 1)
}

// HLTB returns the HLTB command for pupi (without CRC_B).
func HLTB(pupi [4]byte) []byte { return append([]byte{CmdHLTB}, pupi[:]...) }

// ParseHLTB decodes an HLTB command and returns its PUPI (PICC side).
func ParseHLTB(b []byte) ([4]byte, error) {
	var pupi [4]byte
	if len(b) != 5 || b[0] != CmdHLTB {
		return pupi, frameErr("HLTB", b, "want 50 PUPI")
	}
	copy(pupi[:], b[1:])
	return pupi, nil
}
