package pn532emu

import (
	"flag"
	"math"
	"testing"
	"time"

	"kazasu/drivers/nfc"
	"kazasu/drivers/sim/card"
	"kazasu/drivers/sim/pn532emu/picctest"
	"kazasu/drivers/sim/vclock"
)

// floorAir is iso14443b.md §6.1 computed here independently: one round
// trip of an n-byte PCD frame and an m-byte PICC frame at 106 kbit/s.
func floorAir(n, m int) time.Duration {
	const fc = 13.56e6
	etu := 128 / fc
	tr := (64*16 + 80*16 + 1792) / fc
	return time.Duration((etu*float64(10*n+22+10*m+22) + tr) * 1e9)
}

func near(a, b time.Duration) bool { return math.Abs(float64(a-b)) <= float64(2*time.Microsecond) }

// TestTimingSelectAP checks the model against iso14443b.md §6.2 and §6.6:
// SELECT AP (15 bytes in, 90 00 out) through a PN532 (FSD 64, CID 1) is
// 3.08 ms on air and 3.73 ms on a 115200-baud UART.
func TestTimingSelectAP(t *testing.T) {
	sw := picctest.AppletFunc(func([]byte) ([]byte, time.Duration) { return []byte{0x90, 0x00}, 0 })
	c := &picctest.TypeB{ATQB: picctest.MyNumberATQB, Applet: sw}
	h := newHost(t, Options{Field: fieldWith(c)}, false)
	h.cmd(0x32, 0x05, 0x00, 0x01, 0x02)
	h.cmd(0x4A, 0x01, 0x03, 0x00)
	h.emu.Meter().Reset()
	apdu := []byte{0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01}
	h.cmd(append([]byte{0x40, 0x01}, apdu...)...)
	m := h.emu.Meter()
	// I-block: PCB + CID + 15 + CRC = 19 bytes; answer PCB + CID + 2 + CRC = 6.
	if got, want := m.Get(CatAir), floorAir(19, 6); !near(got, want) {
		t.Errorf("air %v, want %v", got, want)
	}
	if got := m.Get(CatAir); got.Round(10*time.Microsecond) != 3080*time.Microsecond {
		t.Errorf("air %v, iso14443b.md §6.2 says 3.08 ms", got)
	}
	// Host link: 25-byte command frame, 6-byte ACK, 12-byte answer, 10 bits each.
	if got, want := m.Get(CatHostLink), time.Duration(43*10*int64(time.Second)/115200); !near(got, want) {
		t.Errorf("host link %v, want %v", got, want)
	}
	if got := m.Get(CatHostLink).Round(10 * time.Microsecond); got != 3730*time.Microsecond {
		t.Errorf("host link %v, iso14443b.md §6.6 says 3.73 ms", got)
	}
	if got := m.Get(CatFirmware); got != DefaultTiming.Firmware {
		t.Errorf("firmware %v, want %v", got, DefaultTiming.Firmware)
	}
}

func TestTimingHelpers(t *testing.T) {
	if got := fwt(10); got.Round(100*time.Microsecond) != 309300*time.Microsecond {
		t.Errorf("FWT(10) = %v, want 309.3 ms", got)
	}
	if fwt(15) != fwt(4) {
		t.Error("FWI 15 not treated as 4")
	}
	if got := rfTimeout(0x0A); got != 51200*time.Microsecond {
		t.Errorf("timeout code 0A = %v", got)
	}
	if got := rfTimeout(0x10); got != 3276800*time.Microsecond {
		t.Errorf("timeout code 10 = %v", got)
	}
	if got := i2cTime(10, 100_000); got != 1010*time.Microsecond { // (9·11 + 2) bits
		t.Errorf("I2C 10 bytes at 100 kHz = %v", got)
	}
	if got := spiTime(10, 1_000_000); got != 80*time.Microsecond {
		t.Errorf("SPI 10 bytes at 1 MHz = %v", got)
	}
	if got := frameAirTime(nfc.TechB, 5, 0); got != 72*etu106 {
		t.Errorf("REQB on air = %v", got)
	}
}

// TestRealClockSpendsModelledTime: with a real clock the time passes; with
// the virtual clock only the clock moves. (Lower bounds only: no test may
// depend on a machine being fast.)
func TestRealClockSpendsModelledTime(t *testing.T) {
	v := vclock.NewVirtual(time.Unix(0, 0))
	h := newHost(t, Options{Clock: v}, false)
	before := v.Now()
	h.firmware()
	if d := v.Now().Sub(before); d <= 0 {
		t.Fatalf("virtual clock did not move: %v", d)
	}
	r := newHost(t, Options{Clock: vclock.Real{}, Timing: Timing{Firmware: 20 * time.Millisecond, I2CHz: 1, SPIHz: 1}}, false)
	start := time.Now()
	r.firmware()
	if el := time.Since(start); el < 20*time.Millisecond {
		t.Fatalf("real clock: GetFirmwareVersion took %v, the model says ≥ 20 ms", el)
	}
}

