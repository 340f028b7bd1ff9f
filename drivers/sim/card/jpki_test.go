package card

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"math/big"
	"strings"
	"testing"
	"time"
)

// cardApplet returns a fresh My Number Card applet (credentials cached).
func cardApplet(t testing.TB, o Options) (*Token, *Applet) {
	t.Helper()
	tok := newToken(t, KindMyNumber, o)
	return tok, tok.Applet()
}

func TestPowerOnISD(t *testing.T) {
	_, a := cardApplet(t, Options{})
	// jpki.md §1: select MF is 6A86 at power-on, the ISD is the default.
	expect(t, a, "00 A4 00 00", SWWrongP1P2)
	expect(t, a, selEF0001, SWNotFound) // the ISD has no EFs
	expect(t, a, selISD, SWOK)
	expect(t, a, selJPKI, SWOK)
	expect(t, a, "00 A4 00 00", SWOK) // no effect once a DF is selected
	expect(t, a, "00 A4 00 00 02 3F 00", SWNotFound)
	expect(t, a, selToken, SWOK) // still in the JPKI AP
}

func TestSelect(t *testing.T) {
	_, a := cardApplet(t, Options{})
	tests := []struct {
		apdu string
		want SW
	}{
		{selJPKI, SWOK},
		{selText, SWOK},
		{selISD, SWOK},
		{"00 A4 04 0C 05 D3 92 F0 00 26", SWOK},    // prefix ≥ 5 bytes (JICSAP)
		{"00 A4 04 0C 04 D3 92 F0 00", SWNotFound}, // too short a prefix
		{"00 A4 04 0C 0A D3 92 10 00 31 00 01 01 04 02", SWNotFound},  // 券面AP not modelled
		{"00 A4 04 00 0A D3 92 F0 00 26 01 00 00 00 01", SWOK},        // P2 00 accepted
		{"00 A4 04 04 0A D3 92 F0 00 26 01 00 00 00 01", SWWrongP1P2}, // FCP not offered
		{"00 A4 09 0C 02 00 0A", SWWrongP1P2},                         // path from current DF
		{"00 A4 04 0C", SWWrongLength},                                // no DF name
		{"00 A4 02 0C 03 00 0A 00", SWWrongLength},
	}
	for _, tc := range tests {
		if _, sw, _ := send(a, hx(tc.apdu)); sw != tc.want {
			t.Errorf("%s → %v, want %v", tc.apdu, sw, tc.want)
		}
	}
	expect(t, a, selJPKI, SWOK)
	for _, fid := range []string{"00 01", "00 02", "00 06", "00 08", "00 0A", "00 0B", "00 17", "00 18", "00 1A", "00 1B"} {
		expect(t, a, "00 A4 02 0C 02 "+fid, SWOK)
	}
	expect(t, a, "00 A4 02 0C 02 00 09", SWNotFound)
	expect(t, a, "00 A4 02 0C 02 3F 00", SWNotFound)
}

func TestTokenInfo(t *testing.T) {
	for _, tc := range []struct {
		kind  Kind
		label string
	}{
		{KindMyNumber, "JPKIAPICCTOKEN2"},
		{KindJuki, "JPKIAPICCTOKEN"},
		{KindAndroid, "JPKIAPGPSETOKEN"},
		{KindIPhone, "JPKIAPIOSTOKEN"},
	} {
		a := newToken(t, tc.kind, Options{}).Applet()
		expect(t, a, selJPKI, SWOK)
		expect(t, a, selToken, SWOK)
		// What the implementations read (jpki.md §10.5): 0x20 bytes.
		label := expect(t, a, "00 B0 00 00 20", SWOK)
		want := tc.label + strings.Repeat(" ", 32-len(tc.label))
		if string(label) != want {
			t.Errorf("%s: label %q, want %q", tc.kind, label, want)
		}
		info := expect(t, a, "00 B0 00 00 00", SWEndOfFile) // 256 asked, 160 there
		if len(info) != 160 {
			t.Fatalf("%s: token info is %d bytes, want 160", tc.kind, len(info))
		}
		if f := binary.BigEndian.Uint32(info[96:100]); f != 0x040D {
			t.Errorf("%s: flags %#x, want 0x040D", tc.kind, f)
		}
		if maxLen, minLen := binary.BigEndian.Uint32(info[116:120]), binary.BigEndian.Uint32(info[120:124]); maxLen != 16 || minLen != 6 {
			t.Errorf("%s: PIN lengths %d/%d, want 16/6", tc.kind, maxLen, minLen)
		}
		expect(t, a, "00 B0 00 A0 01", SWWrongOffset)
		expect(t, a, selEF0008, SWOK)
		if got := expect(t, a, "00 B0 00 00 03", SWOK); !bytes.Equal(got, hx("8F 8F 00")) {
			t.Errorf("%s: EF 0008 = % X, want 8F 8F 00", tc.kind, got)
		}
	}
}

