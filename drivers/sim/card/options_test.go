package card

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"kazasu/drivers/nfc"
)

func TestOptionsSet(t *testing.T) {
	good := []struct{ key, value string }{
		{"seed", "x"}, {"pki-seed", "y"}, {"profile", "android-fsc32"},
		{"auth-pin", "9999"}, {"sign-password", "PASS99"}, {"text-pin", "0000"},
		{"auth-pin-tries", "1"}, {"sign-password-tries", "0"}, {"text-pin-tries", "3"},
		{"tech", "ab"}, {"fsci", "12"}, {"fwi", "0"}, {"sfgi", "14"},
		{"cid", "false"}, {"random-id", "true"}, {"short-only", "1"}, {"exact-ef", "true"},
		{"extended-atqb", "true"}, {"wtx-disabled", "false"}, {"id", "08A1B2C3"},
		{"wtx-fraction", "0.25"}, {"wtx-storm", "2"},
		{"apdu-time", "2ms"}, {"verify-time", "0s"}, {"sign-time", "1.2s"},
		{"drop-at-apdu", "7"}, {"drop-taps", "1"},
	}
	for _, s := range good {
		var o Options
		if err := o.Set(s.key, s.value); err != nil {
			t.Errorf("Set(%s, %s): %v", s.key, s.value, err)
		}
	}
	bad := []struct{ key, value string }{
		{"nope", "1"}, {"profile", "no-such"}, {"auth-pin-tries", "4"}, {"sign-password-tries", "6"},
		{"auth-pin-tries", "-1"}, {"tech", "c"}, {"fsci", "13"}, {"fwi", "15"}, {"sfgi", "x"},
		{"cid", "maybe"}, {"id", "0102"}, {"id", "zz"}, {"wtx-fraction", "0"}, {"wtx-fraction", "1.5"},
		{"apdu-time", "-1s"}, {"sign-time", "soon"}, {"drop-at-apdu", "-2"},
	}
	for _, s := range bad {
		var o Options
		if err := o.Set(s.key, s.value); err == nil {
			t.Errorf("Set(%s, %s) accepted", s.key, s.value)
		}
	}
	// "0" tries is the exhausted counter.
	var o Options
	if err := o.Set("auth-pin-tries", "0"); err != nil || o.AuthPINTries != TriesBlocked {
		t.Fatalf("auth-pin-tries=0 → %d, %v", o.AuthPINTries, err)
	}
}

