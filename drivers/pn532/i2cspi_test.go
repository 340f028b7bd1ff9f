package pn532

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/conntest"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/spi/spitest"

	"kazasu/drivers/nfc"
	pt "kazasu/drivers/pn532/pn532test"
)

// readLen is how many frame bytes the driver reads for an answer with at
// most maxResp data bytes (anyLen: a short first read of firstReadAnyLen;
// longer answers are read again after a NACK).
func readLen(maxResp int) int {
	if maxResp < 0 {
		return firstReadAnyLen
	}
	return maxResp + 12
}

// ix is one command exchange on I2C without IRQ: write; poll until ready;
// read the ACK; poll (busy first, if asked) until ready; read the answer.
func ix(busy int, cmd byte, params []byte, maxResp int, answer ...byte) []i2ctest.IO {
	out := []i2ctest.IO{
		pt.I2CWrite(pt.Cmd(cmd, params...)),
		pt.I2CStatus(true),
		pt.I2CRead(pt.Ack(), 6),
	}
	for i := 0; i < busy; i++ {
		out = append(out, pt.I2CStatus(false))
	}
	return append(out, pt.I2CStatus(true), pt.I2CRead(pt.Rsp(cmd, answer...), readLen(maxResp)))
}

func iops(parts ...[]i2ctest.IO) []i2ctest.IO {
	var out []i2ctest.IO
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func i2cBringUp() []i2ctest.IO {
	return iops(
		ix(2, 0x14, []byte{0x01, 0x00, 0x00}, 0), // SAMConfiguration; the chip wakes slowly
		ix(0, 0x02, nil, 4, fwV16...),            // GetFirmwareVersion
		ix(0, 0x12, []byte{0x14}, 0),             // SetParameters
	)
}

func TestI2CTranscript(t *testing.T) {
	c := newFakeClock()
	start := c.Now()
	bus := &i2ctest.Playback{DontPanic: true, Ops: iops(
		i2cBringUp(),
		ix(0, 0x32, []byte{0x05, 0x02, 0x01, 0x02}, 0),
		ix(0, 0x4A, []byte{0x01, 0x03, 0x00}, 1+48, pollBResp...),
		// SELECT, answered with MI: the rest follows a Tg-only exchange.
		// The read is sized by the APDU: case 3, so status and SW1 SW2.
		ix(3, 0x40, pt.Hex("01 00A4040C02 3F00"), 3, 0x40, 0x90),
		ix(0, 0x40, []byte{0x01}, anyLen, 0x00, 0x00),
		// Close: release the card, field off and power down; the bus stays
		// open.
		ix(0, 0x52, []byte{0x00}, 1, 0x00),
		ix(0, 0x32, []byte{0x01, 0x00}, 0),
		ix(0, 0x16, []byte{0xF0}, 1, 0x00),
	)}
	d, err := NewI2C(bus, &Opts{clock: c})
	if err != nil {
		t.Fatalf("NewI2C: %v", err)
	}
	if got := d.Info().Driver; got != "pn532_i2c" {
		t.Errorf("Driver = %q", got)
	}
	card, err := d.Poll(context.Background(), nfc.PollOptions{Order: []nfc.Tech{nfc.TechB}})
	if err != nil {
		t.Fatal(err)
	}
	rsp, err := card.Transceive(context.Background(), pt.Hex("00A4040C02 3F00"))
	if err != nil || !bytes.Equal(rsp, pt.Hex("9000")) {
		t.Fatalf("Transceive = % X, %v", rsp, err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
	// Five busy polls, each followed by one PollInterval of sleep.
	if got, want := c.Now().Sub(start), 5*DefaultOpts.PollInterval; got != want {
		t.Errorf("slept %v, want %v", got, want)
	}
}

func TestI2CTimeoutAborts(t *testing.T) {
	// The chip ACKs InListPassiveTarget and never gets ready: after the
	// poll timeout (all spent in PollInterval sleeps on the fake clock) the
	// driver aborts with an ACK frame, and the next command works.
	d0 := &Dev{opts: DefaultOpts}
	total := d0.pollTimeout() + time.Duration(readLen(1+48))*i2cByteTime()
	// A status read at every PollInterval step from the full timeout down to
	// zero, both ends included.
	polls := int((total + DefaultOpts.PollInterval - 1) / DefaultOpts.PollInterval)
	var ops []i2ctest.IO
	ops = append(ops, i2cBringUp()...)
	ops = append(ops, ix(0, 0x32, []byte{0x05, 0x02, 0x01, 0x02}, 0)...)
	ops = append(ops, pt.I2CWrite(pt.Cmd(0x4A, 0x01, 0x03, 0x00)), pt.I2CStatus(true), pt.I2CRead(pt.Ack(), 6))
	for i := 0; i <= polls; i++ {
		ops = append(ops, pt.I2CStatus(false))
	}
	ops = append(ops, pt.I2CWrite(pt.Ack()))
	ops = append(ops, ix(0, 0x02, nil, 4, fwV16...)...)
	bus := &i2ctest.Playback{DontPanic: true, Ops: ops}
	d, err := NewI2C(bus, &Opts{clock: newFakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.InListPassiveTarget(context.Background(), 1, BrTy106B, []byte{0}); !errors.Is(err, nfc.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if _, err := d.GetFirmwareVersion(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}

func i2cByteTime() time.Duration {
	return time.Duration(9 * int64(time.Second) / 100_000)
}

func TestI2CBadAddress(t *testing.T) {
	if _, err := NewI2C(&i2ctest.Playback{}, &Opts{I2CAddr: 0x90}); err == nil {
		t.Fatal("NewI2C accepted an 8-bit address")
	}
	if _, err := NewI2C(nil, nil); err == nil {
		t.Fatal("NewI2C(nil) succeeded")
	}
}

// sx is one command exchange on SPI with P70_IRQ wired and low (ready):
// no status reads, only the data write and the two data reads.
func sx(cmd byte, params []byte, maxResp int, answer ...byte) []conntest.IO {
	return []conntest.IO{
		pt.SPIWrite(pt.Cmd(cmd, params...)),
		pt.SPIRead(pt.Ack(), 6),
		pt.SPIRead(pt.Rsp(cmd, answer...), readLen(maxResp)),
	}
}

func sops(parts ...[]conntest.IO) []conntest.IO {
	var out []conntest.IO
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestSPITranscriptWithIRQ(t *testing.T) {
	long := make([]byte, 300) // an APDU beyond 262 bytes
	for i := range long {
		long[i] = byte(i)
	}
	port := &spitest.Playback{Playback: conntest.Playback{DontPanic: true, Ops: sops(
		// Wake-up: one status read selects the chip, then 2 ms.
		[]conntest.IO{pt.SPIStatus(true)},
		sx(0x14, []byte{0x01, 0x00, 0x01}, 0), // SAMConfiguration, IRQ on
		sx(0x02, nil, 4, fwV16...),
		sx(0x12, []byte{0x14}, 0),
		sx(0x32, []byte{0x05, 0x02, 0x01, 0x02}, 0),
		sx(0x4A, []byte{0x01, 0x03, 0x00}, 1+48, pollBResp...),
		sx(0x40, append([]byte{0x41}, long[:262]...), 1, 0x00), // a bare status
		sx(0x40, append([]byte{0x01}, long[262:]...), anyLen, 0x00, 0x90, 0x00),
	)}}
	irq := newPin("IRQ", gpio.Low)
	c := newFakeClock()
	start := c.Now()
	d, err := NewSPI(port, &Opts{IRQ: irq, clock: c})
	if err != nil {
		t.Fatalf("NewSPI: %v", err)
	}
	if got := c.Now().Sub(start); got != 2*time.Millisecond {
		t.Errorf("wake-up slept %v, want 2ms", got)
	}
	card, err := d.Poll(context.Background(), nfc.PollOptions{Order: []nfc.Tech{nfc.TechB}})
	if err != nil {
		t.Fatal(err)
	}
	rsp, err := card.Transceive(context.Background(), long)
	if err != nil || !bytes.Equal(rsp, pt.Hex("9000")) {
		t.Fatalf("Transceive = % X, %v", rsp, err)
	}
	if err := port.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSPIBitOrder(t *testing.T) {
	// The wire carries every byte bit-reversed: 01 (data write) is 80, the
	// ACK's FF stays FF, D4 is 2B.
	w := pt.SPIWrite(pt.Cmd(0x02)).W
	if !bytes.Equal(w, pt.Hex("80 00 00 FF 40 7F 2B 40 54 00")) {
		t.Fatalf("GetFirmwareVersion on the SPI wire: % X", w)
	}
}

func TestSPIStatusPollingAndGarbage(t *testing.T) {
	port := &spitest.Playback{Playback: conntest.Playback{DontPanic: true, Ops: sops(
		[]conntest.IO{pt.SPIStatus(false)}, // wake-up read (busy is fine)
		[]conntest.IO{
			pt.SPIWrite(pt.Cmd(0x14, 0x01, 0x00, 0x00)),
			pt.SPIStatus(false), pt.SPIStatus(true), pt.SPIRead(pt.Ack(), 6),
			pt.SPIStatus(true),
			// The answer, damaged: the driver NACKs and reads it again.
			pt.SPIRead(pt.Corrupt(pt.Rsp(0x14)), readLen(0)),
			pt.SPIWrite(pt.Nack()),
			pt.SPIStatus(true), pt.SPIRead(pt.Rsp(0x14), readLen(0)),
		},
		[]conntest.IO{
			pt.SPIWrite(pt.Cmd(0x02)),
			pt.SPIStatus(true), pt.SPIRead(pt.Ack(), 6),
			// Leading junk before the frame in the read.
			pt.SPIStatus(true), pt.SPIRead(pt.Cat(pt.Hex("FF 00 13"), pt.Rsp(0x02, fwV16...)), readLen(4)),
		},
		[]conntest.IO{
			pt.SPIWrite(pt.Cmd(0x12, 0x14)),
			pt.SPIStatus(true), pt.SPIRead(pt.Ack(), 6),
			pt.SPIStatus(true), pt.SPIRead(pt.Rsp(0x12), readLen(0)),
		},
	)}}
	if _, err := NewSPI(port, &Opts{clock: newFakeClock()}); err != nil {
		t.Fatalf("NewSPI: %v", err)
	}
	if err := port.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestResetWithRSTPDN(t *testing.T) {
	rst := newPin("RSTPDN", gpio.High)
	bus := &i2ctest.Playback{DontPanic: true, Ops: iops(i2cBringUp(), i2cBringUp())}
	c := newFakeClock()
	d, err := NewI2C(bus, &Opts{Reset: rst, clock: c})
	if err != nil {
		t.Fatal(err)
	}
	start := c.Now()
	if err := d.Reset(context.Background()); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	// One pulse at construction (a known state), one for Reset.
	if got := rst.history(); len(got) != 4 || got[0] != gpio.Low || got[1] != gpio.High || got[2] != gpio.Low || got[3] != gpio.High {
		t.Errorf("RSTPDN went %v, want [Low High Low High]", got)
	}
	// 1 ms low, 2 ms start-up, plus the two busy polls of the transcript.
	if got := c.Now().Sub(start); got != 3*time.Millisecond+2*DefaultOpts.PollInterval {
		t.Errorf("Reset took %v of fake time", got)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}

// fakePin is a GPIO for tests (periph's gpiotest needs a module this
// repository does not pin). Methods not overridden fail like gpio.INVALID.
type fakePin struct {
	gpio.PinIO
	name string

	mu    sync.Mutex
	level gpio.Level
	outs  []gpio.Level
	busy  int // Read returns High this many times before level
	waits int // WaitForEdge calls
}

func newPin(name string, l gpio.Level) *fakePin {
	return &fakePin{PinIO: gpio.INVALID, name: name, level: l}
}

func (p *fakePin) String() string                          { return p.name }
func (p *fakePin) In(pull gpio.Pull, edge gpio.Edge) error { return nil }
func (p *fakePin) WaitForEdge(timeout time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.waits++
	return false
}
func (p *fakePin) Read() gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy > 0 { // an IRQ line that stays high for a few reads
		p.busy--
		return gpio.High
	}
	return p.level
}
func (p *fakePin) Out(l gpio.Level) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.level = l
	p.outs = append(p.outs, l)
	return nil
}
func (p *fakePin) history() []gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]gpio.Level(nil), p.outs...)
}

func TestI2CAnswerLongerThanAsked(t *testing.T) {
	// READ BINARY with Le 2, and a card that answers 8 bytes and SW1 SW2
	// anyway: the read sized for Le cuts the frame; the driver NACKs and
	// reads the length the header announced.
	apdu := pt.Hex("00B0000002")
	answer := pt.Hex("00 0102030405060708 9000") // status, data, SW
	rsp := pt.Rsp(0x40, answer...)
	bus := &i2ctest.Playback{DontPanic: true, Ops: iops(
		i2cBringUp(),
		ix(0, 0x32, []byte{0x05, 0x02, 0x01, 0x02}, 0),
		ix(0, 0x4A, []byte{0x01, 0x03, 0x00}, 1+48, pollBResp...),
		[]i2ctest.IO{
			pt.I2CWrite(pt.Cmd(0x40, append([]byte{0x01}, apdu...)...)),
			pt.I2CStatus(true), pt.I2CRead(pt.Ack(), 6),
			pt.I2CStatus(true), pt.I2CRead(rsp, readLen(1+2+2)), // cut short
			pt.I2CWrite(pt.Nack()),
			pt.I2CStatus(true), pt.I2CRead(rsp, len(rsp)), // the whole frame
		},
	)}
	d, err := NewI2C(bus, &Opts{clock: newFakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	card, err := d.Poll(context.Background(), nfc.PollOptions{Order: []nfc.Tech{nfc.TechB}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := card.Transceive(context.Background(), apdu)
	if err != nil || !bytes.Equal(got, answer[1:]) {
		t.Fatalf("Transceive = % X, %v", got, err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestI2CWithIRQ(t *testing.T) {
	// With P70_IRQ wired there are no status polls: the driver waits for
	// the line to go low, then reads.
	irq := newPin("IRQ", gpio.Low)
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		pt.I2CWrite(pt.Cmd(0x14, 0x01, 0x00, 0x01)), pt.I2CRead(pt.Ack(), 6), pt.I2CRead(pt.Rsp(0x14), readLen(0)),
		pt.I2CWrite(pt.Cmd(0x02)), pt.I2CRead(pt.Ack(), 6), pt.I2CRead(pt.Rsp(0x02, fwV16...), readLen(4)),
		pt.I2CWrite(pt.Cmd(0x12, 0x14)), pt.I2CRead(pt.Ack(), 6), pt.I2CRead(pt.Rsp(0x12), readLen(0)),
		pt.I2CWrite(pt.Cmd(0x02)), pt.I2CRead(pt.Ack(), 6), pt.I2CRead(pt.Rsp(0x02, fwV16...), readLen(4)),
	}}
	d, err := NewI2C(bus, &Opts{IRQ: irq, clock: newFakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	irq.mu.Lock()
	irq.busy = 3 // the next answer takes a while
	irq.mu.Unlock()
	if _, err := d.GetFirmwareVersion(context.Background()); err != nil {
		t.Fatal(err)
	}
	irq.mu.Lock()
	waits := irq.waits
	irq.mu.Unlock()
	if waits != 3 {
		t.Errorf("the driver waited for %d IRQ edges, want 3", waits)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}
