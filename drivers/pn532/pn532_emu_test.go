package pn532_test

// Integration tests against the project's PN532 emulator
// (drivers/sim/pn532emu), which follows the published facts (UM0701 as
// quoted in pn532.md, and libnfc), not this driver. The UART path runs
// through a real pty and the tarm/serial-based serial.TTY.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"kazasu/drivers/nfc"
	"kazasu/drivers/pn532"
	"kazasu/drivers/serial"
	"kazasu/drivers/serial/serialtest"
	"kazasu/drivers/sim/pn532emu"
	"kazasu/drivers/sim/pn532emu/picctest"
	"kazasu/drivers/sim/rf"
	"kazasu/drivers/sim/vclock"
)

// myNumber returns a field holding a Type B ISO-DEP card (the emulator's
// My-Number-shaped ATQB) that echoes every APDU followed by 90 00.
func myNumber() (*rf.Field, *picctest.TypeB) {
	card := &picctest.TypeB{ATQB: picctest.MyNumberATQB, Applet: picctest.Echo}
	f := &rf.Field{}
	f.Add(card)
	return f, card
}

// junkWriter injects line noise before the chip's nth write.
type junkWriter struct {
	io.ReadWriter
	mu   sync.Mutex
	n    int
	at   int
	junk []byte
}

func (j *junkWriter) Write(p []byte) (int, error) {
	j.mu.Lock()
	j.n++
	inject := j.n == j.at
	j.mu.Unlock()
	if inject {
		if _, err := j.ReadWriter.Write(j.junk); err != nil {
			return 0, err
		}
	}
	return j.ReadWriter.Write(p)
}

// serveHSU runs e on a fresh pty and returns the slave's path. wrap, if
// not nil, wraps the master side (to inject noise).
func serveHSU(t *testing.T, e *pn532emu.Emulator, wrap func(io.ReadWriter) io.ReadWriter) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if wrap == nil {
		p, err := pn532emu.OpenPTY("")
		if err != nil {
			t.Skipf("no pty: %v", err)
		}
		go func() {
			defer close(done)
			e.ServePTY(ctx, p)
		}()
		t.Cleanup(func() {
			cancel()
			p.Close()
			<-done
		})
		return p.Name()
	}
	// Our own pty, so that the master can be wrapped. The slave stays open
	// in raw mode (as the emulator's OpenPTY does).
	m, s, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Lflag &^= unix.ECHO | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Iflag &^= unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	if err := unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(done)
		e.ServeStream(ctx, wrap(m))
	}()
	t.Cleanup(func() {
		cancel()
		m.Close()
		s.Close()
		<-done
	})
	return s.Name()
}

