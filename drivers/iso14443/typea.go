package iso14443

import (
	"fmt"
	"strings"
	"time"
)

// Type A short frames (7 data bits, no parity or CRC; ISO/IEC 14443-3 §6.3)
// and commands.
const (
	REQA = 0x26
	WUPA = 0x52
	// ShortFrameBits is the number of bits in a REQA/WUPA frame.
	ShortFrameBits = 7
	// CmdHLTA is the first byte of HLTA (50 00).
	CmdHLTA = 0x50
	// CmdRATS is the first byte of RATS (ISO/IEC 14443-4 §5.1).
	CmdRATS = 0xE0
	// CT is the cascade tag that opens an incomplete UID CLn.
	CT = 0x88
	// NVBAnticollision is the NVB of an anticollision command asking for the
	// whole UID CLn (2 bytes sent, 0 bits); NVBSelect that of SELECT (7 bytes).
	NVBAnticollision = 0x20
	NVBSelect        = 0x70
)

// selCodes are the SEL bytes of cascade levels 1, 2 and 3.
var selCodes = [3]byte{0x93, 0x95, 0x97}

// HLTA returns the HLTA command (without CRC_A).
func HLTA() []byte { return []byte{CmdHLTA, 0x00} }

// ATQA is the answer to REQA/WUPA (SENS_RES), 2 bytes, LSB first on air.
type ATQA [2]byte

// ParseATQA decodes an ATQA.
func ParseATQA(b []byte) (ATQA, error) {
	if len(b) != 2 {
		return ATQA{}, frameErr("ATQA", b, "%d bytes, want 2", len(b))
	}
	return ATQA{b[0], b[1]}, nil
}

// UIDSize returns the UID size in bytes announced by b8–b7 of the first
// byte: 4 (single), 7 (double) or 10 (triple); 0 for the RFU code 11.
func (a ATQA) UIDSize() int {
	switch a[0] >> 6 {
	case 0:
		return 4
	case 1:
		return 7
	case 2:
		return 10
	}
	return 0
}

// Anticollision reports whether a bit-frame anticollision bit (b5–b1 of the
// first byte) is set, as ISO/IEC 14443-3 requires of a PICC that supports
// anticollision.
func (a ATQA) Anticollision() bool { return a[0]&0x1F != 0 }

func (a ATQA) String() string { return fmt.Sprintf("ATQA %02X%02X UID %d", a[0], a[1], a.UIDSize()) }

// SAK is the select acknowledge (SEL_RES).
type SAK byte

// Cascade reports that the UID is not complete (b3): select the next level.
func (s SAK) Cascade() bool { return s&0x04 != 0 }

// ISODEP reports whether the PICC complies with ISO/IEC 14443-4 (b6), when
// the UID is complete.
func (s SAK) ISODEP() bool { return !s.Cascade() && s&0x20 != 0 }

func (s SAK) String() string {
	switch {
	case s.Cascade():
		return fmt.Sprintf("SAK %02X (UID not complete)", byte(s))
	case s.ISODEP():
		return fmt.Sprintf("SAK %02X (ISO-DEP)", byte(s))
	}
	return fmt.Sprintf("SAK %02X (not ISO-DEP)", byte(s))
}

// CascadeLevels splits a 4-, 7- or 10-byte UID into the UID CLn of each
// cascade level, with the cascade tag in front of every incomplete one.
func CascadeLevels(uid []byte) ([][4]byte, error) {
	var levels [][4]byte
	switch len(uid) {
	case 4:
		levels = append(levels, [4]byte(uid))
	case 7:
		levels = append(levels, [4]byte{CT, uid[0], uid[1], uid[2]}, [4]byte(uid[3:7]))
	case 10:
		levels = append(levels, [4]byte{CT, uid[0], uid[1], uid[2]}, [4]byte{CT, uid[3], uid[4], uid[5]}, [4]byte(uid[6:10]))
	default:
		return nil, fmt.Errorf("iso14443: UID of %d bytes, want 4, 7 or 10", len(uid))
	}
	if uid[0] == CT {
		// A single-size UID cannot start with the cascade tag (§6.5.4).
		return nil, fmt.Errorf("iso14443: UID % X starts with the cascade tag", uid)
	}
	return levels, nil
}

// UIDFromLevels rebuilds the UID from the UID CLn of each level, dropping
// the cascade tags.
func UIDFromLevels(levels [][4]byte) ([]byte, error) {
	var uid []byte
	for i, l := range levels {
		last := i == len(levels)-1
		switch {
		case last:
			uid = append(uid, l[:]...)
		case l[0] == CT:
			uid = append(uid, l[1:]...)
		default:
			return nil, fmt.Errorf("iso14443: cascade level %d without cascade tag", i+1)
		}
	}
	if n := len(uid); n != 4 && n != 7 && n != 10 {
		return nil, fmt.Errorf("iso14443: %d cascade levels give a %d-byte UID", len(levels), n)
	}
	return uid, nil
}

