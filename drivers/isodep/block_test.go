package isodep

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"kazasu/drivers/nfc/nfctest"
)

func TestParseBlock(t *testing.T) {
	// PCB values from ISO/IEC 14443-4 §7.1.1.1 (iso14443b.md §4.2).
	tests := []struct {
		in   string
		want string // Block.String, or "" for ErrBlock
	}{
		{"02 00 A4 04 00", "I(0) [00 A4 04 00]"},
		{"03", "I(1) []"},
		{"12 01 02", "I(0,chain) [01 02]"},
		{"1B 05 AA", "I(1,chain) CID 5 [AA]"},
		{"0E 01 10 99", "I(0) CID 1 NAD 10 [99]"},
		{"A2", "R(ACK)(0)"},
		{"A3", "R(ACK)(1)"},
		{"AB C1", "R(ACK)(1) CID 1"}, // power level bits b8-b7 dropped
		{"B2", "R(NAK)(0)"},
		{"BA 01", "R(NAK)(0) CID 1"},
		{"C2", "S(DESELECT)"},
		{"CA 0E", "S(DESELECT) CID 14"},
		{"F2 3B", "S(WTX) 59"},
		{"F2 C1", "S(WTX) 1"}, // power level bits ignored
		{"FA 02 0A", "S(WTX) 10 CID 2"},
		{"F0 A0 00", "S(PARAMETERS) [A0 00]"},
		{"", ""},
		{"22", ""},       // I-block with b6 set
		{"00", ""},       // I-block with b2 clear
		{"A6", ""},       // R-block with NAD bit
		{"82", ""},       // R-block with b6 clear
		{"A2 00", ""},    // R-block with trailing byte
		{"C3", ""},       // S-block with b1 set
		{"D2", ""},       // S-block 01 is RFU
		{"F2", ""},       // S(WTX) without INF
		{"F2 01 02", ""}, // S(WTX) with two INF bytes
		{"0A", ""},       // CID announced, missing
		{"06", ""},       // NAD announced, missing
		{"0A 0F", ""},    // CID 15 is RFU
		{"42", ""},       // PCB type 01 is RFU
		{"C6", ""},       // S-block with NAD bit
	}
	for _, tt := range tests {
		b, err := ParseBlock(nfctest.Hex(t, tt.in))
		if tt.want == "" {
			if !errors.Is(err, ErrBlock) {
				t.Errorf("ParseBlock(%s) = %v, %v; want ErrBlock", tt.in, b, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseBlock(%s): %v", tt.in, err)
			continue
		}
		if got := b.String(); got != tt.want {
			t.Errorf("ParseBlock(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestBlockBytes(t *testing.T) {
	tests := []struct {
		b    Block
		want string
	}{
		{I(0, false, -1, []byte{0x00, 0xA4}), "02 00 A4"},
		{I(1, true, 1, []byte{0x01}), "1B 01 01"},
		{ACK(1, -1), "A3"},
		{ACK(0, 1), "AA 01"},
		{NAK(0, -1), "B2"},
		{NAK(1, 2), "BB 02"},
		{Deselect(-1), "C2"},
		{Deselect(1), "CA 01"},
		{WTX(1, -1), "F2 01"},
		{WTX(59, 3), "FA 03 3B"},
		{Block{Kind: KindI, CID: -1, NAD: 0x21, INF: []byte{1}}, "06 21 01"},
	}
	for _, tt := range tests {
		got, err := tt.b.Bytes()
		if err != nil || !bytes.Equal(got, nfctest.Hex(t, tt.want)) {
			t.Errorf("%v.Bytes() = % X, %v; want %s", tt.b, got, err, tt.want)
		}
		back, err := ParseBlock(got)
		if err != nil || back.String() != tt.b.String() {
			t.Errorf("round trip of %v = %v, %v", tt.b, back, err)
		}
	}
	for _, bad := range []Block{
		WTX(0, -1), WTX(60, -1), I(0, false, 15, nil),
		{Kind: KindACK, CID: -1, NAD: 1}, {Kind: KindNAK, CID: -1, NAD: -1, INF: []byte{1}}, {Kind: 0, CID: -1, NAD: -1},
	} {
		if _, err := bad.Bytes(); !errors.Is(err, ErrBlock) {
			t.Errorf("%+v.Bytes() error = %v, want ErrBlock", bad, err)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindI: "I", KindACK: "R(ACK)", KindNAK: "R(NAK)", KindDeselect: "S(DESELECT)", KindWTX: "S(WTX)", KindParameters: "S(PARAMETERS)", 99: "Kind(99)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

func TestFWTConstants(t *testing.T) {
	// FWT = 4096·2^FWI/fc (iso14443b.md §3.2): FWI 4 ≈ 4.83 ms, FWI 14 ≈ 4949 ms.
	if FWI4.Round(10*time.Microsecond) != 4830*time.Microsecond {
		t.Errorf("FWI4 = %v", FWI4)
	}
	if FWTMax.Round(time.Millisecond) != 4949*time.Millisecond {
		t.Errorf("FWTMax = %v", FWTMax)
	}
}

// FuzzParseBlock: no panic on hostile bytes, and every accepted block
// re-encodes to the same bytes (modulo the dropped power-level bits).
func FuzzParseBlock(f *testing.F) {
	for _, s := range []string{"02 00 A4", "1B 05 AA", "A2", "BA 01", "CA 01", "F2 3B", "FA 02 0A", "F0 A0 00", "0E 01 10 99", "AB C1"} {
		f.Add(nfctest.Hex(f, s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := ParseBlock(in)
		if err != nil {
			return
		}
		out, err := b.Bytes()
		if err != nil {
			if b.Kind == KindWTX && b.WTXM() == 0 || b.WTXM() > MaxWTXM {
				return // decoded leniently, refused on encoding
			}
			t.Fatalf("re-encoding %v: %v", b, err)
		}
		if len(out) != len(in) || out[0] != in[0] {
			t.Fatalf("round trip % X → %v → % X", in, b, out)
		}
	})
}

// FuzzPICC feeds arbitrary block sequences to a PICC: it must never panic
// and never send a frame longer than the FSD.
func FuzzPICC(f *testing.F) {
	f.Add(nfctest.Hex(f, "12 00 A4"), nfctest.Hex(f, "B2"), nfctest.Hex(f, "02 01"))
	f.Add(nfctest.Hex(f, "02 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F 10 11 12"), nfctest.Hex(f, "A3"), nfctest.Hex(f, "A2"))
	f.Add(nfctest.Hex(f, "0A 01 01"), nfctest.Hex(f, "FA 01 02"), nfctest.Hex(f, "CA 01"))
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		p := NewPICC(PICCConfig{CID: 1, FSD: 16, FWT: time.Millisecond}, echoApp(3*time.Millisecond))
		for range 3 {
			for _, in := range [][]byte{a, b, c} {
				resp, _, ok := p.HandleBlock(in)
				if ok && len(resp)+2 > 16 {
					t.Fatalf("frame of %d bytes exceeds FSD 16", len(resp)+2)
				}
				if ok {
					if _, err := ParseBlock(resp); err != nil {
						t.Fatalf("PICC sent an invalid block % X: %v", resp, err)
					}
				}
			}
		}
	})
}
