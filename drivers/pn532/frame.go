package pn532

import (
	"bytes"
	"errors"
	"fmt"
)

// Frame identifiers (UM0701 §6.2.1.1).
const (
	tfiHost = 0xD4 // host → PN532
	tfiChip = 0xD5 // PN532 → host
	tfiErr  = 0x7F // application-level error frame payload
)

// Frame size limits (UM0701 §6.2.1.1, §6.2.1.2).
const (
	// MaxNormalData is the most bytes (TFI included) a normal frame carries.
	MaxNormalData = 255
	// MaxExtendedData is the most bytes (TFI included) the firmware accepts
	// or sends in an extended frame: 264 bytes of PD plus TFI.
	MaxExtendedData = 265
	// MaxFrameLen is the longest frame on the wire: an extended frame with
	// MaxExtendedData bytes, preamble and postamble.
	MaxFrameLen = 3 + 2 + 3 + MaxExtendedData + 2
	// ackLen is the length of an ACK or NACK frame.
	ackLen = 6
)

var (
	ackFrame  = []byte{0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00}
	nackFrame = []byte{0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00}
)

// FrameType is the kind of a host-link frame.
type FrameType uint8

const (
	// FrameInfo is a normal or extended information frame.
	FrameInfo FrameType = iota + 1
	// FrameACK acknowledges a frame (from the chip) or aborts the current
	// command (from the host).
	FrameACK
	// FrameNACK asks the chip to send its last answer again.
	FrameNACK
	// FrameError is the chip's "syntax error at application level" frame
	// (LEN 1, data 7F).
	FrameError
)

func (t FrameType) String() string {
	switch t {
	case FrameInfo:
		return "info"
	case FrameACK:
		return "ACK"
	case FrameNACK:
		return "NACK"
	case FrameError:
		return "error"
	}
	return fmt.Sprintf("FrameType(%d)", uint8(t))
}

// Frame is one decoded host-link frame.
type Frame struct {
	Type FrameType
	// Data is TFI followed by PD0…PDn for FrameInfo; nil otherwise.
	Data []byte
	// Extended is true when the frame used the extended length form.
	Extended bool
}

func (f Frame) String() string {
	if f.Type == FrameInfo {
		return fmt.Sprintf("info[% X]", f.Data)
	}
	return f.Type.String()
}

// Decoding errors of DecodeFrame.
var (
	// ErrIncomplete: the buffer ends inside a frame (or holds none); read
	// more and decode again.
	ErrIncomplete = errors.New("pn532: incomplete frame")
	// ErrChecksum: a frame's length was consistent but its data checksum
	// (DCS) was not. The chip should be asked to send it again (NACK).
	ErrChecksum = errors.New("pn532: data checksum mismatch")
)

// EncodeFrame builds an information frame around data (TFI included),
// choosing the extended form when data is longer than a normal frame allows
// (UM0701 §6.2.1.1, §6.2.1.2). data must not be empty nor longer than
// MaxExtendedData.
func EncodeFrame(data []byte) ([]byte, error) {
	n := len(data)
	if n == 0 || n > MaxExtendedData {
		return nil, fmt.Errorf("pn532: a frame carries 1…%d bytes, not %d", MaxExtendedData, n)
	}
	var out []byte
	if n <= MaxNormalData {
		out = make([]byte, 0, n+7)
		out = append(out, 0x00, 0x00, 0xFF, byte(n), byte(-n))
	} else {
		out = make([]byte, 0, n+10)
		hi, lo := byte(n>>8), byte(n)
		out = append(out, 0x00, 0x00, 0xFF, 0xFF, 0xFF, hi, lo, -(hi + lo))
	}
	out = append(out, data...)
	var sum byte
	for _, b := range data {
		sum += b
	}
	return append(out, -sum, 0x00), nil
}

// mustFrame is EncodeFrame for data known to fit.
func mustFrame(data []byte) []byte {
	f, err := EncodeFrame(data)
	if err != nil {
		panic(err) // a driver bug, never input
	}
	return f
}