func TestOptionsApplied(t *testing.T) {
	creds := newToken(t, KindMyNumber, Options{}).Credentials()
	o := Options{Credentials: creds}
	for _, kv := range [][2]string{
		{"auth-pin-tries", "1"}, {"sign-password-tries", "0"}, {"tech", "ab"},
		{"fsci", "5"}, {"fwi", "12"}, {"sign-time", "2s"}, {"auth-pin", "2468"},
	} {
		if err := o.Set(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	tok := newToken(t, KindMyNumber, o)
	p := tok.Profile()
	if len(p.Techs) != 2 || p.FSCI != 5 || p.FWI != 12 || p.Timing.Sign != 2*time.Second {
		t.Errorf("profile knobs not applied: %+v", p)
	}
	if n, _ := tok.Tries(AuthPIN); n != 1 {
		t.Errorf("auth tries %d", n)
	}
	a := tok.Applet()
	expect(t, a, selJPKI, SWOK)
	expect(t, a, "00 20 00 9B", SWRefDataBlocked)
	expect(t, a, "00 20 00 98 04 32 34 36 38", SWOK)
	// The dual token answers both technologies; its ATQB carries FSCI 5, FWI 12.
	tok.FieldOn()
	atqb := air(tok, nfc.TechB, hx("05 00 08"))
	if len(atqb) != 12 || atqb[10] != 0x51 || atqb[11]>>4 != 12 {
		t.Errorf("ATQB % X", atqb)
	}
	tok.FieldOff()
	tok.FieldOn()
	if airA7(tok, 0x52) == nil {
		t.Error("dual token silent on Type A")
	}
	// While activated on A it ignores B.
	if air(tok, nfc.TechB, hx("05 00 08")) != nil {
		t.Error("token answered B during a Type A activation")
	}
}

func TestNewErrors(t *testing.T) {
	creds := newToken(t, KindMyNumber, Options{}).Credentials()
	cases := []struct {
		name string
		kind Kind
		o    Options
	}{
		{"unknown kind", "smartwatch", Options{}},
		{"bad auth PIN", KindMyNumber, Options{AuthPIN: "12345", Credentials: creds}},
		{"bad sign password", KindMyNumber, Options{SignPassword: "abc123", Credentials: creds}},
		{"tries too high", KindMyNumber, Options{AuthPINTries: 4, Credentials: creds}},
		{"unknown profile", KindMyNumber, Options{Profile: "nope", Credentials: creds}},
		{"custom without tech", KindMyNumber, Options{Custom: &Profile{}, Credentials: creds}},
		{"mismatched credentials", KindMyNumber, Options{Credentials: &Credentials{
			AuthCert: creds.AuthCert, AuthKey: creds.SignKey, AuthCA: creds.AuthCA,
			SignCert: creds.SignCert, SignKey: creds.SignKey, SignCA: creds.SignCA}}},
		{"bad holder", KindMyNumber, Options{Holder: &Holder{MyNumber: "1"}, Credentials: creds}},
	}
	for _, tc := range cases {
		if _, err := New(tc.kind, tc.o); err == nil {
			t.Errorf("%s: New succeeded", tc.name)
		}
	}
}

func TestPINsNeverPrinted(t *testing.T) {
	creds := newToken(t, KindMyNumber, Options{}).Credentials()
	o := Options{AuthPIN: "8642", SignPassword: "SECRET9", TextPIN: "7531", Credentials: creds}
	if err := o.Set("text-pin", "7531"); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		s := fmt.Sprintf(format, o)
		for _, pin := range []string{"8642", "SECRET9", "7531"} {
			if strings.Contains(s, pin) {
				t.Errorf("Sprintf(%s) shows a PIN: %s", format, s)
			}
		}
	}
	if s := fmt.Sprint(o.AuthPIN); s != "[secret]" {
		t.Errorf("Secret prints %q", s)
	}
	// Errors do not echo the value either.
	_, err := New(KindMyNumber, Options{AuthPIN: "98765", Credentials: creds})
	if err == nil || strings.Contains(err.Error(), "98765") {
		t.Errorf("error %v", err)
	}
	tok := newToken(t, KindMyNumber, o)
	if strings.Contains(fmt.Sprintf("%v %+v", tok, tok.Profile()), "8642") {
		t.Error("token printing shows a PIN")
	}
}

func TestParseKind(t *testing.T) {
	for _, k := range Kinds() {
		if got, err := ParseKind(string(k)); err != nil || got != k || k.String() != string(k) {
			t.Errorf("ParseKind(%s) = %v, %v", k, got, err)
		}
		if _, ok := DefaultProfile(k); !ok {
			t.Errorf("kind %s has no profile", k)
		}
	}
	if _, err := ParseKind("empty"); err == nil {
		t.Error("ParseKind accepted empty")
	}
	for _, s := range []State{StateOff, StateIdle, StateReadyReq, StateReady, StateActive, StateProtocol, StateHalt, StateDropped, 42} {
		if s.String() == "" {
			t.Errorf("State(%d) has no name", s)
		}
	}
	for _, p := range []PIN{AuthPIN, SignPassword, TextPIN, 9} {
		if p.String() == "" {
			t.Errorf("PIN(%d) has no name", p)
		}
	}
}

func TestMake(t *testing.T) {
	creds := newToken(t, KindMyNumber, Options{}).Credentials()
	for name, want := range map[string]string{
		"mynumber":       "mynumber (profile mynumber)",
		"mynumber-fsc48": "mynumber (profile mynumber-fsc48)",
		"juki":           "juki (profile juki)",
	} {
		tok, err := Make(name, Options{Credentials: creds})
		if err != nil {
			t.Fatal(err)
		}
		if tok.String() != want {
			t.Errorf("Make(%s) = %v, want %s", name, tok, want)
		}
	}
	if _, err := Make("empty", Options{}); err == nil {
		t.Error("Make(empty) succeeded")
	}
}
