package apdu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"kazasu/drivers/nfc"
	"kazasu/drivers/nfc/nfctest"
)

func TestCommandEncoding(t *testing.T) {
	aid := nfctest.Hex(t, "D3 92 F0 00 26 01 00 00 00 01")
	big := bytes.Repeat([]byte{0xAB}, 300)
	tests := []struct {
		name string
		cmd  Command
		want string
		cas  Case
	}{
		// jpki.md §5.1 / iso14443b.md §5.5 commands.
		{"SELECT JPKI AP", Command{INS: 0xA4, P1: 0x04, P2: 0x0C, Data: aid}, "00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01", Case3S},
		{"READ BINARY 256", Command{INS: 0xB0, Ne: 256}, "00 B0 00 00 00", Case2S},
		{"READ BINARY SFI 4 bytes", Command{INS: 0xB0, P1: 0x8A, Ne: 4}, "00 B0 8A 00 04", Case2S},
		{"VERIFY counter query", Command{INS: 0x20, P2: 0x80}, "00 20 00 80", Case1},
		{"SIGN 4S", Command{CLA: 0x80, INS: 0x2A, P2: 0x80, Data: []byte{1, 2, 3}, Ne: 256}, "80 2A 00 80 03 01 02 03 00", Case4S},
		{"extended READ BINARY 2E, Le 65536", Command{INS: 0xB0, Ne: 65536}, "00 B0 00 00 00 00 00", Case2E},
		{"extended READ BINARY 2E forced", Command{INS: 0xB0, Ne: 0x76C, Form: FormExtended}, "00 B0 00 00 00 07 6C", Case2E},
		{"2E chosen for Ne 257", Command{INS: 0xB0, Ne: 257}, "00 B0 00 00 00 01 01", Case2E},
		{"3E forced", Command{INS: 0xD6, Data: []byte{9}, Form: FormExtended}, "00 D6 00 00 00 00 01 09", Case3E},
		{"4E forced", Command{INS: 0x2A, Data: []byte{9}, Ne: 256, Form: FormExtended}, "00 2A 00 00 00 00 01 09 01 00", Case4E},
		{"case 1 forced extended stays case 1", Command{INS: 0x20, Form: FormExtended}, "00 20 00 00", Case1},
	}
	for _, tt := range tests {
		got, err := tt.cmd.Bytes()
		if err != nil || !bytes.Equal(got, nfctest.Hex(t, tt.want)) {
			t.Errorf("%s: % X, %v; want %s", tt.name, got, err, tt.want)
			continue
		}
		if tt.cmd.Case() != tt.cas {
			t.Errorf("%s: case %v, want %v", tt.name, tt.cmd.Case(), tt.cas)
		}
		back, err := ParseCommand(got)
		if err != nil || back.Case() != tt.cas || back.Ne != tt.cmd.Ne || !bytes.Equal(back.Data, tt.cmd.Data) || back.INS != tt.cmd.INS {
			t.Errorf("%s: ParseCommand = %v, %v", tt.name, back, err)
		}
	}
	// 3E/4E chosen automatically for Nc > 255.
	c := Command{INS: 0xD6, Data: big, Ne: 2}
	b, err := c.Bytes()
	if err != nil || c.Case() != Case4E || !bytes.Equal(b[4:7], nfctest.Hex(t, "00 01 2C")) || !bytes.Equal(b[len(b)-2:], nfctest.Hex(t, "00 02")) {
		t.Errorf("4E auto: % X, %v, %v", b[:8], c.Case(), err)
	}
	for _, bad := range []Command{
		{Data: big, Form: FormShort},
		{Ne: 257, Form: FormShort},
		{Ne: 65537},
		{Ne: -1},
		{Data: make([]byte, 65536)},
	} {
		if _, err := bad.Bytes(); !errors.Is(err, ErrMalformed) {
			t.Errorf("Command{Nc %d Ne %d %v}.Bytes() error %v", len(bad.Data), bad.Ne, bad.Form, err)
		}
	}
}

