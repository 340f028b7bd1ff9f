package pn532emu

import (
	"bytes"
	"fmt"
)

// Frame bytes (UM0701-02 §6.2, pn532.md §1).
const (
	tfiHost = 0xD4 // TFI of a host → PN532 frame
	tfiChip = 0xD5 // TFI of a PN532 → host frame

	// MaxPD is the largest number of PD bytes (command or response code
	// included, TFI excluded) the firmware accepts or sends in one extended
	// frame. libnfc's receive buffer has exactly this size: never exceed it.
	MaxPD = 264
)

var (
	// ACKFrame is sent by the PN532 when it has received a well-formed
	// command; sent by the host, it aborts the command in progress.
	ACKFrame = []byte{0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00}
	// NACKFrame asks the PN532 to send its last response again.
	NACKFrame = []byte{0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00}
	// ErrorFrame is the application-level error frame ("syntax error"):
	// LEN 1, data 7F.
	ErrorFrame = []byte{0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00}
)

// EncodeFrame builds an information frame around tfi and pd: a normal frame
// when TFI+PD fits in 255 bytes, an extended frame otherwise. It adds exactly
// one preamble byte and one postamble byte. It returns an error when pd is
// longer than [MaxPD].
func EncodeFrame(tfi byte, pd []byte) ([]byte, error) {
	if len(pd) > MaxPD {
		return nil, fmt.Errorf("pn532emu: frame: %d PD bytes, the limit is %d", len(pd), MaxPD)
	}
	n := len(pd) + 1
	var b bytes.Buffer
	b.Grow(n + 11)
	b.Write([]byte{0x00, 0x00, 0xFF})
	if n <= 255 {
		b.WriteByte(byte(n))
		b.WriteByte(byte(-n))
	} else {
		m, l := byte(n>>8), byte(n)
		b.Write([]byte{0xFF, 0xFF, m, l, -(m + l)})
	}
	b.WriteByte(tfi)
	b.Write(pd)
	sum := tfi
	for _, c := range pd {
		sum += c
	}
	b.WriteByte(-sum)
	b.WriteByte(0x00)
	return b.Bytes(), nil
}

// hostEventKind classifies what the frame parser recognised on the host link.
type hostEventKind uint8

const (
	evFrame    hostEventKind = iota + 1 // an information frame with a good LCS and DCS
	evACK                               // 00 00 FF 00 FF 00
	evNACK                              // 00 00 FF FF 00 00
	evBadFrame                          // LCS or DCS wrong, or impossible length: ignored
)

func (k hostEventKind) String() string {
	switch k {
	case evFrame:
		return "frame"
	case evACK:
		return "ACK"
	case evNACK:
		return "NACK"
	case evBadFrame:
		return "bad frame"
	}
	return fmt.Sprintf("hostEventKind(%d)", uint8(k))
}

// hostEvent is one thing the parser recognised.
type hostEvent struct {
	kind hostEventKind
	// data is TFI followed by PD for evFrame.
	data []byte
	// wire is the number of bytes the event took on the wire, junk before
	// it included (for the timing model).
	wire int
	// why explains an evBadFrame.
	why string
}

// maxBuffered bounds the parser's buffer: the longest frame (extended, 265
// bytes of TFI+PD plus 10 of framing) with room to spare. Bytes beyond are
// junk by construction and are dropped from the front.
const maxBuffered = 4096

// parser is the PN532 host-link frame recogniser. It is a byte-stream state
// machine: it skips any junk (HSU wake-up bytes 55 and 00, line noise) until
// a start code 00 FF, then reads LEN/LCS (or the extended form) and the
// data. A frame whose LCS or DCS is wrong, or whose extended length is 0 or
// over 265, is reported as evBadFrame and the search resumes just after its
// start code, so a good frame that follows inside the same bytes is still
// found. The preamble and postamble are optional (UM: "undetermined number
// of bytes").
type parser struct {
	buf  []byte
	junk int // bytes dropped since the last event
}

// feed appends b and returns the events it completes.
func (p *parser) feed(b []byte) []hostEvent {
	p.buf = append(p.buf, b...)
	if over := len(p.buf) - maxBuffered; over > 0 {
		p.junk += over
		p.buf = append(p.buf[:0], p.buf[over:]...)
	}
	var out []hostEvent
	for {
		ev, ok := p.next()
		if !ok {
			break
		}
		out = append(out, ev)
	}
	return out
}

