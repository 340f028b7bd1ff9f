package compat

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"kazasu/drivers/apdu"
	"kazasu/drivers/jpki"
	"kazasu/drivers/nfc"
	"kazasu/drivers/reader"
	"kazasu/drivers/sim/card"
)

func TestWTXCounter(t *testing.T) {
	w := &WTXCounter{}
	ev := func(out bool, b ...byte) { w.Trace(nfc.TraceEvent{Layer: nfc.LayerRF, Out: out, Data: b}) }
	ev(true, 0x02, 0x00, 0xA4)  // I-block out
	ev(false, 0xF2, 0x01)       // S(WTX) request, traced by the chip driver
	ev(false, 0xF2, 0x01)       // ... and again by the ISO-DEP layer: one request
	ev(true, 0xF2, 0x01)        // the PCD's answer is not counted
	ev(false, 0xF2, 0x01)       // a second request
	ev(false, 0xFA, 0x00, 0x01) // with a CID
	ev(false, 0x02, 0x90, 0x00) // I-block in
	w.Trace(nfc.TraceEvent{Layer: nfc.LayerAPDU, Data: []byte{0xF2}})
	ev(false) // empty frame
	if got := w.Count(); got != 3 {
		t.Fatalf("counted %d S(WTX), want 3", got)
	}
	var nilW *WTXCounter
	if nilW.Count() != 0 {
		t.Fatal("nil counter")
	}
}