func TestParseCommandErrors(t *testing.T) {
	for _, bad := range []string{"", "00 A4 04", "00 A4 04 0C 02 3F", "00 A4 04 0C 02 3F 00 00 00", "00 B0 00 00 00 01", "00 D6 00 00 00 00 02 01", "00 D6 00 00 00 00 01 09 00"} {
		if c, err := ParseCommand(nfctest.Hex(t, bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseCommand(%s) = %v, %v", bad, c, err)
		}
	}
}

func TestCommandStringRedactsPIN(t *testing.T) {
	s := Command{INS: 0x20, P2: 0x80, Data: []byte("1234")}.String()
	if strings.Contains(s, "31 32") || !strings.Contains(s, "redacted") {
		t.Errorf("VERIFY renders as %q", s)
	}
	if s := (Command{INS: 0xB0, Ne: 256}).String(); s != "00 B0 00 00 Ne 256 case 2S" {
		t.Errorf("String = %q", s)
	}
	for c, want := range map[Case]string{Case1: "1", Case4E: "4E", 9: "Case(9)"} {
		if c.String() != want {
			t.Errorf("Case %d = %q", c, c)
		}
	}
	if FormExtended.String() != "extended" || LengthForm(7).String() != "LengthForm(7)" {
		t.Error("LengthForm.String")
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		sw      uint16
		kind    error
		retries int // -1: not a PINError
		desc    string
	}{
		{0x6A82, ErrNotFound, -1, "file or application not found"},
		{0x6982, ErrSecurityStatus, -1, "security status not satisfied"},
		{0x6983, ErrBlocked, -1, "authentication method blocked"},
		{0x6984, ErrBlocked, -1, "reference data not usable (blocked)"},
		{0x6700, ErrWrongLength, -1, "wrong length"},
		{0x6A86, ErrWrongP1P2, -1, "incorrect parameters P1-P2"},
		{0x6B00, ErrWrongP1P2, -1, "wrong parameters P1-P2 (offset outside the EF)"},
		{0x6D00, ErrINSNotSupported, -1, "instruction code not supported or invalid"},
		{0x6E00, ErrCLANotSupported, -1, "class not supported"},
		{0x6985, ErrConditions, -1, "conditions of use not satisfied"},
		{0x63C3, ErrVerification, 3, "verification failed or counter: 3 tries left"},
		{0x63C0, ErrBlocked, 0, "verification failed or counter: 0 tries left"},
		{0x6282, ErrEndOfFile, -1, "end of file reached before Le bytes"},
		{0x6A88, ErrDataNotFound, -1, "referenced data not found"},
		{0x6A80, ErrWrongData, -1, "incorrect parameters in the data field"},
		{0x6F12, nil, -1, "checking error"},
		{0x6412, nil, -1, "execution error"},
		{0x6210, nil, -1, "warning"},
		{0x1234, nil, -1, "unknown status"},
	}
	for _, tt := range tests {
		var err error = &StatusError{SW: tt.sw}
		wrapped := fmt.Errorf("jpki: op: %w", err)
		if tt.kind != nil && !errors.Is(wrapped, tt.kind) {
			t.Errorf("%04X: not %v", tt.sw, tt.kind)
		}
		var pe *PINError
		if got := errors.As(wrapped, &pe); got != (tt.retries >= 0) || got && pe.Retries != tt.retries {
			t.Errorf("%04X: PINError %v %+v", tt.sw, got, pe)
		}
		if d := Describe(tt.sw); d != tt.desc {
			t.Errorf("Describe(%04X) = %q, want %q", tt.sw, d, tt.desc)
		}
		var se *StatusError
		if !errors.As(wrapped, &se) || se.SW1() != byte(tt.sw>>8) || se.SW2() != byte(tt.sw) {
			t.Errorf("%04X: StatusError not found", tt.sw)
		}
	}
	for sw, want := range map[uint16]string{0x6110: "success, 16 more bytes available (GET RESPONSE)", 0x6C00: "wrong Le; exact length is 256", 0x9000: "success"} {
		if d := Describe(sw); d != want {
			t.Errorf("Describe(%04X) = %q", sw, d)
		}
	}
	if got := (&StatusError{SW: 0x6A82}).Error(); got != "apdu: status 6A82: file or application not found" {
		t.Errorf("Error() = %q", got)
	}
	if (&PINError{Retries: 2}).Error() != "apdu: 2 tries left" || (&PINError{}).Error() != "apdu: no tries left (blocked)" {
		t.Error("PINError.Error")
	}
}

func TestResponse(t *testing.T) {
	r, err := ParseResponse(nfctest.Hex(t, "01 02 90 00"))
	if err != nil || !r.OK() || r.Err() != nil || !bytes.Equal(r.Data, nfctest.Hex(t, "01 02")) || !bytes.Equal(r.Bytes(), nfctest.Hex(t, "01 02 90 00")) {
		t.Errorf("ParseResponse: %v %v", r, err)
	}
	r, _ = ParseResponse(nfctest.Hex(t, "6A 82"))
	if r.SW1() != 0x6A || r.SW2() != 0x82 || !errors.Is(r.Err(), ErrNotFound) || r.String() != "0 bytes SW 6A82 (file or application not found)" {
		t.Errorf("6A82: %v", r)
	}
	if _, err := ParseResponse(nfctest.Hex(t, "90")); !errors.Is(err, ErrMalformed) {
		t.Errorf("1-byte response: %v", err)
	}
}

// fakeCard answers scripted APDUs.
type fakeCard struct {
	t     *testing.T
	steps []fstep
	err   error
}

type fstep struct{ cmd, resp string }

func (c *fakeCard) Target() nfc.Target { return nfc.Target{} }
func (c *fakeCard) Transceive(_ context.Context, apdu []byte) ([]byte, error) {
	c.t.Helper()
	if c.err != nil {
		return nil, c.err
	}
	if len(c.steps) == 0 {
		c.t.Fatalf("unexpected APDU % X", apdu)
	}
	s := c.steps[0]
	c.steps = c.steps[1:]
	if !bytes.Equal(apdu, nfctest.Hex(c.t, s.cmd)) {
		c.t.Fatalf("APDU % X, want %s", apdu, s.cmd)
	}
	return nfctest.Hex(c.t, s.resp), nil
}
func (c *fakeCard) Present(context.Context) error { return nil }
func (c *fakeCard) Release(context.Context) error { return nil }

var _ nfc.Card = (*fakeCard)(nil)

func TestTransmit(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		cmd   Command
		steps []fstep
		data  string
		sw    uint16
		kind  error
	}{
		{"9000", Command{INS: 0xA4, P1: 4, P2: 0x0C, Data: []byte{1}}, []fstep{{"00 A4 04 0C 01 01", "90 00"}}, "", 0x9000, nil},
		{"61xx loop", Command{CLA: 0x80, INS: 0x2A, P2: 0x80, Data: []byte{1}, Ne: 256}, []fstep{
			{"80 2A 00 80 01 01 00", "AA 61 02"},
			{"00 C0 00 00 02", "BB CC 61 01"},
			{"00 C0 00 00 01", "DD 90 00"},
		}, "AA BB CC DD", 0x9000, nil},
		{"61xx on channel 1", Command{CLA: 0x01, INS: 0xB0, Ne: 1}, []fstep{
			{"01 B0 00 00 01", "61 00"},
			{"01 C0 00 00 00", "EE 90 00"},
		}, "EE", 0x9000, nil},
		{"6Cxx re-issued once", Command{INS: 0xB0, Ne: 256}, []fstep{
			{"00 B0 00 00 00", "6C 10"},
			{"00 B0 00 00 10", "01 02 90 00"},
		}, "01 02", 0x9000, nil},
		{"6Cxx twice → status error", Command{INS: 0xB0, Ne: 1}, []fstep{
			{"00 B0 00 00 01", "6C 10"},
			{"00 B0 00 00 10", "6C 11"},
		}, "", 0x6C11, &StatusError{}},
		{"6982 → StatusError", Command{INS: 0xB0, Ne: 4}, []fstep{{"00 B0 00 00 04", "69 82"}}, "", 0x6982, ErrSecurityStatus},
		{"63C2 → PINError", Command{INS: 0x20, P2: 0x80}, []fstep{{"00 20 00 80", "63 C2"}}, "", 0x63C2, ErrVerification},
		{"response without SW", Command{INS: 0xB0, Ne: 4}, []fstep{{"00 B0 00 00 04", "90"}}, "", 0, nfc.ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			card := &fakeCard{t: t, steps: tt.steps}
			resp, err := Transmit(ctx, card, tt.cmd)
			if len(card.steps) != 0 {
				t.Errorf("%d APDUs not sent", len(card.steps))
			}
			switch k := tt.kind.(type) {
			case nil:
				if err != nil {
					t.Fatal(err)
				}
			case *StatusError:
				var se *StatusError
				if !errors.As(err, &se) || se.SW != tt.sw {
					t.Fatalf("error %v", err)
				}
			default:
				if !errors.Is(err, k) {
					t.Fatalf("error %v, want %v", err, k)
				}
			}
			if resp.SW != tt.sw || !bytes.Equal(resp.Data, nfctest.Hex(t, tt.data)) {
				t.Errorf("resp %v % X", resp, resp.Data)
			}
		})
	}
	// Endless 61xx is bounded.
	loop := &fakeCard{t: t}
	loop.steps = append(loop.steps, fstep{"00 B0 00 00 01", "61 01"})
	for range MaxGetResponse {
		loop.steps = append(loop.steps, fstep{"00 C0 00 00 01", "00 61 01"})
	}
	if _, err := Transmit(ctx, loop, Command{INS: 0xB0, Ne: 1}); !errors.Is(err, nfc.ErrProtocol) {
		t.Errorf("endless 61xx: %v", err)
	}
	// Transport errors keep their kind.
	gone := &fakeCard{t: t, err: nfc.Errorf("isodep", nfc.ErrTargetGone, "silence")}
	if _, err := Transmit(ctx, gone, Command{INS: 0xB0, Ne: 1}); !errors.Is(err, nfc.ErrTargetGone) {
		t.Errorf("transport error: %v", err)
	}
	if _, err := Transmit(ctx, gone, Command{Ne: -1}); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad command: %v", err)
	}
}