// BCC returns the block check character of a UID CLn: the XOR of its bytes.
func BCC(cln [4]byte) byte { return cln[0] ^ cln[1] ^ cln[2] ^ cln[3] }

func selCode(level int) (byte, error) {
	if level < 1 || level > 3 {
		return 0, fmt.Errorf("iso14443: cascade level %d, want 1…3", level)
	}
	return selCodes[level-1], nil
}

func levelOf(sel byte) int {
	for i, s := range selCodes {
		if s == sel {
			return i + 1
		}
	}
	return 0
}

// AnticollisionCmd returns the anticollision command of a cascade level
// (SEL 20): it asks every PICC for its whole UID CLn.
func AnticollisionCmd(level int) ([]byte, error) {
	sel, err := selCode(level)
	if err != nil {
		return nil, err
	}
	return []byte{sel, NVBAnticollision}, nil
}

// SelectCmd returns the SELECT command of a cascade level: SEL 70 UID CLn
// BCC (CRC_A is the chip's).
func SelectCmd(level int, cln [4]byte) ([]byte, error) {
	sel, err := selCode(level)
	if err != nil {
		return nil, err
	}
	return []byte{sel, NVBSelect, cln[0], cln[1], cln[2], cln[3], BCC(cln)}, nil
}

// ParseAnticollisionResp decodes a PICC's UID CLn + BCC and checks the BCC.
func ParseAnticollisionResp(b []byte) ([4]byte, error) {
	if len(b) != 5 {
		return [4]byte{}, frameErr("UID CLn", b, "%d bytes, want 5", len(b))
	}
	cln := [4]byte(b[:4])
	if BCC(cln) != b[4] {
		return [4]byte{}, frameErr("UID CLn", b, "BCC %02X, want %02X", b[4], BCC(cln))
	}
	return cln, nil
}

// AnticollisionResp encodes UID CLn + BCC (PICC side).
func AnticollisionResp(cln [4]byte) []byte { return []byte{cln[0], cln[1], cln[2], cln[3], BCC(cln)} }

// ParseSelectFrame decodes an anticollision or SELECT command (PICC side).
// It returns the cascade level, and for SELECT the UID CLn; partial
// anticollision frames (NVB other than 20 and 70) are refused — a simulated
// PICC answers only whole-UID requests.
func ParseSelectFrame(b []byte) (level int, sel bool, cln [4]byte, err error) {
	if len(b) < 2 || levelOf(b[0]) == 0 {
		return 0, false, cln, frameErr("SELECT", b, "no SEL code")
	}
	level = levelOf(b[0])
	switch {
	case b[1] == NVBAnticollision && len(b) == 2:
		return level, false, cln, nil
	case b[1] == NVBSelect && len(b) == 7:
		cln, err = ParseAnticollisionResp(b[2:])
		if err != nil {
			return 0, false, cln, err
		}
		return level, true, cln, nil
	}
	return 0, false, cln, frameErr("SELECT", b, "NVB %02X with %d bytes", b[1], len(b))
}

// RATS is the request for answer to select (ISO/IEC 14443-4 §5.1).
type RATS struct {
	FSDI byte // b8–b5 of the parameter byte
	CID  byte // b4–b1, 0…14
}

// Bytes encodes RATS (E0 param) without CRC_A.
func (r RATS) Bytes() []byte { return []byte{CmdRATS, (r.FSDI&0x0F)<<4 | r.CID&0x0F} }

func (r RATS) String() string { return fmt.Sprintf("RATS FSD %d CID %d", r.FSD(), r.CID) }

// ParseRATS decodes RATS (PICC side). CID 15 is RFU and refused.
func ParseRATS(b []byte) (RATS, error) {
	if len(b) != 2 || b[0] != CmdRATS {
		return RATS{}, frameErr("RATS", b, "want E0 param")
	}
	r := RATS{FSDI: b[1] >> 4, CID: b[1] & 0x0F}
	if r.CID == 15 {
		return RATS{}, frameErr("RATS", b, "CID 15 is RFU")
	}
	return r, nil
}

// FSD returns the largest frame the PCD receives.
func (r RATS) FSD() int { return FrameSize(r.FSDI) }