// DecodeFrame looks for the first frame (information, extended, ACK, NACK
// or error frame) in buf, as a host reads them from the chip.
//
// It returns the frame and how many bytes of buf it used. Leading bytes that
// cannot start a frame (preambles, HSU wake-up bytes, line noise, a start code
// whose length checksum fails) are skipped. On ErrIncomplete, used counts only
// the junk that can be dropped. On ErrChecksum, used covers the broken frame.
// DecodeFrame never reads outside buf and never panics.
func DecodeFrame(buf []byte) (f Frame, used int, err error) {
	pos := 0
	for {
		i := bytes.Index(buf[pos:], []byte{0x00, 0xFF})
		if i < 0 {
			// Keep a trailing 00: it may be the first half of a start code.
			drop := len(buf)
			if drop > 0 && buf[drop-1] == 0x00 {
				drop--
			}
			return Frame{}, drop, ErrIncomplete
		}
		start := pos + i // index of 00 FF
		rest := buf[start+2:]
		if len(rest) < 2 {
			return Frame{}, start, ErrIncomplete
		}
		switch {
		case rest[0] == 0x00 && rest[1] == 0xFF:
			return Frame{Type: FrameACK}, start + 4, nil
		case rest[0] == 0xFF && rest[1] == 0x00:
			return Frame{Type: FrameNACK}, start + 4, nil
		case rest[0] == 0xFF && rest[1] == 0xFF:
			if len(rest) < 5 {
				return Frame{}, start, ErrIncomplete
			}
			hi, lo, lcs := rest[2], rest[3], rest[4]
			n := int(hi)<<8 | int(lo)
			if hi+lo+lcs != 0 || n == 0 || n > MaxExtendedData {
				pos = start + 1 // not a real start code: resync past it
				continue
			}
			return finishFrame(buf, start, 7, n, true)
		default:
			n, lcs := rest[0], rest[1]
			if n+lcs != 0 || n == 0 {
				pos = start + 1
				continue
			}
			return finishFrame(buf, start, 4, int(n), false)
		}
	}
}

// finishFrame reads n data bytes and the DCS of a frame whose start code is
// at start and whose data begins hdr bytes after it.
func finishFrame(buf []byte, start, hdr, n int, ext bool) (Frame, int, error) {
	d := start + hdr
	if len(buf) < d+n+1 {
		return Frame{}, start, ErrIncomplete
	}
	data := buf[d : d+n]
	sum := buf[d+n]
	for _, b := range data {
		sum += b
	}
	used := d + n + 1
	if sum != 0 {
		return Frame{}, used, ErrChecksum
	}
	out := make([]byte, n)
	copy(out, data)
	if n == 1 && out[0] == tfiErr {
		return Frame{Type: FrameError}, used, nil
	}
	return Frame{Type: FrameInfo, Data: out, Extended: ext}, used, nil
}

// frameLen returns how many bytes of buf the first frame needs, counted
// from the start of buf, once its header is complete and consistent; 0
// otherwise. A bus read that cut a frame short uses it to read enough the
// next time.
func frameLen(buf []byte) int {
	i := bytes.Index(buf, []byte{0x00, 0xFF})
	if i < 0 || len(buf) < i+4 {
		return 0
	}
	rest := buf[i+2:]
	switch {
	case rest[0] == 0x00 && rest[1] == 0xFF, rest[0] == 0xFF && rest[1] == 0x00:
		return i + 5 // ACK, NACK
	case rest[0] == 0xFF && rest[1] == 0xFF:
		if len(rest) < 5 {
			return 0
		}
		hi, lo, lcs := rest[2], rest[3], rest[4]
		n := int(hi)<<8 | int(lo)
		if hi+lo+lcs != 0 || n == 0 || n > MaxExtendedData {
			return 0
		}
		return i + 7 + n + 2
	default:
		if rest[0]+rest[1] != 0 || rest[0] == 0 {
			return 0
		}
		return i + 4 + int(rest[0]) + 2
	}
}
