package apdu

import (
	"errors"
	"fmt"
	"strings"
)

// ErrMalformed is wrapped by every encoding and decoding error of this
// package: the bytes are not a well-formed APDU or data object.
var ErrMalformed = errors.New("apdu: malformed")

// Length limits of ISO/IEC 7816-4 §5.1.
const (
	MaxShortNc    = 255
	MaxShortNe    = 256
	MaxExtendedNc = 65535
	MaxExtendedNe = 65536
)

// LengthForm selects the length encoding of a command.
type LengthForm uint8

const (
	// FormAuto uses short lengths when Nc ≤ 255 and Ne ≤ 256, extended
	// otherwise.
	FormAuto LengthForm = iota
	// FormShort forces short lengths (an error if they cannot carry Nc/Ne).
	FormShort
	// FormExtended forces extended lengths, even for small Nc/Ne.
	FormExtended
)

func (f LengthForm) String() string {
	switch f {
	case FormAuto:
		return "auto"
	case FormShort:
		return "short"
	case FormExtended:
		return "extended"
	}
	return fmt.Sprintf("LengthForm(%d)", uint8(f))
}

// Case is the ISO/IEC 7816-4 command case (§5.1).
type Case uint8

const (
	Case1  Case = iota + 1 // no data, no response data
	Case2S                 // Le
	Case3S                 // Lc data
	Case4S                 // Lc data Le
	Case2E                 // 00 Le1 Le2
	Case3E                 // 00 Lc1 Lc2 data
	Case4E                 // 00 Lc1 Lc2 data Le1 Le2
)

func (c Case) String() string {
	switch c {
	case Case1:
		return "1"
	case Case2S:
		return "2S"
	case Case3S:
		return "3S"
	case Case4S:
		return "4S"
	case Case2E:
		return "2E"
	case Case3E:
		return "3E"
	case Case4E:
		return "4E"
	}
	return fmt.Sprintf("Case(%d)", uint8(c))
}

// Extended reports whether the case uses extended lengths.
func (c Case) Extended() bool { return c >= Case2E && c <= Case4E }

// Command is a command APDU.
type Command struct {
	CLA, INS, P1, P2 byte
	// Data is the command data field (Nc = len(Data), at most 65535).
	Data []byte
	// Ne is the maximum number of response data bytes expected: 0 for none
	// (no Le field), 1…256 short, up to 65536 extended.
	Ne int
	// Form forces short or extended lengths; FormAuto picks.
	Form LengthForm
}

func (c Command) extended() bool {
	switch c.Form {
	case FormExtended:
		return true
	case FormShort:
		return false
	}
	return len(c.Data) > MaxShortNc || c.Ne > MaxShortNe
}

// Case returns the case the command encodes as.
func (c Command) Case() Case {
	nc, ne := len(c.Data) > 0, c.Ne > 0
	base := Case1
	switch {
	case nc && ne:
		base = Case4S
	case nc:
		base = Case3S
	case ne:
		base = Case2S
	}
	if base != Case1 && c.extended() {
		base += Case2E - Case2S
	}
	return base
}

// Bytes encodes the command. It fails (ErrMalformed) when Nc or Ne is out
// of range or too long for the forced form.
func (c Command) Bytes() ([]byte, error) {
	nc := len(c.Data)
	if nc > MaxExtendedNc || c.Ne < 0 || c.Ne > MaxExtendedNe {
		return nil, fmt.Errorf("%w: Nc %d, Ne %d out of range", ErrMalformed, nc, c.Ne)
	}
	ext := c.extended()
	if !ext && (nc > MaxShortNc || c.Ne > MaxShortNe) {
		return nil, fmt.Errorf("%w: Nc %d, Ne %d need extended lengths", ErrMalformed, nc, c.Ne)
	}
	out := make([]byte, 0, 4+3+nc+2)
	out = append(out, c.CLA, c.INS, c.P1, c.P2)
	if ext {
		if nc > 0 {
			out = append(out, 0, byte(nc>>8), byte(nc))
			out = append(out, c.Data...)
		}
		if c.Ne > 0 {
			if nc == 0 {
				out = append(out, 0) // 2E: the Le field is 00 Le1 Le2
			}
			out = append(out, byte(c.Ne>>8), byte(c.Ne)) // 65536 → 00 00
		}
		return out, nil
	}
	if nc > 0 {
		out = append(out, byte(nc))
		out = append(out, c.Data...)
	}
	if c.Ne > 0 {
		out = append(out, byte(c.Ne)) // 256 → 00
	}
	return out, nil
}

// ParseCommand decodes a command APDU (card side). Data aliases b.
func ParseCommand(b []byte) (Command, error) {
	bad := func(why string) (Command, error) {
		return Command{}, fmt.Errorf("%w: command % X: %s", ErrMalformed, b, why)
	}
	if len(b) < 4 {
		return bad("shorter than a header")
	}
	c := Command{CLA: b[0], INS: b[1], P1: b[2], P2: b[3]}
	body := b[4:]
	switch {
	case len(body) == 0:
		return c, nil // case 1
	case len(body) == 1:
		c.Ne = shortLe(body[0]) // case 2S
		c.Form = FormShort
		return c, nil
	case body[0] != 0:
		nc := int(body[0])
		switch len(body) - 1 - nc {
		case 0: // 3S
		case 1: // 4S
			c.Ne = shortLe(body[len(body)-1])
		default:
			return bad(fmt.Sprintf("Lc %d does not match the length", nc))
		}
		c.Data, c.Form = body[1:1+nc], FormShort
		return c, nil
	case len(body) == 3:
		c.Ne = extLe(body[1], body[2]) // 2E
		c.Form = FormExtended
		return c, nil
	case len(body) < 3:
		return bad("truncated extended length")
	}
	nc := int(body[1])<<8 | int(body[2])
	if nc == 0 {
		return bad("extended Lc of 0")
	}
	switch len(body) - 3 - nc {
	case 0: // 3E
	case 2: // 4E
		c.Ne = extLe(body[len(body)-2], body[len(body)-1])
	default:
		return bad(fmt.Sprintf("extended Lc %d does not match the length", nc))
	}
	c.Data, c.Form = body[3:3+nc], FormExtended
	return c, nil
}

func shortLe(b byte) int {
	if b == 0 {
		return MaxShortNe
	}
	return int(b)
}

func extLe(hi, lo byte) int {
	if n := int(hi)<<8 | int(lo); n != 0 {
		return n
	}
	return MaxExtendedNe
}

// String renders the command for logs: header, Nc, Ne and case. The data
// field is not shown for VERIFY and CHANGE REFERENCE DATA (it holds a PIN).
func (c Command) String() string {
	var s strings.Builder
	fmt.Fprintf(&s, "%02X %02X %02X %02X", c.CLA, c.INS, c.P1, c.P2)
	if len(c.Data) > 0 {
		if c.INS == 0x20 || c.INS == 0x24 {
			fmt.Fprintf(&s, " Nc %d [redacted]", len(c.Data))
		} else {
			fmt.Fprintf(&s, " Nc %d [% X]", len(c.Data), c.Data)
		}
	}
	if c.Ne > 0 {
		fmt.Fprintf(&s, " Ne %d", c.Ne)
	}
	fmt.Fprintf(&s, " case %v", c.Case())
	return s.String()
}