func openUART(t *testing.T, path string, o *pn532.Opts) *pn532.Dev {
	t.Helper()
	tty, err := serial.Open(path, 115200)
	if err != nil {
		t.Fatal(err)
	}
	// The fault tests count the chip's command frames, so a resend caused
	// by a slow, shared test machine would shift them: give the ACK time.
	o.ACKTimeout = 500 * time.Millisecond
	d, err := pn532.NewUART(tty, o)
	if err != nil {
		t.Fatalf("NewUART: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// transaction polls the card and runs a short and a long exchange.
func transaction(t *testing.T, d *pn532.Dev) {
	t.Helper()
	ctx := context.Background()
	card, err := d.Poll(ctx, nfc.PollOptions{Order: []nfc.Tech{nfc.TechB}})
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	tg := card.Target()
	if tg.Tech != nfc.TechB || !bytes.Equal(tg.ID, []byte{1, 2, 3, 4}) || tg.CID != 1 || tg.FSD != 64 {
		t.Fatalf("Target = %v", tg)
	}
	sel := []byte{0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x00, 0x4F, 0x00, 0x02, 0x00, 0x01}
	rsp, err := card.Transceive(ctx, sel)
	if err != nil || !bytes.Equal(rsp, append(append([]byte(nil), sel...), 0x90, 0x00)) {
		t.Fatalf("Transceive(SELECT) = % X, %v", rsp, err)
	}
	// Beyond one host frame both ways: 300 bytes out (chained with Tg MI),
	// 302 back (chained with status MI).
	long := make([]byte, 300)
	copy(long, []byte{0x00, 0xD6, 0x00, 0x00, 0x00, 0x01, 0x27})
	for i := 7; i < len(long); i++ {
		long[i] = byte(i)
	}
	rsp, err = card.Transceive(ctx, long)
	if err != nil || !bytes.Equal(rsp, append(append([]byte(nil), long...), 0x90, 0x00)) {
		t.Fatalf("Transceive(300 bytes) = %d bytes, %v", len(rsp), err)
	}
	if err := card.Present(ctx); err != nil {
		t.Fatalf("Present: %v", err)
	}
	if err := card.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
}

func TestEmulatorUART(t *testing.T) {
	for _, baud := range []int{115200, 921600} {
		t.Run(fmt.Sprint(baud), func(t *testing.T) {
			field, _ := myNumber()
			e := pn532emu.New(pn532emu.Options{Field: field})
			d := openUART(t, serveHSU(t, e, nil), &pn532.Opts{Baud: baud})
			if got := d.Baud(); got != baud {
				t.Fatalf("Baud = %d, want %d", got, baud)
			}
			if got := e.Baud(); got != baud {
				t.Fatalf("emulator at %d baud, want %d", got, baud)
			}
			info := d.Info()
			if info.Chip != "PN532" || info.Firmware != "1.6" {
				t.Fatalf("Info = %+v", info)
			}
			transaction(t, d)
			// Reset without RSTPDN: PowerDown, wake-up and bring-up again,
			// at the rate the chip is at.
			if err := d.Reset(context.Background()); err != nil {
				t.Fatalf("Reset: %v", err)
			}
			if got := e.Baud(); got != baud {
				t.Fatalf("after Reset the emulator is at %d baud", got)
			}
			transaction(t, d)
			if err := d.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if got := e.Baud(); got != 115200 {
				t.Errorf("Close left the chip at %d baud", got)
			}
			if got := e.Power(); got != pn532emu.PowerDown {
				t.Errorf("Close left the chip %v", got)
			}
		})
	}
}

func TestEmulatorNoCard(t *testing.T) {
	e := pn532emu.New(pn532emu.Options{})
	d := openUART(t, serveHSU(t, e, nil), &pn532.Opts{Baud: 115200})
	if _, err := d.Poll(context.Background(), nfc.PollOptions{}); !errors.Is(err, nfc.ErrNoTarget) {
		t.Fatalf("Poll = %v, want ErrNoTarget", err)
	}
}

// The emulator counts command frames from reset; the bring-up at 115200
// is SAMConfiguration (1), GetFirmwareVersion (2), SetParameters (3), so
// frame 4 is the GetFirmwareVersion each fault test sends first.
const faultFrame = 4

func TestEmulatorFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault pn532emu.Fault
		// ok: the faulty command itself may still succeed (the driver
		// recovered); kind: the error it may fail with instead.
		ok   bool
		kind error
	}{
		// The driver NACKs a bad checksum. The emulator answers a NACK with
		// the frame exactly as it last sent it, damage included, so after
		// Retries NACKs the driver gives up with ErrTransmission; a chip
		// whose frame was damaged on the wire sends it intact.
		{"checksum: NACK", pn532emu.Fault{Kind: pn532emu.FaultChecksum, Frame: faultFrame}, true, nfc.ErrTransmission},
		{"frame damaged: no ACK, resend", pn532emu.Fault{Kind: pn532emu.FaultRxChecksum, Frame: faultFrame}, true, nil},
		{"ACK lost", pn532emu.Fault{Kind: pn532emu.FaultNoACK, Frame: faultFrame}, true, nil},
		{"ACK late", pn532emu.Fault{Kind: pn532emu.FaultACKDelay, Frame: faultFrame, Delay: 60 * time.Millisecond}, true, nil},
		{"bytes dropped", pn532emu.Fault{Kind: pn532emu.FaultDrop, Frame: faultFrame, Count: 2}, false, nfc.ErrTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			field, _ := myNumber()
			e := pn532emu.New(pn532emu.Options{Field: field, Faults: []pn532emu.Fault{tc.fault}})
			d := openUART(t, serveHSU(t, e, nil), &pn532.Opts{Baud: 115200})
			fw, err := d.GetFirmwareVersion(context.Background())
			switch {
			case err == nil && (!tc.ok || fw.IC != 0x32):
				t.Fatalf("GetFirmwareVersion = %v, nil; want %v", fw, tc.kind)
			case err != nil && (tc.kind == nil || !errors.Is(err, tc.kind)):
				t.Fatalf("GetFirmwareVersion = %v, want %v", err, tc.kind)
			}
			// Whatever happened, the next transaction works.
			transaction(t, d)
		})
	}
}

