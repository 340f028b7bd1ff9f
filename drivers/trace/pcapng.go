// Package trace records what the reader stack exchanges — host frames,
// ISO 14443 RF frames and APDUs — into pcapng files that Wireshark and
// tshark decode (link type 264, DLT_ISO_14443, as defined by Martin Kaiser's
// "PCAP format for ISO14443": a 4-byte pseudo header {version 0, event,
// big-endian length} before each frame).
//
// It is an nfc.Tracer. Secrets never reach the file: APDUs pass through
// nfc.RedactVerify, and RF blocks and host frames that carry a VERIFY or
// CHANGE REFERENCE DATA command are redacted from the APDU's data field on
// (the drivers also redact before tracing; this is the second line).
//
// Interfaces in the file:
//
//	0  ISO 14443 (264): RF frames as seen on air (CRC not captured: events
//	   0xFA/0xFB), and APDUs of chip-managed ISO-DEP wrapped in synthesized
//	   I-blocks (marked with a comment) so the ISO 7816 dissector shows them.
//	1  USER0 (147): PN532 host frames, direction in the comment.
package trace

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"time"

	"kazasu/drivers/nfc"
)

// Link types.
const (
	LinkTypeISO14443 = 264
	LinkTypeUser0    = 147
)

// Pseudo-header events (DLT_ISO_14443).
const (
	eventPICCToPCD        = 0xFF
	eventPCDToPICC        = 0xFE
	eventFieldOff         = 0xFD
	eventFieldOn          = 0xFC
	eventPICCToPCDNoCRC   = 0xFB
	eventPCDToPICCNoCRC   = 0xFA
	maxFrame              = 65535
	blockTypeSHB          = 0x0A0D0D0A
	blockTypeIDB          = 0x00000001
	blockTypeEPB          = 0x00000006
	byteOrderMagic        = 0x1A2B3C4D
	optEndOfOpt           = 0
	optComment            = 1
	optIfTsresol          = 9
	optShbUserAppl        = 4
	tsResolMicroseconds   = 6
	interfaceISO14443     = 0
	interfaceHost         = 1
	synthesizedAPDUMarker = "APDU (chip-managed ISO-DEP; I-block synthesized by kazasu)"
)

// Writer writes a pcapng stream. It is safe for concurrent use.
type Writer struct {
	mu  sync.Mutex
	w   *bufio.Writer
	err error
	bn  byte // block number of synthesized I-blocks
	n   int
	// rfBlocks: ISO-DEP I-blocks are traced on the RF layer (host-managed
	// ISO-DEP), so APDU events are redundant and not written. pending holds
	// an APDU event until it is known whether RF blocks follow.
	rfBlocks bool
	pending  *nfc.TraceEvent
}

var _ nfc.Tracer = (*Writer)(nil)

// NewWriter writes the section header and interface descriptions to w.
func NewWriter(w io.Writer) (*Writer, error) {
	t := &Writer{w: bufio.NewWriter(w)}
	var shbOpts []byte
	shbOpts = appendOption(shbOpts, optShbUserAppl, []byte("kazasu"))
	shbOpts = appendOption(shbOpts, optEndOfOpt, nil)
	shb := make([]byte, 16)
	binary.LittleEndian.PutUint32(shb[0:], byteOrderMagic)
	binary.LittleEndian.PutUint16(shb[4:], 1) // major
	binary.LittleEndian.PutUint16(shb[6:], 0) // minor
	binary.LittleEndian.PutUint64(shb[8:], ^uint64(0))
	t.block(blockTypeSHB, append(shb, shbOpts...))
	for _, lt := range []uint16{LinkTypeISO14443, LinkTypeUser0} {
		idb := make([]byte, 8)
		binary.LittleEndian.PutUint16(idb[0:], lt)
		binary.LittleEndian.PutUint32(idb[4:], maxFrame)
		var opts []byte
		opts = appendOption(opts, optIfTsresol, []byte{tsResolMicroseconds})
		opts = appendOption(opts, optEndOfOpt, nil)
		t.block(blockTypeIDB, append(idb, opts...))
	}
	if err := t.flush(); err != nil {
		return nil, err
	}
	return t, nil
}

