package simreader

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"kazasu/drivers/iso14443"
	"kazasu/drivers/isodep"
	"kazasu/drivers/nfc"
	"kazasu/drivers/sim/rf"
)

// testApp answers APDUs: "00 B0 .. .. Le" with Le bytes, anything else
// with 9000; it counts commands and charges proc per command.
type testApp struct {
	proc  time.Duration
	calls int
	last  []byte
}

func (a *testApp) handle(apdu []byte) ([]byte, time.Duration) {
	a.calls++
	a.last = append([]byte(nil), apdu...)
	if len(apdu) == 5 && apdu[1] == 0xB0 {
		n := int(apdu[4])
		if n == 0 {
			n = 256
		}
		return append(bytes.Repeat([]byte{0x5A}, n), 0x90, 0x00), a.proc
	}
	if len(apdu) > 5 && apdu[1] == 0x2A { // signature: 256 bytes
		return append(bytes.Repeat([]byte{0x5A}, 256), 0x90, 0x00), a.proc
	}
	if len(apdu) > 5 && apdu[1] == 0xEE { // echo
		return append(append([]byte(nil), apdu[5:]...), 0x90, 0x00), a.proc
	}
	return []byte{0x90, 0x00}, a.proc
}

// piccB is a minimal Type B PICC: WUPB/REQB, ATTRIB, HLTB, then ISO-DEP.
type piccB struct {
	atqb   iso14443.ATQB
	picc   *isodep.PICC
	state  string // "off", "idle", "readyreq", "ready", "active", "halt"
	attrib int
	slot   int
	rng    uint32
}

func newPICCB(pupi byte, app isodep.Handler, cfg isodep.PICCConfig) *piccB {
	a := iso14443.ATQB{PUPI: [4]byte{pupi, 0x22, 0x33, 0x44}, BitRates: 0xB3, FSCI: 8, ProtocolType: 1, FWI: iso14443.FWIFor(cfg.FWT), FO: 1}
	if cfg.FWT == 0 {
		a.FWI = 4
	}
	cfg.FSC, cfg.CID = 256, -1
	return &piccB{atqb: a, picc: isodep.NewPICC(cfg, app), state: "off"}
}

func (p *piccB) Techs() []nfc.Tech { return []nfc.Tech{nfc.TechB} }
func (p *piccB) FieldOn()          { p.state = "idle"; p.picc.Reset() }
func (p *piccB) FieldOff()         { p.state = "off" }

func (p *piccB) Exchange(f rf.Frame) (rf.Frame, time.Duration, bool) {
	out := func(b []byte) (rf.Frame, time.Duration, bool) { return rf.Frame{Tech: nfc.TechB, Data: b}, 0, true }
	if p.state == "active" {
		if p.picc.Deselected() {
			p.state = "halt"
		} else {
			resp, proc, ok := p.picc.HandleBlock(f.Data)
			if p.picc.Deselected() {
				p.state = "halt"
			}
			return rf.Frame{Tech: nfc.TechB, Data: resp}, proc, ok
		}
	}
	if r, err := iso14443.ParseReqB(f.Data); err == nil {
		if p.state == "off" || p.state == "halt" && !r.WakeUp {
			return rf.Frame{}, 0, false
		}
		// Slot 1…N from a small generator seeded by the PUPI (§7.4).
		p.rng = p.rng*1103515245 + 12345 + uint32(p.atqb.PUPI[0])
		p.slot = 1 + int(p.rng>>16)%r.Slots
		if p.slot == 1 {
			p.state = "ready"
			return out(p.atqb.Bytes())
		}
		p.state = "readyreq"
		return rf.Frame{}, 0, false
	}
	if n, err := iso14443.ParseSlotMarker(f.Data); err == nil {
		if p.state == "readyreq" && n == p.slot {
			p.state = "ready"
			return out(p.atqb.Bytes())
		}
		return rf.Frame{}, 0, false
	}
	if pupi, err := iso14443.ParseHLTB(f.Data); err == nil && p.state == "ready" && pupi == p.atqb.PUPI {
		p.state = "halt"
		return out([]byte{iso14443.HLTBAnswer})
	}
	if a, err := iso14443.ParseAttrib(f.Data); err == nil && p.state == "ready" && a.PUPI == p.atqb.PUPI {
		p.attrib++
		p.picc.SetFSD(a.FSD())
		cid := int(a.CID)
		p.picc.SetCID(cid)
		p.picc.Reset()
		p.state = "active"
		return out(iso14443.AttribResp{CID: a.CID}.Bytes())
	}
	return rf.Frame{}, 0, false
}

