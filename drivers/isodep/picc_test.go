package isodep

import (
	"bytes"
	"testing"
	"time"

	"kazasu/drivers/nfc/nfctest"
)

// echoApp answers every APDU with its own bytes followed by 90 00.
func echoApp(proc time.Duration) Handler {
	return func(apdu []byte) ([]byte, time.Duration) {
		return append(append([]byte(nil), apdu...), 0x90, 0x00), proc
	}
}

// step is one PCD block and the PICC's expected answer ("" = silence).
type step struct {
	rule string
	in   string
	out  string
	proc time.Duration
}

func runSteps(t *testing.T, p *PICC, steps []step) {
	t.Helper()
	for i, s := range steps {
		resp, proc, ok := p.HandleBlock(nfctest.Hex(t, s.in))
		if s.out == "" {
			if ok {
				t.Fatalf("step %d (%s): %s → % X, want silence", i, s.rule, s.in, resp)
			}
			continue
		}
		if !ok {
			t.Fatalf("step %d (%s): %s → silence, want %s", i, s.rule, s.in, s.out)
		}
		if !bytes.Equal(resp, nfctest.Hex(t, s.out)) {
			t.Fatalf("step %d (%s): %s → % X, want %s", i, s.rule, s.in, resp, s.out)
		}
		if proc != s.proc {
			t.Fatalf("step %d (%s): proc %v, want %v", i, s.rule, proc, s.proc)
		}
	}
}

