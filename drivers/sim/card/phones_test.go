package card

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"testing"
	"time"
)

func TestAndroid(t *testing.T) {
	tok := newToken(t, KindAndroid, Options{})
	a := tok.Applet()
	expect(t, a, selText, SWNotFound) // no text AP on phones
	expect(t, a, selJPKI, SWOK)
	// jpki.md §8.1, §5.5: on Android the auth cert comes after the PIN.
	expect(t, a, selAuth, SWOK)
	expect(t, a, "00 B0 00 00 04", SWSecurityNotSat)
	expect(t, a, "00 B0 8A 00 04", SWSecurityNotSat)
	expect(t, a, selAuthCA, SWOK)
	expect(t, a, "00 B0 00 00 04", SWOK)
	expect(t, a, selAuthPIN, SWOK)
	expect(t, a, "00 20 00 80", 0x63C3)
	expect(t, a, verifyAuth, 0x63C2) // the card's default PIN is not the phone's
	expect(t, a, "00 20 00 80 04 35 36 37 38", SWOK)
	expect(t, a, selAuth, SWOK)
	hdr := expect(t, a, "00 B0 00 00 04", SWOK)
	if !bytes.Equal(hdr, tok.Credentials().AuthCert[:4]) {
		t.Errorf("header % X", hdr)
	}
	expect(t, a, "80 FC 00 00", SWWrongLength) // as the card
	if v, ok := tok.PINValue(AuthPIN); !ok || v != DefaultPhoneAuthPIN {
		t.Error("PINValue(AuthPIN) is not the phone default")
	}
	// A phone's certificates are its own, not the card's.
	card := newToken(t, KindMyNumber, Options{})
	if bytes.Equal(card.Credentials().AuthCert, tok.Credentials().AuthCert) ||
		card.Credentials().AuthKey.Equal(tok.Credentials().AuthKey) {
		t.Error("the phone carries the card's certificate or key")
	}
}

func TestIPhoneUnarmed(t *testing.T) {
	tok := newToken(t, KindIPhone, Options{})
	a := tok.Applet()
	if tok.Armed() {
		t.Fatal("armed at start")
	}
	expect(t, a, selJPKI, SWOK) // distinct from "not JPKI" (6A82)
	expect(t, a, selToken, SWOK)
	expect(t, a, "00 B0 00 00 20", SWOK)
	expect(t, a, "00 B0 88 00 03", SWOK)
	for _, sfi := range []string{"8A", "8B", "81", "82"} {
		expect(t, a, "00 B0 "+sfi+" 00 04", SWSecurityNotSat)
	}
	expect(t, a, "00 20 00 98", SWSecurityNotSat)                  // no PIN counter to show
	expect(t, a, "00 20 00 98 04 35 36 37 38", SWConditionsNotSat) // PINs are not typed at the reader
	if n, _ := tok.Tries(AuthPIN); n != 3 {
		t.Errorf("VERIFY counted on an iPhone: %d tries", n)
	}
	_, di := digestInfo("c")
	if _, sw, _ := send(a, signAPDU(0, 0x97, di)); sw != SWSecurityNotSat {
		t.Errorf("unarmed sign: %v", sw)
	}
	expect(t, a, "00 24 01 98 04 31 31 31 31", SWConditionsNotSat)
}

func TestIPhoneArmed(t *testing.T) {
	tok := newToken(t, KindIPhone, Options{})
	a := tok.Applet()
	tok.Arm()
	// Arming survives the tap's power-up (armed before the tap).
	tok.FieldOn()
	expect(t, a, selJPKI, SWOK)
	expect(t, a, "00 B0 8A 00 04", SWOK)
	expect(t, a, "00 B0 8B 00 04", SWOK)
	expect(t, a, "00 B0 81 00 04", SWSecurityNotSat) // signature identity not unlocked
	expect(t, a, "00 20 00 98", SWOK)                // already verified in this session
	expect(t, a, "00 20 00 9B", SWSecurityNotSat)
	hash, di := digestInfo("kiosk nonce")
	sig, sw, proc := send(a, signAPDU(0, 0x97, di))
	if sw != SWOK {
		t.Fatalf("armed sign without VERIFY: %v", sw)
	}
	cert, err := x509.ParseCertificate(tok.Credentials().AuthCert)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignature(x509.SHA256WithRSA, []byte("kiosk nonce"), sig); err != nil {
		t.Fatal(err)
	}
	_ = hash
	if proc != DefaultTiming.APDU+DefaultTiming.Sign {
		t.Errorf("proc %v", proc)
	}
	if _, sw, _ := send(a, signAPDU(0, 0x9A, di)); sw != SWSecurityNotSat {
		t.Errorf("armed sign with the sign key: %v", sw)
	}
	// Leaving the field does not end the armed session…
	tok.FieldOff()
	tok.FieldOn()
	expect(t, a, selJPKI, SWOK)
	if _, sw, _ := send(a, signAPDU(0, 0x97, di)); sw != SWOK {
		t.Errorf("re-tap while armed: %v", sw)
	}
	// …the last command indicator does.
	expect(t, a, "80 FC 00 01", SWWrongP1P2)
	expect(t, a, "80 FC 00 00 01 00", SWWrongLength)
	expect(t, a, "80 FC 00 00", SWOK)
	if tok.Armed() {
		t.Error("still armed after 80 FC 00 00")
	}
	if _, sw, _ := send(a, signAPDU(0, 0x97, di)); sw != SWSecurityNotSat {
		t.Errorf("sign after the session ended: %v", sw)
	}
	expect(t, a, "00 B0 8A 00 04", SWSecurityNotSat)
	// The armed kind starts armed; Disarm ends it.
	armed := newToken(t, KindIPhoneArmed, Options{})
	if !armed.Armed() {
		t.Fatal("iphone-armed not armed")
	}
	armed.Disarm()
	if armed.Armed() {
		t.Fatal("Disarm")
	}
	// Arm has no effect on other kinds.
	c := newToken(t, KindMyNumber, Options{})
	c.Arm()
	if c.Armed() {
		t.Error("a card got armed")
	}
}