func TestReadCertificate(t *testing.T) {
	tok, a := cardApplet(t, Options{})
	creds := tok.Credentials()
	expect(t, a, selJPKI, SWOK)
	expect(t, a, "00 B0 00 00 04", SWNoCurrentEF)
	expect(t, a, selAuth, SWOK)
	// The OpenSC way: 4 bytes, 30 82 LL LL, then chunks.
	hdr := expect(t, a, "00 B0 00 00 04", SWOK)
	if hdr[0] != 0x30 || hdr[1] != 0x82 {
		t.Fatalf("header % X is not 30 82 LL LL", hdr)
	}
	n := int(binary.BigEndian.Uint16(hdr[2:])) + 4
	if got := readAll(t, a, n); !bytes.Equal(got, creds.AuthCert) {
		t.Fatal("auth certificate read in chunks differs from the credentials")
	}
	if _, err := x509.ParseCertificate(creds.AuthCert); err != nil {
		t.Fatal(err)
	}
	// The EF is bigger than the DER: filler after it, 2048 bytes in all.
	fill := expect(t, a, "00 B0 07 F0 10", SWOK)
	if !bytes.Equal(fill, bytes.Repeat([]byte{0xFF}, 16)) {
		t.Errorf("filler % X", fill)
	}
	expect(t, a, "00 B0 08 00 01", SWWrongOffset) // offset 2048 = end
	expect(t, a, "00 B0 7F FF 01", SWWrongOffset) // largest 15-bit offset
	if got := expect(t, a, "00 B0 07 FE 10", SWEndOfFile); len(got) != 2 {
		t.Errorf("read across the end gave %d bytes, want 2", len(got))
	}
	// Extended Le: the whole EF prefix in one APDU (NFCPY / BEXT style).
	all := expect(t, a, "00 B0 00 00 00 07 6C", SWOK)
	if len(all) != 1900 || !bytes.Equal(all[:len(creds.AuthCert)], creds.AuthCert) {
		t.Errorf("extended READ gave %d bytes", len(all))
	}
	// SFI form: 00 B0 8A 00 04 reads the auth cert's first 4 bytes and
	// selects it (jpki.md §5.1).
	expect(t, a, selToken, SWOK)
	if got := expect(t, a, "00 B0 8A 00 04", SWOK); !bytes.Equal(got, hdr) {
		t.Errorf("SFI read % X, want % X", got, hdr)
	}
	if got := expect(t, a, "00 B0 00 04 04", SWOK); !bytes.Equal(got, creds.AuthCert[4:8]) {
		t.Error("the SFI read did not make 000A the current EF")
	}
	expect(t, a, "00 B0 8B 00 00", SWOK) // auth CA, free
	expect(t, a, "00 B0 9F 00 01", SWWrongP1P2)
	expect(t, a, "00 B0 A0 00 01", SWWrongP1P2)
	expect(t, a, "00 B0 89 00 01", SWNotFound)
	expect(t, a, "00 B0 00 00", SWWrongLength) // no Le
	expect(t, a, "00 B0 00 00 01 00 01", SWWrongLength)
	// Key and PIN EFs are not transparent.
	expect(t, a, selAuthKey, SWOK)
	expect(t, a, "00 B0 00 00 01", SWIncompatibleFile)
	expect(t, a, selAuthPIN, SWOK)
	expect(t, a, "00 B0 00 00 01", SWIncompatibleFile)
}