func TestEmulatorGarbageOnTheLine(t *testing.T) {
	field, _ := myNumber()
	e := pn532emu.New(pn532emu.Options{Field: field})
	// Noise (including a false start code) before the chip's 9th write.
	wrap := func(rw io.ReadWriter) io.ReadWriter {
		return &junkWriter{ReadWriter: rw, at: 9, junk: []byte{0x13, 0x00, 0xFF, 0x07, 0x07, 0x55}}
	}
	d := openUART(t, serveHSU(t, e, wrap), &pn532.Opts{Baud: 115200})
	for i := 0; i < 3; i++ {
		if _, err := d.GetFirmwareVersion(context.Background()); err != nil {
			t.Fatalf("GetFirmwareVersion #%d: %v", i, err)
		}
	}
	transaction(t, d)
}

func TestEmulatorReaderGone(t *testing.T) {
	field, _ := myNumber()
	e := pn532emu.New(pn532emu.Options{Field: field, Faults: []pn532emu.Fault{{Kind: pn532emu.FaultGone, Frame: faultFrame}}})
	d := openUART(t, serveHSU(t, e, nil), &pn532.Opts{Baud: 115200})
	_, err := d.GetFirmwareVersion(context.Background())
	if !errors.Is(err, nfc.ErrReaderGone) {
		t.Fatalf("GetFirmwareVersion after unplug = %v, want ErrReaderGone", err)
	}
}

// sentTracer signals when a host frame starting with the given PD bytes
// goes out.
type sentTracer struct {
	want  []byte
	mu    sync.Mutex
	armed bool
	sent  chan struct{}
}

func (s *sentTracer) arm() {
	s.mu.Lock()
	s.armed = true
	s.mu.Unlock()
}

func (s *sentTracer) Trace(e nfc.TraceEvent) {
	// Host frames: 00 00 FF LEN LCS TFI PD…
	if e.Layer == nfc.LayerHost && e.Out && len(e.Data) > 5+len(s.want) && bytes.Equal(e.Data[5:5+len(s.want)], s.want) {
		s.mu.Lock()
		if s.armed {
			s.armed = false
			close(s.sent)
		}
		s.mu.Unlock()
	}
}

// hang makes the next InListPassiveTarget wait for a card for ever: with
// MxRtyPassiveActivation FF and an empty field the chip stays silent until
// the host aborts (UM defaults; the emulator models it).
func hang(t *testing.T, d *pn532.Dev) {
	t.Helper()
	ctx := context.Background()
	// A first poll makes the driver set its finite retries...
	if _, err := d.InListPassiveTarget(ctx, 1, pn532.BrTy106B, []byte{0}); err != nil {
		t.Fatal(err)
	}
	// ... which this overrides behind its back.
	if err := d.RFConfiguration(ctx, pn532.RFMaxRetries, []byte{0xFF, 0x01, 0xFF}); err != nil {
		t.Fatal(err)
	}
}

