package pn532emu

import (
	"bytes"
	"testing"
	"time"

	"kazasu/drivers/nfc"
	"kazasu/drivers/sim/pn532emu/picctest"
	"kazasu/drivers/sim/rf"
)

// capPort collects the chip's frames (an in-process HSU).
type capPort struct{ ch chan []byte }

func (c *capPort) link() Link             { return LinkHSU }
func (c *capPort) wire(int) time.Duration { return 0 }
func (c *capPort) close()                 {}
func (c *capPort) flush()                 {}
func (c *capPort) send(f []byte) {
	select {
	case c.ch <- append([]byte(nil), f...):
	default: // a flood of answers: drop, as a host not reading would
	}
}

func newCapChip(t testing.TB, field *rf.Field) (*Emulator, *capPort) {
	e := New(Options{Field: field})
	p := &capPort{ch: make(chan []byte, 4096)}
	if err := e.attach(p); err != nil {
		t.Fatal(err)
	}
	return e, p
}

// checkAlive sends GetFirmwareVersion and requires its ACK and answer as
// the last two frames out of the chip.
func checkAlive(t *testing.T, e *Emulator, p *capPort) {
	t.Helper()
	e.mu.Lock()
	dead := e.asleep && e.power == PowerDown && e.wake&LinkHSU.wakeBit() == 0
	e.mu.Unlock()
	if dead {
		// PowerDown with HSU wake-up disabled: a real chip needs a reset
		// (or another wake-up source) too. Not a wedge.
		return
	}
	e.hostBytes(frame(0x02))
	want, _ := EncodeFrame(tfiChip, []byte{0x03, 0x32, 0x01, 0x06, 0x07})
	var prev []byte
	deadline := time.After(10 * time.Second)
	for {
		select {
		case f := <-p.ch:
			if bytes.Equal(f, want) {
				if !bytes.Equal(prev, ACKFrame) {
					t.Fatalf("GetFirmwareVersion answer not preceded by its ACK (got % X)", prev)
				}
				return
			}
			prev = f
		case <-deadline:
			t.Fatal("GetFirmwareVersion not answered: chip wedged")
		}
	}
}

func seedFrames() [][]byte {
	wake := []byte{0x55, 0x55, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	return [][]byte{
		cat(wake, frame(0x14, 0x01)),
		cat(frame(0x00, 0x00, 'l', 'i', 'b', 'n', 'f', 'c'), frame(0x02), frame(0x12, 0x14)),
		cat(frame(0x06, 0x63, 0x02, 0x63, 0x03), frame(0x08, 0x63, 0x02, 0x80)),
		cat(frame(0x32, 0x05, 0xFF, 0xFF, 0xFF), frame(0x4A, 0x01, 0x03, 0x00)),
		cat(frame(0x32, 0x05, 0x00, 0x01, 0x02), frame(0x4A, 0x01, 0x03, 0x00), frame(0x40, 0x01, 0x00, 0xA4, 0x04, 0x00)),
		cat(frame(0x4A, 0x02, 0x00), frame(0x40, 0x41, 0x01, 0x02), frame(0x40, 0x01)),
		cat(frame(0x60, 0xFF, 0x01, 0x03, 0x23, 0x10), ACKFrame),
		cat(frame(0x42, 0xBA, 0x01), frame(0x32, 0x02, 0x00, 0x00, 0x00), frame(0x42, 0x05, 0x00, 0x08)),
		cat(frame(0x44, 0x00), frame(0x54, 0x01), frame(0x52, 0x00), frame(0x00, 0x06)),
		cat(frame(0x10, 0x07), ACKFrame, NACKFrame, frame(0x04)),
		cat(frame(0x16, 0xF0), wake, frame(0x02)),
		ErrorFrame,
		{0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x01, 0x08, 0xF7, 0xD4, 0x40},
		{0x00, 0xFF, 0x03, 0xFD, 0xD4, 0x4A},
	}
}

// FuzzEmulator feeds arbitrary host bytes to a chip with a Type B card in
// its field. Nothing may panic or wedge the chip: afterwards (a line idle
// period, then a valid GetFirmwareVersion) the host must get ACK + answer.
func FuzzEmulator(f *testing.F) {
	for _, s := range seedFrames() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		card := &picctest.TypeB{ATQB: picctest.MyNumberATQB, WTX: len(in) % 3}
		e, p := newCapChip(t, fieldWith(card))
		defer e.detach()
		e.hostBytes(in)
		e.lineIdle()
		checkAlive(t, e, p)
		for len(p.ch) > 0 {
			fr := <-p.ch
			checkChipFrame(t, fr)
		}
	})
}

