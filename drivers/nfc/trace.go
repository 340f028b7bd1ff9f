package nfc

import "time"

// Layer names where a traced frame was seen.
type Layer uint8

const (
	// LayerHost: a frame between host and reader chip (PN532 host frames).
	LayerHost Layer = iota + 1
	// LayerRF: an ISO 14443 frame on air (without CRC).
	LayerRF
	// LayerAPDU: an ISO 7816-4 command or response APDU.
	LayerAPDU
)

func (l Layer) String() string {
	switch l {
	case LayerHost:
		return "host"
	case LayerRF:
		return "rf"
	case LayerAPDU:
		return "apdu"
	}
	return "layer?"
}

// TraceEvent is one traced frame. Out is true for host→chip, reader→card and
// command APDUs; false for the answers.
type TraceEvent struct {
	Time  time.Time
	Layer Layer
	Out   bool
	Data  []byte
}

// Tracer receives trace events. Implementations must not keep Data beyond the
// call without copying it, and must redact secrets they persist: see
// RedactVerify. A nil Tracer is valid and records nothing.
type Tracer interface {
	Trace(TraceEvent)
}

// RedactVerify returns apdu with the data field of VERIFY (INS 20) and
// CHANGE REFERENCE DATA (INS 24) commands replaced by 0x2A ('*') bytes, so that
// no PIN ever reaches a trace. Other APDUs are returned unchanged (not
// copied). Short and extended Lc forms are handled; malformed APDUs of those
// INS values are redacted from byte 5 on.
func RedactVerify(apdu []byte) []byte {
	if len(apdu) <= 5 || (apdu[1] != 0x20 && apdu[1] != 0x24) || apdu[0] == 0xFF {
		return apdu
	}
	out := make([]byte, len(apdu))
	copy(out, apdu)
	start := 5
	if apdu[4] == 0 && len(apdu) > 7 { // extended Lc
		start = 7
	}
	for i := start; i < len(out); i++ {
		out[i] = '*'
	}
	return out
}

// APDUNe returns Ne, the most response data bytes a well-formed command APDU
// asks for (ISO/IEC 7816-4 §5.1: cases 1–4, short and extended), and false
// if apdu is not well formed.
func APDUNe(apdu []byte) (int, bool) {
	n := len(apdu)
	switch {
	case n < 4:
		return 0, false
	case n == 4: // case 1
		return 0, true
	case n == 5: // case 2 short
		return neShort(apdu[4]), true
	case apdu[4] != 0: // short Lc
		lc := int(apdu[4])
		switch n {
		case 5 + lc: // case 3
			return 0, true
		case 6 + lc: // case 4
			return neShort(apdu[n-1]), true
		}
		return 0, false
	case n == 7: // case 2 extended
		return neExt(apdu[5], apdu[6]), true
	default: // extended Lc
		lc := int(apdu[5])<<8 | int(apdu[6])
		switch n {
		case 7 + lc:
			return 0, true
		case 9 + lc:
			return neExt(apdu[n-2], apdu[n-1]), true
		}
		return 0, false
	}
}

func neShort(le byte) int {
	if le == 0 {
		return 256
	}
	return int(le)
}

func neExt(hi, lo byte) int {
	if hi == 0 && lo == 0 {
		return 65536
	}
	return int(hi)<<8 | int(lo)
}
