package pn532

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"kazasu/drivers/nfc"
	pt "kazasu/drivers/pn532/pn532test"
	"kazasu/drivers/serial"
	"kazasu/drivers/serial/serialtest"
)

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		name string
		brty BrTy
		in   []byte
		ok   bool
		rest int
	}{
		{"B", BrTy106B, pt.Cat([]byte{0x01}, atqb, []byte{0x01, 0x01}), true, 0},
		{"B no ATTRIB_RES", BrTy106B, pt.Cat([]byte{0x01}, atqb, []byte{0x00}), true, 0},
		{"B then more", BrTy106B, pt.Cat([]byte{0x01}, atqb, []byte{0x01, 0x01, 0x02}), true, 1},
		{"B short ATQB", BrTy106B, pt.Cat([]byte{0x01}, atqb[:11]), false, 0},
		{"B not 50", BrTy106B, pt.Cat([]byte{0x01, 0x51}, atqb[1:], []byte{0x00}), false, 0},
		{"B ATTRIB_RES past end", BrTy106B, pt.Cat([]byte{0x01}, atqb, []byte{0x05, 0x01}), false, 0},
		{"A MIFARE", BrTy106A, pt.Hex("01 0004 08 04 11223344"), true, 0},
		{"A ISO-DEP", BrTy106A, pt.Hex("01 0004 20 04 11223344 05 78807002"), true, 0},
		{"A ATS TL 0", BrTy106A, pt.Hex("01 0004 20 04 11223344 00"), false, 0},
		{"A ATS past end", BrTy106A, pt.Hex("01 0004 20 04 11223344 09 7880"), false, 0},
		{"A UID past end", BrTy106A, pt.Hex("01 0004 08 0A 1122"), false, 0},
		{"FeliCa", BrTy212F, pt.Cat([]byte{0x01, 0x12, 0x01}, make([]byte, 16)), true, 0},
		{"FeliCa bad length", BrTy212F, pt.Hex("01 01"), false, 0},
		{"Jewel", BrTy106Jewel, pt.Hex("01 0C00 11223344"), true, 0},
		{"empty", BrTy106B, nil, false, 0},
		{"unknown type", BrTy(7), pt.Hex("01"), false, 0},
	} {
		tg, rest, err := parseTarget(tc.brty, tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v", tc.name, err)
			continue
		}
		if err != nil {
			if !errors.Is(err, nfc.ErrProtocol) {
				t.Errorf("%s: err %v is not ErrProtocol", tc.name, err)
			}
			continue
		}
		if len(rest) != tc.rest || !bytes.Equal(tg.Raw, tc.in[:len(tc.in)-len(rest)]) {
			t.Errorf("%s: rest %d, raw % X", tc.name, len(rest), tg.Raw)
		}
	}
}

func TestParseAutoPoll(t *testing.T) {
	// nfc-poll's reply seen by pn532.md §5.6: one 106 B target.
	b := pt.Cat([]byte{0x01, 0x03, 0x0F, 0x01}, atqb, []byte{0x01, 0x01})
	got, err := parseAutoPoll(b)
	if err != nil || len(got) != 1 || got[0].Type != AutoPoll106B || !bytes.Equal(got[0].ATQB, atqb) {
		t.Fatalf("parseAutoPoll = %+v, %v", got, err)
	}
	for _, bad := range [][]byte{
		nil,
		{0x03},
		{0x01, 0x23, 0x20, 0x01},
		pt.Cat([]byte{0x01, 0x03, 0x0E, 0x01}, atqb, []byte{0x01, 0x01}), // Len one short
		pt.Cat(b, []byte{0x00}), // trailing byte
	} {
		if _, err := parseAutoPoll(bad); err == nil {
			t.Errorf("parseAutoPoll(% X) succeeded", bad)
		}
	}
}

func TestParseGeneralStatus(t *testing.T) {
	gs, err := parseGeneralStatus(pt.Hex("00 01 01 01 00 00 03 01"))
	if err != nil || !gs.Field || len(gs.Targets) != 1 || gs.Targets[0].Type != 0x03 || gs.SAMStatus != 0x01 {
		t.Fatalf("parseGeneralStatus = %+v, %v", gs, err)
	}
	for _, bad := range [][]byte{nil, pt.Hex("00 00 03"), pt.Hex("00 00 01 01 00")} {
		if _, err := parseGeneralStatus(bad); err == nil {
			t.Errorf("parseGeneralStatus(% X) succeeded", bad)
		}
	}
}

