package iso14443

import (
	"fmt"
	"time"
)

// Carrier frequency fc (13.56 MHz) and the time units derived from it.
const (
	fcHz = 13_560_000
	// ETU106 is one elementary time unit at 106 kbit/s: 128/fc ≈ 9.44 µs.
	ETU106 = 128 * time.Second / fcHz
)

// frameSizes maps FSCI/FSDI 0…C to the frame size in bytes (PCB, CID, NAD,
// INF and CRC included). 9–C come from ISO/IEC 14443-3 Amd 2 (2012).
var frameSizes = [...]int{16, 24, 32, 40, 48, 64, 96, 128, 256, 512, 1024, 2048, 4096}

// MaxFSCI is the largest defined FSCI/FSDI code (C, 4096 bytes).
const MaxFSCI = 0xC

// FrameSize returns the frame size for an FSCI or FSDI code. The RFU codes
// D–F are read as 8 (256 bytes): a PCD that over-estimates FSC sends frames
// the card drops, one that under-estimates only chains more, so the safe
// reading is the largest size every ISO/IEC 14443-4:2001 card accepts.
func FrameSize(code byte) int {
	if int(code) < len(frameSizes) {
		return frameSizes[code]
	}
	return 256
}

// FrameSizeCode returns the largest FSCI/FSDI code whose frame size does not
// exceed n bytes (0 for n < 24).
func FrameSizeCode(n int) byte {
	code := byte(0)
	for i, s := range frameSizes {
		if s <= n {
			code = byte(i)
		}
	}
	return code
}

// FWT returns the frame waiting time for FWI 0…14: 256·16/fc·2^FWI
// (302 µs … 4.949 s). FWI 15 is RFU and read as 4 (4.83 ms), as NXP,
// nfcpy and Linux do.
func FWT(fwi byte) time.Duration {
	if fwi > 14 {
		fwi = 4
	}
	return time.Duration(4096<<fwi) * time.Second / fcHz
}

// SFGT returns the start-up frame guard time for SFGI 0…14, with the same
// formula as FWT. SFGI 15 is RFU and read as 0. SFGI 0 gives 0: no guard
// time is required beyond the minimum frame delay.
func SFGT(sfgi byte) time.Duration {
	if sfgi == 0 || sfgi > 14 {
		return 0
	}
	return time.Duration(4096<<sfgi) * time.Second / fcHz
}

// FWIFor returns the smallest FWI whose FWT is at least d (14 if none is).
func FWIFor(d time.Duration) byte {
	for fwi := byte(0); fwi < 14; fwi++ {
		if FWT(fwi) >= d {
			return fwi
		}
	}
	return 14
}

// BitRate is a bit rate in kbit/s: 106, 212, 424 or 848.
type BitRate int

// Bit rates by divisor D = 1, 2, 4, 8 (ATTRIB DSI/DRI codes 0…3).
const (
	BitRate106 BitRate = 106
	BitRate212 BitRate = 212
	BitRate424 BitRate = 424
	BitRate848 BitRate = 848
)

func (r BitRate) String() string { return fmt.Sprintf("%d kbit/s", int(r)) }

// bitRateCode returns the DSI/DRI code (0…3) of r, 0 for unknown rates.
func bitRateCode(r BitRate) byte {
	switch r {
	case BitRate212:
		return 1
	case BitRate424:
		return 2
	case BitRate848:
		return 3
	}
	return 0
}

// bitRateOf returns the bit rate of a DSI/DRI code (0…3).
func bitRateOf(code byte) BitRate { return BitRate(106 << (code & 3)) }