func TestSignCertNeedsPassword(t *testing.T) {
	tok, a := cardApplet(t, Options{})
	expect(t, a, selJPKI, SWOK)
	expect(t, a, selEF0001, SWOK)
	// OSC-3169 trace: 00 B0 00 00 04 → 69 82.
	expect(t, a, "00 B0 00 00 04", SWSecurityNotSat)
	expect(t, a, "00 B0 81 00 04", SWSecurityNotSat)
	expect(t, a, selEF0002, SWOK)
	expect(t, a, "00 B0 00 00 04", SWOK) // CA is free
	expect(t, a, selSignPIN, SWOK)
	expect(t, a, verifySign, SWOK)
	expect(t, a, selEF0001, SWOK)
	hdr := expect(t, a, "00 B0 00 00 04", SWOK)
	n := int(binary.BigEndian.Uint16(hdr[2:])) + 4
	if !bytes.Equal(readAll(t, a, n), tok.Credentials().SignCert) {
		t.Fatal("sign certificate differs")
	}
}

func TestVerifyCounter(t *testing.T) {
	tok, a := cardApplet(t, Options{})
	expect(t, a, selJPKI, SWOK)
	expect(t, a, selAuthPIN, SWOK)
	// jpki.md §5.1 / §5.4 / §6: query, count down, exhaust, blocked.
	steps := []struct {
		apdu string
		want SW
	}{
		{"00 20 00 80", 0x63C3},
		{"00 20 00 80 04 30 30 30 30", 0x63C2},
		{"00 20 00 80", 0x63C2},
		{"00 20 00 80 04 30 30 30 31", 0x63C1},
		{"00 20 00 80 03 31 32 33", SWWrongLength}, // wrong length costs nothing
		{"00 20 00 80", 0x63C1},
		{"00 20 00 80 04 30 30 30 32", 0x63C0}, // the exhausting attempt
		{"00 20 00 80", SWRefDataBlocked},
		{verifyAuth, SWRefDataBlocked}, // even the right PIN
		{"00 20 00 80 04 30 30 30 33", SWRefDataBlocked},
	}
	for i, s := range steps {
		if _, sw, _ := send(a, hx(s.apdu)); sw != s.want {
			t.Fatalf("step %d %s → %v, want %v", i, s.apdu, sw, s.want)
		}
	}
	if n, _ := tok.Tries(AuthPIN); n != 0 {
		t.Errorf("Tries = %d after blocking", n)
	}
	// The sign password has its own counter of 5 (SFI form of P2).
	expect(t, a, "00 20 00 9B", 0x63C5)
	expect(t, a, "00 20 00 9B 06 41 42 43 31 32 34", 0x63C4)
	expect(t, a, "00 20 00 9B 06 41 42 43 31 32 33", SWOK)
	expect(t, a, "00 20 00 9B", 0x63C5) // a correct entry resets the counter
	// Lower case is a different byte string (the card compares bytes).
	expect(t, a, "00 20 00 9B 06 61 62 63 31 32 33", 0x63C4)
	expect(t, a, "00 20 00 9B 05 41 42 43 31 32", SWWrongLength)
	// P1/P2 errors.
	expect(t, a, "00 20 01 80", SWWrongP1P2)
	expect(t, a, "00 20 00 00", SWWrongP1P2)
	expect(t, a, "00 20 00 8A", SWRefDataNotFound) // 000A is not a PIN
	expect(t, a, selAuth, SWOK)
	expect(t, a, "00 20 00 80", SWRefDataNotFound)
}

func TestVerifyResetsCounter(t *testing.T) {
	_, a := cardApplet(t, Options{AuthPINTries: 1})
	expect(t, a, selJPKI, SWOK)
	expect(t, a, "00 20 00 98", 0x63C1)
	expect(t, a, "00 20 00 98 04 31 32 33 34", SWOK)
	expect(t, a, "00 20 00 98", 0x63C3)
}

// rsaPublic computes sig^e mod n: the encoded message under the signature.
func rsaPublic(pub *rsa.PublicKey, sig []byte) []byte {
	m := new(big.Int).Exp(new(big.Int).SetBytes(sig), big.NewInt(int64(pub.E)), pub.N)
	return m.FillBytes(make([]byte, pub.Size()))
}

func digestInfo(msg string) ([]byte, []byte) {
	h := sha256.Sum256([]byte(msg))
	return h[:], append(hx(sha256DigestInfoPrefix), h[:]...)
}

func signAPDU(p1, p2 byte, data []byte) []byte {
	out := []byte{0x80, 0x2A, p1, p2, byte(len(data))}
	out = append(out, data...)
	return append(out, 0x00)
}