// piccA is a minimal Type A PICC with a 7-byte UID: WUPA/REQA,
// anticollision/SELECT, RATS, then ISO-DEP.
type piccA struct {
	uid    []byte
	sak    byte
	levels [][4]byte
	level  int
	picc   *isodep.PICC
	state  string
}

func newPICCA(uid []byte, sak byte, app isodep.Handler) *piccA {
	levels, err := iso14443.CascadeLevels(uid)
	if err != nil {
		panic(err)
	}
	return &piccA{uid: uid, sak: sak, levels: levels, picc: isodep.NewPICC(isodep.PICCConfig{FSC: 256, CID: -1}, app), state: "off"}
}

func (p *piccA) Techs() []nfc.Tech { return []nfc.Tech{nfc.TechA} }
func (p *piccA) FieldOn()          { p.state = "idle" }
func (p *piccA) FieldOff()         { p.state = "off" }

func (p *piccA) Exchange(f rf.Frame) (rf.Frame, time.Duration, bool) {
	out := func(b []byte) (rf.Frame, time.Duration, bool) { return rf.Frame{Tech: nfc.TechA, Data: b}, 0, true }
	d := f.Data
	if f.Bits == iso14443.ShortFrameBits && len(d) == 1 {
		if d[0] == iso14443.REQA && p.state == "idle" || d[0] == iso14443.WUPA && (p.state == "idle" || p.state == "halt") {
			p.state, p.level = "ready", 1
			return out([]byte{byte(len(p.levels)-1)<<6 | 0x04, 0x00})
		}
		return rf.Frame{}, 0, false
	}
	switch p.state {
	case "ready":
		level, sel, cln, err := iso14443.ParseSelectFrame(d)
		if err != nil || level != p.level {
			p.state = "idle"
			return rf.Frame{}, 0, false
		}
		if !sel {
			return out(iso14443.AnticollisionResp(p.levels[level-1]))
		}
		if cln != p.levels[level-1] {
			return rf.Frame{}, 0, false
		}
		if level < len(p.levels) {
			p.level++
			return out([]byte{0x04})
		}
		p.state = "active"
		return out([]byte{p.sak})
	case "active":
		if bytes.Equal(d, iso14443.HLTA()) {
			p.state = "halt"
			return rf.Frame{}, 0, false
		}
		r, err := iso14443.ParseRATS(d)
		if err != nil {
			p.state = "idle"
			return rf.Frame{}, 0, false
		}
		p.picc.SetFSD(r.FSD())
		p.picc.SetCID(int(r.CID))
		p.picc.Reset()
		p.state = "protocol"
		return out(iso14443.ATS{FSCI: 8, HasTB1: true, FWI: 7, HasTC1: true, TC1: 0x02}.Bytes())
	case "protocol":
		resp, proc, ok := p.picc.HandleBlock(d)
		if p.picc.Deselected() {
			p.state = "halt"
		}
		return rf.Frame{Tech: nfc.TechA, Data: resp}, proc, ok
	}
	return rf.Frame{}, 0, false
}