// idle is called when the line has been quiet longer than the chip's
// receive timeout: an incomplete frame is given up (as a bad frame) and the
// search resumes after its start code.
func (p *parser) idle() []hostEvent {
	i := bytes.Index(p.buf, []byte{0x00, 0xFF})
	if i < 0 {
		p.junk += len(p.buf)
		p.buf = p.buf[:0]
		return nil
	}
	ev := hostEvent{kind: evBadFrame, wire: p.junk + i + 2, why: "incomplete frame, receive timeout"}
	p.junk = 0
	p.buf = append(p.buf[:0], p.buf[i+2:]...)
	out := []hostEvent{ev}
	out = append(out, p.feed(nil)...)
	// Whatever is left can only be further incomplete frames.
	if len(p.buf) > 0 && bytes.Contains(p.buf, []byte{0x00, 0xFF}) {
		out = append(out, p.idle()...)
	}
	return out
}

// pending reports whether an incomplete frame is buffered.
func (p *parser) pending() bool { return bytes.Contains(p.buf, []byte{0x00, 0xFF}) }

// reset drops everything buffered (a new I2C/SPI write transaction).
func (p *parser) reset() { p.buf = p.buf[:0]; p.junk = 0 }

func (p *parser) next() (hostEvent, bool) {
	i := bytes.Index(p.buf, []byte{0x00, 0xFF})
	if i < 0 {
		// Keep a trailing 00: it may be the first half of a start code.
		keep := 0
		if n := len(p.buf); n > 0 && p.buf[n-1] == 0x00 {
			keep = 1
		}
		p.junk += len(p.buf) - keep
		p.buf = append(p.buf[:0], p.buf[len(p.buf)-keep:]...)
		return hostEvent{}, false
	}
	b := p.buf[i+2:]
	if len(b) < 2 {
		return hostEvent{}, false
	}
	bad := func(why string) (hostEvent, bool) {
		ev := hostEvent{kind: evBadFrame, wire: p.junk + i + 2, why: why}
		p.consume(i + 2)
		return ev, true
	}
	ln, lcs := b[0], b[1]
	switch {
	case ln == 0x00 && lcs == 0xFF:
		ev := hostEvent{kind: evACK, wire: p.junk + i + 4}
		p.consume(i + 4)
		return ev, true
	case ln == 0xFF && lcs == 0x00:
		ev := hostEvent{kind: evNACK, wire: p.junk + i + 4}
		p.consume(i + 4)
		return ev, true
	case ln == 0xFF && lcs == 0xFF:
		if len(b) < 5 {
			return hostEvent{}, false
		}
		m, l, cs := b[2], b[3], b[4]
		if m+l+cs != 0 {
			return bad("extended frame: bad LCS")
		}
		n := int(m)<<8 | int(l)
		if n == 0 || n > MaxPD+1 {
			return bad(fmt.Sprintf("extended frame: length %d out of range", n))
		}
		return p.body(i, 7, n)
	default:
		if ln+lcs != 0 {
			return bad("bad LCS")
		}
		if ln == 0 {
			return bad("length 0") // 00 FF 00 00: not an ACK, and no TFI
		}
		return p.body(i, 4, int(ln))
	}
}

// body finishes a frame whose LEN is n and whose data starts hdr bytes
// after the start code's first byte at index i.
func (p *parser) body(i, hdr, n int) (hostEvent, bool) {
	start := i + hdr
	end := start + n // index of DCS
	if len(p.buf) < end+1 {
		return hostEvent{}, false
	}
	var sum byte
	for _, c := range p.buf[start : end+1] {
		sum += c
	}
	if sum != 0 {
		ev := hostEvent{kind: evBadFrame, wire: p.junk + i + 2, why: "bad DCS"}
		p.consume(i + 2)
		return ev, true
	}
	ev := hostEvent{kind: evFrame, data: append([]byte(nil), p.buf[start:end]...), wire: p.junk + end + 1}
	p.consume(end + 1)
	return ev, true
}

func (p *parser) consume(n int) {
	p.junk = 0
	p.buf = append(p.buf[:0], p.buf[n:]...)
}
