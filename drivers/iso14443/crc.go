package iso14443

// CRC presets (ISO/IEC 14443-3 Annex A and B). Both CRCs are the CCITT
// polynomial x^16+x^12+x^5+1 processed LSB first (reflected constant 0x8408)
// and transmitted low byte first.
const (
	crcAPreset = 0x6363
	crcBPreset = 0xFFFF
	crcPoly    = 0x8408
)

func crc16(preset uint16, data []byte) uint16 {
	crc := preset
	for _, b := range data {
		crc ^= uint16(b)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ crcPoly
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// CRCA returns the CRC_A of data (preset 6363, not inverted).
func CRCA(data []byte) uint16 { return crc16(crcAPreset, data) }

// CRCB returns the CRC_B of data (ISO/IEC 13239: preset FFFF, one's
// complement of the result).
func CRCB(data []byte) uint16 { return ^crc16(crcBPreset, data) }

// AppendCRCA appends CRC_A to frame, low byte first.
func AppendCRCA(frame []byte) []byte {
	c := CRCA(frame)
	return append(frame, byte(c), byte(c>>8))
}

// AppendCRCB appends CRC_B to frame, low byte first.
func AppendCRCB(frame []byte) []byte {
	c := CRCB(frame)
	return append(frame, byte(c), byte(c>>8))
}

// CheckCRCA reports whether frame ends with a valid CRC_A and returns the
// frame without it.
func CheckCRCA(frame []byte) ([]byte, bool) { return checkCRC(frame, CRCA) }

// CheckCRCB reports whether frame ends with a valid CRC_B and returns the
// frame without it.
func CheckCRCB(frame []byte) ([]byte, bool) { return checkCRC(frame, CRCB) }

func checkCRC(frame []byte, f func([]byte) uint16) ([]byte, bool) {
	if len(frame) < 2 {
		return nil, false
	}
	n := len(frame) - 2
	c := f(frame[:n])
	return frame[:n], frame[n] == byte(c) && frame[n+1] == byte(c>>8)
}