func TestPollTypeB(t *testing.T) {
	ctx := context.Background()
	app := &testApp{}
	field := &rf.Field{}
	p := newPICCB(0x11, app.handle, isodep.PICCConfig{})
	field.Add(p)
	var charged time.Duration
	r := New(field, Options{TimeModel: func(d time.Duration) { charged += d }})
	c, err := r.Poll(ctx, nfc.PollOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Target().String(), "B PUPI 11223344 FSC 256 FSD 256 FWT 4.833ms 106/106 kbps ISO-DEP host"; got != want {
		t.Errorf("target\n got %s\nwant %s", got, want)
	}
	resp, err := c.Transceive(ctx, []byte{0x00, 0xB0, 0x00, 0x00, 0x00})
	if err != nil || len(resp) != 258 {
		t.Fatalf("READ BINARY: %d bytes, %v", len(resp), err)
	}
	// An extended APDU chained both ways.
	big := bytes.Repeat([]byte{7}, 3000)
	cmd := append([]byte{0x00, 0xEE, 0x00, 0x00, 0x00, byte(len(big) >> 8), byte(len(big))}, big...)
	resp, err = c.Transceive(ctx, cmd)
	if err != nil || len(resp) != 3000+7-5+2 {
		t.Fatalf("extended echo: %d bytes, %v", len(resp), err)
	}
	if err := c.Present(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if p.state != "halt" {
		t.Errorf("PICC state %s after Release", p.state)
	}
	// After Release, Present wakes the PICC and halts it again.
	if err := c.Present(ctx); err != nil || p.state != "halt" {
		t.Errorf("Present after Release: %v, PICC %s", err, p.state)
	}
	field.Remove(p)
	if err := c.Present(ctx); !errors.Is(err, nfc.ErrTargetGone) {
		t.Errorf("Present after Release and removal: %v", err)
	}
	field.Add(p)
	// WUPB wakes the halted PICC.
	c2, err := r.Poll(ctx, nfc.PollOptions{Order: []nfc.Tech{nfc.TechB}})
	if err != nil || p.attrib != 2 {
		t.Fatalf("poll after release: %v (%d ATTRIBs)", err, p.attrib)
	}
	if _, err := c2.Transceive(ctx, []byte{0x00, 0xA4, 0x00, 0x00}); err != nil {
		t.Fatal(err)
	}
	// Polling again without Release ends the old session (S(DESELECT))
	// and finds the same PICC.
	if _, err := r.Poll(ctx, nfc.PollOptions{Order: []nfc.Tech{nfc.TechB}}); err != nil || p.attrib != 3 {
		t.Fatalf("poll without release: %v (%d ATTRIBs)", err, p.attrib)
	}
	if charged == 0 || charged != r.Elapsed() {
		t.Errorf("time model charged %v, Elapsed %v", charged, r.Elapsed())
	}
	if lim, ok := c.(nfc.Limits); !ok {
		t.Error("card does not implement nfc.Limits")
	} else if cmdMax, respMax := lim.MaxAPDU(); cmdMax != 65544 || respMax != 65538 {
		t.Errorf("MaxAPDU = %d, %d", cmdMax, respMax)
	}
}

func TestPollTypeA(t *testing.T) {
	ctx := context.Background()
	app := &testApp{}
	field := &rf.Field{}
	field.Add(newPICCA([]byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}, 0x20, app.handle))
	r := New(field, Options{})
	c, err := r.Poll(ctx, nfc.PollOptions{Order: []nfc.Tech{nfc.TechA}})
	if err != nil {
		t.Fatal(err)
	}
	tg := c.Target()
	if got, want := tg.String(), "A UID 04112233445566 FSC 256 FSD 256 FWT 38.664ms 106/106 kbps ISO-DEP host"; got != want {
		t.Errorf("target\n got %s\nwant %s", got, want)
	}
	if !bytes.Equal(tg.ATQA, []byte{0x44, 0x00}) || tg.SAK != 0x20 || !bytes.Equal(tg.ATS, []byte{0x04, 0x68, 0x70, 0x02}) {
		t.Errorf("ATQA % X SAK %02X ATS % X", tg.ATQA, tg.SAK, tg.ATS)
	}
	if resp, err := c.Transceive(ctx, []byte{0x00, 0xA4, 0x04, 0x00}); err != nil || !bytes.Equal(resp, []byte{0x90, 0x00}) {
		t.Fatalf("SELECT: % X %v", resp, err)
	}
	// A non-ISO-DEP Type A PICC (SAK 08) is skipped.
	field.Clear()
	field.Add(newPICCA([]byte{0x01, 0x02, 0x03, 0x04}, 0x08, app.handle))
	if _, err := r.Poll(ctx, nfc.PollOptions{Order: []nfc.Tech{nfc.TechA}}); !errors.Is(err, nfc.ErrNoTarget) {
		t.Errorf("MIFARE-like PICC: %v", err)
	}
	// Two Type A PICCs: one is selected.
	field.Clear()
	field.Add(newPICCA([]byte{0x08, 0x01, 0x02, 0x03}, 0x20, app.handle))
	field.Add(newPICCA([]byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99}, 0x20, app.handle))
	c, err = r.Poll(ctx, nfc.PollOptions{Order: []nfc.Tech{nfc.TechA}})
	if err != nil || !bytes.Equal(c.Target().ID, []byte{0x08, 0x01, 0x02, 0x03}) {
		t.Fatalf("two PICCs: %v %v", c, err)
	}
	if _, err := c.Transceive(ctx, []byte{0x00, 0xA4, 0x04, 0x00}); err != nil {
		t.Fatal(err)
	}
}

