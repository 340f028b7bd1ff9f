package pn532emu

import (
	"time"

	"kazasu/drivers/nfc"
)

// Timing model (iso14443b.md §6.1 and §6.6). Every step the emulator takes
// is given a duration and spent on the emulator's clock (see package
// vclock) and summed in its meter under one of these categories, so a
// benchmark can compare the modelled total with the physical floor.
const (
	// CatHostLink is time on the host link: UART characters, I2C and SPI
	// transactions, including status polls.
	CatHostLink = "host link"
	// CatAir is time on air: frames, the TR0+TR1+TR2 turnaround of each
	// exchange, guard times and timeouts waiting for a silent PICC.
	CatAir = "air"
	// CatFirmware is the chip's own processing per command.
	CatFirmware = "firmware"
	// CatCard is the processing time the PICCs report.
	CatCard = "card"
	// CatPoll is time spent polling an empty field (InListPassiveTarget
	// retries, InAutoPoll periods).
	CatPoll = "poll"
)

// Physical constants of ISO/IEC 14443 at 106 kbit/s.
const (
	fc = 13.56e6
	// guardTime is the wait after switching the field on before the first
	// REQ/WUP (iso14443b.md §2.6, 5 ms).
	guardTime = 5 * time.Millisecond
	// atqbWindow is how long the firmware is modelled to listen for an
	// ATQB or ATQA that never comes (NXP: 600 µs + 63 µs, iso14443b.md §2.1).
	atqbWindow = 663 * time.Microsecond
)

// cycles is n periods of the 13.56 MHz carrier.
func cycles(n float64) time.Duration { return time.Duration(n / fc * float64(time.Second)) }

var (
	// etu106 is one elementary time unit at 106 kbit/s: 128/fc ≈ 9.44 µs.
	etu106 = cycles(128)
	// turnaroundB is TR0 + TR1 + TR2 minimums: 64/fs + 80/fs + 1792/fc
	// = 75.5 + 94.4 + 132.2 µs ≈ 302 µs (fs = fc/16).
	turnaroundB = cycles(64*16 + 80*16 + 1792)
	// fdtA is the Type A frame delay time PCD→PICC (1172/fc ≈ 86.4 µs) plus
	// the PICC→PCD minimum (1172/fc, NFC Forum FDT,PCD,min): an approximation
	// of a Type A turnaround, which iso14443b.md does not cover.
	fdtA = cycles(2 * 1172)
)

// Timing holds the tunable parts of the timing model. The air-time and
// host-link formulas are fixed by the standards; these are the parts that
// are not.
type Timing struct {
	// Firmware is the chip's processing time per command, spent between
	// the ACK and the start of the RF activity or the response. Not
	// measured: the default, 200 µs, is a guess of the order of magnitude of
	// an 80C51 firmware's frame handling.
	Firmware time.Duration
	// I2CHz is the I2C clock when the host never calls SetSpeed (100 kHz).
	I2CHz int64
	// SPIHz is the SPI clock when the host connects with f = 0 (1 MHz,
	// libnfc's default).
	SPIHz int64
}

// DefaultTiming is the timing model used when Options.Timing is zero.
var DefaultTiming = Timing{Firmware: 200 * time.Microsecond, I2CHz: 100_000, SPIHz: 1_000_000}

// uartTime is n characters of 10 bits (start, 8 data, stop) at baud.
func uartTime(n int, baud int) time.Duration {
	if baud <= 0 || n <= 0 {
		return 0
	}
	return time.Duration(int64(n) * 10 * int64(time.Second) / int64(baud))
}

// i2cTime is one I2C transaction carrying n data bytes: a start condition,
// the address byte, n bytes, each 9 bits with its ACK, and a stop (2 bit
// times for start and stop together).
func i2cTime(n int, hz int64) time.Duration {
	if hz <= 0 {
		return 0
	}
	bits := int64(9*(n+1) + 2)
	return time.Duration(bits * int64(time.Second) / hz)
}

// spiTime is one SPI transaction of n bytes (the direction byte included)
// at 8 clocks per byte.
func spiTime(n int, hz int64) time.Duration {
	if hz <= 0 || n <= 0 {
		return 0
	}
	return time.Duration(int64(n) * 8 * int64(time.Second) / hz)
}

// frameAirTime is one frame of n bytes on air at 106 kbit/s, CRC included
// in n. Type B: (10·n + 22) etu (start/stop bits, SOF 12 etu, EOF 10 etu,
// iso14443b.md §6.1). Type A: 9 bits per byte (8 + parity) plus start and
// end of communication, and a short frame (REQA/WUPA, 7 bits) is 9 etu.
func frameAirTime(tech nfc.Tech, n int, bits int) time.Duration {
	if tech == nfc.TechA {
		if n == 1 && bits > 0 {
			return time.Duration(bits+2) * etu106
		}
		return time.Duration(9*n+2) * etu106
	}
	return time.Duration(10*n+22) * etu106
}

// turnaround is the minimum gaps of one PCD→PICC→PCD round trip.
func turnaround(tech nfc.Tech) time.Duration {
	if tech == nfc.TechA {
		return fdtA
	}
	return turnaroundB
}

// fwt is the frame waiting time for FWI (iso14443b.md §3.2):
// 256·16/fc · 2^FWI; FWI 15 is treated as 4.
func fwt(fwi int) time.Duration {
	if fwi < 0 || fwi > 14 {
		fwi = 4
	}
	return cycles(256 * 16 * float64(int(1)<<fwi))
}

// frameSize maps FSCI/FSDI to a frame size (iso14443b.md §3.1), clamped to
// 256 as PN532-era readers do.
func frameSize(code int) int {
	table := [...]int{16, 24, 32, 40, 48, 64, 96, 128, 256}
	if code < 0 || code >= len(table) {
		return 256
	}
	return table[code]
}

// rfTimeout decodes an RFConfiguration item 02 timeout code: 00 none,
// 01 = 100 µs, doubling per step, 10 = 3.28 s (pn532.md §4.2).
func rfTimeout(code byte) time.Duration {
	if code == 0 {
		return 0
	}
	if code > 0x10 {
		code = 0x10
	}
	return 100 * time.Microsecond << (code - 1)
}
