package jpki_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"testing"

	"kazasu/drivers/apdu"
	"kazasu/drivers/jpki"
	"kazasu/drivers/nfc"
	"kazasu/drivers/sim/card"
)

// appletCard is an nfc.Card that hands APDUs straight to a simulated
// token's applet (the ISO-DEP layers are tested elsewhere). It records the
// commands so tests can check what was — and was not — sent.
type appletCard struct {
	tok  *card.Token
	fsd  int
	sent [][]byte
}

func (c *appletCard) Target() nfc.Target { return nfc.Target{Tech: nfc.TechB, FSD: c.fsd, FSC: 256} }
func (c *appletCard) Transceive(ctx context.Context, b []byte) ([]byte, error) {
	c.sent = append(c.sent, append([]byte(nil), b...))
	resp, _ := c.tok.Applet().Process(b)
	return resp, nil
}
func (c *appletCard) Present(context.Context) error { return nil }
func (c *appletCard) Release(context.Context) error { return nil }

// verifies counts VERIFY commands with data (real attempts).
func (c *appletCard) verifies() int {
	n := 0
	for _, b := range c.sent {
		if len(b) > 5 && b[1] == 0x20 {
			n++
		}
	}
	return n
}

func newCard(t *testing.T, kind card.Kind, opts card.Options) (*appletCard, *card.Token) {
	t.Helper()
	tok, err := card.New(kind, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &appletCard{tok: tok, fsd: 256}, tok
}

func checkSignature(t *testing.T, certDER, challenge, sig []byte) {
	t.Helper()
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(challenge)
	if err := rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, h[:], sig); err != nil {
		t.Fatalf("signature does not verify with the certificate's key: %v", err)
	}
}

