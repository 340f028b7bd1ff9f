// Package pn532test builds PN532 host-link frames for tests, so that a
// transcript reads as command payloads rather than checksummed bytes (the
// nfcpy test suite's CMD/RSP/ACK/NAK/ERR builders, in Go), plus the I2C
// and SPI wrappings of those frames.
//
//	serialtest.Op{W: pn532test.Cmd(0x02)}                 // GetFirmwareVersion
//	serialtest.Op{R: pn532test.Ack()}
//	serialtest.Op{R: pn532test.Rsp(0x02, 0x32, 1, 6, 7)}  // D5 03 32 01 06 07
package pn532test

import (
	"encoding/hex"
	"math/bits"
	"strings"

	"periph.io/x/conn/v3/conntest"
	"periph.io/x/conn/v3/i2c/i2ctest"
)

// Addr is the PN532's I2C address.
const Addr = 0x24

// Frame wraps data (TFI first) in a normal information frame, or an
// extended one when data is longer than 255 bytes.
func Frame(data ...byte) []byte {
	n := len(data)
	var out []byte
	if n <= 255 {
		out = []byte{0x00, 0x00, 0xFF, byte(n), byte(-n)}
	} else {
		hi, lo := byte(n>>8), byte(n)
		out = []byte{0x00, 0x00, 0xFF, 0xFF, 0xFF, hi, lo, -(hi + lo)}
	}
	out = append(out, data...)
	var sum byte
	for _, b := range data {
		sum += b
	}
	return append(out, -sum, 0x00)
}

// ExtFrame wraps data in an extended frame whatever its length (the host
// may use the extended form for short frames too).
func ExtFrame(data ...byte) []byte {
	n := len(data)
	hi, lo := byte(n>>8), byte(n)
	out := []byte{0x00, 0x00, 0xFF, 0xFF, 0xFF, hi, lo, -(hi + lo)}
	out = append(out, data...)
	var sum byte
	for _, b := range data {
		sum += b
	}
	return append(out, -sum, 0x00)
}

// Cmd is a host → chip command frame: D4, cmd, params.
func Cmd(cmd byte, params ...byte) []byte {
	return Frame(append([]byte{0xD4, cmd}, params...)...)
}

// Rsp is the chip's answer to cmd: D5, cmd+1, data.
func Rsp(cmd byte, data ...byte) []byte {
	return Frame(append([]byte{0xD5, cmd + 1}, data...)...)
}

// Ack is the ACK frame (from the chip: received; from the host: abort).
func Ack() []byte { return []byte{0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00} }

// Nack is the NACK frame (host: send the last answer again).
func Nack() []byte { return []byte{0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00} }

// Err is the application-level error frame.
func Err() []byte { return []byte{0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00} }

// Corrupt returns frame with its data checksum (DCS) broken.
func Corrupt(frame []byte) []byte {
	out := append([]byte(nil), frame...)
	out[len(out)-2] ^= 0x5A
	return out
}

// Wake is the HSU wake-up the driver sends before its first command.
func Wake() []byte {
	return []byte{0x55, 0x55, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
}

// Hex parses hex digits, ignoring spaces; it panics on bad input (tests
// only).
func Hex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// Cat concatenates byte slices.
func Cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// --- I2C ----------------------------------------------------------------------

// I2CWrite is the transaction that writes frame.
func I2CWrite(frame []byte) i2ctest.IO { return i2ctest.IO{Addr: Addr, W: frame} }

// I2CStatus is a one-byte status read answering ready or busy.
func I2CStatus(ready bool) i2ctest.IO {
	var s byte
	if ready {
		s = 1
	}
	return i2ctest.IO{Addr: Addr, R: []byte{s}}
}

// I2CRead is the transaction that reads frame after the ready byte, padded
// with zeros to n bytes after the ready byte (the driver's read size).
func I2CRead(frame []byte, n int) i2ctest.IO {
	r := make([]byte, 1+n)
	r[0] = 1
	copy(r[1:], frame)
	return i2ctest.IO{Addr: Addr, R: r}
}

// --- SPI ----------------------------------------------------------------------

// Rev reverses the bits of every byte (the PN532 is LSB first on SPI).
func Rev(b []byte) []byte {
	out := make([]byte, len(b))
	for i, v := range b {
		out[i] = bits.Reverse8(v)
	}
	return out
}

// SPIWrite is the data-write transaction (01 + frame), as the wire sees it.
func SPIWrite(frame []byte) conntest.IO {
	w := Rev(append([]byte{0x01}, frame...))
	return conntest.IO{W: w, R: make([]byte, len(w))}
}

// SPIStatus is the status-read transaction (02 00) answering ready or busy.
func SPIStatus(ready bool) conntest.IO {
	var s byte
	if ready {
		s = 1
	}
	return conntest.IO{W: Rev([]byte{0x02, 0x00}), R: Rev([]byte{0x00, s})}
}

// SPIRead is the data-read transaction (03 + n zero bytes) returning frame,
// padded with zeros to n bytes.
func SPIRead(frame []byte, n int) conntest.IO {
	r := make([]byte, 1+n)
	copy(r[1:], frame)
	return conntest.IO{W: Rev(append([]byte{0x03}, make([]byte, n)...)), R: Rev(r)}
}