func TestEmulatorCloseCancelsInFlight(t *testing.T) {
	e := pn532emu.New(pn532emu.Options{})
	tr := &sentTracer{want: []byte{0xD4, 0x4A}, sent: make(chan struct{})}
	d := openUART(t, serveHSU(t, e, nil), &pn532.Opts{Baud: 115200, Tracer: tr})
	hang(t, d)
	errc := make(chan error, 1)
	tr.arm()
	go func() {
		_, err := d.InListPassiveTarget(context.Background(), 1, pn532.BrTy106B, []byte{0})
		errc <- err
	}()
	<-tr.sent
	time.Sleep(20 * time.Millisecond) // let the chip ACK; not needed for correctness
	closed := make(chan error, 1)
	go func() { closed <- d.Close() }()
	// The bounds below only catch a hang; they are not timing assertions.
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("in-flight InListPassiveTarget = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not cancel the command in flight")
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung")
	}
}

func TestEmulatorHalt(t *testing.T) {
	e := pn532emu.New(pn532emu.Options{})
	tr := &sentTracer{want: []byte{0xD4, 0x4A}, sent: make(chan struct{})}
	d := openUART(t, serveHSU(t, e, nil), &pn532.Opts{Baud: 115200, Tracer: tr})
	hang(t, d)
	tr.arm()
	errc := make(chan error, 1)
	go func() {
		_, err := d.InListPassiveTarget(context.Background(), 1, pn532.BrTy106B, []byte{0})
		errc <- err
	}()
	<-tr.sent
	time.Sleep(20 * time.Millisecond)
	if err := d.Halt(); err != nil {
		t.Fatalf("Halt: %v", err)
	}
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("halted command = %v", err)
	}
	// The chip dropped the command and works.
	if _, err := d.GetFirmwareVersion(context.Background()); err != nil {
		t.Fatalf("after Halt: %v", err)
	}
}

// TestEmulatorHostManagedPrimitives runs the host-managed take-over that
// drivers/reader composes (nfcpy's sense_ttb): the chip's target is
// deselected, then WUPB, an ATTRIB with FSD 256 and no CID, and one
// ISO-DEP I-block all go through TransceiveRaw (InCommunicateThru).
func TestEmulatorHostManagedPrimitives(t *testing.T) {
	field, card := myNumber()
	e := pn532emu.New(pn532emu.Options{Field: field})
	d := openUART(t, serveHSU(t, e, nil), &pn532.Opts{Baud: 115200})
	ctx := context.Background()
	c, err := d.PollCard(ctx, nfc.PollOptions{Order: []nfc.Tech{nfc.TechB}})
	if err != nil {
		t.Fatal(err)
	}
	atqb := c.Target().ATQB
	if err := d.InDeselect(ctx, c.Tg()); err != nil {
		t.Fatalf("InDeselect: %v", err)
	}
	if _, err := c.Transceive(ctx, []byte{0x00, 0xA4, 0x00, 0x00}); !errors.Is(err, nfc.ErrNotSupported) {
		t.Fatalf("chip-managed Transceive after InDeselect = %v", err)
	}
	// WUPB, AFI 00, one slot: the halted card answers with its ATQB.
	got, err := d.TransceiveRaw(ctx, []byte{0x05, 0x00, 0x08}, 10*time.Millisecond)
	if err != nil || !bytes.Equal(got, atqb) {
		t.Fatalf("WUPB = % X, %v; want the ATQB % X", got, err, atqb)
	}
	// ATTRIB: PUPI, Param1 00, Param2 08 (FSDI 8: 256 bytes, 106 kbit/s),
	// Param3 01 (ISO 14443-4), Param4 00 (CID 0).
	attrib := append(append([]byte{0x1D}, atqb[1:5]...), 0x00, 0x08, 0x01, 0x00)
	got, err = d.TransceiveRaw(ctx, attrib, 10*time.Millisecond)
	if err != nil || len(got) < 1 || got[0]&0x0F != 0 {
		t.Fatalf("ATTRIB = % X, %v", got, err)
	}
	// One I-block (PCB 02: block 0, no CID) with a SELECT.
	sel := []byte{0x00, 0xA4, 0x04, 0x0C, 0x02, 0x3F, 0x00}
	got, err = d.TransceiveRaw(ctx, append([]byte{0x02}, sel...), 100*time.Millisecond)
	if err != nil || len(got) < 2 || got[0]&0xE2 != 0x02 {
		t.Fatalf("I-block answer = % X, %v", got, err)
	}
	h := 1
	if got[0]&0x08 != 0 { // this card adds CID 0 (allowed when ATTRIB gave 0)
		h++
	}
	if want := append(append([]byte(nil), sel...), 0x90, 0x00); !bytes.Equal(got[h:], want) {
		t.Fatalf("I-block INF = % X, want % X", got[h:], want)
	}
	if n := len(card.Apdus); n != 1 || !bytes.Equal(card.Apdus[0], sel) {
		t.Fatalf("card saw %d APDUs: % X", n, card.Apdus)
	}
}