func TestSign(t *testing.T) {
	tok, a := cardApplet(t, Options{})
	creds := tok.Credentials()
	hash, di := digestInfo("server challenge")
	expect(t, a, selJPKI, SWOK)
	expect(t, a, selAuthKey, SWOK)
	if _, sw, _ := send(a, signAPDU(0, 0x80, di)); sw != SWSecurityNotSat {
		t.Fatalf("sign without VERIFY: %v, want 6982", sw)
	}
	expect(t, a, selAuthPIN, SWOK)
	expect(t, a, verifyAuth, SWOK)
	expect(t, a, selAuthKey, SWOK)
	sig, sw, proc := send(a, signAPDU(0, 0x80, di))
	if sw != SWOK || len(sig) != 256 {
		t.Fatalf("sign: %v, %d bytes", sw, len(sig))
	}
	if err := rsa.VerifyPKCS1v15(&creds.AuthKey.PublicKey, crypto.SHA256, hash, sig); err != nil {
		t.Fatalf("signature does not verify as sha256WithRSA: %v", err)
	}
	cert, err := x509.ParseCertificate(creds.AuthCert)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignature(x509.SHA256WithRSA, []byte("server challenge"), sig); err != nil {
		t.Fatalf("signature does not verify against the auth certificate: %v", err)
	}
	// Type-1 padding of exactly the bytes given: 00 01 FF…FF 00 || DigestInfo.
	em := rsaPublic(&creds.AuthKey.PublicKey, sig)
	want := append(append([]byte{0x00, 0x01}, bytes.Repeat([]byte{0xFF}, 256-3-len(di))...), 0x00)
	want = append(want, di...)
	if !bytes.Equal(em, want) {
		t.Fatalf("encoded message\n% X\nwant\n% X", em, want)
	}
	if proc != DefaultTiming.APDU+DefaultTiming.Sign {
		t.Errorf("proc %v, want %v", proc, DefaultTiming.APDU+DefaultTiming.Sign)
	}
	// SFI form 80 2A 00 97: byte-identical result, no SELECT needed.
	expect(t, a, selToken, SWOK)
	if sig2, sw, _ := send(a, signAPDU(0, 0x97, di)); sw != SWOK || !bytes.Equal(sig, sig2) {
		t.Fatalf("80 2A 00 97: %v, same %v", sw, bytes.Equal(sig, sig2))
	}
	// Input 1…245 bytes for RSA-2048 (jpki.md §5.2).
	for _, tc := range []struct {
		n    int
		want SW
	}{{1, SWOK}, {245, SWOK}, {246, SWWrongLength}} {
		data := bytes.Repeat([]byte{0x5A}, tc.n)
		cmd := append(append(hx("80 2A 00 97 00"), byte(tc.n>>8), byte(tc.n)), data...)
		cmd = append(cmd, 0x01, 0x00)
		if tc.n < 256 {
			cmd = signAPDU(0, 0x97, data)
		}
		s, sw, _ := send(a, cmd)
		if sw != tc.want {
			t.Errorf("%d-byte input: %v, want %v", tc.n, sw, tc.want)
		}
		if sw == SWOK {
			em := rsaPublic(&creds.AuthKey.PublicKey, s)
			if !bytes.Equal(em[256-tc.n:], data) || em[256-tc.n-1] != 0 || em[1] != 1 {
				t.Errorf("%d-byte input not padded as type 1", tc.n)
			}
		}
	}
	expect(t, a, "80 2A 00 97", SWWrongLength)
	expect(t, a, "80 2A 06 97 01 00 00", SWWrongP1P2)
	expect(t, a, "80 2A 00 00 01 00 00", SWWrongP1P2)
	expect(t, a, "80 2A 00 8A 01 00 00", SWRefDataNotFound)
	expect(t, a, "00 2A 00 97 01 00 00", SWCLANotSupported)
	// The sign key needs the sign password, not the auth PIN.
	expect(t, a, "80 2A 00 9A 01 00 00", SWSecurityNotSat)
	expect(t, a, "00 20 00 9B 06 41 42 43 31 32 33", SWOK)
	s, sw, _ := send(a, signAPDU(0, 0x9A, di))
	if sw != SWOK {
		t.Fatalf("sign with 001A: %v", sw)
	}
	if err := rsa.VerifyPKCS1v15(&creds.SignKey.PublicKey, crypto.SHA256, hash, s); err != nil {
		t.Fatal(err)
	}
}

