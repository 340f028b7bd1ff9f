package card

import "errors"

// command is a parsed command APDU (ISO/IEC 7816-4 §5.1). The simulator
// parses on its own, independently of the terminal's drivers/apdu, so that a
// bug in one is caught by the other instead of being mirrored.
type command struct {
	CLA, INS, P1, P2 byte
	Data             []byte
	// Ne is the number of response bytes expected (Le decoded: short 00 =
	// 256, extended 0000 = 65536); 0 when Le is absent.
	Ne       int
	HasLe    bool
	Extended bool // Lc and/or Le used the extended (3/2-byte) encoding
}

var errBadLength = errors.New("malformed APDU length fields")

// parseCommand decodes the seven APDU cases of ISO/IEC 7816-4 §5.1:
//
//	1   CLA INS P1 P2
//	2S  … Le                 (Le 00 = 256)
//	3S  … Lc data            (Lc 1..255)
//	4S  … Lc data Le
//	2E  … 00 Le1 Le2         (0000 = 65536)
//	3E  … 00 Lc1 Lc2 data    (Lc 1..65535)
//	4E  … 00 Lc1 Lc2 data Le1 Le2
//
// Anything else (a short Lc that disagrees with the length, an extended Lc
// of 0000, a lone 00 after the header…) is errBadLength, answered 6700.
func parseCommand(b []byte) (command, error) {
	if len(b) < 4 {
		return command{}, errBadLength
	}
	c := command{CLA: b[0], INS: b[1], P1: b[2], P2: b[3]}
	body := b[4:]
	switch {
	case len(body) == 0: // case 1
		return c, nil
	case len(body) == 1: // case 2S
		c.HasLe, c.Ne = true, shortLe(body[0])
		return c, nil
	case body[0] != 0: // case 3S / 4S
		lc := int(body[0])
		switch len(body) {
		case 1 + lc:
			c.Data = body[1:]
		case 2 + lc:
			c.Data = body[1 : 1+lc]
			c.HasLe, c.Ne = true, shortLe(body[1+lc])
		default:
			return command{}, errBadLength
		}
		return c, nil
	}
	// body[0] == 0 and at least 2 bytes: extended.
	c.Extended = true
	if len(body) == 3 { // case 2E
		c.HasLe, c.Ne = true, extLe(body[1], body[2])
		return c, nil
	}
	if len(body) < 3 {
		return command{}, errBadLength
	}
	lc := int(body[1])<<8 | int(body[2])
	if lc == 0 {
		return command{}, errBadLength
	}
	switch len(body) {
	case 3 + lc: // case 3E
		c.Data = body[3:]
	case 5 + lc: // case 4E
		c.Data = body[3 : 3+lc]
		c.HasLe, c.Ne = true, extLe(body[3+lc], body[4+lc])
	default:
		return command{}, errBadLength
	}
	return c, nil
}

func shortLe(b byte) int {
	if b == 0 {
		return 256
	}
	return int(b)
}

func extLe(hi, lo byte) int {
	n := int(hi)<<8 | int(lo)
	if n == 0 {
		return 65536
	}
	return n
}

// claInfo is what the class byte says (ISO/IEC 7816-4 §5.4.1).
type claInfo struct {
	valid       bool // not FF and a class the card knows
	proprietary bool // b8 = 1 (CLA 8x: JPKI's COMPUTE DIGITAL SIGNATURE)
	channel     int  // logical channel number
	sm          bool // secure messaging indicated
	chaining    bool // command chaining (b5)
}

// decodeCLA decodes the first interindustry class (0x0X, 0x1X), the further
// interindustry class (0x4X..0x7X) and the proprietary 0x8X/0x9X class that
// JPKI uses with the same bit layout as 0x0X/0x1X (the card answers CLA 8C
// like 0C). Other proprietary classes and FF are not valid.
func decodeCLA(cla byte) claInfo {
	switch {
	case cla == 0xFF:
		return claInfo{}
	case cla&0xE0 == 0x00, cla&0xE0 == 0x80:
		return claInfo{
			valid:       true,
			proprietary: cla&0x80 != 0,
			channel:     int(cla & 0x03),
			sm:          cla&0x0C != 0,
			chaining:    cla&0x10 != 0,
		}
	case cla&0xC0 == 0x40:
		return claInfo{
			valid:    true,
			channel:  4 + int(cla&0x0F),
			sm:       cla&0x20 != 0,
			chaining: cla&0x10 != 0,
		}
	}
	return claInfo{}
}
