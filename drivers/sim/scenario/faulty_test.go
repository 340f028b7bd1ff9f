package scenario

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"kazasu/drivers/sim/pn532emu"
	"kazasu/drivers/sim/pn532emu/picctest"
	"kazasu/drivers/sim/rf"
)

// host is a minimal PN532 HSU host over net.Pipe.
type host struct {
	t    *testing.T
	c    net.Conn
	emu  *pn532emu.Emulator
	done chan error
}

func newHost(t *testing.T, opts pn532emu.Options) *host {
	t.Helper()
	a, b := net.Pipe()
	e := pn532emu.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	h := &host{t: t, c: a, emu: e, done: make(chan error, 1)}
	go func() { h.done <- e.ServeStream(ctx, b) }()
	t.Cleanup(func() { cancel(); a.Close(); b.Close() })
	return h
}

func hframe(pd ...byte) []byte {
	f, err := pn532emu.EncodeFrame(0xD4, pd)
	if err != nil {
		panic(err)
	}
	return f
}

func (h *host) write(b []byte) {
	h.t.Helper()
	_ = h.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := h.c.Write(b); err != nil {
		h.t.Fatal(err)
	}
}

func (h *host) read(n int) []byte {
	h.t.Helper()
	_ = h.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(h.c, b); err != nil {
		h.t.Fatalf("read: %v", err)
	}
	return b
}

// frameRaw reads one whole frame (ACK or information frame) as bytes.
func (h *host) frameRaw() []byte {
	h.t.Helper()
	hd := h.read(5)
	if hd[3] == 0x00 && hd[4] == 0xFF {
		return append(hd, h.read(1)...)
	}
	n := int(hd[3])
	return append(hd, h.read(n+2)...)
}

func (h *host) cmd(pd ...byte) []byte {
	h.t.Helper()
	h.write(hframe(pd...))
	if ack := h.frameRaw(); !bytes.Equal(ack, pn532emu.ACKFrame) {
		h.t.Fatalf("want ACK, got % X", ack)
	}
	f := h.frameRaw()
	return f[6 : len(f)-2]
}

// activate wakes the chip and lists the Type B card (frames 1–3).
func (h *host) activate() {
	h.t.Helper()
	h.write([]byte{0x55, 0x55, 0x00})
	h.cmd(0x14, 0x01)
	h.cmd(0x32, 0x05, 0x00, 0x01, 0x02)
	if r := h.cmd(0x4A, 0x01, 0x03, 0x00); len(r) < 2 || r[1] != 1 {
		h.t.Fatalf("no target: % X", r)
	}
}

func TestWTXStorm(t *testing.T) {
	card := &picctest.TypeB{ATQB: picctest.MyNumberATQB}
	f := &rf.Field{}
	w := NewFaulty(card, []CardFault{{Kind: CardWTXStorm, APDU: 2, Count: 20}}, f)
	sp := &spy{PICC: w}
	f.Add(sp)
	h := newHost(t, pn532emu.Options{Field: f})
	h.activate()
	for i := 0; i < 3; i++ {
		if r := h.cmd(0x40, 0x01, 0x00, 0x84, 0x00, 0x00, byte(i)); !bytes.Equal(r, []byte{0x41, 0x00, 0x00, 0x84, 0x00, 0x00, byte(i), 0x90, 0x00}) {
			t.Fatalf("APDU %d through the storm: % X", i+1, r)
		}
	}
	if w.APDUs() != 3 {
		t.Fatalf("APDUs() = %d", w.APDUs())
	}
	wtx := 0
	for _, d := range sp.rx {
		if len(d) == 3 && d[0] == 0xFA && d[1] == 0x01 && d[2] == 0x01 {
			wtx++
		}
	}
	if wtx != 20 {
		t.Fatalf("the chip answered %d S(WTX), want 20", wtx)
	}
	// 20 WTX round trips of the card's FWT (309 ms) were modelled... as
	// extensions granted, not spent: the card answered at once each time.
	if n := h.emu.Meter().Get(pn532emu.CatAir); n <= 0 {
		t.Fatal("no air time")
	}
}

