package card

import (
	"bytes"
	"testing"
)

func TestMyNumberCheckDigit(t *testing.T) {
	tests := []struct {
		first11 string
		want    byte
	}{
		// Σ P(n)Q(n) = 212, 212 mod 11 = 3, 11 − 3 = 8 (worked by hand).
		{"12345678901", '8'},
		// All zeros: r = 0 ≤ 1 → 0.
		{"00000000000", '0'},
		// 0…01: P(1)=1, Q(1)=2 → r = 2 → 9.
		{"00000000001", '9'},
		// P(2)=1 (Q 3), P(1)=1 (Q 2) → r = 5 → 6.
		{"00000000011", '6'},
		// P(11)=1, Q(11)=6 → r = 6 → 5.
		{"10000000000", '5'},
	}
	for _, tc := range tests {
		got, ok := MyNumberCheckDigit(tc.first11)
		if !ok || got != tc.want {
			t.Errorf("check digit of %s = %c, want %c", tc.first11, got, tc.want)
		}
	}
	for _, bad := range []string{"", "1234567890", "1234567890a", "123456789012"} {
		if _, ok := MyNumberCheckDigit(bad); ok {
			t.Errorf("MyNumberCheckDigit(%q) accepted", bad)
		}
	}
	if !ValidMyNumber("123456789018") || ValidMyNumber("123456789017") {
		t.Error("ValidMyNumber")
	}
	for _, seed := range []string{"a", "b", "kazasu"} {
		if n := defaultHolder(seed).MyNumber; !ValidMyNumber(n) {
			t.Errorf("seed %q: %s is not a valid My Number", seed, n)
		}
	}
}

// specHolder reproduces the offsets of jpki.md §4.2's example (000E 0020
// 0059 0064): a 5-character name (15 bytes UTF-8) and an 18-character
// address (54 bytes).
var specHolder = Holder{
	MyNumber: "123456789018",
	Name:     "試験　花子",
	Address:  "東京都千代田区霞が関２丁目１番地２号",
	Birth:    "19850401",
	Sex:      "2",
}

func TestBasic4TLV(t *testing.T) {
	got := basic4EF(specHolder)
	var want []byte
	want = append(want, 0xFF, 0x20, 0x65) // 101 bytes inside
	want = append(want, hx("DF 21 08 00 0E 00 20 00 59 00 64")...)
	want = append(want, 0xDF, 0x22, 0x0F)
	want = append(want, "試験　花子"...)
	want = append(want, 0xDF, 0x23, 0x36)
	want = append(want, "東京都千代田区霞が関２丁目１番地２号"...)
	want = append(want, 0xDF, 0x24, 0x08)
	want = append(want, "19850401"...)
	want = append(want, 0xDF, 0x25, 0x01, '2')
	if !bytes.Equal(got, want) {
		t.Fatalf("EF 0002\n% X\nwant\n% X", got, want)
	}
	// The offsets point at the tags.
	for i, tag := range []byte{0x22, 0x23, 0x24, 0x25} {
		off := int(got[6+2*i])<<8 | int(got[7+2*i])
		if got[off] != 0xDF || got[off+1] != tag {
			t.Errorf("offset %d → % X, want DF %02X", off, got[off:off+2], tag)
		}
	}
	// A long address needs the 81 xx length form.
	long := specHolder
	long.Address = string(bytes.Repeat([]byte("東"), 50))
	b := basic4EF(long)
	if b[2] != 0x81 || int(b[3]) != len(b)-4 {
		t.Errorf("long EF 0002 header % X, total %d", b[:4], len(b))
	}
	if off := int(b[7])<<8 | int(b[8]); b[off] != 0xDF || b[off+1] != 0x22 {
		t.Error("offsets do not account for the longer header")
	}
}

func TestTextAP(t *testing.T) {
	creds := newToken(t, KindMyNumber, Options{}).Credentials()
	h := specHolder
	tok := newToken(t, KindMyNumber, Options{Holder: &h, Credentials: creds, TextPIN: "4321"})
	a := tok.Applet()
	expect(t, a, selText, SWOK)
	expect(t, a, selEF0001, SWOK)
	expect(t, a, "00 B0 00 00 11", SWSecurityNotSat)
	expect(t, a, selTextPIN, SWOK)
	expect(t, a, "00 20 00 80", 0x63C3)
	expect(t, a, "00 20 00 80 04 31 32 33 34", 0x63C2) // the auth PIN's value: wrong here
	// The text PIN has its own counter: the JPKI auth PIN is untouched.
	if n, _ := tok.Tries(AuthPIN); n != 3 {
		t.Errorf("auth PIN tries %d after a text PIN failure", n)
	}
	expect(t, a, "00 20 00 91 04 34 33 32 31", SWOK) // SFI form, P2 91
	expect(t, a, selEF0001, SWOK)
	got := expect(t, a, "00 B0 00 00 11", SWOK) // 17 bytes, as implementations read
	want := append(append(hx("FF 10 0C"), "123456789018"...), 0xFF, 0xFF)
	if !bytes.Equal(got, want) {
		t.Errorf("EF 0001 % X, want % X", got, want)
	}
	// BEXT reads the digits directly: SFI 1, offset 3, 12 bytes.
	if got := expect(t, a, "00 B0 81 03 0C", SWOK); string(got) != "123456789018" {
		t.Errorf("SFI read %q", got)
	}
	expect(t, a, "00 B0 00 11 01", SWWrongOffset)
	expect(t, a, selEF0002, SWOK)
	b4 := expect(t, a, "00 B0 00 00 00", SWOK)
	if !bytes.Equal(b4[:len(basic4EF(h))], basic4EF(h)) {
		t.Error("EF 0002 content")
	}
	// JPKI AP is not the text AP's: selecting it drops the text PIN.
	expect(t, a, selJPKI, SWOK)
	expect(t, a, selText, SWOK)
	expect(t, a, "00 B0 81 00 01", SWSecurityNotSat)
}

func TestHolderCheck(t *testing.T) {
	bad := []func(*Holder){
		func(h *Holder) { h.MyNumber = "123456789017" },
		func(h *Holder) { h.Name = "" },
		func(h *Holder) { h.Address = "\xff" },
		func(h *Holder) { h.Birth = "1985041" },
		func(h *Holder) { h.Sex = "M" },
	}
	for i, f := range bad {
		h := specHolder
		f(&h)
		if h.Check() == nil {
			t.Errorf("case %d: accepted %+v", i, h)
		}
	}
	if err := specHolder.Check(); err != nil {
		t.Error(err)
	}
}

// The text AP and the sign certificate's otherNames describe one person.
func TestHolderMatchesSignCertificate(t *testing.T) {
	tok := newToken(t, KindMyNumber, Options{})
	h := tok.Holder()
	sign := tok.Credentials().SignCert
	for _, s := range []string{h.Name, h.Address} {
		if !bytes.Contains(sign, []byte(s)) {
			t.Errorf("sign certificate does not carry %q", s)
		}
	}
	a := tok.Applet()
	expect(t, a, selText, SWOK)
	expect(t, a, "00 20 00 91 04 31 32 33 34", SWOK)
	if got := expect(t, a, "00 B0 81 03 0C", SWOK); string(got) != h.MyNumber {
		t.Errorf("My Number %q, holder %q", got, h.MyNumber)
	}
	b4 := expect(t, a, "00 B0 82 00 00", SWOK)
	if !bytes.HasPrefix(b4, basic4EF(h)) {
		t.Error("EF 0002 does not hold the token's holder")
	}
}