func TestCardFlow(t *testing.T) {
	ctx := context.Background()
	c, tok := newCard(t, card.KindMyNumber, card.Options{Seed: "jpki-test"})
	s, err := jpki.Open(ctx, c, jpki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Token() != jpki.TokenCard || s.Label() != "JPKIAPICCTOKEN2" || s.PINBeforeCert() || !s.NeedsPIN() {
		t.Fatalf("token %v %q", s.Token(), s.Label())
	}
	cert, err := s.ReadAuthCert(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cert, tok.Credentials().AuthCert) {
		t.Fatalf("certificate differs from the card's (%d vs %d bytes)", len(cert), len(tok.Credentials().AuthCert))
	}
	st, err := s.AuthPINStatus(ctx)
	if err != nil || st.Retries != 3 || st.Blocked {
		t.Fatalf("PIN status %v, %v", st, err)
	}
	if c.verifies() != 0 {
		t.Fatal("a PIN status query sent a VERIFY with data")
	}
	if _, err := s.SignAuth(ctx, jpki.DigestInfoSHA256([]byte("x"))); !errors.Is(err, jpki.ErrPINRequired) {
		t.Fatalf("sign before VERIFY: %v", err)
	}
	if _, err := s.VerifyAuthPIN(ctx, []byte("1234"), false); err != nil {
		t.Fatal(err)
	}
	challenge := []byte("server challenge 0123456789")
	sig, err := s.SignAuth(ctx, jpki.DigestInfoSHA256(challenge))
	if err != nil {
		t.Fatal(err)
	}
	checkSignature(t, cert, challenge, sig)
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Selecting the ISD cleared the security state: signing now fails.
	resp, _ := tok.Applet().Process([]byte{0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01})
	if !bytes.Equal(resp, []byte{0x90, 0x00}) {
		t.Fatalf("reselect: % X", resp)
	}
	if tok.Applet().Verified(card.AuthPIN) {
		t.Fatal("security state survived Close")
	}
}

func TestCertReadChunking(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		fsd      int
		opts     jpki.Options
		maxReads int // READ BINARY commands for the cert, header included
	}{
		{"FSD 64 chunks of 59", 64, jpki.Options{}, 0},
		{"FSD 256 chunks of 251", 256, jpki.Options{}, 0},
		{"extended Le", 256, jpki.Options{Extended: true}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, tok := newCard(t, card.KindMyNumber, card.Options{Seed: "jpki-test"})
			c.fsd = tc.fsd
			s, err := jpki.Open(ctx, c, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			c.sent = nil
			cert, err := s.ReadAuthCert(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(cert, tok.Credentials().AuthCert) {
				t.Fatal("certificate differs")
			}
			reads := 0
			for _, b := range c.sent {
				if b[1] == 0xB0 {
					reads++
					if !tc.opts.Extended {
						if le := int(b[len(b)-1]); len(b) != 5 || (le != 0 && le > tc.fsd-5) {
							t.Fatalf("READ BINARY % X: Le beyond one frame (FSD %d)", b, tc.fsd)
						}
					}
				}
			}
			want := tc.maxReads
			if want == 0 {
				want = 1 + (len(cert)-4+tc.fsd-6)/(tc.fsd-5)
			}
			if reads != want {
				t.Fatalf("%d READ BINARY, want %d", reads, want)
			}
		})
	}
}

func TestAndroidNeedsPINBeforeCert(t *testing.T) {
	ctx := context.Background()
	c, tok := newCard(t, card.KindAndroid, card.Options{Seed: "jpki-test"})
	s, err := jpki.Open(ctx, c, jpki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Token() != jpki.TokenAndroid || !s.PINBeforeCert() {
		t.Fatalf("token %v", s.Token())
	}
	if _, err := s.ReadAuthCert(ctx); !errors.Is(err, jpki.ErrPINRequired) || !errors.Is(err, apdu.ErrSecurityStatus) {
		t.Fatalf("cert before PIN: %v", err)
	}
	if _, err := s.VerifyAuthPIN(ctx, []byte("5678"), false); err != nil {
		t.Fatal(err)
	}
	cert, err := s.ReadAuthCert(ctx)
	if err != nil || !bytes.Equal(cert, tok.Credentials().AuthCert) {
		t.Fatalf("cert after PIN: %v", err)
	}
	challenge := []byte("android challenge")
	sig, err := s.SignAuth(ctx, jpki.DigestInfoSHA256(challenge))
	if err != nil {
		t.Fatal(err)
	}
	checkSignature(t, cert, challenge, sig)
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestIPhone(t *testing.T) {
	ctx := context.Background()
	// Unarmed: recognised as an iPhone, every operation says "arm it".
	c, tok := newCard(t, card.KindIPhone, card.Options{Seed: "jpki-test"})
	s, err := jpki.Open(ctx, c, jpki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Token() != jpki.TokenIPhone || s.NeedsPIN() {
		t.Fatalf("token %v", s.Token())
	}
	if _, err := s.ReadAuthCert(ctx); !errors.Is(err, jpki.ErrNotArmed) {
		t.Fatalf("unarmed cert read: %v", err)
	}
	if _, err := s.AuthPINStatus(ctx); !errors.Is(err, jpki.ErrNotArmed) {
		t.Fatalf("unarmed status: %v", err)
	}
	if _, err := s.VerifyAuthPIN(ctx, []byte("1234"), false); err == nil || c.verifies() != 0 {
		t.Fatalf("VERIFY on an iPhone: %v (%d sent)", err, c.verifies())
	}
	// Armed: signs without a PIN.
	tok.Arm()
	cert, err := s.ReadAuthCert(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.AuthPINStatus(ctx)
	if err != nil || !st.Verified {
		t.Fatalf("armed status %v %v", st, err)
	}
	challenge := []byte("iphone challenge")
	sig, err := s.SignAuth(ctx, jpki.DigestInfoSHA256(challenge))
	if err != nil {
		t.Fatal(err)
	}
	checkSignature(t, cert, challenge, sig)
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if tok.Armed() {
		t.Fatal("the last-command indicator did not end the armed session")
	}
}

func TestRefusedTokens(t *testing.T) {
	ctx := context.Background()
	c, _ := newCard(t, card.KindJuki, card.Options{Seed: "jpki-test"})
	if _, err := jpki.Open(ctx, c, jpki.Options{}); !errors.Is(err, jpki.ErrUnsupportedToken) {
		t.Fatalf("juki: %v", err)
	}
	c, _ = newCard(t, card.KindNonJPKI, card.Options{Seed: "jpki-test"})
	if _, err := jpki.Open(ctx, c, jpki.Options{}); !errors.Is(err, jpki.ErrNotJPKI) {
		t.Fatalf("non-JPKI: %v", err)
	}
}

func TestPINSafety(t *testing.T) {
	ctx := context.Background()

	t.Run("wrong PIN reports tries left", func(t *testing.T) {
		c, _ := newCard(t, card.KindMyNumber, card.Options{Seed: "jpki-test"})
		s, _ := jpki.Open(ctx, c, jpki.Options{})
		_, err := s.VerifyAuthPIN(ctx, []byte("0000"), false)
		var wp *jpki.WrongPINError
		if !errors.As(err, &wp) || wp.Retries != 2 {
			t.Fatalf("err %v", err)
		}
		if c.verifies() != 1 {
			t.Fatalf("%d VERIFY sent, want exactly 1 (no automatic retry)", c.verifies())
		}
	})

	t.Run("blocked PIN: no VERIFY sent", func(t *testing.T) {
		c, _ := newCard(t, card.KindMyNumber, card.Options{Seed: "jpki-test", AuthPINTries: card.TriesBlocked})
		s, _ := jpki.Open(ctx, c, jpki.Options{})
		st, err := s.VerifyAuthPIN(ctx, []byte("1234"), true)
		if !errors.Is(err, jpki.ErrPINBlocked) || !st.Blocked {
			t.Fatalf("err %v status %v", err, st)
		}
		if c.verifies() != 0 {
			t.Fatal("VERIFY sent to a blocked PIN")
		}
	})

	t.Run("one try left needs confirmation", func(t *testing.T) {
		c, tok := newCard(t, card.KindMyNumber, card.Options{Seed: "jpki-test", AuthPINTries: 1})
		s, _ := jpki.Open(ctx, c, jpki.Options{})
		st, err := s.VerifyAuthPIN(ctx, []byte("1234"), false)
		if !errors.Is(err, jpki.ErrConfirmationRequired) || st.Retries != 1 {
			t.Fatalf("err %v status %v", err, st)
		}
		if c.verifies() != 0 {
			t.Fatal("VERIFY sent without the user's confirmation")
		}
		// With confirmation a wrong PIN blocks the card.
		_, err = s.VerifyAuthPIN(ctx, []byte("9999"), true)
		var wp *jpki.WrongPINError
		if !errors.As(err, &wp) || wp.Retries != 0 || !errors.Is(err, jpki.ErrPINBlocked) {
			t.Fatalf("err %v", err)
		}
		if n, _ := tok.Tries(card.AuthPIN); n != 0 {
			t.Fatalf("tries %d", n)
		}
		// And nothing more is ever sent to it.
		if _, err := s.VerifyAuthPIN(ctx, []byte("1234"), true); !errors.Is(err, jpki.ErrPINBlocked) || c.verifies() != 1 {
			t.Fatalf("after block: %v, %d VERIFY", err, c.verifies())
		}
	})

	t.Run("bad PIN format sends nothing", func(t *testing.T) {
		c, _ := newCard(t, card.KindMyNumber, card.Options{Seed: "jpki-test"})
		s, _ := jpki.Open(ctx, c, jpki.Options{})
		n := len(c.sent)
		for _, pin := range []string{"", "123", "12345", "12a4", "１２３４"} {
			if _, err := s.VerifyAuthPIN(ctx, []byte(pin), true); !errors.Is(err, jpki.ErrBadPINFormat) {
				t.Fatalf("PIN %q: %v", pin, err)
			}
		}
		if len(c.sent) != n {
			t.Fatal("a malformed PIN reached the card")
		}
	})
}

func TestParseTokenLabel(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want jpki.Token
	}{
		{"JPKIAPICCTOKEN2                 ", jpki.TokenCard},
		{"JPKIAPGPSETOKEN\x00\x00", jpki.TokenAndroid},
		{"JPKIAPIOSTOKEN", jpki.TokenIPhone},
		{"JPKIAPICCTOKEN                  ", jpki.TokenJuki},
		{"JPKIAPICCTOKEN22", jpki.TokenUnknown},
		{"", jpki.TokenUnknown},
	} {
		if got, _ := jpki.ParseTokenLabel([]byte(tc.in)); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
		}
	}
}

func FuzzParseTokenLabel(f *testing.F) {
	f.Add([]byte("JPKIAPICCTOKEN2 "))
	f.Fuzz(func(t *testing.T, b []byte) { jpki.ParseTokenLabel(b) })
}

func TestReadBasic4(t *testing.T) {
	ctx := context.Background()
	c, _ := newCard(t, card.KindMyNumber, card.Options{Seed: "jpki-test"})
	s, err := jpki.Open(ctx, c, jpki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b4, st, err := s.ReadBasic4(ctx, []byte("1234"), false)
	if err != nil {
		t.Fatal(err)
	}
	if st.Retries != 3 || b4.Name == "" || b4.Address == "" || len(b4.DateOfBirth) != 8 || len(b4.Sex) != 1 {
		t.Fatalf("basic 4: %+v status %v", b4, st)
	}
	// The JPKI AP is usable again afterwards.
	if _, err := s.ReadAuthCert(ctx); err != nil {
		t.Fatal(err)
	}
	// Phones have no text AP.
	c2, _ := newCard(t, card.KindAndroid, card.Options{Seed: "jpki-test"})
	s2, _ := jpki.Open(ctx, c2, jpki.Options{})
	if _, _, err := s2.ReadBasic4(ctx, []byte("1234"), false); !errors.Is(err, jpki.ErrUnsupportedToken) {
		t.Fatalf("android basic 4: %v", err)
	}
}

func FuzzParseBasic4(f *testing.F) {
	f.Add([]byte{0xFF, 0x20, 0x10, 0xDF, 0x22, 0x01, 'a', 0xDF, 0x23, 0x01, 'b', 0xDF, 0x24, 0x00, 0xDF, 0x25, 0x01, '1'})
	f.Fuzz(func(t *testing.T, b []byte) { jpki.ParseBasic4(b) })
}