func TestSWFaultKeepsBlockNumbers(t *testing.T) {
	long := bytes.Repeat([]byte{0xAB}, 200) // chained answer (FSD 64)
	app := picctest.AppletFunc(func(apdu []byte) ([]byte, time.Duration) {
		return append(append([]byte(nil), long...), 0x90, 0x00), 0
	})
	card := &picctest.TypeB{ATQB: picctest.MyNumberATQB, Applet: app}
	f := &rf.Field{}
	f.Add(NewFaulty(card, []CardFault{{Kind: CardSW, APDU: 1, SW: 0x6A82}, {Kind: CardSW, APDU: 3, SW: 0x63C1}}, f))
	h := newHost(t, pn532emu.Options{Field: f})
	h.activate()
	if r := h.cmd(0x40, 0x01, 0x00, 0xB0, 0x00, 0x00, 0x00); !bytes.Equal(r, []byte{0x41, 0x00, 0x6A, 0x82}) {
		t.Fatalf("APDU 1 = % X, want 41 00 6A 82", r)
	}
	for apdu := 2; apdu <= 4; apdu++ {
		r := h.cmd(0x40, 0x01, 0x00, 0xB0, 0x00, 0x00, 0x00)
		var all []byte
		for {
			if r[1]&0x3F != 0 {
				t.Fatalf("APDU %d: status % X", apdu, r[1])
			}
			all = append(all, r[2:]...)
			if r[1]&0x40 == 0 {
				break
			}
			r = h.cmd(0x40, 0x01)
		}
		want := append(append([]byte(nil), long...), 0x90, 0x00)
		if apdu == 3 {
			want = []byte{0x63, 0xC1}
		}
		if !bytes.Equal(all, want) {
			t.Fatalf("APDU %d: % X…, want % X…", apdu, all[:min(4, len(all))], want[:2])
		}
	}
	if len(card.Apdus) != 4 {
		t.Fatalf("the card executed %d APDUs, want 4", len(card.Apdus))
	}
}

func TestRemoveBeforeAPDU(t *testing.T) {
	card := &picctest.TypeB{ATQB: picctest.MyNumberATQB}
	f := &rf.Field{}
	w := NewFaulty(card, []CardFault{{Kind: CardRemove, APDU: 2}}, f)
	f.Add(w)
	h := newHost(t, pn532emu.Options{Field: f})
	h.activate()
	if r := h.cmd(0x40, 0x01, 0x00, 0x84, 0x00, 0x00, 0x08); r[1] != 0x00 {
		t.Fatalf("APDU 1: % X", r)
	}
	if r := h.cmd(0x40, 0x01, 0x00, 0x84, 0x00, 0x00, 0x08); !bytes.Equal(r, []byte{0x41, 0x01}) {
		t.Fatalf("APDU 2 after removal: % X, want 41 01", r)
	}
	if len(f.PICCs()) != 0 {
		t.Fatal("card still in the field")
	}
	if len(card.Apdus) != 1 {
		t.Fatalf("card saw %d APDUs", len(card.Apdus))
	}
}