// BenchmarkJPKITransaction runs the kiosk's user authentication (jpki.md
// §5.5: SELECT AP, token, whole auth certificate, retry counter, VERIFY,
// SELECT key, SIGN) against the simulated My Number Card through the
// emulated PN532 on a 115200-baud HSU, and reports the modelled time per
// transaction, its parts, and the ratio to the physical floor (air + host
// link, i.e. without firmware and card processing).
//
//	go test -run XXX -bench JPKITransaction ./drivers/sim/pn532emu
//	go test -run XXX -bench JPKITransaction -realtime ./drivers/sim/pn532emu  (wall time)
func BenchmarkJPKITransaction(b *testing.B) {
	tok, err := card.New(card.KindMyNumber, card.Options{Seed: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	var clock vclock.Clock
	if *realtime {
		clock = vclock.Real{}
	}
	h := newHost(b, Options{Field: fieldWith(tok), Clock: clock}, false)
	h.cmd(0x32, 0x05, 0x00, 0x01, 0x02)
	b.ResetTimer()
	var model time.Duration
	for i := 0; i < b.N; i++ {
		h.emu.Meter().Reset()
		jpkiSequence(b, h)
		model += h.emu.Meter().Total()
	}
	b.StopTimer()
	m := h.emu.Meter()
	phys := m.Get(CatAir) + m.Get(CatHostLink)
	b.ReportMetric(float64(model.Microseconds())/1000/float64(b.N), "model-ms/op")
	b.ReportMetric(float64(m.Get(CatAir).Microseconds())/1000, "air-ms")
	b.ReportMetric(float64(m.Get(CatHostLink).Microseconds())/1000, "link-ms")
	b.ReportMetric(float64(m.Get(CatCard).Microseconds())/1000, "card-ms")
	b.ReportMetric(float64(m.Total())/float64(phys), "model/floor")
}

var realtime = flag.Bool("realtime", false, "BenchmarkJPKITransaction: spend the modelled time on a real clock")

// xchg sends one APDU with InDataExchange and collects MI continuations.
func xchg(tb testing.TB, h *testHost, apdu []byte) []byte {
	tb.Helper()
	r := h.cmd(append([]byte{0x40, 0x01}, apdu...)...)
	var out []byte
	for {
		if len(r) < 2 || r[1]&0x3F != 0 {
			tb.Fatalf("InDataExchange: % X", r)
		}
		out = append(out, r[2:]...)
		if r[1]&statusMI == 0 {
			return out
		}
		r = h.cmd(0x40, 0x01)
	}
}

func swOf(r []byte) uint16 {
	if len(r) < 2 {
		return 0
	}
	return uint16(r[len(r)-2])<<8 | uint16(r[len(r)-1])
}

// jpkiSequence activates the card and runs jpki.md §5.5 steps 1–6.
func jpkiSequence(tb testing.TB, h *testHost) {
	tb.Helper()
	if r := h.cmd(0x4A, 0x01, 0x03, 0x00); len(r) < 2 || r[1] != 1 {
		tb.Fatalf("InListPassiveTarget: % X", r)
	}
	must := func(apdu []byte, want uint16) []byte {
		r := xchg(tb, h, apdu)
		if swOf(r) != want {
			tb.Fatalf("APDU %02X %02X: SW %04X, want %04X", apdu[0], apdu[1], swOf(r), want)
		}
		return r
	}
	must([]byte{0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01}, 0x9000)
	must([]byte{0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x06}, 0x9000)
	must([]byte{0x00, 0xB0, 0x00, 0x00, 0x20}, 0x9000)
	must([]byte{0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x0A}, 0x9000)
	hd := must([]byte{0x00, 0xB0, 0x00, 0x00, 0x04}, 0x9000)
	total := int(hd[2])<<8 | int(hd[3]) + 4
	for off := 0; off < total; off += 256 {
		n := min(256, total-off)
		must([]byte{0x00, 0xB0, byte(off >> 8), byte(off), byte(n)}, 0x9000)
	}
	must([]byte{0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x18}, 0x9000)
	must([]byte{0x00, 0x20, 0x00, 0x80}, 0x63C3)
	must(append([]byte{0x00, 0x20, 0x00, 0x80, 0x04}, "1234"...), 0x9000)
	must([]byte{0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x17}, 0x9000)
	di := append([]byte{0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}, make([]byte, 32)...)
	if r := must(append(append([]byte{0x80, 0x2A, 0x00, 0x80, byte(len(di))}, di...), 0x00), 0x9000); len(r) != 258 {
		tb.Fatalf("signature of %d bytes", len(r)-2)
	}
	// Drop the field: the security status is cleared for the next round.
	h.cmd(0x32, 0x01, 0x00)
}

// TestJPKISequenceModelled runs the benchmark's transaction once on the
// virtual clock and checks the parts of the modelled time against the
// floors of iso14443b.md §6.6–6.7 (PN532, UART 115200: host link and air
// each in the 200–300 ms range for a ~1.9 kB certificate).
func TestJPKISequenceModelled(t *testing.T) {
	tok, err := card.New(card.KindMyNumber, card.Options{Seed: "bench"})
	if err != nil {
		t.Fatal(err)
	}
	h := newHost(t, Options{Field: fieldWith(tok)}, false)
	h.cmd(0x32, 0x05, 0x00, 0x01, 0x02)
	h.emu.Meter().Reset()
	jpkiSequence(t, h)
	m := h.emu.Meter()
	t.Logf("modelled: %v", m)
	if a := m.Get(CatAir); a < 150*time.Millisecond || a > 400*time.Millisecond {
		t.Errorf("air %v outside the plausible range for this transaction", a)
	}
	if l := m.Get(CatHostLink); l < 150*time.Millisecond || l > 400*time.Millisecond {
		t.Errorf("host link %v outside the plausible range", l)
	}
	if c := m.Get(CatCard); c <= 0 {
		t.Error("the card's processing time was not accounted")
	}
}