func TestJuki(t *testing.T) {
	tok := newToken(t, KindJuki, Options{})
	a := tok.Applet()
	expect(t, a, selText, SWNotFound)
	expect(t, a, selJPKI, SWOK)
	expect(t, a, "00 B0 86 00 0F", SWOK)
	cert, err := x509.ParseCertificate(tok.Credentials().AuthCert)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.NotAfter.Before(time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("Juki auth certificate valid until %v: not expired", cert.NotAfter)
	}
	tok.FieldOn()
	atqb := air(tok, 2, hx("05 00 00"))
	if !bytes.Equal(atqb[5:], hx("00 00 14 E0 B3 81 91")) {
		t.Errorf("Juki ATQB % X", atqb)
	}
}

func TestNonJPKI(t *testing.T) {
	for _, k := range []Kind{KindNonJPKI, KindTypeA} {
		tok := newToken(t, k, Options{})
		a := tok.Applet()
		if tok.Credentials() != nil {
			t.Errorf("%s carries credentials", k)
		}
		expect(t, a, selJPKI, SWNotFound)
		expect(t, a, selText, SWNotFound)
		expect(t, a, "00 20 00 98", SWRefDataNotFound)
		expect(t, a, "80 2A 00 97 01 00 00", SWRefDataNotFound)
		if _, ok := tok.Tries(AuthPIN); ok {
			t.Errorf("%s has an auth PIN", k)
		}
	}
}

func TestGetResponseQuirk(t *testing.T) {
	tok, err := NewProfile("android-get-response", Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := tok.Applet()
	creds := tok.Credentials()
	expect(t, a, "00 C0 00 00 00", SWConditionsNotSat) // nothing pending
	expect(t, a, selJPKI, SWOK)
	expect(t, a, "00 20 00 98 04 35 36 37 38", SWOK)
	first := expect(t, a, "00 B0 8A 00 00", 0x6180) // 128 bytes, 128 more
	second := expect(t, a, "00 C0 00 00 00", SWOK)
	if got := append(first, second...); !bytes.Equal(got, creds.AuthCert[:256]) {
		t.Error("chunks do not reassemble the certificate")
	}
	// Any other command drops the pending rest.
	expect(t, a, "00 B0 00 00 00", 0x6180)
	expect(t, a, "00 B0 00 00 01", SWOK)
	expect(t, a, "00 C0 00 00 00", SWConditionsNotSat)
	// Smaller Le than announced: the rest stays pending.
	expect(t, a, "00 B0 00 00 00", 0x6180)
	expect(t, a, "00 C0 00 00 40", 0x6140)
	expect(t, a, "00 C0 00 00 40", SWOK)
	expect(t, a, "00 C0 00 01 40", SWWrongP1P2)
	// The signature comes in two parts too.
	hash, di := digestInfo("gr")
	s1 := expect(t, a, hex.EncodeToString(signAPDU(0, 0x97, di)), 0x6180)
	s2 := expect(t, a, "00 C0 00 00 80", SWOK)
	if err := rsaVerify(tok, hash, append(s1, s2...)); err != nil {
		t.Fatal(err)
	}
}

func TestExactLeQuirk(t *testing.T) {
	tok, err := NewProfile("android-6cxx", Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := tok.Applet()
	n := len(tok.Credentials().AuthCA)
	expect(t, a, selJPKI, SWOK)
	expect(t, a, selAuthCA, SWOK)
	off := n - 10
	cmd := []byte{0x00, 0xB0, byte(off >> 8), byte(off), 0x20}
	if _, sw, _ := send(a, cmd); sw != 0x6C0A {
		t.Fatalf("read past the end: %v, want 6C0A", sw)
	}
	cmd[4] = 0x0A
	if data, sw, _ := send(a, cmd); sw != SWOK || !bytes.Equal(data, tok.Credentials().AuthCA[off:]) {
		t.Fatalf("resend with Le 0A: %v", sw)
	}
	expect(t, a, "00 B0 00 00 00 FF FF", SWEndOfFile) // extended Le: 6282 as usual
}