func TestSignModes(t *testing.T) {
	tok, a := cardApplet(t, Options{})
	pub := &tok.Credentials().AuthKey.PublicKey
	msg := []byte("message")
	hash := sha256.Sum256(msg)
	expect(t, a, selJPKI, SWOK)
	expect(t, a, "00 20 00 98 04 31 32 33 34", SWOK)
	verify := func(p1 byte, data []byte, check func(sig []byte) error) {
		t.Helper()
		sig, sw, _ := send(a, signAPDU(p1, 0x97, data))
		if sw != SWOK {
			t.Fatalf("P1 %02X: %v", p1, sw)
		}
		if err := check(sig); err != nil {
			t.Errorf("P1 %02X: %v", p1, err)
		}
	}
	// §5.2: 01 hashes and signs the bare hash, 02 wraps a given hash, 03
	// hashes and wraps, 04/05 PSS.
	verify(1, msg, func(sig []byte) error {
		return rsa.VerifyPKCS1v15(pub, crypto.Hash(0), hash[:], sig)
	})
	verify(2, hash[:], func(sig []byte) error { return rsa.VerifyPKCS1v15(pub, crypto.SHA256, hash[:], sig) })
	verify(3, msg, func(sig []byte) error { return rsa.VerifyPKCS1v15(pub, crypto.SHA256, hash[:], sig) })
	verify(4, hash[:], func(sig []byte) error { return rsa.VerifyPSS(pub, crypto.SHA256, hash[:], sig, nil) })
	verify(5, msg, func(sig []byte) error { return rsa.VerifyPSS(pub, crypto.SHA256, hash[:], sig, nil) })
	expect(t, a, "80 2A 02 97 01 00 00", SWWrongLength) // P1 02 needs 32 bytes
}

func TestSecurityStateCleared(t *testing.T) {
	tok, a := cardApplet(t, Options{})
	_, di := digestInfo("x")
	login := func() {
		expect(t, a, selJPKI, SWOK)
		expect(t, a, "00 20 00 98 04 31 32 33 34", SWOK)
		if _, sw, _ := send(a, signAPDU(0, 0x97, di)); sw != SWOK {
			t.Fatalf("sign after VERIFY: %v", sw)
		}
	}
	denied := func(what string) {
		t.Helper()
		if _, sw, _ := send(a, signAPDU(0, 0x97, di)); sw != SWSecurityNotSat {
			t.Errorf("after %s: sign %v, want 6982", what, sw)
		}
	}
	login()
	expect(t, a, selJPKI, SWOK) // re-selecting the same AP keeps it
	if _, sw, _ := send(a, signAPDU(0, 0x97, di)); sw != SWOK {
		t.Errorf("re-select of the JPKI AP dropped the security state: %v", sw)
	}
	expect(t, a, selISD, SWOK) // myna-sign's end of session
	expect(t, a, selJPKI, SWOK)
	denied("selecting the ISD")
	login()
	expect(t, a, selText, SWOK)
	expect(t, a, selJPKI, SWOK)
	denied("selecting the text AP")
	login()
	tok.FieldOn()
	tok.FieldOff()
	expect(t, a, selEF0008, SWNotFound) // power loss: back to the ISD
	expect(t, a, selJPKI, SWOK)
	denied("power loss")
	if a.Verified(AuthPIN) {
		t.Error("Verified(AuthPIN) after power loss")
	}
}

