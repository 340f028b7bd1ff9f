package card

import "fmt"

// SW is an ISO/IEC 7816-4 status word (SW1 SW2) as the simulated cards
// answer it. The names follow the meanings in jpki.md §5.4 (JICSAP Table 25)
// and ISO/IEC 7816-4 §5.6.
type SW uint16

// Status words the simulators answer.
const (
	SWOK                 SW = 0x9000 // normal processing
	SWEndOfFile          SW = 0x6282 // end of file reached before Ne bytes (READ BINARY)
	SWVerifyFailed       SW = 0x63C0 // 63Cx: verification failed / counter, x tries left
	SWWrongLength        SW = 0x6700 // wrong Lc / Le
	SWChannelNotSupp     SW = 0x6881 // logical channel not supported
	SWSMNotSupp          SW = 0x6882 // secure messaging not supported
	SWChainingNotSupp    SW = 0x6884 // command chaining (CLA b5) not supported
	SWIncompatibleFile   SW = 0x6981 // command incompatible with file structure
	SWSecurityNotSat     SW = 0x6982 // security status not satisfied
	SWAuthBlocked        SW = 0x6983 // authentication method blocked (ISO; not used by the card)
	SWRefDataBlocked     SW = 0x6984 // reference data (PIN) blocked: JICSAP "referenced IEF locked"
	SWConditionsNotSat   SW = 0x6985 // conditions of use not satisfied
	SWNoCurrentEF        SW = 0x6986 // command not allowed, no current EF
	SWSMObjectsIncorrect SW = 0x69FC // JICSAP: SM data objects / SM CLA refused (READ, VERIFY)
	SWWrongData          SW = 0x6A80 // incorrect data field
	SWNotFound           SW = 0x6A82 // file or application not found
	SWWrongP1P2          SW = 0x6A86 // incorrect P1-P2
	SWRefDataNotFound    SW = 0x6A88 // referenced data (key, PIN) not found
	SWWrongOffset        SW = 0x6B00 // wrong parameters: offset outside the EF
	SWINSNotSupported    SW = 0x6D00 // instruction not supported
	SWCLANotSupported    SW = 0x6E00 // class not supported
)

// Retries returns 63Cx with x = n tries left (n clamped to 0..15).
func Retries(n int) SW {
	n = max(0, min(n, 15))
	return SWVerifyFailed | SW(n)
}

// IsMoreData reports whether s is 61xx, and the byte count it announces
// (xx, with 00 read as 256).
func (s SW) IsMoreData() (int, bool) {
	if s&0xFF00 != 0x6100 {
		return 0, false
	}
	if s&0xFF == 0 {
		return 256, true
	}
	return int(s & 0xFF), true
}

// Bytes returns SW1 SW2.
func (s SW) Bytes() []byte { return []byte{byte(s >> 8), byte(s)} }

// IsRetries reports whether s is 63Cx, and x.
func (s SW) IsRetries() (int, bool) {
	if s&0xFFF0 == SWVerifyFailed {
		return int(s & 0x0F), true
	}
	return 0, false
}

var swNames = map[SW]string{
	SWOK:                 "OK",
	SWEndOfFile:          "end of file",
	SWWrongLength:        "wrong length",
	SWChannelNotSupp:     "logical channel not supported",
	SWSMNotSupp:          "secure messaging not supported",
	SWChainingNotSupp:    "command chaining not supported",
	SWIncompatibleFile:   "command incompatible with file structure",
	SWSecurityNotSat:     "security status not satisfied",
	SWAuthBlocked:        "authentication method blocked",
	SWRefDataBlocked:     "reference data blocked",
	SWConditionsNotSat:   "conditions of use not satisfied",
	SWNoCurrentEF:        "no current EF",
	SWSMObjectsIncorrect: "SM data objects incorrect",
	SWWrongData:          "incorrect data",
	SWNotFound:           "file or application not found",
	SWWrongP1P2:          "incorrect P1-P2",
	SWRefDataNotFound:    "referenced data not found",
	SWWrongOffset:        "offset outside the EF",
	SWINSNotSupported:    "INS not supported",
	SWCLANotSupported:    "CLA not supported",
}

// String gives the hex value and its meaning, e.g. "6982 (security status not
// satisfied)" or "63C2 (verification failed, 2 tries left)".
func (s SW) String() string {
	if n, ok := s.IsRetries(); ok {
		return fmt.Sprintf("%04X (verification failed, %d tries left)", uint16(s), n)
	}
	if n, ok := s.IsMoreData(); ok {
		return fmt.Sprintf("%04X (%d more bytes)", uint16(s), n)
	}
	if s&0xFF00 == 0x6C00 {
		return fmt.Sprintf("%04X (wrong Le, %d bytes available)", uint16(s), s&0xFF)
	}
	if name, ok := swNames[s]; ok {
		return fmt.Sprintf("%04X (%s)", uint16(s), name)
	}
	return fmt.Sprintf("%04X", uint16(s))
}
