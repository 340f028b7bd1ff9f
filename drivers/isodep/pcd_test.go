package isodep

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"kazasu/drivers/nfc"
	"kazasu/drivers/nfc/nfctest"
)

// fault is what the link does to the n-th frame (counted from 0).
type fault uint8

const (
	pass        fault = iota
	dropRequest       // the PICC never hears the PCD frame (CRC error at the PICC)
	dropAnswer        // the PICC answers, the PCD hears nothing
	corruptAns        // the PCD's chip reports a CRC error
	dupRequest        // the PICC receives the PCD frame twice; the PCD hears the second answer
)

// link is an in-memory nfc.RawTransceiver between a PCD and a PICC. An
// answer whose processing time exceeds the PCD's timeout is lost (the PCD
// has stopped listening), as on air.
type link struct {
	picc    *PICC
	faults  map[int]fault
	n       int
	gone    bool          // PICC removed: every frame times out
	cancel  func()        // called at frame cancelAt
	cancelN int           // frame number for cancel (when cancel != nil)
	log     []string      // frames, for failure messages
	timeout time.Duration // last timeout asked for
	elapsed time.Duration // modelled PICC time
	busy    time.Duration // PICC processing left after a late answer
}

func (l *link) TransceiveRaw(ctx context.Context, frame []byte, timeout time.Duration) ([]byte, error) {
	n := l.n
	l.n++
	l.timeout = timeout
	if l.cancel != nil && n == l.cancelN {
		l.cancel()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.log = append(l.log, fmt.Sprintf("→ % X", frame))
	f := l.faults[n]
	if l.gone || f == dropRequest {
		return nil, nfc.Errorf("link", nfc.ErrTimeout, "silence")
	}
	if l.busy > 0 {
		// The PICC is still processing a command whose answer came too
		// late: it does not hear this frame.
		l.busy -= timeout
		return nil, nfc.Errorf("link", nfc.ErrTimeout, "silence")
	}
	resp, proc, ok := l.picc.HandleBlock(append([]byte(nil), frame...))
	if f == dupRequest {
		resp, proc, ok = l.picc.HandleBlock(append([]byte(nil), frame...))
	}
	l.elapsed += proc
	if ok && proc > timeout {
		l.busy = proc - timeout
	}
	if !ok || f == dropAnswer || proc > timeout {
		return nil, nfc.Errorf("link", nfc.ErrTimeout, "silence")
	}
	l.log = append(l.log, fmt.Sprintf("← % X", resp))
	if f == corruptAns {
		return nil, nfc.Errorf("link", nfc.ErrTransmission, "CRC error")
	}
	return resp, nil
}

// countingApp echoes APDUs and counts calls (exactly-once checks).
type countingApp struct {
	calls int
	proc  time.Duration
}

func (a *countingApp) handle(apdu []byte) ([]byte, time.Duration) {
	a.calls++
	return append(append([]byte(nil), apdu...), 0x90, 0x00), a.proc
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func TestPCDPICCChaining(t *testing.T) {
	sizes := []int{1, 4, 12, 13, 14, 27, 28, 200, 253, 254, 1000, 65544}
	frames := []struct{ fsc, fsd, cid int }{{16, 16, -1}, {32, 256, 3}, {256, 64, -1}, {256, 256, 0}, {4096, 2048, -1}}
	for _, fr := range frames {
		for _, n := range sizes {
			t.Run(fmt.Sprintf("FSC%d_FSD%d_CID%d_%dB", fr.fsc, fr.fsd, fr.cid, n), func(t *testing.T) {
				app := &countingApp{}
				picc := NewPICC(PICCConfig{FSC: fr.fsc, FSD: fr.fsd, CID: fr.cid}, app.handle)
				l := &link{picc: picc}
				pcd := NewPCD(l, Params{FSC: fr.fsc, FSD: fr.fsd, CID: fr.cid, MaxResponse: 1 << 17})
				cmd := pattern(n)
				for round := range 2 { // block numbers must stay in step across exchanges
					resp, err := pcd.Transceive(context.Background(), cmd)
					if err != nil {
						t.Fatalf("round %d: %v", round, err)
					}
					if !bytes.Equal(resp, append(append([]byte(nil), cmd...), 0x90, 0x00)) {
						t.Fatalf("round %d: response of %d bytes differs", round, len(resp))
					}
				}
				if app.calls != 2 {
					t.Fatalf("application called %d times, want 2", app.calls)
				}
				// Frames counted: ⌈N/(FSC−h)⌉ + ⌈M/(FSD−h)⌉ − 1 round trips per exchange.
				h := 3
				if fr.cid >= 0 {
					h = 4
				}
				want := 2 * ((n+fr.fsc-h-1)/(fr.fsc-h) + (n+2+fr.fsd-h-1)/(fr.fsd-h) - 1)
				if l.n != want {
					t.Errorf("%d round trips, want %d", l.n, want)
				}
			})
		}
	}
}

func TestPCDPICCFaults(t *testing.T) {
	// Every fault at every frame position of exchanges that chain in both
	// directions: the response must come back intact and the application
	// must run exactly once.
	// (A replayed stale answer is not in the list: with a one-bit block
	// number it can pass for the expected block, on air as here.)
	for _, f := range []fault{dropRequest, dropAnswer, corruptAns, dupRequest} {
		for pos := range 8 {
			for _, n := range []int{5, 30} {
				t.Run(fmt.Sprintf("fault%d_at%d_%dB", f, pos, n), func(t *testing.T) {
					app := &countingApp{}
					picc := NewPICC(PICCConfig{FSC: 16, FSD: 16, CID: -1}, app.handle)
					l := &link{picc: picc, faults: map[int]fault{pos: f}}
					pcd := NewPCD(l, Params{FSC: 16, FSD: 16, CID: -1})
					cmd := pattern(n)
					resp, err := pcd.Transceive(context.Background(), cmd)
					if err != nil {
						t.Fatalf("%v\n%q", err, l.log)
					}
					if !bytes.Equal(resp, append(append([]byte(nil), cmd...), 0x90, 0x00)) {
						t.Fatalf("response % X\n%q", resp, l.log)
					}
					if app.calls != 1 {
						t.Fatalf("application ran %d times", app.calls)
					}
					// The next exchange still works.
					if _, err := pcd.Transceive(context.Background(), []byte{1}); err != nil {
						t.Fatalf("next exchange: %v\n%q", err, l.log)
					}
				})
			}
		}
	}
}

func TestPCDRetriesExhausted(t *testing.T) {
	ctx := context.Background()
	// Removed PICC: nothing answers → ErrTargetGone after 1 + Retries frames.
	l := &link{picc: NewPICC(PICCConfig{CID: -1}, echoApp(0)), gone: true}
	pcd := NewPCD(l, Params{FSC: 256, CID: -1})
	if _, err := pcd.Transceive(ctx, []byte{1, 2}); !errors.Is(err, nfc.ErrTargetGone) {
		t.Fatalf("removed PICC: %v", err)
	}
	if l.n != 1+DefaultRetries {
		t.Errorf("%d frames sent, want %d", l.n, 1+DefaultRetries)
	}
	if err := pcd.Present(ctx); !errors.Is(err, nfc.ErrTargetGone) {
		t.Errorf("Present on removed PICC: %v", err)
	}

	// A PICC that answered and then went silent mid-chain → ErrTimeout.
	picc := NewPICC(PICCConfig{FSC: 16, FSD: 16, CID: -1}, echoApp(0))
	faults := map[int]fault{}
	for i := 1; i < 10; i++ {
		faults[i] = dropAnswer
	}
	l = &link{picc: picc, faults: faults}
	if _, err := NewPCD(l, Params{FSC: 16, FSD: 16, CID: -1}).Transceive(ctx, pattern(40)); !errors.Is(err, nfc.ErrTimeout) || errors.Is(err, nfc.ErrTargetGone) {
		t.Fatalf("silent mid-chain: %v", err)
	}

	// Corrupted answers only → ErrTransmission.
	faults = map[int]fault{}
	for i := range 10 {
		faults[i] = corruptAns
	}
	l = &link{picc: NewPICC(PICCConfig{CID: -1}, echoApp(0)), faults: faults}
	if _, err := NewPCD(l, Params{FSC: 256, CID: -1}).Transceive(ctx, []byte{1}); !errors.Is(err, nfc.ErrTransmission) {
		t.Fatalf("corrupted answers: %v", err)
	}
}

func TestPCDWTX(t *testing.T) {
	ms := time.Millisecond
	ctx := context.Background()
	t.Run("slow signature answered through WTX", func(t *testing.T) {
		app := &countingApp{proc: 900 * ms}
		fwt := 309 * ms
		picc := NewPICC(PICCConfig{CID: -1, FWT: fwt}, app.handle)
		l := &link{picc: picc}
		resp, err := NewPCD(l, Params{FSC: 256, FWT: fwt, CID: -1}).Transceive(ctx, pattern(57))
		if err != nil || len(resp) != 59 {
			t.Fatalf("%v\n%q", err, l.log)
		}
		if l.elapsed != 900*ms {
			t.Errorf("modelled processing %v, want 900ms", l.elapsed)
		}
	})
	t.Run("no WTX: the PCD times out", func(t *testing.T) {
		picc := NewPICC(PICCConfig{CID: -1, FWT: ms, WTX: WTXPolicy{Disabled: true}}, echoApp(50*ms))
		l := &link{picc: picc}
		_, err := NewPCD(l, Params{FSC: 256, FWT: ms, CID: -1}).Transceive(ctx, []byte{1})
		if !errors.Is(err, nfc.ErrTimeout) && !errors.Is(err, nfc.ErrTargetGone) {
			t.Fatalf("late answer accepted: %v", err)
		}
	})
	t.Run("WTX storm within the bound", func(t *testing.T) {
		picc := NewPICC(PICCConfig{CID: 1, WTX: WTXPolicy{Storm: 10}}, echoApp(0))
		l := &link{picc: picc}
		if _, err := NewPCD(l, Params{FSC: 256, CID: 1, MaxWTX: 10}).Transceive(ctx, []byte{1}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("WTX storm beyond the bound", func(t *testing.T) {
		picc := NewPICC(PICCConfig{CID: -1, WTX: WTXPolicy{Storm: 1000}}, echoApp(0))
		l := &link{picc: picc}
		_, err := NewPCD(l, Params{FSC: 256, CID: -1, MaxWTX: 20}).Transceive(ctx, []byte{1})
		if !errors.Is(err, nfc.ErrTimeout) || l.n != 21 {
			t.Fatalf("storm: %v after %d frames", err, l.n)
		}
	})
	t.Run("WTX with a lost S(WTX) response", func(t *testing.T) {
		app := &countingApp{proc: 30 * ms}
		picc := NewPICC(PICCConfig{FSC: 16, FSD: 16, CID: -1, FWT: 10 * ms}, app.handle)
		l := &link{picc: picc, faults: map[int]fault{3: dropRequest, 4: dropAnswer}}
		resp, err := NewPCD(l, Params{FSC: 16, FSD: 16, FWT: 10 * ms, CID: -1}).Transceive(ctx, pattern(20))
		if err != nil || len(resp) != 22 || app.calls != 1 {
			t.Fatalf("%v, %d calls\n%q", err, app.calls, l.log)
		}
	})
}

func TestPCDRules(t *testing.T) {
	ms := time.Millisecond
	fwt := 10 * ms
	tests := []struct {
		name  string
		p     Params
		apdu  string
		steps []nfctest.Step
		want  string
		kind  error
	}{
		{"Rule A: first I-block has number 0", Params{FSC: 256, CID: -1}, "00 A4", []nfctest.Step{
			{Out: "02 00 A4", In: "02 90 00"},
		}, "90 00", nil},
		{"Rule 4: timeout → R(NAK); Rule 11 answer", Params{FSC: 256, CID: -1}, "00 A4", []nfctest.Step{
			{Out: "02 00 A4", In: ""},
			{Out: "B2", In: "02 90 00"},
		}, "90 00", nil},
		{"Rule 4: CRC error → R(NAK)", Params{FSC: 256, CID: -1}, "00 A4", []nfctest.Step{
			{Out: "02 00 A4", In: "!"},
			{Out: "B2", In: "02 90 00"},
		}, "90 00", nil},
		{"Rule 4: invalid block → R(NAK)", Params{FSC: 256, CID: -1}, "00 A4", []nfctest.Step{
			{Out: "02 00 A4", In: "22 90 00"},
			{Out: "B2", In: "02 90 00"},
		}, "90 00", nil},
		{"Rule 6: R(ACK) other number → retransmit I-block", Params{FSC: 256, CID: -1}, "00 A4", []nfctest.Step{
			{Out: "02 00 A4", In: ""},
			{Out: "B2", In: "A3"},
			{Out: "02 00 A4", In: "02 90 00"},
		}, "90 00", nil},
		{"Rules 7 B: PCD chaining by FSC 16 with CID 2", Params{FSC: 16, CID: 2}, "00 01 02 03 04 05 06 07 08 09 0A 0B 0C", []nfctest.Step{
			{Out: "1A 02 00 01 02 03 04 05 06 07 08 09 0A 0B", In: "AA 02"},
			{Out: "0B 02 0C", In: "0B 02 90 00"},
		}, "90 00", nil},
		{"Rules 2 5: PICC chaining, lost block → R(ACK) again", Params{FSC: 256, CID: -1}, "00 B0", []nfctest.Step{
			{Out: "02 00 B0", In: "12 01 02"},
			{Out: "A3", In: ""},
			{Out: "A3", In: "13 03 04"},
			{Out: "A2", In: "02 90 00"},
		}, "01 02 03 04 90 00", nil},
		{"§7.3: S(WTX) echoed, wait FWT×WTXM (not FWI×WTXM)", Params{FSC: 256, FWT: 30 * fwt, Margin: ms, CID: -1}, "80 2A", []nfctest.Step{
			{Out: "02 80 2A", In: "F2 05", Timeout: 30*fwt + ms},
			{Out: "F2 05", In: "F2 3B", Timeout: 150*fwt + ms},
			{Out: "F2 3B", In: "02 90 00", Timeout: FWTMax + ms},
		}, "90 00", nil},
		{"S(WTX) with WTXM 0 → protocol error", Params{FSC: 256, CID: -1}, "00", []nfctest.Step{
			{Out: "02 00", In: "F2 00"},
		}, "", nfc.ErrProtocol},
		{"wrong CID → invalid → R(NAK)", Params{FSC: 256, CID: 1}, "00", []nfctest.Step{
			{Out: "0A 01 00", In: "0A 02 90 00"},
			{Out: "BA 01", In: "0A 01 90 00"},
		}, "90 00", nil},
		{"stale I-block (wrong number) → invalid → R(NAK)", Params{FSC: 256, CID: -1}, "00", []nfctest.Step{
			{Out: "02 00", In: "03 90 00"},
			{Out: "B2", In: "02 90 00"},
		}, "90 00", nil},
		{"R(NAK) from the PICC → protocol error", Params{FSC: 256, CID: -1}, "00", []nfctest.Step{
			{Out: "02 00", In: "B2"},
		}, "", nfc.ErrProtocol},
		{"S(DESELECT) from the PICC → protocol error", Params{FSC: 256, CID: -1}, "00", []nfctest.Step{
			{Out: "02 00", In: "C2"},
		}, "", nfc.ErrProtocol},
		{"I-block while the PCD chains → protocol error", Params{FSC: 16, CID: -1}, "00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D", []nfctest.Step{
			{Out: "12 00 01 02 03 04 05 06 07 08 09 0A 0B 0C", In: "02 90 00"},
		}, "", nfc.ErrProtocol},
		{"empty chained I-block → protocol error", Params{FSC: 256, CID: -1}, "00", []nfctest.Step{
			{Out: "02 00", In: "12"},
		}, "", nfc.ErrProtocol},
		{"response over MaxResponse", Params{FSC: 256, CID: -1, MaxResponse: 3}, "00", []nfctest.Step{
			{Out: "02 00", In: "12 01 02"},
			{Out: "A3", In: "03 03 04"},
		}, "", nfc.ErrProtocol},
		{"retries bounded by Params.Retries", Params{FSC: 256, CID: -1, Retries: 1}, "00", []nfctest.Step{
			{Out: "02 00", In: "!"},
			{Out: "B2", In: "!"},
		}, "", nfc.ErrTransmission},
		{"no retries", Params{FSC: 256, CID: -1, Retries: -1}, "00", []nfctest.Step{
			{Out: "02 00", In: ""},
		}, "", nfc.ErrTargetGone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &nfctest.Script{T: t, Steps: tt.steps}
			resp, err := NewPCD(s, tt.p).Transceive(context.Background(), nfctest.Hex(t, tt.apdu))
			if len(s.Steps) != 0 {
				t.Errorf("%d scripted frames not sent", len(s.Steps))
			}
			if tt.kind != nil {
				if !errors.Is(err, tt.kind) {
					t.Fatalf("error %v, want kind %v", err, tt.kind)
				}
				return
			}
			if err != nil || !bytes.Equal(resp, nfctest.Hex(t, tt.want)) {
				t.Fatalf("got % X, %v; want %s", resp, err, tt.want)
			}
		})
	}
}

func TestPCDPresentDeselect(t *testing.T) {
	ctx := context.Background()
	s := &nfctest.Script{T: t, Steps: []nfctest.Step{
		{Out: "B2", In: "A3"},          // fresh PICC: R(NAK,0) → R(ACK,1)
		{Out: "02 00", In: "02 90 00"}, // exchange
		{Out: "B3", In: ""},            // presence check lost once
		{Out: "B3", In: "A2"},
		{Out: "C2", In: "C2", Timeout: FWTDeselect + time.Millisecond},
	}}
	pcd := NewPCD(s, Params{FSC: 256, CID: -1, Margin: time.Millisecond})
	if err := pcd.Present(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := pcd.Transceive(ctx, []byte{0}); err != nil {
		t.Fatal(err)
	}
	if err := pcd.Present(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pcd.Deselect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := pcd.Transceive(ctx, []byte{0}); !errors.Is(err, nfc.ErrTargetGone) {
		t.Errorf("Transceive after Deselect: %v", err)
	}
	if err := pcd.Present(ctx); !errors.Is(err, nfc.ErrTargetGone) {
		t.Errorf("Present after Deselect: %v", err)
	}
	if len(s.Steps) != 0 {
		t.Errorf("%d frames not sent", len(s.Steps))
	}

	// Against the PICC: DESELECT with CID, echoed.
	picc := NewPICC(PICCConfig{CID: 4}, echoApp(0))
	pcd = NewPCD(&link{picc: picc}, Params{FSC: 256, CID: 4})
	if err := pcd.Deselect(ctx); err != nil || !picc.Deselected() {
		t.Fatalf("Deselect: %v, deselected %v", err, picc.Deselected())
	}
	// Unanswered DESELECT → error, retried (Rule 8).
	s = &nfctest.Script{T: t, Steps: []nfctest.Step{{Out: "C2", In: ""}, {Out: "C2", In: ""}, {Out: "C2", In: ""}}}
	if err := NewPCD(s, Params{CID: -1}).Deselect(ctx); !errors.Is(err, nfc.ErrTargetGone) {
		t.Errorf("unanswered DESELECT: %v", err)
	}
}

func TestPCDContext(t *testing.T) {
	// Cancelled in the middle of a chain: the error wraps both ErrTimeout
	// and context.Canceled, and no further frame is sent.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := &link{picc: NewPICC(PICCConfig{FSC: 16, FSD: 16, CID: -1}, echoApp(0)), cancel: cancel, cancelN: 2}
	_, err := NewPCD(l, Params{FSC: 16, FSD: 16, CID: -1}).Transceive(ctx, pattern(60))
	if !errors.Is(err, context.Canceled) || !errors.Is(err, nfc.ErrTimeout) {
		t.Fatalf("error %v", err)
	}
	if l.n != 3 {
		t.Errorf("%d frames after cancel, want 3", l.n)
	}
	// A deadline shorter than FWT bounds the timeout handed to the chip.
	dctx, dcancel := context.WithTimeout(context.Background(), time.Hour)
	defer dcancel()
	l = &link{picc: NewPICC(PICCConfig{CID: -1}, echoApp(0))}
	if _, err := NewPCD(l, Params{FSC: 256, FWT: FWTMax, CID: -1}).Transceive(dctx, []byte{1}); err != nil {
		t.Fatal(err)
	}
	if l.timeout > FWTMax+time.Second {
		t.Errorf("timeout %v", l.timeout)
	}
	expired, ecancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer ecancel()
	if _, err := NewPCD(l, Params{CID: -1}).Transceive(expired, []byte{1}); !errors.Is(err, nfc.ErrTimeout) {
		t.Errorf("expired ctx: %v", err)
	}
}

// recorder keeps trace events.
type recorder struct{ events []nfc.TraceEvent }

func (r *recorder) Trace(e nfc.TraceEvent) {
	r.events = append(r.events, nfc.TraceEvent{Layer: e.Layer, Out: e.Out, Data: append([]byte(nil), e.Data...)})
}

func TestPCDTraceRedactsPIN(t *testing.T) {
	// VERIFY with a 4-digit PIN, chained at FSC 16 so the PIN spans blocks.
	pin := []byte("8361")
	verify := append(nfctest.Hex(t, "00 20 00 80 0C"), append(pin, []byte("12345678")...)...)
	rec := &recorder{}
	picc := NewPICC(PICCConfig{FSC: 16, FSD: 16, CID: -1}, func(apdu []byte) ([]byte, time.Duration) {
		return []byte{0x90, 0x00}, 0
	})
	l := &link{picc: picc, faults: map[int]fault{1: dropAnswer}}
	if _, err := NewPCD(l, Params{FSC: 16, FSD: 16, CID: -1, Tracer: rec}).Transceive(context.Background(), verify); err != nil {
		t.Fatal(err)
	}
	var rf, apdus int
	for _, e := range rec.events {
		if bytes.Contains(e.Data, pin) || bytes.Contains(e.Data, []byte("1234")) {
			t.Errorf("trace %v leaks the PIN: % X", e.Layer, e.Data)
		}
		switch e.Layer {
		case nfc.LayerRF:
			rf++
		case nfc.LayerAPDU:
			apdus++
		}
	}
	if rf != 5 || apdus != 2 {
		t.Errorf("%d RF and %d APDU events", rf, apdus)
	}
}

// FuzzPCD answers the PCD with arbitrary blocks: it must end with a result
// or an error within a bounded number of frames, never panic.
func FuzzPCD(f *testing.F) {
	f.Add(nfctest.Hex(f, "02 90 00"), nfctest.Hex(f, "F2 05"), nfctest.Hex(f, "A3"))
	f.Add(nfctest.Hex(f, "12 01"), nfctest.Hex(f, "13 02"), nfctest.Hex(f, "02 90 00"))
	f.Add(nfctest.Hex(f, "A2"), nfctest.Hex(f, "B2"), nfctest.Hex(f, "C2"))
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		answers := [][]byte{a, b, c}
		n := 0
		rt := rtFunc(func(_ context.Context, _ []byte, _ time.Duration) ([]byte, error) {
			ans := answers[n%3]
			n++
			if n > 4000 {
				t.Fatal("PCD did not stop")
			}
			return ans, nil
		})
		// Work is bounded: at most one I-block per response byte (1000),
		// Retries+1 frames per block, MaxWTX S(WTX), 3 command blocks.
		NewPCD(rt, Params{FSC: 16, CID: -1, MaxResponse: 1000}).Transceive(context.Background(), pattern(40))
	})
}

type rtFunc func(ctx context.Context, frame []byte, timeout time.Duration) ([]byte, error)

func (f rtFunc) TransceiveRaw(ctx context.Context, frame []byte, timeout time.Duration) ([]byte, error) {
	return f(ctx, frame, timeout)
}

var _ nfc.RawTransceiver = (*link)(nil)

// FuzzPCDPICCFaults: any sequence of lost, corrupted and duplicated frames
// ends in the right response or in an error — never in a wrong response —
// and the application runs at most once per exchange.
func FuzzPCDPICCFaults(f *testing.F) {
	f.Add([]byte{0, 1, 0, 2, 0, 4}, uint16(30), uint8(16))
	f.Add([]byte{1, 1, 1, 1}, uint16(300), uint8(32))
	f.Add([]byte{4, 4, 2, 0, 3}, uint16(5), uint8(255))
	f.Fuzz(func(t *testing.T, faults []byte, n uint16, fs uint8) {
		fsize := max(16, int(fs))
		fm := map[int]fault{}
		for i, b := range faults {
			fm[i] = fault(b % 5) // pass, dropRequest, dropAnswer, corruptAns, dupRequest
		}
		app := &countingApp{}
		picc := NewPICC(PICCConfig{FSC: fsize, FSD: fsize, CID: -1}, app.handle)
		l := &link{picc: picc, faults: fm}
		pcd := NewPCD(l, Params{FSC: fsize, FSD: fsize, CID: -1})
		cmd := pattern(int(n%2000) + 1)
		for round := range 2 {
			calls := app.calls
			resp, err := pcd.Transceive(context.Background(), cmd)
			if app.calls-calls > 1 {
				t.Fatalf("round %d: application ran %d times", round, app.calls-calls)
			}
			if err == nil && !bytes.Equal(resp, append(append([]byte(nil), cmd...), 0x90, 0x00)) {
				t.Fatalf("round %d: wrong response of %d bytes\n%q", round, len(resp), l.log)
			}
			if err != nil {
				return // the session would end here
			}
		}
	})
}

// sizedLink is a link that is told the longest answer expected.
type sizedLink struct {
	*link
	max []int
}

func (s *sizedLink) TransceiveRawSized(ctx context.Context, frame []byte, timeout time.Duration, max int) ([]byte, error) {
	s.max = append(s.max, max)
	return s.link.TransceiveRaw(ctx, frame, timeout)
}

// TestPCDSizeHint checks the expected answer length given to a sized
// transceiver: never shorter than the answer (a short hint costs an I2C/SPI
// re-read), and exact for the last block of an answer of Ne bytes.
func TestPCDSizeHint(t *testing.T) {
	readBinary := func(apdu []byte) ([]byte, time.Duration) {
		ne, ok := nfc.APDUNe(apdu)
		if !ok {
			return []byte{0x67, 0x00}, 0
		}
		return append(pattern(ne), 0x90, 0x00), 0
	}
	for _, tc := range []struct {
		name      string
		fsc, fsd  int
		cid       int
		apdu      []byte
		lastExact int // the last hint, exactly
	}{
		{"Le16", 256, 256, -1, []byte{0x00, 0xB0, 0x00, 0x00, 0x10}, 1 + 16 + 2},
		{"Le16_CID", 256, 256, 0, []byte{0x00, 0xB0, 0x00, 0x00, 0x10}, 2 + 16 + 2},
		{"Le256_chained_FSD64", 256, 64, -1, []byte{0x00, 0xB0, 0x00, 0x00, 0x00}, 1 + 256 + 2 - 4*61},
		{"case3_chained_FSC16", 16, 256, -1, append([]byte{0x00, 0xD6, 0x00, 0x00, 40}, pattern(40)...), 1 + 2},
		{"no_Le_parse", 256, 256, -1, []byte{0x00, 0xB0, 0x00, 0x00, 0x05, 0x01}, 256 - 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			picc := NewPICC(PICCConfig{FSC: tc.fsc, FSD: tc.fsd, CID: tc.cid}, readBinary)
			l := &sizedLink{link: &link{picc: picc}}
			pcd := NewPCD(l, Params{FSC: tc.fsc, FSD: tc.fsd, CID: tc.cid})
			if _, err := pcd.Transceive(context.Background(), tc.apdu); err != nil {
				t.Fatal(err)
			}
			if len(l.max) != l.n {
				t.Fatalf("%d hints for %d round trips", len(l.max), l.n)
			}
			answers := 0
			for _, s := range l.log {
				if strings.HasPrefix(s, "← ") {
					got := (len(s) - len("← ") + 1) / 3
					if got > l.max[answers] {
						t.Errorf("answer %d is %d bytes, hint %d: %v", answers, got, l.max[answers], l.log)
					}
					answers++
				}
			}
			if last := l.max[len(l.max)-1]; last != tc.lastExact {
				t.Errorf("last hint %d, want %d (hints %v)", last, tc.lastExact, l.max)
			}
		})
	}
}
