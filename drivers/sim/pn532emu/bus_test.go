package pn532emu

import (
	"bytes"
	"math/bits"
	"testing"
	"time"

	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"

	"kazasu/drivers/sim/pn532emu/picctest"
)

// pollUntil calls f until it reports true, giving the chip's worker
// goroutine a chance to run; it fails after many attempts (no timing
// assertion: the bound only keeps a broken emulator from hanging).
func pollUntil(t *testing.T, what string, f func() bool) {
	t.Helper()
	for i := 0; i < 20000; i++ {
		if f() {
			return
		}
		time.Sleep(50 * time.Microsecond)
	}
	t.Fatalf("%s: never ready", what)
}

// i2cCmd does what libnfc's pn532_i2c does: write the frame, poll 7-byte
// reads until the ACK comes, then poll long reads until the response.
func i2cCmd(t *testing.T, b *I2CBus, pd ...byte) []byte {
	t.Helper()
	if err := b.Tx(I2CAddr, frame(pd...), nil); err != nil {
		t.Fatal(err)
	}
	r := make([]byte, 7)
	pollUntil(t, "I2C ACK", func() bool {
		if err := b.Tx(I2CAddr, nil, r); err != nil {
			t.Fatal(err)
		}
		return r[0] == 0x01
	})
	if !bytes.Equal(r[1:], ACKFrame) {
		t.Fatalf("I2C ACK read % X", r)
	}
	r = make([]byte, MaxPD+12)
	pollUntil(t, "I2C response", func() bool {
		if err := b.Tx(I2CAddr, nil, r); err != nil {
			t.Fatal(err)
		}
		return r[0] == 0x01
	})
	return decodeTestFrame(t, r[1:])
}

// decodeTestFrame decodes a chip frame at the start of b (TFI dropped;
// nil for the error frame).
func decodeTestFrame(t *testing.T, b []byte) []byte {
	t.Helper()
	if bytes.HasPrefix(b, ErrorFrame) {
		return nil
	}
	if !bytes.HasPrefix(b, []byte{0, 0, 0xFF}) || b[3]+b[4] != 0 {
		t.Fatalf("bad frame % X", b[:8])
	}
	n := int(b[3])
	body := b[5 : 5+n+1]
	var s byte
	for _, c := range body {
		s += c
	}
	if s != 0 || body[0] != tfiChip {
		t.Fatalf("bad frame body % X", body)
	}
	return body[1:n]
}

func TestI2C(t *testing.T) {
	card := &picctest.TypeB{ATQB: picctest.MyNumberATQB}
	e := New(Options{Field: fieldWith(card)})
	b, err := e.I2C()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := e.I2C(); err == nil {
		t.Fatal("a second host interface attached")
	}
	if err := b.Tx(0x25, []byte{0}, nil); err == nil {
		t.Fatal("address 0x25 acknowledged")
	}
	if err := b.SetSpeed(400 * physic.KiloHertz); err != nil {
		t.Fatal(err)
	}
	// Nothing pending: busy.
	r := make([]byte, 4)
	if err := b.Tx(I2CAddr, nil, r); err != nil || r[0] != 0x00 {
		t.Fatalf("idle read = % X, %v", r, err)
	}
	if got := i2cCmd(t, b, 0x14, 0x01); !bytes.Equal(got, []byte{0x15}) {
		t.Fatalf("SAMConfiguration = % X", got)
	}
	if got := i2cCmd(t, b, 0x02); !bytes.Equal(got, []byte{0x03, 0x32, 0x01, 0x06, 0x07}) {
		t.Fatalf("GetFirmwareVersion = % X", got)
	}
	i2cCmd(t, b, 0x32, 0x05, 0x00, 0x01, 0x02)
	if got := i2cCmd(t, b, 0x4A, 0x01, 0x03, 0x00); len(got) != 17 || got[1] != 1 {
		t.Fatalf("InListPassiveTarget = % X", got)
	}
	if got := i2cCmd(t, b, 0x40, 0x01, 0x00, 0x84, 0x00, 0x00, 0x08); !bytes.Equal(got[:2], []byte{0x41, 0x00}) {
		t.Fatalf("InDataExchange = % X", got)
	}
	// Seeed's way: read the header only, NACK, read the whole frame again.
	if err := b.Tx(I2CAddr, frame(0x02), nil); err != nil {
		t.Fatal(err)
	}
	r = make([]byte, 7)
	pollUntil(t, "ACK", func() bool { _ = b.Tx(I2CAddr, nil, r); return r[0] == 1 })
	r = make([]byte, 6)
	pollUntil(t, "header", func() bool { _ = b.Tx(I2CAddr, nil, r); return r[0] == 1 })
	if err := b.Tx(I2CAddr, NACKFrame, nil); err != nil {
		t.Fatal(err)
	}
	r = make([]byte, 20)
	pollUntil(t, "resent frame", func() bool { _ = b.Tx(I2CAddr, nil, r); return r[0] == 1 })
	if got := decodeTestFrame(t, r[1:]); !bytes.Equal(got, []byte{0x03, 0x32, 0x01, 0x06, 0x07}) {
		t.Fatalf("after NACK = % X", got)
	}
	// I2C timing: 9 bits per byte plus address, start and stop, at 400 kHz.
	if d := e.Meter().Get(CatHostLink); d <= 0 {
		t.Fatalf("no host-link time accounted")
	}
	// PowerDown with I2C wake-up: the next transaction wakes the chip.
	i2cCmd(t, b, 0x16, 0x80)
	if e.Power() != PowerDown {
		t.Fatalf("power = %v", e.Power())
	}
	if got := i2cCmd(t, b, 0x02); len(got) != 5 || e.Power() != Normal {
		t.Fatalf("after wake: % X, %v", got, e.Power())
	}
	// PowerDown without I2C wake-up: the address is not acknowledged.
	i2cCmd(t, b, 0x16, 0x10)
	if err := b.Tx(I2CAddr, frame(0x02), nil); err == nil {
		t.Fatal("sleeping chip without I2C wake-up acknowledged its address")
	}
}