func TestPollOrderAndEmptyField(t *testing.T) {
	ctx := context.Background()
	field := &rf.Field{}
	r := New(field, Options{})
	if _, err := r.Poll(ctx, nfc.PollOptions{}); !errors.Is(err, nfc.ErrNoTarget) {
		t.Fatalf("empty field: %v", err)
	}
	if !field.On() {
		t.Error("Poll left the field off")
	}
	app := &testApp{}
	field.Add(newPICCB(0x11, app.handle, isodep.PICCConfig{}))
	field.Add(newPICCA([]byte{0x08, 0x01, 0x02, 0x03}, 0x20, app.handle))
	for _, tt := range []struct {
		order []nfc.Tech
		want  nfc.Tech
	}{{nil, nfc.TechB}, {[]nfc.Tech{nfc.TechA, nfc.TechB}, nfc.TechA}} {
		if err := r.SetField(ctx, false); err != nil {
			t.Fatal(err)
		}
		c, err := r.Poll(ctx, nfc.PollOptions{Order: tt.order})
		if err != nil || c.Target().Tech != tt.want {
			t.Errorf("order %v: %v %v", tt.order, c, err)
		}
	}
	// A reader that supports only A does not poll B.
	ra := New(field, Options{Techs: []nfc.Tech{nfc.TechA}})
	if c, err := ra.Poll(ctx, nfc.PollOptions{Order: []nfc.Tech{nfc.TechB}}); !errors.Is(err, nfc.ErrNoTarget) {
		t.Errorf("B on an A-only reader: %v %v", c, err)
	}
	if got := ra.Info(); got.Driver != "sim" || len(got.Supported) != 1 {
		t.Errorf("Info = %+v", got)
	}
	// Two Type B PICCs answer the one-slot WUPB together: slotted
	// anticollision activates one of them, and it works.
	field.Clear()
	b1, b2 := newPICCB(0x11, app.handle, isodep.PICCConfig{}), newPICCB(0x12, app.handle, isodep.PICCConfig{})
	field.Add(b1)
	field.Add(b2)
	c, err := r.Poll(ctx, nfc.PollOptions{Order: []nfc.Tech{nfc.TechB}})
	if err != nil {
		t.Fatalf("two Type B PICCs: %v", err)
	}
	if b1.attrib+b2.attrib != 1 {
		t.Errorf("%d + %d ATTRIBs answered", b1.attrib, b2.attrib)
	}
	if _, err := c.Transceive(ctx, []byte{0x00, 0xB0, 0x00, 0x00, 0x04}); err != nil {
		t.Fatal(err)
	}
	// Two identical PUPIs collide in every slot.
	field.Clear()
	field.Add(newPICCB(0x11, app.handle, isodep.PICCConfig{}))
	field.Add(newPICCB(0x11, app.handle, isodep.PICCConfig{}))
	if _, err := r.Poll(ctx, nfc.PollOptions{Order: []nfc.Tech{nfc.TechB}}); !errors.Is(err, nfc.ErrTransmission) {
		t.Errorf("two identical Type B PICCs: %v", err)
	}
}

