package card

import (
	"sync"
	"testing"

	"kazasu/drivers/nfc"
	"kazasu/drivers/sim/rf"
)

// split cuts fuzz input into length-prefixed messages (the length byte
// first; a short tail is taken as is).
func split(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		n := int(b[0])
		b = b[1:]
		n = min(n, len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

func join(msgs ...[]byte) []byte {
	var out []byte
	for _, m := range msgs {
		out = append(out, byte(len(m)))
		out = append(out, m...)
	}
	return out
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"00A40000", "00B0000000", "00B00000000000", selJPKI, "00B0000000076C", "00A4040C0000", "802A0097010000"} {
		f.Add(hx(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseCommand(b)
		if err != nil {
			return
		}
		if len(c.Data) > len(b) || c.Ne < 0 || c.Ne > 65536 || (c.Ne > 0) != c.HasLe {
			t.Fatalf("% X → %+v", b, c)
		}
		if !c.Extended && (len(c.Data) > 255 || c.Ne > 256) {
			t.Fatalf("short APDU % X decoded as %+v", b, c)
		}
	})
}

var (
	fuzzOnce   sync.Once
	fuzzTokens []*Token
)

// fuzzSet builds one token per content flavour and APDU quirk, once per
// process.
func fuzzSet(t testing.TB) []*Token {
	fuzzOnce.Do(func() {
		for _, name := range []string{"mynumber", "android", "iphone-armed", "nonjpki", "android-get-response", "android-6cxx", "typea"} {
			tok, err := Make(name, Options{})
			if err != nil {
				t.Fatal(err)
			}
			fuzzTokens = append(fuzzTokens, tok)
		}
	})
	if len(fuzzTokens) == 0 {
		t.Fatal("no fuzz tokens")
	}
	return fuzzTokens
}

// FuzzApplet runs APDU sequences against every content flavour: no panic,
// and every answer carries at least SW1 SW2.
func FuzzApplet(f *testing.F) {
	_, di := digestInfo("fuzz")
	f.Add(join(hx(selJPKI), hx(selAuth), hx("00B0000004"), hx("00B000000007 6C")))
	f.Add(join(hx(selJPKI), hx(verifyAuth), signAPDU(0, 0x97, di), hx("80FC0000")))
	f.Add(join(hx(selJPKI), hx("00 20 00 98 04 35 36 37 38"), hx("00B08A0004"), signAPDU(5, 0x97, di)))
	f.Add(join(hx(selText), hx("00200091043132 3334"), hx("00B0810311"), hx("00B08200FF")))
	f.Add(join(hx(selJPKI), hx("00B07FFF00"), hx("00B09F0000"), hx("0C B0 00 00 04"), hx("01A4040C00")))
	f.Add(join(hx(selJPKI), hx(selAuthPIN), hx("00 24 01 80 04 39 38 37 36"), hx("00840000 00")))
	f.Add(join(hx(selJPKI), hx("00 20 00 9B 06 41 42 43 31 32 33"), hx("00B0810000 0000")))
	f.Add(join(hx(selJPKI), hx("00 20 00 98 04 35 36 37 38"), hx("00B08A0000"), hx("00C0000010"), hx("00C0000000"), hx("00B08B03F0")))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, tok := range fuzzSet(t) {
			a := tok.Applet()
			a.Reset()
			for _, p := range []PIN{AuthPIN, SignPassword, TextPIN} {
				if _, ok := a.Tries(p); ok {
					_ = a.SetTries(p, p.MaxTries())
				}
			}
			for _, apdu := range split(b) {
				resp, proc := a.Process(apdu)
				if len(resp) < 2 || proc < 0 {
					t.Fatalf("%s: % X → % X", tok.Kind(), apdu, resp)
				}
				if len(resp) > 65536+2 {
					t.Fatalf("%s: %d-byte response", tok.Kind(), len(resp))
				}
			}
		}
	})
}

// FuzzToken feeds frame sequences to the PICC side: the first byte of a
// frame picks the technology (b1) and a 7-bit short frame (b2).
func FuzzToken(f *testing.F) {
	f.Add(join(hx("02 05 00 08"), hx("02 1D 00 00 00 00 00 08 01 00"), append([]byte{0x02, 0x02}, hx(selJPKI)...), hx("02 C2")))
	f.Add(join(hx("03 52"), hx("01 93 20"), hx("01 93 70 08 00 00 00 08"), hx("01 E0 80"), hx("01 02 00 A4 04 0C"), hx("01 B3")))
	f.Add(join(hx("02 05 00 04"), hx("02 15"), hx("02 F5"), hx("02 50 00 00 00 00")))
	f.Add(join(hx("03 26"), hx("01 95 20"), hx("01 93 40 08 00"), hx("01 50 00"), hx("03 52")))
	f.Add(join(hx("02 05 00 08"), hx("02 12 00 B0"), hx("02 A2"), hx("02 B3"), hx("02 F2 01")))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, tok := range fuzzSet(t) {
			tok.FieldOff()
			tok.FieldOn()
			// Activate with the token's real ID so the fuzzer reaches
			// ISO-DEP without guessing random bytes.
			id := tok.ID()
			for _, m := range split(b) {
				if len(m) == 0 {
					continue
				}
				fr := rf.Frame{Tech: nfc.TechA, Data: m[1:]}
				if m[0]&1 == 0 {
					fr.Tech = nfc.TechB
				}
				if m[0]&2 != 0 && fr.Tech == nfc.TechA {
					fr.Bits = 7
				}
				if fr.Tech == nfc.TechB && len(fr.Data) >= 5 && (fr.Data[0] == 0x1D || fr.Data[0] == 0x50) {
					copy(fr.Data[1:5], id)
				}
				r, proc, ok := tok.Exchange(fr)
				if !ok {
					continue
				}
				if len(r.Data) == 0 && fr.Tech == nfc.TechB || proc < 0 || r.Tech != fr.Tech {
					t.Fatalf("%s: % X → %+v", tok.Kind(), fr.Data, r)
				}
				if len(r.Data)+2 > 4096 {
					t.Fatalf("%s: %d-byte frame", tok.Kind(), len(r.Data))
				}
			}
		}
	})
}
