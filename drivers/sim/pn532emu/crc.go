package pn532emu

import "kazasu/drivers/nfc"

// crc16 is the ISO/IEC 14443-3 CRC (ISO/IEC 13239, reflected polynomial
// 0x8408) with the given preset: 0x6363 for CRC_A, 0xFFFF then inverted for
// CRC_B. The chip computes it in hardware; the simulated field carries
// frames without it, so the emulator needs it only where a host sends or
// expects raw CRC bytes (InCommunicateThru with the CIU CRC bits off).
func crc16(tech nfc.Tech, data []byte) uint16 {
	crc := uint16(0x6363)
	if tech == nfc.TechB {
		crc = 0xFFFF
	}
	for _, b := range data {
		crc ^= uint16(b)
		for i := 0; i < 8; i++ {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0x8408
			} else {
				crc >>= 1
			}
		}
	}
	if tech == nfc.TechB {
		crc = ^crc
	}
	return crc
}

// appendCRC appends the CRC of data[1:] (data[0] is the status byte),
// low byte first.
func appendCRC(tech nfc.Tech, data []byte) []byte {
	c := crc16(tech, data[1:])
	return append(data, byte(c), byte(c>>8))
}

// crcOK checks the trailing two CRC bytes of a frame.
func crcOK(tech nfc.Tech, frame []byte) bool {
	if len(frame) < 3 {
		return false
	}
	n := len(frame) - 2
	c := crc16(tech, frame[:n])
	return frame[n] == byte(c) && frame[n+1] == byte(c>>8)
}
