package pn532

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"kazasu/drivers/nfc"
	pt "kazasu/drivers/pn532/pn532test"
	"kazasu/drivers/serial"
	"kazasu/drivers/serial/serialtest"
)

// fakeClock is frozen time that moves only when the driver sleeps, so that
// every timeout the driver computes is exact and can be asserted.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

// recorder is an nfc.Tracer keeping copies of the events.
type recorder struct {
	mu sync.Mutex
	ev []nfc.TraceEvent
}

func (r *recorder) Trace(e nfc.TraceEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e.Data = append([]byte(nil), e.Data...)
	r.ev = append(r.ev, e)
}

func (r *recorder) layer(l nfc.Layer) []nfc.TraceEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []nfc.TraceEvent
	for _, e := range r.ev {
		if e.Layer == l {
			out = append(out, e)
		}
	}
	return out
}

// x is one command exchange as the UART sees it: the command frame, the
// chip's ACK and its answer.
func x(cmd byte, params []byte, answer ...byte) []serialtest.Op {
	return []serialtest.Op{{W: pt.Cmd(cmd, params...)}, {R: pt.Ack()}, {R: pt.Rsp(cmd, answer...)}}
}

func ops(parts ...[]serialtest.Op) []serialtest.Op {
	var out []serialtest.Op
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

var fwV16 = []byte{0x32, 0x01, 0x06, 0x07}

// bringUp115200 is the bring-up with Opts.Baud 115200: no rate switch.
func bringUp115200() []serialtest.Op {
	return ops(
		// Wake-up preamble, then SAMConfiguration normal mode, no IRQ.
		[]serialtest.Op{{W: pt.Cat(pt.Wake(), pt.Cmd(0x14, 0x01, 0x00, 0x00))}, {R: pt.Ack()}, {R: pt.Rsp(0x14)}},
		// GetFirmwareVersion: PN532 v1.6, A, B and DEP.
		x(0x02, nil, fwV16...),
		// SetParameters: automatic ATR_RES and RATS.
		x(0x12, []byte{0x14}),
	)
}

// closeOps is what Close sends with no target and no rate to restore.
func closeOps() []serialtest.Op {
	return ops(
		x(0x32, []byte{0x01, 0x00}), // RF field off
		x(0x16, []byte{0xF0}, 0x00), // PowerDown, wake on I2C, GPIO, SPI, HSU
	)
}

func testOpts(c *fakeClock) *Opts {
	return &Opts{Baud: 115200, clock: c}
}

func newTestUART(t *testing.T, script []serialtest.Op, o *Opts) (*Dev, *serialtest.Playback) {
	t.Helper()
	p := &serialtest.Playback{Ops: script}
	if o.clock == nil {
		o.clock = newFakeClock()
	}
	d, err := NewUART(p, o)
	if err != nil {
		t.Fatalf("NewUART: %v (script: %v)", err, p.Err())
	}
	return d, p
}

func TestUARTBringUpAndClose(t *testing.T) {
	d, p := newTestUART(t, ops(bringUp115200(), closeOps()), testOpts(newFakeClock()))
	info := d.Info()
	if info.Chip != "PN532" || info.Firmware != "1.6" || info.Driver != "pn532_uart" {
		t.Errorf("Info = %+v", info)
	}
	if len(info.Supported) != 2 || info.Supported[0] != nfc.TechA || info.Supported[1] != nfc.TechB {
		t.Errorf("Supported = %v", info.Supported)
	}
	if fw := d.Firmware(); fw.String() != "PN532 v1.6" {
		t.Errorf("Firmware = %v", fw)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !p.Closed() {
		t.Error("Close did not close the port")
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := d.GetFirmwareVersion(context.Background()); !errors.Is(err, nfc.ErrReaderGone) {
		t.Errorf("command after Close: %v", err)
	}
}

func TestUARTExactTimeouts(t *testing.T) {
	c := newFakeClock()
	frame := pt.Cmd(0x02)
	ackTO := DefaultOpts.ACKTimeout + serial.ByteTime(115200, len(frame)+6)
	rspTO := DefaultOpts.CommandTimeout + serial.ByteTime(115200, 4+2+10)
	script := ops(bringUp115200(),
		[]serialtest.Op{
			{W: frame},
			{Timeout: true, ReadTimeout: ackTO}, // no ACK: the chip missed the frame
			{W: frame},                          // sent again
			{R: pt.Ack()},
			{Timeout: true, ReadTimeout: rspTO}, // ACK, then silence
			{W: pt.Ack()},                       // abort: the chip drops the command
		},
		// The next command works.
		x(0x02, nil, fwV16...),
	)
	d, p := newTestUART(t, script, testOpts(c))
	_, err := d.GetFirmwareVersion(context.Background())
	if !errors.Is(err, nfc.ErrTimeout) {
		t.Fatalf("GetFirmwareVersion = %v, want ErrTimeout", err)
	}
	if !strings.HasPrefix(err.Error(), "pn532: GetFirmwareVersion") {
		t.Errorf("error %q lacks the pn532 prefix", err)
	}
	if _, err := d.GetFirmwareVersion(context.Background()); err != nil {
		t.Fatalf("after a timeout: %v", err)
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestUARTNoACKAtAll(t *testing.T) {
	frame := pt.Cmd(0x02)
	var script []serialtest.Op
	script = append(script, bringUp115200()...)
	for i := 0; i < 3; i++ { // Retries 2: three tries
		script = append(script, serialtest.Op{W: frame}, serialtest.Op{Timeout: true})
	}
	script = append(script, serialtest.Op{W: pt.Ack()}) // abort, in case
	d, p := newTestUART(t, script, testOpts(newFakeClock()))
	_, err := d.GetFirmwareVersion(context.Background())
	if !errors.Is(err, nfc.ErrTimeout) || !strings.Contains(err.Error(), "no ACK after 3 tries") {
		t.Fatalf("err = %v", err)
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestUARTChecksumNACK(t *testing.T) {
	script := ops(bringUp115200(), []serialtest.Op{
		{W: pt.Cmd(0x02)},
		{R: pt.Ack()},
		{R: pt.Corrupt(pt.Rsp(0x02, fwV16...))}, // DCS broken in transit
		{W: pt.Nack()},                          // please send it again
		{R: pt.Rsp(0x02, fwV16...)},
	})
	d, p := newTestUART(t, script, testOpts(newFakeClock()))
	fw, err := d.GetFirmwareVersion(context.Background())
	if err != nil || fw.IC != 0x32 {
		t.Fatalf("GetFirmwareVersion = %v, %v", fw, err)
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestUARTChecksumNACKGivesUp(t *testing.T) {
	bad := pt.Corrupt(pt.Rsp(0x02, fwV16...))
	script := ops(bringUp115200(), []serialtest.Op{
		{W: pt.Cmd(0x02)}, {R: pt.Ack()},
		{R: bad}, {W: pt.Nack()}, // first resend
		{R: bad}, {W: pt.Nack()}, // second resend
		{R: bad}, {W: pt.Ack()}, // still broken: abort
	}, x(0x12, []byte{0x14})) // and the next command works
	d, p := newTestUART(t, script, testOpts(newFakeClock()))
	if _, err := d.GetFirmwareVersion(context.Background()); !errors.Is(err, nfc.ErrTransmission) {
		t.Fatalf("err = %v, want ErrTransmission", err)
	}
	if err := d.SetParameters(context.Background(), 0x14); err != nil {
		t.Fatal(err)
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestUARTGarbageAndStaleFrames(t *testing.T) {
	script := ops(bringUp115200(), []serialtest.Op{
		{W: pt.Cmd(0x02)},
		{R: pt.Hex("13 37 00 FF 05 05")},          // line noise with a false start code
		{R: pt.Cat(pt.Ack()[:3], pt.Ack()[3:])},   // the ACK, in pieces
		{R: pt.Rsp(0x4A, 0x00)},                   // a late answer to an aborted poll
		{R: pt.Hex("00 00 FF 06")},                // half a frame …
		{R: pt.Hex("FA D5 03 32 01 06 07 E8 00")}, // … and the rest
	})
	d, p := newTestUART(t, script, testOpts(newFakeClock()))
	fw, err := d.GetFirmwareVersion(context.Background())
	if err != nil || fw.Ver != 1 || fw.Rev != 6 {
		t.Fatalf("GetFirmwareVersion = %v, %v", fw, err)
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestUARTErrorFrame(t *testing.T) {
	script := ops(bringUp115200(), []serialtest.Op{
		{W: pt.Cmd(0x4A, 0x01, 0x01)}, {R: pt.Ack()}, {R: pt.Err()}, // bad parameters
	}, x(0x02, nil, fwV16...))
	d, p := newTestUART(t, script, testOpts(newFakeClock()))
	d.retriesSet = true // skip MaxRetries for this test
	_, err := d.InListPassiveTarget(context.Background(), 1, BrTy212F, nil)
	if !errors.Is(err, nfc.ErrProtocol) || !errors.Is(err, ErrSyntax) {
		t.Fatalf("err = %v, want ErrProtocol and ErrSyntax", err)
	}
	if _, err := d.GetFirmwareVersion(context.Background()); err != nil {
		t.Fatalf("after an error frame: %v", err)
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestUARTReaderGone(t *testing.T) {
	gone := nfc.Errorf("serial: read /dev/ttyUSB0", nfc.ErrReaderGone, "line hung up")
	script := ops(bringUp115200(), []serialtest.Op{{W: pt.Cmd(0x02)}, {Err: gone}})
	d, _ := newTestUART(t, script, testOpts(newFakeClock()))
	_, err := d.GetFirmwareVersion(context.Background())
	if !errors.Is(err, nfc.ErrReaderGone) {
		t.Fatalf("err = %v, want ErrReaderGone", err)
	}
}

func TestUARTCancelledContext(t *testing.T) {
	d, p := newTestUART(t, bringUp115200(), testOpts(newFakeClock()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.GetFirmwareVersion(ctx); !errors.Is(err, context.Canceled) || !errors.Is(err, nfc.ErrTimeout) {
		t.Fatalf("err = %v", err)
	}
	if err := p.Err(); err != nil { // nothing was sent
		t.Fatal(err)
	}
}

// baudSwitch is the rate change to 921600 that follows the bring-up.
func baudSwitch() []serialtest.Op {
	return []serialtest.Op{
		{W: pt.Cmd(0x10, 0x07)}, // SetSerialBaudRate 921600
		{R: pt.Ack()},           // at 115200
		{R: pt.Rsp(0x10)},       // at 115200
		{W: pt.Ack()},           // host ACK: now both switch
		{Baud: 921600},
		// Communication line test at the new rate.
		{W: pt.Cmd(0x00, append([]byte{0x00}, "kazasu"...)...)},
		{R: pt.Ack()},
		{R: pt.Rsp(0x00, append([]byte{0x00}, "kazasu"...)...)},
	}
}

func TestUARTBaudSwitchAndRestore(t *testing.T) {
	script := ops(bringUp115200(), baudSwitch(),
		x(0x32, []byte{0x01, 0x00}), // Close: field off
		[]serialtest.Op{ // back to 115200, the chip's power-on rate
			{W: pt.Cmd(0x10, 0x04)}, {R: pt.Ack()}, {R: pt.Rsp(0x10)}, {W: pt.Ack()},
			{Baud: 115200},
			{W: pt.Cmd(0x00, append([]byte{0x00}, "kazasu"...)...)}, {R: pt.Ack()},
			{R: pt.Rsp(0x00, append([]byte{0x00}, "kazasu"...)...)},
		},
		x(0x16, []byte{0xF0}, 0x00), // PowerDown
	)
	d, p := newTestUART(t, script, &Opts{Baud: 921600})
	if d.Baud() != 921600 || p.Baud() != 921600 {
		t.Fatalf("Baud = %d, port %d", d.Baud(), p.Baud())
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestUARTBaudSwitchFallback(t *testing.T) {
	diag := pt.Cmd(0x00, append([]byte{0x00}, "kazasu"...)...)
	script := ops(bringUp115200(), []serialtest.Op{
		{W: pt.Cmd(0x10, 0x07)}, {R: pt.Ack()}, {R: pt.Rsp(0x10)}, {W: pt.Ack()},
		{Baud: 921600},
		// The adapter cannot really do 921600: nothing comes back.
		{W: diag}, {Timeout: true},
		{W: diag}, {Timeout: true},
		{W: pt.Ack()}, // abort, in case the chip heard it
		// Fall back to 115200, where the chip still is.
		{Baud: 115200},
		{W: diag}, {R: pt.Ack()}, {R: pt.Rsp(0x00, append([]byte{0x00}, "kazasu"...)...)},
	})
	d, p := newTestUART(t, script, &Opts{Baud: 921600, Retries: 1})
	if d.Baud() != 115200 || p.Baud() != 115200 {
		t.Fatalf("Baud = %d, port %d; want the 115200 fallback", d.Baud(), p.Baud())
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestUARTBaudRefused(t *testing.T) {
	// The chip refuses the rate (error frame). Without the host ACK it does
	// not switch, so the driver stays at 115200.
	script := ops(bringUp115200(), []serialtest.Op{
		{W: pt.Cmd(0x10, 0x07)}, {R: pt.Ack()}, {R: pt.Err()},
	})
	d, p := newTestUART(t, script, &Opts{Baud: 921600})
	if d.Baud() != 115200 {
		t.Fatalf("Baud = %d", d.Baud())
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestNewUARTFails(t *testing.T) {
	// A chip that is not a PN532 is refused, and the port is closed.
	script := []serialtest.Op{
		{W: pt.Cat(pt.Wake(), pt.Cmd(0x14, 0x01, 0x00, 0x00))}, {R: pt.Ack()}, {R: pt.Rsp(0x14)},
		{W: pt.Cmd(0x02)}, {R: pt.Ack()}, {R: pt.Rsp(0x02, 0x33, 0x01, 0x06, 0x07)},
	}
	p := &serialtest.Playback{Ops: script}
	_, err := NewUART(p, &Opts{Baud: 115200, clock: newFakeClock()})
	if !errors.Is(err, nfc.ErrNotSupported) {
		t.Fatalf("err = %v", err)
	}
	if !p.Closed() {
		t.Error("port left open after a failed NewUART")
	}
	if _, err := NewUART(nil, nil); err == nil {
		t.Error("NewUART(nil) succeeded")
	}
	if _, err := NewUART(&serialtest.Playback{}, &Opts{Baud: 100}); err == nil {
		t.Error("NewUART with a 100 baud target succeeded")
	}
}

// --- Poll, exchange, presence, release ----------------------------------------

var (
	// ATQB: 50, PUPI 11223344, AppData 00000000, BitRate 00, FSCI 8 (256)
	// and protocol type 1 (-4), FWI 7 / ADC 0 / FO 1.
	atqb      = pt.Hex("50 11223344 00000000 00 81 71")
	pollBResp = pt.Cat([]byte{0x01, 0x01}, atqb, []byte{0x01, 0x01}) // NbTg 1, Tg 1, ATQB, ATTRIB_RES 01
)

func pollB() []serialtest.Op {
	return ops(
		x(0x32, []byte{0x05, 0x02, 0x01, 0x02}), // MaxRetries: finite passive activation
		x(0x4A, []byte{0x01, 0x03, 0x00}, pollBResp...),
	)
}

func TestPollTypeBAndExchange(t *testing.T) {
	rec := &recorder{}
	selectAP := pt.Hex("00A4040C0AD392F000004F00020001")
	verify := pt.Hex("0020008004 31323334")
	script := ops(bringUp115200(), pollB(),
		x(0x40, append([]byte{0x01}, selectAP...), 0x00, 0x90, 0x00),
		x(0x40, append([]byte{0x01}, verify...), 0x00, 0x90, 0x00),
		// Present: CRC bits checked once, RF timeout set to the card's FWT.
		x(0x06, pt.Hex("6302 6303"), 0x83, 0x83),
		x(0x32, []byte{0x02, 0x00, 0x0B, TimeoutCode(fwt(7) + airTime(8))}),
		x(0x42, pt.Hex("BA01"), 0x00, 0xA2), // R(ACK) back: present
		x(0x52, []byte{0x01}, 0x00),         // Release
	)
	d, p := newTestUART(t, script, &Opts{Baud: 115200, Tracer: rec})
	card, err := d.PollCard(context.Background(), nfc.PollOptions{Order: []nfc.Tech{nfc.TechB}})
	if err != nil {
		t.Fatalf("Poll: %v (%v)", err, p.Err())
	}
	tg := card.Target()
	if tg.Tech != nfc.TechB || !bytes.Equal(tg.ID, pt.Hex("11223344")) || tg.FSC != 256 || tg.FSD != 64 || tg.CID != 1 || tg.Mode != nfc.ISODepChip {
		t.Fatalf("Target = %v", tg)
	}
	if tg.FWT != fwt(7) || !bytes.Equal(tg.ATQB, atqb) || !bytes.Equal(tg.AttribRes, []byte{0x01}) {
		t.Fatalf("Target = %+v", tg)
	}
	if got := tg.String(); got != "B PUPI 11223344 FSC 256 FSD 64 FWT 38.664ms CID 1 106/106 kbps ISO-DEP chip" {
		t.Errorf("Target.String() = %q", got)
	}
	for _, apdu := range [][]byte{selectAP, verify} {
		rsp, err := card.Transceive(context.Background(), apdu)
		if err != nil || !bytes.Equal(rsp, pt.Hex("9000")) {
			t.Fatalf("Transceive(% X) = % X, %v", apdu, rsp, err)
		}
	}
	if err := card.Present(context.Background()); err != nil {
		t.Fatalf("Present: %v", err)
	}
	if err := card.Release(context.Background()); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if _, err := card.Transceive(context.Background(), selectAP); !errors.Is(err, nfc.ErrTargetGone) {
		t.Fatalf("Transceive after Release = %v", err)
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	// The PIN never reaches the tracer, at any layer.
	for _, e := range rec.ev {
		if bytes.Contains(e.Data, []byte("1234")) {
			t.Errorf("%v trace leaks the PIN: % X", e.Layer, e.Data)
		}
	}
	apdus := rec.layer(nfc.LayerAPDU)
	if len(apdus) != 4 || !bytes.Equal(apdus[2].Data, pt.Hex("0020008004 2A2A2A2A")) || !apdus[2].Out {
		t.Errorf("APDU trace = %v", apdus)
	}
	// Host frames are traced as sent, with the redacted bytes in place.
	var sawVerify bool
	for _, e := range rec.layer(nfc.LayerHost) {
		if bytes.Equal(e.Data, pt.Cmd(0x40, append([]byte{0x01}, pt.Hex("0020008004 2A2A2A2A")...)...)) {
			sawVerify = true
		}
	}
	if !sawVerify {
		t.Error("no redacted VERIFY host frame in the trace")
	}
	if rf := rec.layer(nfc.LayerRF); len(rf) != 2 || !bytes.Equal(rf[0].Data, pt.Hex("BA01")) {
		t.Errorf("RF trace = %v", rf)
	}
}

func TestPollNothing(t *testing.T) {
	script := ops(bringUp115200(),
		x(0x32, []byte{0x05, 0x02, 0x01, 0x02}),
		x(0x4A, []byte{0x01, 0x03, 0x00}, 0x00), // B: nothing
		x(0x4A, []byte{0x01, 0x00}, 0x00),       // A: nothing
	)
	d, p := newTestUART(t, script, testOpts(newFakeClock()))
	_, err := d.Poll(context.Background(), nfc.PollOptions{})
	if !errors.Is(err, nfc.ErrNoTarget) {
		t.Fatalf("Poll = %v, want ErrNoTarget", err)
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Poll(context.Background(), nfc.PollOptions{Mode: nfc.ISODepHost}); !errors.Is(err, nfc.ErrNotSupported) {
		t.Fatalf("Poll(host) = %v", err)
	}
}

func TestPollTypeAPhone(t *testing.T) {
	// A phone (HCE): ATQA 0004, SAK 20, random 4-byte UID, ATS 05 78 80 70 02
	// (T0 78: FSCI 8, TA1 80, TB1 70 → FWI 7, TC1 02).
	ans := pt.Hex("01 01 0004 20 04 08A1B2C3 05 78 80 70 02")
	script := ops(bringUp115200(),
		x(0x32, []byte{0x05, 0x02, 0x01, 0x02}),
		x(0x4A, []byte{0x01, 0x00}, ans...),
	)
	d, p := newTestUART(t, script, testOpts(newFakeClock()))
	card, err := d.PollCard(context.Background(), nfc.PollOptions{Order: []nfc.Tech{nfc.TechA}})
	if err != nil {
		t.Fatal(err)
	}
	tg := card.Target()
	if tg.Tech != nfc.TechA || tg.SAK != 0x20 || !bytes.Equal(tg.ATS, pt.Hex("0578807002")) || tg.FSC != 256 || tg.FWT != fwt(7) {
		t.Fatalf("Target = %+v", tg)
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestChainingBothWays(t *testing.T) {
	// A 300-byte APDU goes out as 262 bytes with MI (Tg 41), then 38 bytes.
	// The 400-byte answer comes back as 262 bytes with MI in the status, then
	// the rest after a Tg-only InDataExchange.
	apdu := make([]byte, 300)
	for i := range apdu {
		apdu[i] = byte(i)
	}
	apdu[1] = 0xD6 // UPDATE BINARY, not a VERIFY
	answer := make([]byte, 400)
	for i := range answer {
		answer[i] = byte(i * 7)
	}
	answer[398], answer[399] = 0x90, 0x00
	script := ops(bringUp115200(), pollB(),
		[]serialtest.Op{
			{W: pt.Cmd(0x40, append([]byte{0x41}, apdu[:262]...)...)}, // extended frame out
			{R: pt.Ack()},
			{R: pt.Rsp(0x40, 0x00)}, // status only: send the rest
			{W: pt.Cmd(0x40, append([]byte{0x01}, apdu[262:]...)...)},
			{R: pt.Ack()},
			{R: pt.Rsp(0x40, append([]byte{0x40}, answer[:262]...)...)}, // extended frame in, MI
			{W: pt.Cmd(0x40, 0x01)},
			{R: pt.Ack()},
			{R: pt.Rsp(0x40, append([]byte{0x00}, answer[262:]...)...)},
		},
	)
	if len(pt.Cmd(0x40, append([]byte{0x41}, apdu[:262]...)...)) != 275 {
		t.Fatal("test frame is not extended")
	}
	d, p := newTestUART(t, script, testOpts(newFakeClock()))
	card, err := d.PollCard(context.Background(), nfc.PollOptions{Order: []nfc.Tech{nfc.TechB}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := card.Transceive(context.Background(), apdu)
	if err != nil {
		t.Fatalf("Transceive: %v (%v)", err, p.Err())
	}
	if !bytes.Equal(got, answer) {
		t.Fatalf("answer of %d bytes differs", len(got))
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestExchangeStatusKinds(t *testing.T) {
	for _, tc := range []struct {
		status byte
		kind   error
	}{
		{0x01, nfc.ErrTimeout},
		{0x02, nfc.ErrTransmission},
		{0x03, nfc.ErrTransmission},
		{0x13, nfc.ErrProtocol},
		{0x27, nfc.ErrProtocol},
		{0x29, nfc.ErrTargetGone},
		{0x2B, nfc.ErrTargetGone},
	} {
		script := ops(bringUp115200(), pollB(), x(0x40, pt.Hex("01 00A40000"), tc.status))
		d, _ := newTestUART(t, script, testOpts(newFakeClock()))
		card, err := d.PollCard(context.Background(), nfc.PollOptions{Order: []nfc.Tech{nfc.TechB}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = card.Transceive(context.Background(), pt.Hex("00A40000"))
		if !errors.Is(err, tc.kind) {
			t.Errorf("status %02X: err = %v, want %v", tc.status, err, tc.kind)
		}
		var se *StatusError
		if !errors.As(err, &se) || se.Status != Status(tc.status) {
			t.Errorf("status %02X: no StatusError in %v", tc.status, err)
		}
	}
}

func TestPresentGone(t *testing.T) {
	code := TimeoutCode(fwt(7) + airTime(8))
	script := ops(bringUp115200(), pollB(),
		x(0x06, pt.Hex("6302 6303"), 0x03, 0x03), // CRC off: turn it on
		x(0x08, pt.Hex("6302 83 6303 83")),
		x(0x32, []byte{0x02, 0x00, 0x0B, code}),
		x(0x42, pt.Hex("BA01"), 0x01), // timeout
		x(0x42, pt.Hex("BA01"), 0x01), // timeout again: gone
	)
	d, p := newTestUART(t, script, testOpts(newFakeClock()))
	card, err := d.PollCard(context.Background(), nfc.PollOptions{Order: []nfc.Tech{nfc.TechB}})
	if err != nil {
		t.Fatal(err)
	}
	if err := card.Present(context.Background()); !errors.Is(err, nfc.ErrTargetGone) {
		t.Fatalf("Present = %v, want ErrTargetGone", err)
	}
	if err := card.Release(context.Background()); err != nil {
		t.Fatalf("Release of a gone card: %v", err)
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestPollAfterCardLeft(t *testing.T) {
	code := TimeoutCode(fwt(7) + airTime(8))
	script := ops(bringUp115200(), pollB(),
		x(0x06, pt.Hex("6302 6303"), 0x83, 0x83),
		x(0x32, []byte{0x02, 0x00, 0x0B, code}),
		x(0x42, pt.Hex("BA01"), 0x01),
		x(0x42, pt.Hex("BA01"), 0x01), // gone
		// The next Poll empties the chip's target list first; the card is
		// not there to answer the DESELECT, which is fine.
		x(0x52, []byte{0x00}, 0x01),
		x(0x4A, []byte{0x01, 0x03, 0x00}, pollBResp...), // a card again
	)
	d, p := newTestUART(t, script, testOpts(newFakeClock()))
	card, err := d.PollCard(context.Background(), nfc.PollOptions{Order: []nfc.Tech{nfc.TechB}})
	if err != nil {
		t.Fatal(err)
	}
	if err := card.Present(context.Background()); !errors.Is(err, nfc.ErrTargetGone) {
		t.Fatalf("Present = %v", err)
	}
	if _, err := d.Poll(context.Background(), nfc.PollOptions{Order: []nfc.Tech{nfc.TechB}}); err != nil {
		t.Fatalf("Poll after the card left: %v", err)
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestTransceiveRawRedactsPIN(t *testing.T) {
	// Host-managed ISO-DEP: an I-block carrying VERIFY, without CID.
	rec := &recorder{}
	block := pt.Hex("02 0020008004 39393939")
	code := TimeoutCode(10 * time.Millisecond)
	script := ops(bringUp115200(),
		x(0x06, pt.Hex("6302 6303"), 0x83, 0x83),
		x(0x32, []byte{0x02, 0x00, 0x0B, code}),
		x(0x42, block, 0x00, 0x02, 0x90, 0x00),
	)
	d, p := newTestUART(t, script, &Opts{Baud: 115200, Tracer: rec})
	got, err := d.TransceiveRaw(context.Background(), block, 10*time.Millisecond)
	if err != nil || !bytes.Equal(got, pt.Hex("029000")) {
		t.Fatalf("TransceiveRaw = % X, %v", got, err)
	}
	for _, e := range rec.ev {
		if bytes.Contains(e.Data, []byte("9999")) {
			t.Errorf("%v trace leaks the PIN: % X", e.Layer, e.Data)
		}
	}
	if rf := rec.layer(nfc.LayerRF); len(rf) != 2 || !bytes.Equal(rf[0].Data, pt.Hex("02 0020008004 2A2A2A2A")) {
		t.Errorf("RF trace = %v", rf)
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestStrings(t *testing.T) {
	for _, tc := range []struct {
		s    interface{ String() string }
		want string
	}{
		{CmdInDataExchange, "InDataExchange"},
		{Command(0x99), "Command(0x99)"},
		{StatusCardGone, "Type B card disappeared (0x2B)"},
		{Status(0x3F), "status 0x3F"},
		{BrTy106B, "106 kbps type B"},
		{BrTy(9), "BrTy(0x09)"},
		{SAMNormal, "normal"},
		{RFMaxRetries, "MaxRetries"},
		{TestCommunicationLine, "communication line"},
		{AutoPollISO14443_4B, "ISO14443-4B"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestTimeoutCodes(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		code byte
	}{
		{0, 1},
		{100 * time.Microsecond, 1},
		{101 * time.Microsecond, 2},
		{51200 * time.Microsecond, 0x0A},
		{fwt(7), 0x0A}, // 38.7 ms fits in 51.2 ms
		{3 * time.Second, 0x10},
		{time.Minute, 0x10},
	} {
		if got := TimeoutCode(tc.d); got != tc.code {
			t.Errorf("TimeoutCode(%v) = %02X, want %02X", tc.d, got, tc.code)
		}
	}
	if TimeoutOf(0x10) != 3276800*time.Microsecond {
		t.Errorf("TimeoutOf(10) = %v", TimeoutOf(0x10))
	}
}

func TestUARTChipLeftAtHighRate(t *testing.T) {
	// A previous daemon crashed and left the chip at 921600: silence at
	// 115200, then the whole bring-up at 921600.
	wakeSAM := pt.Cat(pt.Wake(), pt.Cmd(0x14, 0x01, 0x00, 0x00))
	script := []serialtest.Op{
		{W: wakeSAM}, {Timeout: true},
		{W: wakeSAM}, {Timeout: true},
		{W: wakeSAM}, {Timeout: true},
		{W: pt.Ack()}, // abort, in case
		{Baud: 921600},
		{W: wakeSAM}, {R: pt.Ack()}, {R: pt.Rsp(0x14)},
	}
	script = append(script, x(0x02, nil, fwV16...)...)
	script = append(script, x(0x12, []byte{0x14})...)
	d, p := newTestUART(t, script, &Opts{Baud: 921600})
	if d.Baud() != 921600 {
		t.Fatalf("Baud = %d", d.Baud())
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}