// FuzzParseTargetData: target data from a hostile chip or card never
// panics and never yields fields longer than the input.
func FuzzParseTargetData(f *testing.F) {
	f.Add(byte(3), pt.Cat([]byte{0x01}, atqb, []byte{0x01, 0x01}))
	f.Add(byte(0), pt.Hex("01 0004 20 04 11223344 05 78807002"))
	f.Add(byte(1), pt.Cat([]byte{0x01, 0x12, 0x01}, make([]byte, 16)))
	f.Add(byte(0x83), pt.Cat([]byte{0x01, 0x03, 0x0F, 0x01}, atqb, []byte{0x01, 0x01}))
	f.Fuzz(func(t *testing.T, kind byte, in []byte) {
		if kind&0x80 != 0 {
			targets, err := parseAutoPoll(in)
			if err == nil && len(targets) > 2 {
				t.Fatalf("%d targets", len(targets))
			}
			_, _ = parseGeneralStatus(in)
			return
		}
		tg, rest, err := parseTarget(BrTy(kind&0x07), in)
		if err != nil {
			return
		}
		if len(tg.Raw)+len(rest) != len(in) || len(tg.ATS) > len(in) || len(tg.ATQB) > len(in) {
			t.Fatalf("parse of % X gave raw %d rest %d", in, len(tg.Raw), len(rest))
		}
	})
}

