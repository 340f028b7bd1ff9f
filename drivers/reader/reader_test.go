package reader_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"testing"
	"time"

	"kazasu/drivers/apdu"
	"kazasu/drivers/jpki"
	"kazasu/drivers/libnfc"
	"kazasu/drivers/nfc"
	"kazasu/drivers/reader"
)

func TestParseURI(t *testing.T) {
	good := map[string]reader.URI{
		"pn532_uart:/dev/ttyAMA0":                         {Driver: "pn532_uart", Path: "/dev/ttyAMA0"},
		"pn532_uart:/dev/ttyUSB0:115200":                  {Driver: "pn532_uart", Path: "/dev/ttyUSB0", Speed: 115200},
		"pn532_i2c:/dev/i2c-1":                            {Driver: "pn532_i2c", Path: "/dev/i2c-1"},
		"pn532_spi:/dev/spidev0.0:5000000":                {Driver: "pn532_spi", Path: "/dev/spidev0.0", Speed: 5000000},
		"libnfc:pn532_uart:/dev/ttyUSB0":                  {Driver: "libnfc", Path: "pn532_uart:/dev/ttyUSB0"},
		"libnfc:":                                         {Driver: "libnfc"},
		"sim:mynumber,android?via=pn532_uart&baud=921600": {Driver: "sim", Path: "mynumber,android", Speed: 921600},
	}
	for s, want := range good {
		u, err := reader.ParseURI(s)
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if u.Driver != want.Driver || u.Path != want.Path || u.Speed != want.Speed {
			t.Errorf("%s: %+v, want %+v", s, u, want)
		}
	}
	u, _ := reader.ParseURI("sim:mynumber, none ,iphone")
	if got := u.SimCards(); len(got) != 2 || got[1] != "iphone" || u.Via() != "direct" {
		t.Errorf("sim cards %v via %s", got, u.Via())
	}
	for _, s := range []string{"", "/dev/ttyUSB0", "pn532_uart:", "pn532_uart:/dev/x:fast", "pn532_i2c:/dev/i2c-1:5", "acr122:", "sim:x?via=usb", "sim:x?color=red", "sim:?baud=-1"} {
		if _, err := reader.ParseURI(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

// transaction runs the user-authentication sequence of jpki.md §5.5 on the
// first card of r and checks the signature.
func transaction(t *testing.T, r *reader.Reader, mode nfc.ISODepMode) nfc.Target {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := r.Poll(ctx, nfc.PollOptions{Mode: mode})
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	defer c.Release(ctx)
	s, err := jpki.Open(ctx, c, jpki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := s.ReadAuthCert(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := s.AuthPINStatus(ctx); err != nil || st.Retries != 3 {
		t.Fatalf("PIN status %v %v", st, err)
	}
	if _, err := s.VerifyAuthPIN(ctx, []byte("1234"), false); err != nil {
		t.Fatal(err)
	}
	challenge := []byte("challenge " + r.URI().String())
	sig, err := s.SignAuth(ctx, jpki.DigestInfoSHA256(challenge))
	if err != nil {
		t.Fatal(err)
	}
	x, err := x509.ParseCertificate(cert)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(challenge)
	if err := rsa.VerifyPKCS1v15(x.PublicKey.(*rsa.PublicKey), crypto.SHA256, h[:], sig); err != nil {
		t.Fatal(err)
	}
	// APDUs and answers beyond 262 bytes, both ways: one extended READ
	// BINARY of the whole certificate, and a 300-byte command (the card
	// refuses its content, but it must arrive and be answered).
	sel, err := apdu.Transmit(ctx, c, apdu.Command{INS: 0xA4, P1: 0x02, P2: 0x0C, Data: []byte{0x00, 0x0A}})
	if err != nil {
		t.Fatalf("select: %v %v", sel, err)
	}
	if r.URI().Via() != reader.ViaLibnfc {
		whole, err := apdu.Transmit(ctx, c, apdu.Command{INS: 0xB0, Ne: len(cert), Form: apdu.FormExtended})
		if err != nil || !bytes.Equal(whole.Data, cert) {
			t.Fatalf("extended READ BINARY of %d bytes: %d bytes, %v", len(cert), len(whole.Data), err)
		}
		long, err := c.Transceive(ctx, append([]byte{0x00, 0xD6, 0x00, 0x00, 0x00, 0x01, 0x2C}, make([]byte, 300)...))
		if err != nil || len(long) != 2 {
			t.Fatalf("300-byte command: % X %v", long, err)
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return c.Target()
}

func TestSimTransactions(t *testing.T) {
	cases := []struct {
		uri  string
		mode nfc.ISODepMode
		want nfc.ISODepMode // mode the target reports
		fsd  int
	}{
		{"sim:mynumber", nfc.ISODepAuto, nfc.ISODepHost, 256},
		{"sim:mynumber?via=pn532_uart&baud=115200", nfc.ISODepChip, nfc.ISODepChip, 64},
		{"sim:mynumber?via=pn532_uart&baud=921600", nfc.ISODepChip, nfc.ISODepChip, 64},
		{"sim:mynumber?via=pn532_uart&baud=115200", nfc.ISODepHost, nfc.ISODepHost, 256},
		{"sim:mynumber?via=pn532_uart", nfc.ISODepAuto, nfc.ISODepHost, 256},
		{"sim:mynumber?via=pn532_i2c", nfc.ISODepChip, nfc.ISODepChip, 64},
		{"sim:mynumber?via=pn532_i2c", nfc.ISODepHost, nfc.ISODepHost, 256},
		{"sim:mynumber?via=pn532_spi&baud=5000000", nfc.ISODepChip, nfc.ISODepChip, 64},
		{"sim:mynumber?via=pn532_spi&baud=5000000", nfc.ISODepHost, nfc.ISODepHost, 256},
		{"sim:mynumber?via=libnfc", nfc.ISODepAuto, nfc.ISODepChip, 64},
	}
	for _, tc := range cases {
		t.Run(tc.uri+"/"+tc.mode.String(), func(t *testing.T) {
			if bytes.Contains([]byte(tc.uri), []byte("libnfc")) && !libnfc.Available {
				t.Skip("built without the libnfc tag (run with -tags libnfc)")
			}
			ctx := context.Background()
			r, err := reader.Open(ctx, tc.uri, reader.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			tg := transaction(t, r, tc.mode)
			if tg.Mode != tc.want || tg.FSD != tc.fsd || tg.Tech != nfc.TechB {
				t.Fatalf("target %v, want mode %v FSD %d", tg, tc.want, tc.fsd)
			}
			// The card leaves the field: the reader says so, and the next
			// poll finds nothing.
			r.Sim().Remove(r.Sim().Tokens[0])
			if _, err := r.Poll(ctx, nfc.PollOptions{Mode: tc.mode}); !errors.Is(err, nfc.ErrNoTarget) {
				t.Fatalf("poll after removal: %v", err)
			}
			r.Sim().Tap(r.Sim().Tokens[0])
			transaction(t, r, tc.mode)
		})
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := reader.Open(ctx, "pn532_uart:/nonexistent/tty", reader.Options{}); err == nil {
		t.Fatal("missing tty opened")
	}
	if _, err := reader.Open(ctx, "sim:no-such-card", reader.Options{}); err == nil {
		t.Fatal("unknown sim card accepted")
	}
	r, err := reader.Open(ctx, "sim:", reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Poll(ctx, nfc.PollOptions{}); !errors.Is(err, nfc.ErrNoTarget) {
		t.Fatalf("empty field: %v", err)
	}
}

// TestPollModeFor: a PN532 reader lets the caller choose the ISO-DEP mode
// once it has seen the target (a quirk profile matched by the ATQB), over
// the mode asked for; Auto keeps it. Other readers ignore the choice.
func TestPollModeFor(t *testing.T) {
	cases := []struct {
		uri          string
		mode, chosen nfc.ISODepMode
		want         nfc.ISODepMode
		fsd          int
	}{
		{"sim:mynumber?via=pn532_i2c", nfc.ISODepChip, nfc.ISODepHost, nfc.ISODepHost, 256},
		{"sim:mynumber?via=pn532_i2c", nfc.ISODepAuto, nfc.ISODepChip, nfc.ISODepChip, 64},
		{"sim:mynumber?via=pn532_uart", nfc.ISODepHost, nfc.ISODepChip, nfc.ISODepChip, 64},
		{"sim:mynumber?via=pn532_i2c", nfc.ISODepChip, nfc.ISODepAuto, nfc.ISODepChip, 64},
		{"sim:mynumber", nfc.ISODepAuto, nfc.ISODepChip, nfc.ISODepHost, 256},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%v/%v", tc.uri, tc.mode, tc.chosen), func(t *testing.T) {
			ctx := context.Background()
			r, err := reader.Open(ctx, tc.uri, reader.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var seen []nfc.Target
			c, err := r.Poll(ctx, nfc.PollOptions{Mode: tc.mode, ModeFor: func(tg nfc.Target) nfc.ISODepMode {
				seen = append(seen, tg)
				return tc.chosen
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Release(ctx)
			tg := c.Target()
			if tg.Mode != tc.want || tg.FSD != tc.fsd {
				t.Fatalf("target %v, want mode %v FSD %d", tg, tc.want, tc.fsd)
			}
			if tc.uri != "sim:mynumber" && (len(seen) != 1 || len(seen[0].ATQB) < 12 || seen[0].Tech != nfc.TechB) {
				t.Fatalf("ModeFor saw %v, want the activated Type B target once", seen)
			}
			// The card answers in the chosen mode.
			s, err := jpki.Open(ctx, c, jpki.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.ReadAuthCert(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}