func appendOption(b []byte, code uint16, val []byte) []byte {
	var h [4]byte
	binary.LittleEndian.PutUint16(h[0:], code)
	binary.LittleEndian.PutUint16(h[2:], uint16(len(val)))
	b = append(b, h[:]...)
	b = append(b, val...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// block writes one pcapng block with its length trailer.
func (t *Writer) block(typ uint32, body []byte) {
	if t.err != nil {
		return
	}
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	total := uint32(12 + len(body))
	var h [8]byte
	binary.LittleEndian.PutUint32(h[0:], typ)
	binary.LittleEndian.PutUint32(h[4:], total)
	t.w.Write(h[:])
	t.w.Write(body)
	var tr [4]byte
	binary.LittleEndian.PutUint32(tr[:], total)
	_, t.err = t.w.Write(tr[:])
}

func (t *Writer) packet(iface uint32, ts time.Time, data []byte, comment string) {
	if len(data) > maxFrame {
		data = data[:maxFrame]
	}
	body := make([]byte, 20, 20+len(data)+len(comment)+16)
	us := uint64(ts.UnixMicro())
	binary.LittleEndian.PutUint32(body[0:], iface)
	binary.LittleEndian.PutUint32(body[4:], uint32(us>>32))
	binary.LittleEndian.PutUint32(body[8:], uint32(us))
	binary.LittleEndian.PutUint32(body[12:], uint32(len(data)))
	binary.LittleEndian.PutUint32(body[16:], uint32(len(data)))
	body = append(body, data...)
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	if comment != "" {
		body = appendOption(body, optComment, []byte(comment))
		body = appendOption(body, optEndOfOpt, nil)
	}
	t.block(blockTypeEPB, body)
	t.n++
}

func pseudo(event byte, data []byte) []byte {
	out := make([]byte, 4, 4+len(data))
	out[0] = 0
	out[1] = event
	binary.BigEndian.PutUint16(out[2:], uint16(len(data)))
	return append(out, data...)
}

// Trace records one event (nfc.Tracer). Errors are kept and reported by
// Close.
func (t *Writer) Trace(ev nfc.TraceEvent) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return
	}
	ts := ev.Time
	if ts.IsZero() {
		ts = time.Now()
	}
	switch ev.Layer {
	case nfc.LayerRF:
		if len(ev.Data) > 0 && ev.Data[0]&0xC2 == 0x02 { // an I-block
			t.rfBlocks = true
			t.pending = nil
		}
		data := redactBlock(ev.Data)
		event := byte(eventPICCToPCDNoCRC)
		if ev.Out {
			event = eventPCDToPICCNoCRC
		}
		t.packet(interfaceISO14443, ts, pseudo(event, data), "")
	case nfc.LayerAPDU:
		if t.rfBlocks {
			return
		}
		t.flushPending()
		ev.Time = ts
		ev.Data = append([]byte(nil), ev.Data...)
		t.pending = &ev
	case nfc.LayerHost:
		t.flushPending()
		out := ev.Out
		if i := bytes.Index(ev.Data, []byte{0x00, 0xFF}); i >= 0 {
			// The TFI says the direction where there is one (D4 host→chip,
			// D5 chip→host); ACK frames keep the event's.
			for _, p := range []int{i + 4, i + 7} {
				if p < len(ev.Data) && (ev.Data[p] == 0xD4 || ev.Data[p] == 0xD5) {
					out = ev.Data[p] == 0xD4
					break
				}
			}
		}
		dir := "host→chip"
		if !out {
			dir = "chip→host"
		}
		t.packet(interfaceHost, ts, redactHostFrame(ev.Data), "PN532 "+dir)
	}
}

// flushPending writes a held APDU event as a synthesized I-block (PCB 02/03
// alternating per exchange) so the ISO 7816 dissector shows it.
func (t *Writer) flushPending() {
	ev := t.pending
	if ev == nil {
		return
	}
	t.pending = nil
	apdu := ev.Data
	if ev.Out {
		apdu = nfc.RedactVerify(apdu)
	}
	block := append([]byte{0x02 | t.bn}, apdu...)
	event := byte(eventPICCToPCDNoCRC)
	if ev.Out {
		event = eventPCDToPICCNoCRC
	} else {
		t.bn ^= 1
	}
	t.packet(interfaceISO14443, ev.Time, pseudo(event, block), synthesizedAPDUMarker)
}

// FieldChange records the reader switching the RF field.
func (t *Writer) FieldChange(ts time.Time, on bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ev := byte(eventFieldOff)
	if on {
		ev = eventFieldOn
	}
	t.packet(interfaceISO14443, ts, pseudo(ev, nil), "")
}

// Packets is the number of packets written.
func (t *Writer) Packets() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

func (t *Writer) flush() error {
	if t.err != nil {
		return t.err
	}
	t.err = t.w.Flush()
	return t.err
}

// Close flushes the stream (it does not close the underlying writer).
func (t *Writer) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.flushPending()
	if err := t.flush(); err != nil {
		return fmt.Errorf("trace: %w", err)
	}
	return nil
}

// redactBlock hides the data of a VERIFY / CHANGE REFERENCE DATA APDU carried
// in an ISO-DEP I-block (PCB, optional CID/NAD, then the APDU).
func redactBlock(b []byte) []byte {
	if len(b) < 1 || b[0]&0xC2 != 0x02 { // not an I-block
		return b
	}
	off := 1
	if b[0]&0x08 != 0 {
		off++
	}
	if b[0]&0x04 != 0 {
		off++
	}
	if off >= len(b) {
		return b
	}
	r := nfc.RedactVerify(b[off:])
	if &r[0] == &b[off] {
		return b
	}
	return append(append([]byte(nil), b[:off]...), r...)
}

// redactHostFrame hides VERIFY data inside a PN532 InDataExchange (40 Tg
// APDU) or InCommunicateThru (42 block) host frame. Frames are
// 00 00 FF LEN LCS D4 CMD ... DCS 00 (normal) or with FF FF LENM LENL LCS
// (extended).
func redactHostFrame(f []byte) []byte {
	p := -1
	for i := 0; i+1 < len(f); i++ {
		if f[i] == 0x00 && f[i+1] == 0xFF {
			p = i + 2
			break
		}
	}
	if p < 0 || p+2 > len(f) {
		return f
	}
	if f[p] == 0xFF && f[p+1] == 0xFF {
		p += 5 // FF FF LENM LENL LCS
	} else {
		p += 2 // LEN LCS
	}
	if p+2 > len(f) || f[p] != 0xD4 {
		return f
	}
	cmd := p + 1
	end := len(f) - 2 // DCS, postamble
	switch f[cmd] {
	case 0x40: // InDataExchange Tg APDU
		if cmd+2 >= end {
			return f
		}
		out := append([]byte(nil), f...)
		copy(out[cmd+2:], nfc.RedactVerify(out[cmd+2:end]))
		return out
	case 0x42: // InCommunicateThru block
		if cmd+1 >= end {
			return f
		}
		out := append([]byte(nil), f...)
		copy(out[cmd+1:], redactBlock(out[cmd+1:end]))
		return out
	}
	return f
}