func TestReadBinary(t *testing.T) {
	ctx := context.Background()
	// 600 bytes at offset 0x7E00 in 256-byte chunks: 3 APDUs.
	card := &fakeCard{t: t, steps: []fstep{
		{"00 B0 7E 00 00", strings.Repeat("11", 256) + "90 00"},
		{"00 B0 7F 00 00", strings.Repeat("22", 256) + "90 00"},
	}}
	got, err := ReadBinary(ctx, card, 0x7E00, 600, 0)
	if err == nil || len(got) != 512 || errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("offset beyond 15 bits: %d bytes, %v", len(got), err)
	}
	card = &fakeCard{t: t, steps: []fstep{
		{"00 B0 00 00 FB", strings.Repeat("11", 251) + "90 00"},
		{"00 B0 00 FB 05", "01 02 03 04 05 90 00"},
	}}
	got, err = ReadBinary(ctx, card, 0, 256, 251)
	if err != nil || len(got) != 256 || got[251] != 1 {
		t.Errorf("chunk 251: %d bytes, %v", len(got), err)
	}
	// One extended READ BINARY for a 1900-byte certificate.
	card = &fakeCard{t: t, steps: []fstep{{"00 B0 00 00 00 07 6C", strings.Repeat("30", 1900) + "90 00"}}}
	if got, err = ReadBinary(ctx, card, 0, 1900, 1900); err != nil || len(got) != 1900 {
		t.Errorf("extended: %d bytes, %v", len(got), err)
	}
	// End of file: short chunk, 6282, 6B00 after data.
	for _, steps := range [][]fstep{
		{{"00 B0 00 00 00", "AA BB 90 00"}},
		{{"00 B0 00 00 00", "AA BB 62 82"}},
		{{"00 B0 00 00 00", strings.Repeat("AA", 256) + "90 00"}, {"00 B0 01 00 00", "6B 00"}},
	} {
		card = &fakeCard{t: t, steps: steps}
		got, err = ReadBinary(ctx, card, 0, 1000, 0)
		if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) == 0 {
			t.Errorf("EOF: %d bytes, %v", len(got), err)
		}
	}
	card = &fakeCard{t: t, steps: []fstep{{"00 B0 00 00 0A", "69 82"}}}
	if _, err = ReadBinary(ctx, card, 0, 10, 0); !errors.Is(err, ErrSecurityStatus) || errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("6982: %v", err)
	}
	card = &fakeCard{t: t, steps: []fstep{{"00 B0 00 00 02", "01 02 03 90 00"}}}
	if _, err = ReadBinary(ctx, card, 0, 2, 0); !errors.Is(err, nfc.ErrProtocol) {
		t.Errorf("too much data: %v", err)
	}
	if _, err = ReadBinary(ctx, card, -1, 2, 0); err == nil {
		t.Error("negative offset accepted")
	}
	card = &fakeCard{t: t, steps: []fstep{{"00 B0 8A 00 04", "30 82 06 A0 90 00"}}}
	got, err = ReadBinarySFI(ctx, card, 0x0A, 0, 4)
	if err != nil || !bytes.Equal(got, nfctest.Hex(t, "30 82 06 A0")) {
		t.Errorf("ReadBinarySFI: % X %v", got, err)
	}
	if _, err := ReadBinarySFI(ctx, card, 31, 0, 4); err == nil {
		t.Error("SFI 31 accepted")
	}
}