func TestClassAndInstructionErrors(t *testing.T) {
	_, a := cardApplet(t, Options{})
	tests := []struct {
		apdu string
		want SW
	}{
		{"01 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01", SWChannelNotSupp}, // channel 1
		{"41 B0 00 00 04", SWChannelNotSupp},                               // channel 5
		{"00 70 00 00 01", SWChannelNotSupp},                               // MANAGE CHANNEL open
		{"0C A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01", SWSMNotSupp},      // SM SELECT
		{"0C B0 00 00 04", SWSMObjectsIncorrect},                           // SM READ BINARY
		{"08 20 00 80", SWSMObjectsIncorrect},                              // SM VERIFY
		{"10 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01", SWChainingNotSupp},
		{"FF A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01", SWCLANotSupported},
		{"A0 A4 00 00", SWCLANotSupported},
		{"80 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01", SWCLANotSupported},
		{"00 CA 5F 51 00", SWINSNotSupported}, // GET DATA not modelled
		{"00 C0 00 00 00", SWINSNotSupported}, // nothing to GET RESPONSE
		{"80 FC 00 00", SWWrongLength},        // last command indicator: 6700 on the card
		{"80 32 00 80", SWINSNotSupported},
		{"00 A4", SWWrongLength},
		{"", SWWrongLength},
	}
	for _, tc := range tests {
		if _, sw, _ := send(a, hx(tc.apdu)); sw != tc.want {
			t.Errorf("%q → %v, want %v", tc.apdu, sw, tc.want)
		}
	}
}

func TestChangeReferenceData(t *testing.T) {
	_, a := cardApplet(t, Options{})
	expect(t, a, selJPKI, SWOK)
	expect(t, a, selAuthPIN, SWOK)
	expect(t, a, "00 24 01 80 04 39 38 37 36", SWSecurityNotSat)
	expect(t, a, verifyAuth, SWOK)
	expect(t, a, "00 24 00 80 04 39 38 37 36", SWWrongP1P2)
	expect(t, a, "00 24 01 80 04 39 38 37 41", SWWrongData) // not digits
	expect(t, a, "00 24 01 80 04 39 38 37 36", SWOK)
	expect(t, a, verifyAuth, 0x63C2)
	expect(t, a, "00 20 00 80 04 39 38 37 36", SWOK)
	if v, _ := a.PINValue(AuthPIN); v != "9876" {
		t.Error("PINValue after CHANGE REFERENCE DATA")
	}
}

func TestGetChallenge(t *testing.T) {
	creds := newToken(t, KindMyNumber, Options{}).Credentials()
	_, a := cardApplet(t, Options{Seed: "challenge", Credentials: creds})
	c1 := expect(t, a, "00 84 00 00 08", SWOK)
	c2 := expect(t, a, "00 84 00 00 08", SWOK)
	if len(c1) != 8 || bytes.Equal(c1, c2) {
		t.Errorf("challenges % X, % X", c1, c2)
	}
	if got := expect(t, a, "00 84 00 00 00", SWOK); len(got) != 256 {
		t.Errorf("Le 00 gave %d bytes", len(got))
	}
	expect(t, a, "00 84 00 00 00 00 08", SWConditionsNotSat)
	expect(t, a, "00 84 00 01 08", SWWrongP1P2)
	expect(t, a, "00 84 00 00", SWWrongLength)
	// Reproducible from the seed.
	_, b := cardApplet(t, Options{Seed: "challenge", Credentials: creds})
	if got := expect(t, b, "00 84 00 00 08", SWOK); !bytes.Equal(got, c1) {
		t.Error("GET CHALLENGE is not reproducible from the seed")
	}
}

func TestShortOnly(t *testing.T) {
	o := Options{}
	if err := o.Set("short-only", "true"); err != nil {
		t.Fatal(err)
	}
	_, a := cardApplet(t, o)
	expect(t, a, selJPKI, SWOK)
	expect(t, a, selAuth, SWOK)
	expect(t, a, "00 B0 00 00 00 07 6C", SWWrongLength)
	expect(t, a, "00 B0 00 00 00", SWOK)
}

func TestTiming(t *testing.T) {
	o := Options{}
	for k, v := range map[string]string{"apdu-time": "5ms", "verify-time": "20ms", "sign-time": "1s"} {
		if err := o.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	_, a := cardApplet(t, o)
	_, _, p := send(a, hx(selJPKI))
	if p != 5*time.Millisecond {
		t.Errorf("SELECT proc %v", p)
	}
	if _, _, p = send(a, hx("00 20 00 98 04 31 32 33 34")); p != 25*time.Millisecond {
		t.Errorf("VERIFY proc %v", p)
	}
	if _, _, p = send(a, hx("00 20 00 98")); p != 5*time.Millisecond {
		t.Errorf("VERIFY query proc %v", p)
	}
	_, di := digestInfo("t")
	if _, _, p = send(a, signAPDU(0, 0x97, di)); p != time.Second+5*time.Millisecond {
		t.Errorf("sign proc %v", p)
	}
}