func TestPICCRules(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		cfg   PICCConfig
		proc  time.Duration
		steps []step
	}{
		{"Rules C D 10: first I(0) answered with I(0), then I(1)", PICCConfig{CID: -1}, 0, []step{
			{"10", "02 00 B0 00 00 01", "02 00 B0 00 00 01 90 00", 0},
			{"D", "03 00 A4", "03 00 A4 90 00", 0},
		}},
		{"Rule 11: R(NAK) with current number retransmits the I-block", PICCConfig{CID: -1}, 0, []step{
			{"10", "02 01", "02 01 90 00", 0},
			{"11", "B2", "02 01 90 00", 0},
			{"11", "A2", "02 01 90 00", 0},
		}},
		{"Rule 12: presence check R(NAK) other number → R(ACK)", PICCConfig{CID: -1}, 0, []step{
			{"12 before any I-block", "B2", "A3", 0},
			{"10", "02 01", "02 01 90 00", 0},
			{"12", "B3", "A2", 0},
			{"11 still has the I-block", "B2", "02 01 90 00", 0},
		}},
		{"Rule 2: chained command acknowledged, then answered", PICCConfig{CID: -1}, 0, []step{
			{"2", "12 00 A4", "A2", 0},
			{"11: lost R(ACK) resent", "B2", "A2", 0},
			{"2", "13 04 0C", "A3", 0},
			{"10", "02 02 3F 00", "02 00 A4 04 0C 02 3F 00 90 00", 0},
		}},
		{"Rules E 13: response chained by FSD 16", PICCConfig{CID: -1, FSD: 16}, 0, []step{
			// 13-byte APDU + 9000 = 15 bytes; 13 INF bytes per block.
			{"10", "02 00 01 02 03 04 05 06 07 08 09 0A 0B 0C", "12 00 01 02 03 04 05 06 07 08 09 0A 0B 0C", 0},
			{"11: R(ACK) same number → resend", "A2", "12 00 01 02 03 04 05 06 07 08 09 0A 0B 0C", 0},
			{"E 13", "A3", "03 90 00", 0},
			{"no chaining left", "A2", "", 0},
		}},
		{"CID: only blocks with our CID, echoed", PICCConfig{CID: 3}, 0, []step{
			{"other CID", "0A 02 01", "", 0},
			{"no CID (ours is 3)", "02 01", "", 0},
			{"ours", "0A 03 01", "0A 03 01 90 00", 0},
		}},
		{"CID 0 also answers blocks without CID", PICCConfig{CID: 0}, 0, []step{
			{"no CID", "02 01", "02 01 90 00", 0},
			{"CID 0", "0B 00 02", "0B 00 02 90 00", 0},
		}},
		{"no CID: blocks with CID ignored", PICCConfig{CID: -1}, 0, []step{
			{"CID", "0A 00 01", "", 0},
		}},
		{"invalid and unsupported blocks are ignored", PICCConfig{CID: -1}, 0, []step{
			{"RFU PCB", "22 01", "", 0},
			{"NAD not supported", "06 00 01", "", 0},
			{"S(PARAMETERS)", "F0 A0 00", "", 0},
			{"S(WTX) response without request", "F2 01", "", 0},
			{"empty", "", "", 0},
		}},
		{"DESELECT echoed, then silence", PICCConfig{CID: 1}, 0, []step{
			{"8", "CA 01", "CA 01", 0},
			{"deselected", "0A 01 01", "", 0},
		}},
		{"Rule 9: slow command → S(WTX) first", PICCConfig{CID: -1, FWT: 10 * ms}, 25 * ms, []step{
			{"9", "02 01", "F2 02", 10 * ms},
			{"11: R(NAK) → resend S(WTX)", "B2", "F2 02", 0},
			{"I-block refused while waiting", "03 01", "", 0},
			{"3", "F2 02", "02 01 90 00", 15 * ms},
		}},
		{"Rule 9: WTX within extensions", PICCConfig{CID: -1, FWT: 10 * ms, WTX: WTXPolicy{Fraction: 0.5}}, 22 * ms, []step{
			{"9 at 5 ms", "02 01", "F2 04", 5 * ms},
			{"3: granted 2×FWT only", "F2 02", "F2 02", 10 * ms},
			{"3", "F2 02", "02 01 90 00", 7 * ms},
		}},
		{"WTX storm", PICCConfig{CID: -1, WTX: WTXPolicy{Storm: 2}}, 0, []step{
			{"9", "02 01", "F2 01", 0},
			{"3", "F2 01", "F2 01", 0},
			{"3", "F2 01", "02 01 90 00", 0},
		}},
		{"WTX disabled: late answer", PICCConfig{CID: -1, FWT: ms, WTX: WTXPolicy{Disabled: true}}, 50 * ms, []step{
			{"10", "02 01", "02 01 90 00", 50 * ms},
		}},
		{"block longer than FSC ignored", PICCConfig{CID: -1, FSC: 16}, 0, []step{
			{"15 bytes + CRC", "02 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E", "", 0},
			{"14 bytes + CRC", "02 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D", "02 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 90 00", 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runSteps(t, NewPICC(tt.cfg, echoApp(tt.proc)), tt.steps)
		})
	}
}

func TestPICCMaxAPDU(t *testing.T) {
	p := NewPICC(PICCConfig{CID: -1, MaxAPDU: 4}, echoApp(0))
	runSteps(t, p, []step{
		{"2", "12 00 A4", "A2", 0},
		{"over MaxAPDU: stop acknowledging", "13 04 0C 02", "", 0},
		{"end of the dropped chain", "02 3F", "", 0},
		{"next command works", "03 00 A4", "03 00 A4 90 00", 0},
	})
}

func TestPICCReset(t *testing.T) {
	p := NewPICC(PICCConfig{CID: -1}, echoApp(0))
	runSteps(t, p, []step{{"8", "C2", "C2", 0}})
	if !p.Deselected() {
		t.Fatal("not deselected after S(DESELECT)")
	}
	p.Reset()
	p.SetFSD(16)
	p.SetCID(2)
	if p.Deselected() {
		t.Fatal("deselected after Reset")
	}
	runSteps(t, p, []step{
		{"C: number back to 1 after Reset", "BA 02", "AB 02", 0},
		{"FSD 16 via SetFSD", "0A 02 00 01 02 03 04 05 06 07 08 09 0A 0B", "1A 02 00 01 02 03 04 05 06 07 08 09 0A 0B", 0},
	})
}