func TestTLV(t *testing.T) {
	// EF 0002 of the text AP (jpki.md §4.2): FF20 { DF21 offsets, DF22 name,
	// DF23 address, DF24 birth date, DF25 sex } and FF filler.
	ef := nfctest.Hex(t, "FF 20 28"+
		"DF 21 08 00 0E 00 14 00 1A 00 26"+
		"DF 22 03 41 42 43"+
		"DF 23 03 44 45 46"+
		"DF 24 08 31 39 39 30 30 31 30 31"+
		"DF 25 01 31"+
		"FF FF 00 FF")
	tlvs, err := ParseTLVs(ef)
	if err != nil || len(tlvs) != 1 || tlvs[0].Tag != 0xFF20 || !tlvs[0].Constructed {
		t.Fatalf("ParseTLVs = %v, %v", tlvs, err)
	}
	kids, err := tlvs[0].Children()
	if err != nil || len(kids) != 5 {
		t.Fatalf("Children = %v, %v", kids, err)
	}
	if fmt.Sprint(kids) != "[DF21[8] DF22[3] DF23[3] DF24[8] DF25[1]]" || string(kids[3].Value) != "19900101" {
		t.Errorf("children %v", kids)
	}
	if v, ok, err := FindTLV(tlvs[0].Value, 0xDF25); !ok || err != nil || string(v) != "1" {
		t.Errorf("FindTLV DF25 = %q %v %v", v, ok, err)
	}
	if _, ok, err := FindTLV(tlvs[0].Value, 0xDF99); ok || err != nil {
		t.Errorf("FindTLV DF99 = %v %v", ok, err)
	}
	if _, err := kids[0].Children(); !errors.Is(err, ErrMalformed) {
		t.Error("primitive Children accepted")
	}
	// EF 0001: FF10 0C + 12 digits + FF FF filler.
	v, ok, err := FindTLV(nfctest.Hex(t, "FF 10 0C 31 32 33 34 35 36 37 38 39 30 31 32 FF FF"), 0xFF10)
	if !ok || err != nil || string(v) != "123456789012" {
		t.Errorf("EF0001: %q %v %v", v, ok, err)
	}
	// Long-form lengths: a certificate header 30 82 06 A0, and 81 xx.
	cert := append(nfctest.Hex(t, "30 82 01 00"), make([]byte, 256)...)
	if tl, err := ParseTLVs(cert); err != nil || len(tl) != 1 || len(tl[0].Value) != 256 || tl[0].Tag != 0x30 {
		t.Errorf("long form: %v %v", tl, err)
	}
	if tl, err := ParseTLVs(append(nfctest.Hex(t, "00 00 5A 81 80"), make([]byte, 128)...)); err != nil || tl[0].Tag != 0x5A || len(tl[0].Value) != 128 {
		t.Errorf("81 80 after 00 padding: %v %v", tl, err)
	}
	if tl, err := ParseTLVs(nfctest.Hex(t, "7F 21 00 9F 81 01 01 AA")); err != nil || len(tl) != 2 || tl[0].Tag != 0x7F21 || tl[1].Tag != 0x9F8101 {
		t.Errorf("multi-byte tags: %v %v", tl, err)
	}
	for _, bad := range []string{"DF", "DF 21", "DF 21 05 01", "30 80 00 00", "30 84 00 00 00 01 00", "30 82 01", "9F 81 81 01 00", "5A 05 01 02"} {
		if _, err := ParseTLVs(nfctest.Hex(t, bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseTLVs(%s) error %v", bad, err)
		}
	}
	r := NewTLVReader(nfctest.Hex(t, "5A 01 01 FF FF"))
	if _, err := r.Next(); err != nil || r.Offset() != 3 {
		t.Errorf("Offset %d %v", r.Offset(), err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("filler: %v", err)
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"00 A4 04 0C 02 3F 00", "00 B0 00 00 00", "00 B0 00 00 00 07 6C", "00 D6 00 00 00 00 01 09 01 00", "80 2A 00 80 03 01 02 03 00"} {
		f.Add(nfctest.Hex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCommand(b)
		if err != nil {
			return
		}
		out, err := c.Bytes()
		if err != nil {
			t.Fatalf("re-encoding %v: %v", c, err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip % X → %v → % X", b, c, out)
		}
		_ = c.String()
	})
}

func FuzzParseResponse(f *testing.F) {
	f.Add(nfctest.Hex(f, "01 02 90 00"))
	f.Add(nfctest.Hex(f, "63 C2"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseResponse(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Bytes(), b) {
			t.Fatal("round trip")
		}
		_ = r.String()
		if e := r.Err(); e != nil {
			_ = e.Error()
			_ = errors.Unwrap(e)
		}
	})
}

func FuzzTLV(f *testing.F) {
	f.Add(nfctest.Hex(f, "FF 20 05 DF 21 02 00 0E FF FF"))
	f.Add(nfctest.Hex(f, "30 82 00 02 01 02"))
	f.Add(nfctest.Hex(f, "7F 21 00 9F 81 01 01 AA"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tlvs, err := ParseTLVs(b)
		if err != nil {
			return
		}
		total := 0
		for _, tl := range tlvs {
			total += len(tl.Value)
			if tl.Constructed {
				tl.Children()
			}
		}
		if total > len(b) {
			t.Fatalf("values longer than the input")
		}
	})
}

func BenchmarkParseTLVs(b *testing.B) {
	ef := nfctest.Hex(b, "FF 20 28 DF 21 08 00 0E 00 14 00 1A 00 26 DF 22 03 41 42 43 DF 23 03 44 45 46 DF 24 08 31 39 39 30 30 31 30 31 DF 25 01 31 FF FF")
	b.ReportAllocs()
	for b.Loop() {
		tl, err := ParseTLVs(ef)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tl[0].Children(); err != nil {
			b.Fatal(err)
		}
	}
}