func TestErrorKind(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{nfc.Errorf("x", nfc.ErrTimeout, "late"), "timeout"},
		{fmt.Errorf("a: %w", nfc.Errorf("x", nfc.ErrTargetGone, "gone")), "target_gone"},
		{fmt.Errorf("jpki: %w", jpki.ErrNotArmed), KindNotArmed},
		{&jpki.WrongPINError{Retries: 2}, KindWrongPIN},
		{&jpki.WrongPINError{Retries: 0}, KindWrongPIN},
		{fmt.Errorf("%w (SELECT answered 6A82)", jpki.ErrNotJPKI), KindNotJPKI},
		{fmt.Errorf("x: %w", &apdu.StatusError{SW: 0x6A86}), "sw_6A86"},
		{context.DeadlineExceeded, KindDeadline},
		{errBadSignature, KindBadSignature},
		{fmt.Errorf("compat: %w with 1 tries left", errVerifyWithheld), KindVerifyWithheld},
		{errors.New("what"), "other"},
	} {
		if got := ErrorKind(tc.err); got != tc.want {
			t.Errorf("ErrorKind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	if pct(nil, 50) != 0 {
		t.Fatal("empty")
	}
	d := ms(5, 1, 4, 2, 3)
	if pct(d, 50) != 3*time.Millisecond || pct(d, 95) != 5*time.Millisecond || pct(d, 0) != time.Millisecond {
		t.Fatalf("p50 %v p95 %v p0 %v", pct(d, 50), pct(d, 95), pct(d, 0))
	}
	if d[0] != 5*time.Millisecond {
		t.Fatal("pct sorted its input")
	}
}

func TestTargetDecoders(t *testing.T) {
	b := nfc.Target{Tech: nfc.TechB, ATQB: []byte{0x50, 1, 2, 3, 4, 0, 0, 5, 0xE0, 0xB3, 0x81, 0xA1}, BitRatePCD: 106, BitRatePICC: 106}
	if !cidSupported(b) {
		t.Error("card ATQB FO 01: CID supported")
	}
	if got := bitRates(b); got != "106/106 (offers PCD→PICC 106,212,424, PICC→PCD 106,212,424)" {
		t.Errorf("bit rates %q", got)
	}
	b.ATQB[11] = 0xA0
	if cidSupported(b) {
		t.Error("FO 00: no CID")
	}
	// ATS 05 78 80 70 02: TA 80 (106 only), TB, TC 02 (CID).
	a := nfc.Target{Tech: nfc.TechA, ATS: []byte{0x05, 0x78, 0x80, 0x70, 0x02}, BitRatePCD: 106, BitRatePICC: 106}
	if !cidSupported(a) || bitRates(a) != "106/106 (offers 106 only)" {
		t.Errorf("ATS: CID %v, %q", cidSupported(a), bitRates(a))
	}
	a.ATS = []byte{0x05, 0x78, 0x80, 0x70, 0x00}
	if cidSupported(a) {
		t.Error("TC 00: no CID")
	}
	for _, ats := range [][]byte{nil, {0x01}, {0x02, 0x70}, {0x03, 0x40}} {
		if cidSupported(nfc.Target{Tech: nfc.TechA, ATS: ats}) {
			t.Errorf("truncated ATS %X: CID", ats)
		}
	}
	if n, err := derSize([]byte{0x30, 0x82, 0x04, 0x6B}); err != nil || n != 4+0x46B {
		t.Errorf("derSize: %d %v", n, err)
	}
	for _, h := range [][]byte{nil, {0x30}, {0x31, 0x10}, {0x30, 0x80}, {0x30, 0x83, 1, 2}} {
		if _, err := derSize(h); err == nil {
			t.Errorf("derSize(%X) accepted", h)
		}
	}
	if m, b := splitLabel(" Pixel 8 / AP4A.250105.002 "); m != "Pixel 8" || b != "AP4A.250105.002" {
		t.Errorf("label: %q %q", m, b)
	}
}

func FuzzTargetDecoders(f *testing.F) {
	f.Add(byte(2), []byte{0x50, 1, 2, 3, 4, 0, 0, 5, 0xE0, 0xB3, 0x81, 0xA1})
	f.Add(byte(1), []byte{0x05, 0x78, 0x80, 0x70, 0x02})
	f.Add(byte(1), []byte{0x30, 0x82, 0x04})
	f.Fuzz(func(t *testing.T, tech byte, b []byte) {
		tg := nfc.Target{Tech: nfc.Tech(tech%3 + 1), ATQB: b, ATS: b}
		cidSupported(tg)
		if s := bitRates(tg); !strings.Contains(s, "/") {
			t.Fatalf("bit rates %q", s)
		}
		if n, err := derSize(b); err == nil && (n < 2 || n > 2+2+0xFFFF) {
			t.Fatalf("derSize(%X) = %d", b, n)
		}
		su := &suite{run: &Run{}, ids: map[string]bool{}}
		su.noteTarget(tg) // re-adds a missing TL byte; must not panic
	})
}

// openSim opens a direct sim reader with one token and suite hooks.
func openSim(t *testing.T, uri string, co card.Options) (*reader.Reader, SuiteOptions) {
	t.Helper()
	wtx := &WTXCounter{}
	rd, err := reader.Open(context.Background(), uri, reader.Options{Tracer: wtx, SimCard: co})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	so := SuiteOptions{Label: "Test / sim", Trials: 3, WTX: wtx, ReaderURI: uri}
	SimHooks(rd, &so)
	return rd, so
}

// TestNoVerifyOnTheLastTries: with one try left the suite never sends
// VERIFY, even with a test PIN, and the counter stays where it was.
func TestNoVerifyOnTheLastTries(t *testing.T) {
	rd, so := openSim(t, "sim:mynumber?seed=compat", card.Options{AuthPINTries: 1})
	so.TestPIN = []byte("1234")
	r, err := RunSuite(context.Background(), rd, so)
	if err != nil {
		t.Fatal(err)
	}
	tok := rd.Sim().Tokens[0]
	if n, _ := tok.Tries(card.AuthPIN); n != 1 {
		t.Fatalf("tries %d after the run, want 1", n)
	}
	v := r.Step(StepVerify)
	if v.OK != 0 || v.Trials != 3 || r.Errors[KindVerifyWithheld] != 3 || r.Step(StepSign).NotReached != 3 {
		t.Fatalf("verify %+v, sign %+v, errors %v", v, r.Step(StepSign), r.Errors)
	}
	if r.TransactionRate() != 0 {
		t.Fatalf("transaction rate %v", r.TransactionRate())
	}
}

// TestRunRecordsFailuresWithoutAborting: a token that drops on every tap
// yields a complete run with the failures counted by kind.
func TestRunRecordsFailuresWithoutAborting(t *testing.T) {
	rd, so := openSim(t, "sim:iphone-armed-dropper?seed=compat", card.Options{})
	r, err := RunSuite(context.Background(), rd, so)
	if err != nil {
		t.Fatal(err)
	}
	if r.ActivationRate() != 1 || r.TransactionRate() != 0 || !r.RetapOK {
		t.Fatalf("activation %v, JPKI %v, re-tap %v", r.ActivationRate(), r.TransactionRate(), r.RetapOK)
	}
	failed := 0
	for k, n := range r.Errors {
		if k == "timeout" || k == "target_gone" {
			failed += n
		}
	}
	if failed != 3 || r.ErrorRate() != 1 {
		t.Fatalf("errors %v (%.2f per tap), want 3 drops", r.Errors, r.ErrorRate())
	}
	if s := r.Step(StepSelect); s.OK != 3 {
		t.Fatalf("select %+v (the drop comes at the 3rd APDU)", s)
	}
	if s := r.Step(StepPINStatus); s.NotReached != 3 || s.Trials != 3 {
		t.Fatalf("pin status %+v", s)
	}
}

func TestRunSuiteChecksOptions(t *testing.T) {
	rd, so := openSim(t, "sim:mynumber?seed=compat", card.Options{})
	for _, mod := range []func(*SuiteOptions){
		func(o *SuiteOptions) { o.Label = "" },
		func(o *SuiteOptions) { o.TestPIN = []byte("12345") },
		func(o *SuiteOptions) { o.Trials = 1001 },
	} {
		o := so
		mod(&o)
		if _, err := RunSuite(context.Background(), rd, o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := RunSuite(ctx, rd, so); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
}

// TestDeriveModeFromComparisons: the ISO-DEP mode of a profile is the one
// whose worst measured phone did best.
func TestDeriveModeFromComparisons(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	a := run("Phone A", "pn532_uart", "host", "A", "0578807002", true, 1, t0)
	b := run("Phone B", "pn532_i2c", "host", "A", "0578807002", true, 1, t0)
	a.Modes = []ModeStat{{Mode: "host", OK: 10, Trials: 10, CertP50us: 90000}, {Mode: "chip", OK: 10, Trials: 10, CertP50us: 80000}}
	b.Modes = []ModeStat{{Mode: "host", OK: 10, Trials: 10, CertP50us: 90000}, {Mode: "chip", OK: 6, Trials: 10, CertP50us: 70000}}
	set := Derive([]*Run{a, b})
	if len(set.Profiles) != 2 || set.Profiles[0].ISODepMode != "host" || set.Profiles[1].ISODepMode != "host" {
		t.Fatalf("profiles %+v", set.Profiles)
	}
	b.Modes[1].OK = 10
	if m := Derive([]*Run{a, b}).Profiles[0].ISODepMode; m != "chip" {
		t.Fatalf("equal rates: mode %q, want the faster chip", m)
	}
}

// TestOperatorPrompts runs the suite as on a real reader: no tap hooks,
// the operator (here: the prompt callback) taps and removes the card when
// asked, and timings are wall-clock.
func TestOperatorPrompts(t *testing.T) {
	rd, err := reader.Open(context.Background(), "sim:mynumber?seed=compat", reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	sim := rd.Sim()
	tok := sim.Tokens[0]
	sim.Remove(tok)
	var prompts []string
	so := SuiteOptions{Label: "Card / prompts", Trials: 2, TapTimeout: 5 * time.Second,
		Prompt: func(msg string) {
			prompts = append(prompts, msg)
			switch {
			case strings.HasPrefix(msg, "tap"):
				sim.Remove(tok)
				sim.Tap(tok)
			case strings.HasPrefix(msg, "take"):
				sim.Remove(tok)
			}
		}}
	r, err := RunSuite(context.Background(), rd, so)
	if err != nil {
		t.Fatal(err)
	}
	if r.TimeBase != "wall" || r.ActivationRate() != 1 || r.TransactionRate() != 1 || !r.RetapOK {
		t.Fatalf("time %s, activation %v, JPKI %v, re-tap %v, errors %v", r.TimeBase, r.ActivationRate(), r.TransactionRate(), r.RetapOK, r.Errors)
	}
	// Per trial: tap, take away, tap again (re-tap), take away.
	if len(prompts) != 8 {
		t.Fatalf("prompts %q", prompts)
	}
	if r.Step(StepVerify).Skipped != 2 || r.Step(StepSign).Skipped != 2 {
		t.Fatalf("VERIFY or signing without a test PIN: %+v %+v", r.Step(StepVerify), r.Step(StepSign))
	}
}