// ATS is the answer to select (ISO/IEC 14443-4 §5.2): TL T0 [TA1] [TB1]
// [TC1] historical bytes. Absent interface bytes take their defaults.
type ATS struct {
	// FSCI is T0 b4–b1 (2 = 32 bytes when T0 is absent).
	FSCI byte
	// HasTA1, HasTB1, HasTC1 say which interface bytes were present.
	HasTA1, HasTB1, HasTC1 bool
	// TA1: b8 same D both ways, b7–b5 DS 8/4/2 (PICC→PCD), b3–b1 DR 8/4/2.
	TA1 byte
	// FWI and SFGI from TB1 (defaults 4 and 0).
	FWI, SFGI byte
	// TC1: b2 CID supported (default 1), b1 NAD supported (default 0).
	TC1 byte
	// Historical are the historical bytes T1…Tk.
	Historical []byte
}

// ParseATS decodes an ATS, TL included (CRC removed). TL must equal the
// length; T0 b8 must be 0.
func ParseATS(b []byte) (ATS, error) {
	a := ATS{FSCI: 2, FWI: 4, TC1: 0x02}
	c := newCursor(b)
	tl := c.u8()
	if !c.ok || int(tl) != len(b) {
		return ATS{}, frameErr("ATS", b, "TL does not match the length")
	}
	if tl == 1 {
		return a, nil
	}
	t0 := c.u8()
	if t0&0x80 != 0 {
		return ATS{}, frameErr("ATS", b, "T0 b8 set")
	}
	a.FSCI = t0 & 0x0F
	if t0&0x10 != 0 {
		a.HasTA1, a.TA1 = true, c.u8()
	}
	if t0&0x20 != 0 {
		tb := c.u8()
		a.HasTB1, a.FWI, a.SFGI = true, tb>>4, tb&0x0F
	}
	if t0&0x40 != 0 {
		a.HasTC1, a.TC1 = true, c.u8()
	}
	if !c.ok {
		return ATS{}, frameErr("ATS", b, "T0 %02X announces missing interface bytes", t0)
	}
	a.Historical = c.rest()
	return a, nil
}

// Bytes encodes the ATS with its TL (PICC side).
func (a ATS) Bytes() []byte {
	out := []byte{0, a.FSCI & 0x0F}
	if a.HasTA1 {
		out[1] |= 0x10
		out = append(out, a.TA1)
	}
	if a.HasTB1 {
		out[1] |= 0x20
		out = append(out, (a.FWI&0x0F)<<4|a.SFGI&0x0F)
	}
	if a.HasTC1 {
		out[1] |= 0x40
		out = append(out, a.TC1)
	}
	out = append(out, a.Historical...)
	out[0] = byte(len(out))
	return out
}

// FSC returns the largest frame the PICC accepts.
func (a ATS) FSC() int { return FrameSize(a.FSCI) }

// FWT returns the frame waiting time.
func (a ATS) FWT() time.Duration { return FWT(a.FWI) }

// SFGT returns the start-up frame guard time.
func (a ATS) SFGT() time.Duration { return SFGT(a.SFGI) }

// CID reports whether the PICC supports CID (TC1 b2).
func (a ATS) CID() bool { return a.TC1&0x02 != 0 }

// NAD reports whether the PICC supports NAD (TC1 b1).
func (a ATS) NAD() bool { return a.TC1&0x01 != 0 }

// Notes lists clamped RFU values, as ATQB.Notes does.
func (a ATS) Notes() []string {
	var n []string
	if a.FSCI > MaxFSCI {
		n = append(n, fmt.Sprintf("FSCI %X is RFU: FSC 256", a.FSCI))
	}
	if a.FWI == 15 {
		n = append(n, "FWI 15 is RFU: FWI 4")
	}
	if a.SFGI == 15 {
		n = append(n, "SFGI 15 is RFU: SFGI 0")
	}
	if a.TA1&0x08 != 0 {
		n = append(n, "TA1 b4 set (RFU)")
	}
	return n
}

// String summarises the ATS, e.g. "FSC 256 FWT 77.3ms CID hist 80 73 C0 21".
func (a ATS) String() string {
	var s strings.Builder
	fmt.Fprintf(&s, "FSC %d FWT %v", a.FSC(), a.FWT().Round(100*time.Nanosecond))
	if a.SFGI != 0 && a.SFGI != 15 {
		fmt.Fprintf(&s, " SFGT %v", a.SFGT().Round(100*time.Nanosecond))
	}
	if a.HasTA1 && a.TA1&0x77 != 0 {
		fmt.Fprintf(&s, " TA1 %02X", a.TA1)
	}
	if a.CID() {
		s.WriteString(" CID")
	}
	if a.NAD() {
		s.WriteString(" NAD")
	}
	if len(a.Historical) > 0 {
		fmt.Fprintf(&s, " hist % X", a.Historical)
	}
	return s.String()
}