func TestRemovedMidSession(t *testing.T) {
	ctx := context.Background()
	app := &testApp{}
	field := &rf.Field{}
	p := newPICCB(0x11, app.handle, isodep.PICCConfig{})
	field.Add(p)
	r := New(field, Options{})
	c, err := r.Poll(ctx, nfc.PollOptions{})
	if err != nil {
		t.Fatal(err)
	}
	field.Remove(p)
	if _, err := c.Transceive(ctx, []byte{0x00, 0xB0, 0x00, 0x00, 0x10}); !errors.Is(err, nfc.ErrTargetGone) {
		t.Errorf("Transceive after removal: %v", err)
	}
	if err := nfc.WaitRemoved(ctx, c, time.Millisecond); err != nil {
		t.Errorf("WaitRemoved: %v", err)
	}
	// A field reset also loses the card.
	field.Add(p)
	if c, err = r.Poll(ctx, nfc.PollOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Present(ctx); !errors.Is(err, nfc.ErrTargetGone) {
		t.Errorf("Present after Reset: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Poll(ctx, nfc.PollOptions{}); !errors.Is(err, nfc.ErrReaderGone) {
		t.Errorf("Poll after Close: %v", err)
	}
	if _, err := c.Transceive(ctx, []byte{0}); !errors.Is(err, nfc.ErrReaderGone) {
		t.Errorf("Transceive after Close: %v", err)
	}
	if err := r.SetField(ctx, true); !errors.Is(err, nfc.ErrReaderGone) {
		t.Errorf("SetField after Close: %v", err)
	}
}

func TestTimeModel(t *testing.T) {
	// iso14443b.md §6.2 at 106 kbit/s, FSD = FSC = 256, no CID, no card
	// processing: SELECT EF (N 7, M 2) 2.13 ms; READ BINARY 256 (N 5,
	// M 258, two round trips) 27.39 ms.
	ctx := context.Background()
	app := &testApp{}
	field := &rf.Field{}
	field.Add(newPICCB(0x11, app.handle, isodep.PICCConfig{}))
	r := New(field, Options{})
	c, err := r.Poll(ctx, nfc.PollOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		apdu []byte
		want time.Duration
	}{
		{[]byte{0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x0A}, 2130 * time.Microsecond},
		{[]byte{0x00, 0xB0, 0x00, 0x00, 0x00}, 27390 * time.Microsecond},
	} {
		before := r.Elapsed()
		if _, err := c.Transceive(ctx, tt.apdu); err != nil {
			t.Fatal(err)
		}
		if got := (r.Elapsed() - before).Round(10 * time.Microsecond); got != tt.want {
			t.Errorf("APDU % X: modelled %v, want %v", tt.apdu, got, tt.want)
		}
	}
	// Activation (§6.4): guard 5 ms + WUPB/ATQB + ATTRIB/answer ≈ 4.55 ms.
	r2 := New(field, Options{})
	r2.SetField(ctx, false)
	if _, err := r2.Poll(ctx, nfc.PollOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := r2.Elapsed().Round(10 * time.Microsecond); got != 9550*time.Microsecond {
		t.Errorf("activation modelled %v, want 9.55ms", got)
	}
}

func TestReferenceTransaction(t *testing.T) {
	// iso14443b.md §6.3, variant A at 106 kbit/s (FSD = FSC = 256, no CID,
	// no card processing): 14 APDUs, 22 round trips, 247.8 ms of air time
	// and minimum gaps.
	ctx := context.Background()
	field := &rf.Field{}
	field.Add(newPICCB(0x11, (&testApp{}).handle, isodep.PICCConfig{}))
	r := New(field, Options{})
	c, err := r.Poll(ctx, nfc.PollOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sel := []byte{0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x0A}
	apdus := [][]byte{
		{0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01},
		sel,
	}
	for i := range 7 {
		apdus = append(apdus, []byte{0x00, 0xB0, byte(i), 0x00, 0x00})
	}
	apdus = append(apdus, []byte{0x00, 0xB0, 0x07, 0x00, 0x6C}, sel,
		[]byte{0x00, 0x20, 0x00, 0x80, 0x04, '1', '2', '3', '4'}, sel,
		append(append([]byte{0x80, 0x2A, 0x00, 0x80, 0x33}, make([]byte, 51)...), 0x00))
	start := r.Elapsed()
	for _, a := range apdus {
		if _, err := c.Transceive(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if got := (r.Elapsed() - start).Round(100 * time.Microsecond); got != 247800*time.Microsecond {
		t.Errorf("reference transaction modelled %v, want 247.8ms", got)
	}
}

func TestSlowCard(t *testing.T) {
	ctx := context.Background()
	fwt := iso14443.FWT(10)
	// With WTX: a 900 ms signature at FWI 10 succeeds and costs ≥ 900 ms.
	app := &testApp{proc: 900 * time.Millisecond}
	field := &rf.Field{}
	field.Add(newPICCB(0x11, app.handle, isodep.PICCConfig{FWT: fwt}))
	r := New(field, Options{})
	c, err := r.Poll(ctx, nfc.PollOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := r.Elapsed()
	if _, err := c.Transceive(ctx, []byte{0x80, 0x2A, 0x00, 0x80, 0x01, 0x01, 0x00}); err != nil {
		t.Fatal(err)
	}
	// 900 ms of processing, 27.4 ms for the two-block 258-byte answer
	// (§6.2), and two S(WTX) round trips of about 1.5 ms each.
	if d := r.Elapsed() - before; d < 929*time.Millisecond || d > 931*time.Millisecond {
		t.Errorf("modelled %v for a 900 ms command", d)
	}
	// Without WTX the PCD gives up; the card is deaf while it computes.
	app2 := &testApp{proc: 5 * time.Second}
	field.Clear()
	field.Add(newPICCB(0x11, app2.handle, isodep.PICCConfig{FWT: fwt, WTX: isodep.WTXPolicy{Disabled: true}}))
	if c, err = r.Poll(ctx, nfc.PollOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Transceive(ctx, []byte{0x80, 0x2A, 0x00, 0x80, 0x01, 0x01, 0x00}); !errors.Is(err, nfc.ErrTargetGone) {
		t.Errorf("no WTX: %v", err)
	}
	if app2.calls != 1 {
		t.Errorf("command ran %d times", app2.calls)
	}
}

type recorder struct{ events []nfc.TraceEvent }

func (r *recorder) Trace(e nfc.TraceEvent) {
	r.events = append(r.events, nfc.TraceEvent{Layer: e.Layer, Out: e.Out, Data: append([]byte(nil), e.Data...)})
}

func TestTrace(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	app := &testApp{}
	field := &rf.Field{}
	field.Add(newPICCB(0x11, app.handle, isodep.PICCConfig{}))
	r := New(field, Options{Tracer: rec})
	c, err := r.Poll(ctx, nfc.PollOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != 4 || !bytes.Equal(rec.events[0].Data, []byte{0x05, 0x00, 0x08}) || !rec.events[0].Out || rec.events[1].Out {
		t.Fatalf("activation trace: %+v", rec.events)
	}
	verify := []byte{0x00, 0x20, 0x00, 0x80, 0x04, '4', '7', '1', '1'}
	if _, err := c.Transceive(ctx, verify); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(app.last, verify) {
		t.Errorf("card got % X", app.last)
	}
	for _, e := range rec.events {
		if bytes.Contains(e.Data, []byte("4711")) {
			t.Errorf("%v trace leaks the PIN: % X", e.Layer, e.Data)
		}
	}
}

func TestContextAndRealTime(t *testing.T) {
	app := &testApp{}
	field := &rf.Field{}
	field.Add(newPICCB(0x11, app.handle, isodep.PICCConfig{}))
	r := New(field, Options{RealTime: true})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Poll(ctx, nfc.PollOptions{}); err == nil {
		t.Fatal("Poll with a cancelled context succeeded")
	}
	c, err := r.Poll(context.Background(), nfc.PollOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Transceive(context.Background(), []byte{0x00, 0xA4, 0x00, 0x00}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Transceive(ctx, []byte{0x00, 0xA4, 0x00, 0x00}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Transceive: %v", err)
	}
}

func TestUseCID(t *testing.T) {
	ctx := context.Background()
	app := &testApp{}
	field := &rf.Field{}
	field.Add(newPICCB(0x11, app.handle, isodep.PICCConfig{}))
	r := New(field, Options{UseCID: true, CID: 1, FSD: 64})
	c, err := r.Poll(ctx, nfc.PollOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tg := c.Target(); tg.CID != 1 || tg.FSD != 64 {
		t.Errorf("target %v", tg)
	}
	resp, err := c.Transceive(ctx, []byte{0x00, 0xB0, 0x00, 0x00, 0x00})
	if err != nil || len(resp) != 258 {
		t.Fatalf("%d bytes, %v", len(resp), err)
	}
}

// BenchmarkPollAndRead: activation plus one 256-byte READ BINARY and
// DESELECT on the direct simulated reader (host cost, nothing sleeps).
func BenchmarkPollAndRead(b *testing.B) {
	ctx := context.Background()
	app := &testApp{}
	field := &rf.Field{}
	field.Add(newPICCB(0x11, app.handle, isodep.PICCConfig{}))
	r := New(field, Options{})
	b.ReportAllocs()
	for b.Loop() {
		c, err := r.Poll(ctx, nfc.PollOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Transceive(ctx, []byte{0x00, 0xB0, 0x00, 0x00, 0x00}); err != nil {
			b.Fatal(err)
		}
		if err := c.Release(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCloseEndsRealTimeWait(t *testing.T) {
	// A 10 s command on a real-time reader: Close, called when the long
	// wait is charged, ends it at once with ErrReaderGone.
	ctx := context.Background()
	app := &testApp{proc: 10 * time.Second}
	field := &rf.Field{}
	field.Add(newPICCB(0x11, app.handle, isodep.PICCConfig{FWT: iso14443.FWT(14)}))
	var r *Reader
	r = New(field, Options{RealTime: true, TimeModel: func(d time.Duration) {
		if d > time.Second {
			r.Close()
		}
	}})
	c, err := r.Poll(ctx, nfc.PollOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Transceive(ctx, []byte{0x80, 0x2A, 0x00, 0x80, 0x01, 0x01, 0x00}); !errors.Is(err, nfc.ErrReaderGone) {
		t.Fatalf("Transceive during Close: %v", err)
	}
}