// TestEmulatorHostLinkTime logs the emulator's modelled host-link time of
// one transaction (poll, a 15-byte SELECT, a 300-byte APDU with its 302-byte
// echo) at both rates. It asserts only that 921600 is faster.
func TestEmulatorHostLinkTime(t *testing.T) {
	link := map[int]time.Duration{}
	for _, baud := range []int{115200, 921600} {
		field, _ := myNumber()
		e := pn532emu.New(pn532emu.Options{Field: field})
		d := openUART(t, serveHSU(t, e, nil), &pn532.Opts{Baud: baud})
		e.Meter().Reset()
		transaction(t, d)
		link[baud] = e.Meter().Get(pn532emu.CatHostLink)
		t.Logf("%d baud: %v", baud, e.Meter())
		d.Close()
	}
	// The same transaction through the in-process I2C bus and SPI port, at
	// the emulator's default clocks.
	field, _ := myNumber()
	e := pn532emu.New(pn532emu.Options{Field: field})
	bus, err := e.I2C()
	if err != nil {
		t.Fatal(err)
	}
	d, err := pn532.NewI2C(bus, &pn532.Opts{PollInterval: 100 * time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	e.Meter().Reset()
	transaction(t, d)
	t.Logf("I2C: %v", e.Meter())
	d.Close()
	bus.Close()
	field, _ = myNumber()
	e = pn532emu.New(pn532emu.Options{Field: field})
	port, err := e.SPI()
	if err != nil {
		t.Fatal(err)
	}
	d, err = pn532.NewSPI(port, &pn532.Opts{PollInterval: 100 * time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	e.Meter().Reset()
	transaction(t, d)
	t.Logf("SPI: %v", e.Meter())
	d.Close()
	port.Close()
	if link[921600] >= link[115200] {
		t.Errorf("host link at 921600 (%v) not faster than at 115200 (%v)", link[921600], link[115200])
	}
}

func TestEmulatorCommands(t *testing.T) {
	field, _ := myNumber()
	e := pn532emu.New(pn532emu.Options{Field: field})
	d := openUART(t, serveHSU(t, e, nil), &pn532.Opts{Baud: 115200})
	ctx := context.Background()
	if err := d.CommunicationLineTest(ctx, bytes.Repeat([]byte{0xA5}, 262)); err != nil {
		t.Fatalf("CommunicationLineTest(262 bytes): %v", err)
	}
	if err := d.WriteRegister(ctx, pn532.Reg{Addr: 0x6305, Val: 0x40}, pn532.Reg{Addr: 0x633C, Val: 0x10}); err != nil {
		t.Fatal(err)
	}
	v, err := d.ReadRegister(ctx, 0x6305, 0x633C)
	if err != nil || !bytes.Equal(v, []byte{0x40, 0x10}) {
		t.Fatalf("ReadRegister = % X, %v", v, err)
	}
	ts, err := d.InAutoPoll(ctx, 1, 1, pn532.AutoPollISO14443_4B)
	if err != nil || len(ts) != 1 || !bytes.Equal(ts[0].PUPI(), []byte{1, 2, 3, 4}) {
		t.Fatalf("InAutoPoll = %v, %v", ts, err)
	}
	gs, err := d.GetGeneralStatus(ctx)
	// Field is about an external field (target mode); ours does not count.
	if err != nil || len(gs.Targets) != 1 || gs.Targets[0].Tg != 1 {
		t.Fatalf("GetGeneralStatus = %+v, %v", gs, err)
	}
	if err := d.InRelease(ctx, 0); err != nil {
		t.Fatal(err)
	}
	// PowerDown, woken by the HSU preamble before the next command.
	if err := d.PowerDown(ctx, pn532.WakeHSU, false); err != nil {
		t.Fatalf("PowerDown: %v", err)
	}
	if got := e.Power(); got != pn532emu.PowerDown {
		t.Fatalf("emulator is %v after PowerDown", got)
	}
	if _, err := d.GetFirmwareVersion(ctx); err != nil {
		t.Fatalf("GetFirmwareVersion after PowerDown: %v", err)
	}
	transaction(t, d)
}

func TestEmulatorI2C(t *testing.T) {
	field, _ := myNumber()
	e := pn532emu.New(pn532emu.Options{Field: field})
	bus, err := e.I2C()
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	d, err := pn532.NewI2C(bus, &pn532.Opts{PollInterval: 100 * time.Microsecond})
	if err != nil {
		t.Fatalf("NewI2C: %v", err)
	}
	if got := d.Info().Driver; got != "pn532_i2c" {
		t.Errorf("Driver = %q", got)
	}
	transaction(t, d)
	if err := d.Reset(context.Background()); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	transaction(t, d)
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := e.Power(); got != pn532emu.PowerDown {
		t.Errorf("Close left the chip %v", got)
	}
}

func TestEmulatorSPI(t *testing.T) {
	field, _ := myNumber()
	e := pn532emu.New(pn532emu.Options{Field: field})
	port, err := e.SPI()
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	d, err := pn532.NewSPI(port, &pn532.Opts{PollInterval: 100 * time.Microsecond})
	if err != nil {
		t.Fatalf("NewSPI: %v", err)
	}
	if got := d.Info().Driver; got != "pn532_spi" {
		t.Errorf("Driver = %q", got)
	}
	transaction(t, d)
	if err := d.Reset(context.Background()); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	transaction(t, d)
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestEmulatorI2CFaults(t *testing.T) {
	for _, f := range []pn532emu.Fault{
		{Kind: pn532emu.FaultChecksum, Frame: faultFrame},
		{Kind: pn532emu.FaultRxChecksum, Frame: faultFrame},
		{Kind: pn532emu.FaultNoACK, Frame: faultFrame},
		{Kind: pn532emu.FaultDrop, Frame: faultFrame, Count: 2},
	} {
		t.Run(f.Kind.String(), func(t *testing.T) {
			field, _ := myNumber()
			e := pn532emu.New(pn532emu.Options{Field: field, Faults: []pn532emu.Fault{f}})
			bus, err := e.I2C()
			if err != nil {
				t.Fatal(err)
			}
			defer bus.Close()
			d, err := pn532.NewI2C(bus, &pn532.Opts{PollInterval: 100 * time.Microsecond, ACKTimeout: 500 * time.Millisecond})
			if err != nil {
				t.Fatalf("NewI2C: %v", err)
			}
			// The faulty command may fail; the transaction after it works.
			_, err = d.GetFirmwareVersion(context.Background())
			t.Logf("GetFirmwareVersion with %v: %v", f, err)
			transaction(t, d)
		})
	}
}

// TestRecordedSessionReplays records a session with the emulator through
// serialtest.Record (as one would on hardware) and replays the recording
// with serialtest.Playback: the driver must make exactly the same calls.
func TestRecordedSessionReplays(t *testing.T) {
	field, _ := myNumber()
	e := pn532emu.New(pn532emu.Options{Field: field})
	tty, err := serial.Open(serveHSU(t, e, nil), 115200)
	if err != nil {
		t.Fatal(err)
	}
	rec := &serialtest.Record{Port: tty}
	session := func(p serial.Port) error {
		d, err := pn532.NewUART(p, &pn532.Opts{Baud: 921600})
		if err != nil {
			return err
		}
		card, err := d.Poll(context.Background(), nfc.PollOptions{Order: []nfc.Tech{nfc.TechB}})
		if err != nil {
			return err
		}
		if _, err := card.Transceive(context.Background(), []byte{0x00, 0xB0, 0x00, 0x00, 0x00}); err != nil {
			return err
		}
		return d.Close()
	}
	if err := session(rec); err != nil {
		t.Fatalf("recording: %v", err)
	}
	ops := rec.Ops()
	if len(ops) < 20 {
		t.Fatalf("recorded only %d ops", len(ops))
	}
	replay := &serialtest.Playback{Ops: ops}
	if err := session(replay); err != nil {
		t.Fatalf("replay: %v\nscript:\n%v", err, rec)
	}
}

func TestEmulatorCardPulled(t *testing.T) {
	field, card := myNumber()
	e := pn532emu.New(pn532emu.Options{Field: field})
	d := openUART(t, serveHSU(t, e, nil), &pn532.Opts{Baud: 115200})
	ctx := context.Background()
	opts := nfc.PollOptions{Order: []nfc.Tech{nfc.TechB}}
	c, err := d.Poll(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	field.Remove(card) // pulled mid-session
	if _, err := c.Transceive(ctx, []byte{0x00, 0xB0, 0x00, 0x00, 0x04}); err == nil {
		t.Fatal("Transceive to a pulled card succeeded")
	} else if k := nfc.Kind(err); k != nfc.ErrTimeout && k != nfc.ErrTargetGone && k != nfc.ErrTransmission {
		t.Fatalf("Transceive to a pulled card = %v", err)
	}
	if err := nfc.WaitRemoved(ctx, c, time.Millisecond); err != nil {
		t.Fatalf("WaitRemoved: %v", err)
	}
	if _, err := d.Poll(ctx, opts); !errors.Is(err, nfc.ErrNoTarget) {
		t.Fatalf("Poll of an empty field = %v", err)
	}
	field.Add(card) // tapped again
	transaction(t, d)
}

// TestEmulatorRealTime runs the reference transaction against the emulator
// spending its modelled time for real (vclock.Real), and logs wall time
// against modelled time: the difference is the driver's and the pty's own
// overhead. Nothing is asserted about time.
func TestEmulatorRealTime(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time run")
	}
	for _, baud := range []int{115200, 921600} {
		field, _ := myNumber()
		e := pn532emu.New(pn532emu.Options{Field: field, Clock: vclock.Real{}})
		d := openUART(t, serveHSU(t, e, nil), &pn532.Opts{Baud: baud})
		e.Meter().Reset()
		start := time.Now()
		transaction(t, d)
		wall := time.Since(start)
		t.Logf("%d baud: wall %v, modelled %v (%v)", baud, wall.Round(100*time.Microsecond), e.Meter().Total(), e.Meter())
		d.Close()
	}
}

// BenchmarkCommandOverPTY measures one command round trip (frame, ACK,
// answer) through serial.TTY, a pty and the emulator in virtual time: the
// driver's and the host's own cost per command.
func BenchmarkCommandOverPTY(b *testing.B) {
	e := pn532emu.New(pn532emu.Options{})
	p, err := pn532emu.OpenPTY("")
	if err != nil {
		b.Skip(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.ServePTY(ctx, p) }()
	defer func() { cancel(); p.Close(); <-done }()
	tty, err := serial.Open(p.Name(), 115200)
	if err != nil {
		b.Fatal(err)
	}
	d, err := pn532.NewUART(tty, &pn532.Opts{Baud: 115200})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := d.GetFirmwareVersion(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