func TestUARTLostACK(t *testing.T) {
	// The ACK is lost on the line, the answer arrives: it is taken.
	script := ops(bringUp115200(), []serialtest.Op{
		{W: pt.Cmd(0x02)},
		{R: pt.Rsp(0x02, fwV16...)},
	})
	d, p := newTestUART(t, script, testOpts(newFakeClock()))
	if fw, err := d.GetFirmwareVersion(context.Background()); err != nil || fw.IC != 0x32 {
		t.Fatalf("GetFirmwareVersion = %v, %v", fw, err)
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestInAutoPollAndRegisters(t *testing.T) {
	script := ops(bringUp115200(),
		x(0x60, []byte{0x02, 0x01, 0x23, 0x20}, pt.Cat([]byte{0x01, 0x23, 0x0F, 0x01}, atqb, []byte{0x01, 0x01})...),
		x(0x06, pt.Hex("6302 6303 FFB0"), 0x80, 0x80, 0x07),
		x(0x08, pt.Hex("6305 40 633C 10")),
		x(0x04, nil, pt.Hex("00 01 00 00")...),
		x(0x00, []byte{0x06}, 0x00), // Diagnose: attention request
	)
	d, p := newTestUART(t, script, testOpts(newFakeClock()))
	ctx := context.Background()
	ts, err := d.InAutoPoll(ctx, 2, 1, AutoPollISO14443_4B, AutoPollISO14443_4A)
	if err != nil || len(ts) != 1 || !bytes.Equal(ts[0].PUPI(), pt.Hex("11223344")) {
		t.Fatalf("InAutoPoll = %v, %v", ts, err)
	}
	if _, err := d.InAutoPoll(ctx, 0xFF, 1, AutoPoll106B); !errors.Is(err, nfc.ErrNotSupported) {
		t.Fatalf("InAutoPoll(forever) = %v", err)
	}
	v, err := d.ReadRegister(ctx, RegCIUTxMode, RegCIURxMode, 0xFFB0)
	if err != nil || !bytes.Equal(v, []byte{0x80, 0x80, 0x07}) {
		t.Fatalf("ReadRegister = % X, %v", v, err)
	}
	if err := d.WriteRegister(ctx, Reg{0x6305, 0x40}, Reg{0x633C, 0x10}); err != nil {
		t.Fatal(err)
	}
	gs, err := d.GetGeneralStatus(ctx)
	if err != nil || !gs.Field || len(gs.Targets) != 0 {
		t.Fatalf("GetGeneralStatus = %+v, %v", gs, err)
	}
	if r, err := d.Diagnose(ctx, TestAttention, nil); err != nil || !bytes.Equal(r, []byte{0x00}) {
		t.Fatalf("Diagnose = % X, %v", r, err)
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestArgumentChecks(t *testing.T) {
	d, p := newTestUART(t, bringUp115200(), testOpts(newFakeClock()))
	ctx := context.Background()
	for name, err := range map[string]error{
		"TransceiveRaw empty":      func() error { _, err := d.TransceiveRaw(ctx, nil, time.Millisecond); return err }(),
		"TransceiveRaw too long":   func() error { _, err := d.TransceiveRaw(ctx, make([]byte, 264), time.Millisecond); return err }(),
		"InDataExchange Tg 0":      func() error { _, err := d.InDataExchange(ctx, 0, []byte{1}, time.Millisecond); return err }(),
		"InListPassiveTarget 3":    func() error { _, err := d.InListPassiveTarget(ctx, 3, BrTy106B, nil); return err }(),
		"InListPassiveTarget 212B": func() error { _, err := d.InListPassiveTarget(ctx, 1, BrTy(6), nil); return err }(),
		"ReadRegister none":        func() error { _, err := d.ReadRegister(ctx); return err }(),
		"WriteRegister none":       d.WriteRegister(ctx),
		"echo too long":            d.CommunicationLineTest(ctx, make([]byte, 263)),
		"SetSerialBaudRate 1234":   d.SetSerialBaudRate(ctx, 1234),
		"PowerDown without HSU":    d.PowerDown(ctx, WakeI2C|WakeSPI, false),
	} {
		if !errors.Is(err, nfc.ErrNotSupported) {
			t.Errorf("%s: err = %v, want ErrNotSupported", name, err)
		}
	}
	if err := p.Err(); err != nil { // nothing was sent
		t.Fatal(err)
	}
}

func TestFrameLen(t *testing.T) {
	rsp := pt.Rsp(0x40, make([]byte, 20)...)
	ext := pt.Rsp(0x40, make([]byte, 260)...)
	for _, tc := range []struct {
		in   []byte
		want int
	}{
		{rsp[:6], len(rsp)},
		{pt.Cat([]byte{0x13}, rsp[:6]), len(rsp) + 1},
		{ext[:9], len(ext)},
		{pt.Ack(), 5 + 1},
		{rsp[:3], 0},
		{pt.Hex("00 00 FF 05 05"), 0},
		{nil, 0},
	} {
		if got := frameLen(tc.in); got != tc.want {
			t.Errorf("frameLen(% X) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// hostilePort is a serial.Port whose "chip" answers every command with the
// same bytes, then silence.
type hostilePort struct {
	data []byte
	off  int
}

func (h *hostilePort) Read(b []byte) (int, error) {
	if h.off >= len(h.data) {
		h.off = 0 // the next command gets the same answer
		return 0, serial.ErrTimeout
	}
	n := copy(b, h.data[h.off:min(len(h.data), h.off+7)]) // dribble
	h.off += n
	return n, nil
}
func (h *hostilePort) Write(b []byte) (int, error)        { return len(b), nil }
func (h *hostilePort) Close() error                       { return nil }
func (h *hostilePort) SetReadTimeout(time.Duration) error { return nil }
func (h *hostilePort) Flush() error                       { return nil }
func (h *hostilePort) SetBaud(int) error                  { return nil }
func (h *hostilePort) Baud() int                          { return 115200 }

// FuzzHostileChip: whatever the chip sends, the driver neither panics nor
// loops; every command ends with a result or an nfc error kind.
func FuzzHostileChip(f *testing.F) {
	f.Add(pt.Cat(pt.Ack(), pt.Rsp(0x4A, pollBResp...)))
	f.Add(pt.Cat(pt.Ack(), pt.Rsp(0x40, 0x40, 0x90, 0x00)))
	f.Add(pt.Cat(pt.Ack(), pt.Rsp(0x02, fwV16...)))
	f.Add(pt.Cat(pt.Ack(), pt.Err()))
	f.Add(pt.Cat(pt.Ack(), pt.Corrupt(pt.Rsp(0x42, 0x00))))
	f.Add(pt.Cat(pt.Ack(), pt.Rsp(0x06, 0x00)))
	f.Fuzz(func(t *testing.T, data []byte) {
		o := (&Opts{Baud: 115200, clock: newFakeClock()}).withDefaults()
		d := newDev(&uartLink{port: &hostilePort{data: data}, clk: o.clock}, o)
		d.asleep = false
		d.retriesSet = true
		d.fw = Firmware{IC: 0x32, Ver: 1, Rev: 6, Support: 7}
		ctx := context.Background()
		check := func(err error) {
			if err != nil && nfc.Kind(err) == nil {
				t.Fatalf("error without an nfc kind: %v", err)
			}
		}
		_, err := d.GetFirmwareVersion(ctx)
		check(err)
		_, err = d.InListPassiveTarget(ctx, 2, BrTy106A, nil)
		check(err)
		_, err = d.InAutoPoll(ctx, 1, 1, AutoPoll106B)
		check(err)
		_, err = d.GetGeneralStatus(ctx)
		check(err)
		_, err = d.ReadRegister(ctx, RegCIUTxMode)
		check(err)
		c, err := d.PollCard(ctx, nfc.PollOptions{})
		check(err)
		if c == nil {
			// Exercise a chip-managed card anyway.
			c = &Card{d: d, tg: 1, target: nfc.Target{Tech: nfc.TechB, FSD: 64}, fwi: 4}
			d.active = c
		}
		_, err = c.Transceive(ctx, pt.Hex("00B0000000"))
		check(err)
		check(c.Present(ctx))
		_, err = d.TransceiveRaw(ctx, pt.Hex("0200A4040000"), time.Millisecond)
		check(err)
	})
}

func TestReleaseOfAGoneCard(t *testing.T) {
	script := ops(bringUp115200(), pollB(),
		x(0x52, []byte{0x01}, 0x01), // InRelease: the DESELECT timed out
	)
	d, p := newTestUART(t, script, testOpts(newFakeClock()))
	card, err := d.PollCard(context.Background(), nfc.PollOptions{Order: []nfc.Tech{nfc.TechB}})
	if err != nil {
		t.Fatal(err)
	}
	if err := card.Release(context.Background()); err != nil {
		t.Fatalf("Release = %v, want nil", err)
	}
	if _, err := card.Transceive(context.Background(), pt.Hex("00A40000")); !errors.Is(err, nfc.ErrTargetGone) {
		t.Fatalf("Transceive after Release = %v", err)
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestRFConfigurationHelpers(t *testing.T) {
	script := ops(bringUp115200(),
		x(0x32, pt.Hex("05 FF 01 05")),
		x(0x32, pt.Hex("02 00 0B 0C")),
		x(0x32, pt.Hex("0C FF 04 85")),
		x(0x4A, pt.Hex("01 03 00"), 0x00), // no MaxRetries of the driver's own now
	)
	d, p := newTestUART(t, script, testOpts(newFakeClock()))
	ctx := context.Background()
	if err := d.SetMaxRetries(ctx, 0xFF, 0x01, 0x05); err != nil {
		t.Fatal(err)
	}
	if err := d.SetTimings(ctx, 0x0B, 0x0C); err != nil {
		t.Fatal(err)
	}
	if err := d.SetAnalogTypeB(ctx, 0xFF, 0x04, 0x85); err != nil {
		t.Fatal(err)
	}
	if ts, err := d.InListPassiveTarget(ctx, 1, BrTy106B, []byte{0}); err != nil || len(ts) != 0 {
		t.Fatalf("InListPassiveTarget = %v, %v", ts, err)
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestRawCommand(t *testing.T) {
	script := ops(bringUp115200(), x(0x0C, nil, 0x3F, 0xFF, 0x00)) // ReadGPIO
	d, p := newTestUART(t, script, testOpts(newFakeClock()))
	got, err := d.Command(context.Background(), Command(0x0C), nil, 0)
	if err != nil || !bytes.Equal(got, []byte{0x3F, 0xFF, 0x00}) {
		t.Fatalf("Command = % X, %v", got, err)
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestChainWithoutProgress(t *testing.T) {
	script := ops(bringUp115200(), pollB(),
		x(0x40, pt.Hex("01 00B0000000"), 0x40, 0x01, 0x02), // MI, some data
		x(0x40, []byte{0x01}, 0x40),                        // MI, nothing new
	)
	d, p := newTestUART(t, script, testOpts(newFakeClock()))
	card, err := d.PollCard(context.Background(), nfc.PollOptions{Order: []nfc.Tech{nfc.TechB}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := card.Transceive(context.Background(), pt.Hex("00B0000000")); !errors.Is(err, nfc.ErrProtocol) {
		t.Fatalf("Transceive = %v, want ErrProtocol", err)
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}