// spiHost is a host SPI driver on a controller without LSB-first support:
// it reverses the bits of every byte, as libnfc's pn532_spi does.
type spiHost struct {
	t *testing.T
	c spi.Conn
}

func (h spiHost) tx(op byte, out []byte, in int) []byte {
	h.t.Helper()
	w := make([]byte, 1+max(len(out), in))
	w[0] = bits.Reverse8(op)
	for i, b := range out {
		w[1+i] = bits.Reverse8(b)
	}
	r := make([]byte, len(w))
	if err := h.c.Tx(w, r); err != nil {
		h.t.Fatal(err)
	}
	for i := range r {
		r[i] = bits.Reverse8(r[i])
	}
	return r[1:]
}

func (h spiHost) cmd(pd ...byte) []byte {
	h.t.Helper()
	h.tx(spiDataWrite, frame(pd...), 0)
	pollUntil(h.t, "SPI ACK", func() bool { return h.tx(spiStatusRead, nil, 1)[0] == 0x01 })
	if got := h.tx(spiDataRead, nil, 6); !bytes.Equal(got, ACKFrame) {
		h.t.Fatalf("SPI ACK = % X", got)
	}
	pollUntil(h.t, "SPI response", func() bool { return h.tx(spiStatusRead, nil, 1)[0] == 0x01 })
	return decodeTestFrame(h.t, h.tx(spiDataRead, nil, MaxPD+11))
}

func TestSPI(t *testing.T) {
	e := New(Options{})
	p, err := e.SPI()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Connect(physic.MegaHertz, spi.Mode3, 8); err == nil {
		t.Fatal("mode 3 accepted")
	}
	c, err := p.Connect(physic.MegaHertz, spi.Mode0, 8)
	if err != nil {
		t.Fatal(err)
	}
	h := spiHost{t: t, c: c}
	if got := h.cmd(0x14, 0x01); !bytes.Equal(got, []byte{0x15}) {
		t.Fatalf("SAMConfiguration = % X", got)
	}
	if got := h.cmd(0x02); !bytes.Equal(got, []byte{0x03, 0x32, 0x01, 0x06, 0x07}) {
		t.Fatalf("GetFirmwareVersion = % X", got)
	}
	// A host that forgets to reverse the bits gets nothing sensible: its
	// "status read" 02 is 40 on the wire, which is no operation at all.
	r := make([]byte, 2)
	if err := c.Tx([]byte{0x02, 0x00}, r); err != nil || r[1] != 0x00 {
		t.Fatalf("unreversed status read = % X, %v", r, err)
	}
	// Half-duplex style packets in one transaction work as well.
	w := []spi.Packet{{W: []byte{bits.Reverse8(spiStatusRead)}, KeepCS: true}, {R: make([]byte, 1)}}
	if err := c.TxPackets(w); err != nil {
		t.Fatal(err)
	}
	if d := e.Meter().Get(CatHostLink); d <= 0 {
		t.Fatal("no SPI time accounted")
	}
}