// checkChipFrame checks a frame the chip sent: ACK, error frame, or an
// information frame within 264 PD bytes with good checksums, and (for
// status-first answers) status bit 7 clear.
func checkChipFrame(t *testing.T, f []byte) {
	t.Helper()
	if bytes.Equal(f, ACKFrame) || bytes.Equal(f, ErrorFrame) {
		return
	}
	var p parser
	evs := p.feed(f)
	if len(evs) != 1 || evs[0].kind != evFrame {
		t.Fatalf("chip sent an unparsable frame % X", f)
	}
	d := evs[0].data
	if d[0] != tfiChip || len(d)-1 > MaxPD {
		t.Fatalf("chip frame TFI %02X, %d PD bytes", d[0], len(d)-1)
	}
	if len(d) > 2 && statusFirst(d[1]-1) && d[2]&0x80 != 0 {
		t.Fatalf("status bit 7 set: % X", d[:3])
	}
}

// FuzzParser: the frame parser never panics, reports only frames with
// good checksums, and never holds more than maxBuffered bytes.
func FuzzParser(f *testing.F) {
	for _, s := range seedFrames() {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, in []byte, cut int) {
		var p parser
		if cut < 0 {
			cut = -cut
		}
		cut %= len(in) + 1
		evs := append(p.feed(in[:cut]), p.feed(in[cut:])...)
		evs = append(evs, p.idle()...)
		for _, ev := range evs {
			if ev.kind != evFrame {
				continue
			}
			if len(ev.data) == 0 || len(ev.data) > MaxPD+1 {
				t.Fatalf("frame of %d bytes", len(ev.data))
			}
		}
		if len(p.buf) > maxBuffered {
			t.Fatalf("parser holds %d bytes", len(p.buf))
		}
	})
}

// hostilePICC answers every frame with bytes from the fuzz input.
type hostilePICC struct {
	tech nfc.Tech
	data []byte
}

func (h *hostilePICC) Techs() []nfc.Tech { return []nfc.Tech{h.tech} }
func (h *hostilePICC) FieldOn()          {}
func (h *hostilePICC) FieldOff()         {}
func (h *hostilePICC) Exchange(f rf.Frame) (rf.Frame, time.Duration, bool) {
	if len(h.data) < 2 {
		return rf.Frame{}, 0, false
	}
	n := int(h.data[0])%70 + 1
	if f.Tech == nfc.TechB && len(f.Data) == 3 && f.Data[0] == 0x05 && n > 8 {
		// Let the poll see something ATQB-shaped often enough.
		n = 12
	}
	n = min(n, len(h.data)-1)
	out := append([]byte(nil), h.data[1:1+n]...)
	proc := time.Duration(h.data[0]) * time.Microsecond
	h.data = h.data[1+n:]
	return rf.Frame{Tech: h.tech, Data: out}, proc, true
}

// FuzzHostilePICC: a PICC answering garbage (bad ATQB, bad blocks, endless
// chaining, WTX with any WTXM, wrong CID) is met with status codes, never
// a panic, a frame over 264 PD bytes or status bit 7.
func FuzzHostilePICC(f *testing.F) {
	f.Add([]byte{11, 0x50, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0x81, 0x41, 0, 0x01, 4, 0x0A, 0x01, 0x90, 0x00}, false)
	f.Add([]byte{11, 0x50, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0x81, 0x41, 0, 0x01, 2, 0xFA, 0x01, 0x3B, 3, 0x1A, 0x01, 0x00}, false)
	f.Add([]byte{1, 0x04, 0x00, 4, 0x01, 0x02, 0x03, 0x04, 0x04, 0, 0x20, 4, 0x05, 0x78, 0x80, 0x70}, true)
	f.Fuzz(func(t *testing.T, data []byte, typeA bool) {
		tech := nfc.TechB
		if typeA {
			tech = nfc.TechA
		}
		e, p := newCapChip(t, fieldWith(&hostilePICC{tech: tech, data: data}))
		defer e.detach()
		e.hostBytes(append([]byte{0x55}, frame(0x14, 0x01)...))
		e.hostBytes(frame(0x32, 0x05, 0x00, 0x01, 0x02))
		if typeA {
			e.hostBytes(frame(0x4A, 0x01, 0x00))
		} else {
			e.hostBytes(frame(0x4A, 0x01, 0x03, 0x00))
		}
		e.hostBytes(frame(0x40, 0x01, 0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00))
		e.hostBytes(frame(0x40, 0x01))
		e.hostBytes(frame(0x42, 0xBA, 0x01))
		e.hostBytes(frame(0x44, 0x00))
		checkAlive(t, e, p)
		for len(p.ch) > 0 {
			checkChipFrame(t, <-p.ch)
		}
	})
}
