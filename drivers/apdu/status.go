package apdu

import (
	"errors"
	"fmt"
)

// Status kinds: a *StatusError unwraps to one of these, so callers branch
// with errors.Is. Status words not listed unwrap to nothing.
var (
	ErrNotFound        = errors.New("apdu: file or application not found")          // 6A82
	ErrSecurityStatus  = errors.New("apdu: security status not satisfied")          // 6982
	ErrBlocked         = errors.New("apdu: authentication method blocked")          // 6983, 6984, 63C0
	ErrWrongLength     = errors.New("apdu: wrong length")                           // 6700
	ErrWrongP1P2       = errors.New("apdu: incorrect parameters P1-P2")             // 6A86, 6B00
	ErrINSNotSupported = errors.New("apdu: instruction not supported")              // 6D00
	ErrCLANotSupported = errors.New("apdu: class not supported")                    // 6E00
	ErrConditions      = errors.New("apdu: conditions of use not satisfied")        // 6985
	ErrVerification    = errors.New("apdu: verification failed")                    // 63Cx, x > 0
	ErrDataNotFound    = errors.New("apdu: referenced data not found")              // 6A88
	ErrEndOfFile       = errors.New("apdu: end of file reached before Le bytes")    // 6282
	ErrWrongData       = errors.New("apdu: incorrect parameters in the data field") // 6A80
)

// Status words used by name.
const (
	SWSuccess     uint16 = 0x9000
	SWEndOfFile   uint16 = 0x6282
	SWWrongLength uint16 = 0x6700
	SWSecurity    uint16 = 0x6982
	SWBlocked     uint16 = 0x6983
	SWRefBlocked  uint16 = 0x6984
	SWConditions  uint16 = 0x6985
	SWWrongData   uint16 = 0x6A80
	SWNotFound    uint16 = 0x6A82
	SWWrongP1P2   uint16 = 0x6A86
	SWDataNotFnd  uint16 = 0x6A88
	SWWrongParams uint16 = 0x6B00
	SWINSInvalid  uint16 = 0x6D00
	SWCLAInvalid  uint16 = 0x6E00
)

var (
	_ error = (*StatusError)(nil)
	_ error = (*PINError)(nil)
)

// StatusError is a response whose status word is not 9000.
type StatusError struct {
	SW uint16
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("apdu: status %04X: %s", e.SW, Describe(e.SW))
}

// SW1 and SW2 split the status word.
func (e *StatusError) SW1() byte { return byte(e.SW >> 8) }

// SW2 returns the second status byte.
func (e *StatusError) SW2() byte { return byte(e.SW) }

// Unwrap gives the status kind: a sentinel above, or a *PINError for 63Cx.
func (e *StatusError) Unwrap() error {
	if e.SW&0xFFF0 == 0x63C0 {
		return &PINError{Retries: int(e.SW & 0x0F)}
	}
	switch e.SW {
	case SWNotFound:
		return ErrNotFound
	case SWSecurity:
		return ErrSecurityStatus
	case SWBlocked, SWRefBlocked:
		return ErrBlocked
	case SWWrongLength:
		return ErrWrongLength
	case SWWrongP1P2, SWWrongParams:
		return ErrWrongP1P2
	case SWINSInvalid:
		return ErrINSNotSupported
	case SWCLAInvalid:
		return ErrCLANotSupported
	case SWConditions:
		return ErrConditions
	case SWDataNotFnd:
		return ErrDataNotFound
	case SWEndOfFile:
		return ErrEndOfFile
	case SWWrongData:
		return ErrWrongData
	}
	return nil
}

// PINError is status 63Cx: x tries left (after a failed VERIFY, or as the
// answer to a VERIFY without data, which only queries the counter). It
// unwraps to ErrBlocked when no try is left, ErrVerification otherwise.
type PINError struct {
	Retries int
}

func (e *PINError) Error() string {
	if e.Retries == 0 {
		return "apdu: no tries left (blocked)"
	}
	return fmt.Sprintf("apdu: %d tries left", e.Retries)
}

// Unwrap gives ErrBlocked for 63C0 and ErrVerification otherwise.
func (e *PINError) Unwrap() error {
	if e.Retries == 0 {
		return ErrBlocked
	}
	return ErrVerification
}

// Describe names a status word (ISO/IEC 7816-4 §5.6 and the JICSAP usage
// of the My Number Card, jpki.md §5.4; iso14443b.md §5.2).
func Describe(sw uint16) string {
	sw1, sw2 := byte(sw>>8), byte(sw)
	switch sw1 {
	case 0x61:
		return fmt.Sprintf("success, %d more bytes available (GET RESPONSE)", shortLe(sw2))
	case 0x6C:
		return fmt.Sprintf("wrong Le; exact length is %d", shortLe(sw2))
	}
	if sw&0xFFF0 == 0x63C0 {
		return fmt.Sprintf("verification failed or counter: %d tries left", sw&0x0F)
	}
	if d, ok := swText[sw]; ok {
		return d
	}
	switch {
	case sw1 == 0x90:
		return "success (proprietary SW2)"
	case sw1 == 0x62 || sw1 == 0x63:
		return "warning"
	case sw1 == 0x64 || sw1 == 0x65 || sw1 == 0x66:
		return "execution error"
	case sw1 >= 0x67 && sw1 <= 0x6F:
		return "checking error"
	}
	return "unknown status"
}

var swText = map[uint16]string{
	0x9000: "success",
	0x6200: "warning: state of non-volatile memory unchanged",
	0x6281: "warning: part of returned data may be corrupted",
	0x6282: "end of file reached before Le bytes",
	0x6283: "selected file deactivated",
	0x6300: "warning: state of non-volatile memory changed (counter unlimited)",
	0x6400: "execution error: state of non-volatile memory unchanged",
	0x6581: "memory failure",
	0x6700: "wrong length",
	0x6881: "logical channel not supported",
	0x6882: "secure messaging not supported",
	0x6981: "command incompatible with file structure",
	0x6982: "security status not satisfied",
	0x6983: "authentication method blocked",
	0x6984: "reference data not usable (blocked)",
	0x6985: "conditions of use not satisfied",
	0x6986: "command not allowed (no current EF)",
	0x6987: "expected secure messaging data objects missing",
	0x6988: "incorrect secure messaging data objects",
	0x69FC: "secure messaging not supported (JICSAP)",
	0x6A80: "incorrect parameters in the data field",
	0x6A81: "function not supported",
	0x6A82: "file or application not found",
	0x6A83: "record not found",
	0x6A84: "not enough memory space in the file",
	0x6A86: "incorrect parameters P1-P2",
	0x6A87: "Nc inconsistent with P1-P2",
	0x6A88: "referenced data not found",
	0x6B00: "wrong parameters P1-P2 (offset outside the EF)",
	0x6D00: "instruction code not supported or invalid",
	0x6E00: "class not supported",
	0x6F00: "no precise diagnosis",
}