func TestHostFaults(t *testing.T) {
	s, err := ParseString("fault checksum frame=2\nfault no-ack frame=3\nfault rx-checksum frame=4\nfault drop frame=5 bytes=2\nfault gone frame=7")
	if err != nil {
		t.Fatal(err)
	}
	h := newHost(t, pn532emu.Options{Faults: s.HostFaults})
	h.write([]byte{0x55, 0x55, 0x00})
	h.cmd(0x14, 0x01) // frame 1
	// Frame 2: the answer's DCS is wrong.
	h.write(hframe(0x02))
	h.frameRaw()
	bad := h.frameRaw()
	var sum byte
	for _, c := range bad[5 : len(bad)-1] {
		sum += c
	}
	if sum == 0 {
		t.Fatalf("frame 2 answer has a good DCS: % X", bad)
	}
	// Frame 3: no ACK, straight to the answer.
	h.write(hframe(0x02))
	if f := h.frameRaw(); bytes.Equal(f, pn532emu.ACKFrame) {
		t.Fatal("frame 3 was acknowledged")
	}
	// Frame 4 is "damaged": nothing comes back; frame 5's ACK is next,
	// then its answer two bytes short.
	h.write(hframe(0x02))
	h.write(hframe(0x02))
	if f := h.frameRaw(); !bytes.Equal(f, pn532emu.ACKFrame) {
		t.Fatalf("after the damaged frame 4: % X", f)
	}
	short := h.read(11) // 13-byte answer minus 2
	if bytes.Equal(short[:5], []byte{0, 0, 0xFF, 0x06, 0xFA}) && short[10] == 0x00 && short[5] == 0xD5 && short[6] == 0x03 && short[7] == 0x32 && short[8] == 0x01 && short[9] == 0x06 {
		t.Fatalf("answer to frame 5 intact: % X", short)
	}
	h.cmd(0x02) // frame 6
	h.write(hframe(0x02))
	select {
	case err := <-h.done:
		if !errors.Is(err, pn532emu.ErrReaderGone) {
			t.Fatalf("ServeStream = %v, want ErrReaderGone", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("frame 7 did not end the link")
	}
}

func TestRunner(t *testing.T) {
	s, err := ParseString("card b pin=1\ntap\nwait-frames 4\nremove\nwait-frames 6\ntap\nwait-apdus 1\nwait 1ms")
	if err != nil {
		t.Fatal(err)
	}
	var made []string
	factory := func(kind string, opts []KeyValue) (rf.PICC, error) {
		made = append(made, fmt.Sprintf("%s %v", kind, opts))
		return &picctest.TypeB{ATQB: picctest.MyNumberATQB}, nil
	}
	f := &rf.Field{}
	h := newHost(t, pn532emu.Options{Field: f})
	r := NewRunner(s, f, factory, h.emu.Frames)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	h.write([]byte{0x55, 0x55, 0x00})
	h.cmd(0x14, 0x01)
	h.cmd(0x32, 0x05, 0x00, 0x01, 0x02)
	// Wait for the tap (the runner's first step) by polling the field.
	for len(f.PICCs()) == 0 {
		time.Sleep(time.Millisecond)
	}
	if r := h.cmd(0x4A, 0x01, 0x03, 0x00); r[1] != 1 {
		t.Fatalf("frame 3: % X", r)
	}
	h.cmd(0x02) // frame 4: the runner removes the card
	for len(f.PICCs()) != 0 {
		time.Sleep(time.Millisecond)
	}
	if r := h.cmd(0x4A, 0x01, 0x03, 0x00); !bytes.Equal(r, []byte{0x4B, 0x00}) { // frame 5
		t.Fatalf("after removal: % X", r)
	}
	h.cmd(0x02) // frame 6: the runner taps again
	for len(f.PICCs()) == 0 {
		time.Sleep(time.Millisecond)
	}
	h.cmd(0x4A, 0x01, 0x03, 0x00)
	h.cmd(0x40, 0x01, 0x00, 0x84, 0x00, 0x00, 0x08)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(made) != 1 || made[0] != "b [{pin 1}]" {
		t.Fatalf("factory calls %q", made)
	}
	if r.APDUs() != 1 || r.Card() == nil {
		t.Fatalf("APDUs %d, card %v", r.APDUs(), r.Card())
	}
	// reset needs a chip.
	s3, _ := ParseString("reset")
	if err := NewRunner(s3, f, factory, nil).Run(ctx); err == nil || !strings.Contains(err.Error(), "line 1: reset: no reader chip") {
		t.Fatalf("reset without a chip: %v", err)
	}
	resets := 0
	r3 := NewRunner(s3, f, factory, nil)
	r3.ChipReset = func() { resets++ }
	if err := r3.Run(ctx); err != nil || resets != 1 {
		t.Fatalf("reset: %v, %d calls", err, resets)
	}
	// A tap with no card is an error naming the line.
	s2, _ := ParseString("\ntap")
	if err := NewRunner(s2, f, factory, nil).Run(ctx); err == nil || err.Error() != "scenario: line 2: tap: no card: a card directive must come first" {
		t.Fatalf("tap without card: %v", err)
	}
}

// spy records the frames the chip sends to a PICC.
type spy struct {
	rf.PICC
	rx [][]byte
}

func (s *spy) Exchange(f rf.Frame) (rf.Frame, time.Duration, bool) {
	s.rx = append(s.rx, append([]byte(nil), f.Data...))
	return s.PICC.Exchange(f)
}
