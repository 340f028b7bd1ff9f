package simreader_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"kazasu/drivers/apdu"
	"kazasu/drivers/nfc"
	"kazasu/drivers/sim/card"
	"kazasu/drivers/sim/rf"
	"kazasu/drivers/sim/simreader"
)

// End-to-end over the team's simulated tokens (drivers/sim/card): every
// profile of the table is activated and answers SELECT; the My Number Card
// and an Android phone run the user-authentication sequence of jpki.md §5.5
// through apdu, isodep and iso14443.

var jpkiAID = []byte{0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01}

func selectAP(ctx context.Context, c nfc.Card) (apdu.Response, error) {
	return apdu.Transmit(ctx, c, apdu.Command{INS: 0xA4, P1: 0x04, P2: 0x0C, Data: jpkiAID})
}

func selectEF(ctx context.Context, t *testing.T, c nfc.Card, fid uint16) {
	t.Helper()
	if _, err := apdu.Transmit(ctx, c, apdu.Command{INS: 0xA4, P1: 0x02, P2: 0x0C, Data: []byte{byte(fid >> 8), byte(fid)}}); err != nil {
		t.Fatalf("SELECT EF %04X: %v", fid, err)
	}
}

func TestEveryTokenProfile(t *testing.T) {
	ctx := context.Background()
	for _, p := range card.Profiles() {
		t.Run(p.Name, func(t *testing.T) {
			tok, err := card.NewProfile(p.Name, card.Options{})
			if err != nil {
				t.Fatal(err)
			}
			field := &rf.Field{}
			field.Add(tok)
			r := simreader.New(field, simreader.Options{})
			c, err := r.Poll(ctx, nfc.PollOptions{})
			if err != nil {
				t.Fatalf("Poll: %v", err)
			}
			tg := c.Target()
			if tg.FSC != frameSize(p.FSCI) || tg.Mode != nfc.ISODepHost {
				t.Errorf("target %v for FSCI %d", tg, p.FSCI)
			}
			resp, err := selectAP(ctx, c)
			switch p.Kind {
			case card.KindNonJPKI, card.KindTypeA:
				if !errors.Is(err, apdu.ErrNotFound) {
					t.Errorf("SELECT JPKI on a non-JPKI token: %v %v", resp, err)
				}
			default:
				if err != nil {
					t.Errorf("SELECT JPKI: %v", err)
				}
			}
			if err := c.Present(ctx); err != nil {
				t.Errorf("Present: %v", err)
			}
			if err := c.Release(ctx); err != nil {
				t.Errorf("Release: %v", err)
			}
			if err := c.Present(ctx); err != nil {
				t.Errorf("Present after Release: %v", err)
			}
			if _, err := r.Poll(ctx, nfc.PollOptions{}); err != nil {
				t.Errorf("Poll after Release: %v", err)
			}
		})
	}
}

func frameSize(fsci byte) int {
	return []int{16, 24, 32, 40, 48, 64, 96, 128, 256, 512, 1024, 2048, 4096}[fsci]
}

// authenticate runs jpki.md §5.5 steps 1, 3–6 and returns the modelled time.
func authenticate(ctx context.Context, t *testing.T, c nfc.Card, pin string, readCertFirst bool) []byte {
	t.Helper()
	if _, err := selectAP(ctx, c); err != nil {
		t.Fatal(err)
	}
	readCert := func() []byte {
		selectEF(ctx, t, c, 0x000A)
		head, err := apdu.ReadBinary(ctx, c, 0, 4, 0)
		if err != nil || head[0] != 0x30 || head[1] != 0x82 {
			t.Fatalf("certificate header % X: %v", head, err)
		}
		n := 4 + int(head[2])<<8 | int(head[3])
		der, err := apdu.ReadBinary(ctx, c, 0, n, 251)
		if err != nil || len(der) != n {
			t.Fatalf("certificate: %d of %d bytes: %v", len(der), n, err)
		}
		return der
	}
	var der []byte
	if readCertFirst {
		der = readCert()
	}
	selectEF(ctx, t, c, 0x0018)
	_, err := apdu.Transmit(ctx, c, apdu.Command{INS: 0x20, P2: 0x80})
	var pe *apdu.PINError
	if !errors.As(err, &pe) || pe.Retries != 3 {
		t.Fatalf("retry counter query: %v", err)
	}
	if _, err := apdu.Transmit(ctx, c, apdu.Command{INS: 0x20, P2: 0x80, Data: []byte(pin)}); err != nil {
		t.Fatalf("VERIFY: %v", err)
	}
	if !readCertFirst {
		der = readCert()
	}
	selectEF(ctx, t, c, 0x0017)
	h := sha256.Sum256([]byte("challenge"))
	di := append([]byte{0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}, h[:]...)
	sig, err := apdu.Transmit(ctx, c, apdu.Command{CLA: 0x80, INS: 0x2A, P2: 0x80, Data: di, Ne: 256})
	if err != nil || len(sig.Data) != 256 {
		t.Fatalf("SIGN: %d bytes, %v", len(sig.Data), err)
	}
	return der
}

func TestJPKITransaction(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		kind      card.Kind
		pin       string
		certFirst bool
	}{
		{card.KindMyNumber, "1234", true},
		{card.KindAndroid, "5678", false},
	} {
		t.Run(string(tt.kind), func(t *testing.T) {
			tok, err := card.New(tt.kind, card.Options{})
			if err != nil {
				t.Fatal(err)
			}
			field := &rf.Field{}
			field.Add(tok)
			rec := &recorder{}
			r := simreader.New(field, simreader.Options{Tracer: rec})
			c, err := r.Poll(ctx, nfc.PollOptions{})
			if err != nil {
				t.Fatal(err)
			}
			start := r.Elapsed()
			der := authenticate(ctx, t, c, tt.pin, tt.certFirst)
			t.Logf("%v: activation %v, transaction %v modelled (certificate %d bytes)", c.Target(), start.Round(10*time.Microsecond), (r.Elapsed() - start).Round(10*time.Microsecond), len(der))
			for _, e := range rec.events {
				// Commands only: response data (certificates) may contain
				// the digits by chance.
				if e.Out && bytes.Contains(e.Data, []byte(tt.pin)) {
					t.Errorf("%v trace leaks the PIN: % X", e.Layer, e.Data)
				}
			}
		})
	}
}

func TestSlowAndBrokenTokens(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		profile string
		ok      bool
	}{
		{"mynumber-slow-sign", true}, // 1.5 s at FWI 10: S(WTX)
		{"android-fwi4", true},       // dozens of S(WTX)
		{"android-wtx-storm", true},  // 3 S(WTX) per answer
		{"mynumber-fsc48", true},     // the signature command is chained
		{"android-no-wtx", false},    // 500 ms at FWI 8 without S(WTX): deaf card, target gone
	} {
		t.Run(tt.profile, func(t *testing.T) {
			tok, err := card.NewProfile(tt.profile, card.Options{})
			if err != nil {
				t.Fatal(err)
			}
			field := &rf.Field{}
			field.Add(tok)
			r := simreader.New(field, simreader.Options{})
			c, err := r.Poll(ctx, nfc.PollOptions{})
			if err != nil {
				t.Fatal(err)
			}
			pin := "1234"
			if tok.Kind() == card.KindAndroid {
				pin = "5678"
			}
			if _, err := selectAP(ctx, c); err != nil {
				t.Fatal(err)
			}
			selectEF(ctx, t, c, 0x0018)
			if _, err := apdu.Transmit(ctx, c, apdu.Command{INS: 0x20, P2: 0x80, Data: []byte(pin)}); err != nil {
				t.Fatalf("VERIFY: %v", err)
			}
			selectEF(ctx, t, c, 0x0017)
			di := make([]byte, 51)
			_, err = apdu.Transmit(ctx, c, apdu.Command{CLA: 0x80, INS: 0x2A, P2: 0x80, Data: di, Ne: 256})
			if tt.ok && err != nil {
				t.Fatalf("SIGN: %v", err)
			}
			if !tt.ok && !errors.Is(err, nfc.ErrTargetGone) && !errors.Is(err, nfc.ErrTimeout) {
				t.Fatalf("SIGN on a card without WTX: %v", err)
			}
		})
	}
}

func TestWallet(t *testing.T) {
	// A My Number Card and another Type B card tapped together.
	ctx := context.Background()
	field := &rf.Field{}
	for _, k := range []card.Kind{card.KindNonJPKI, card.KindMyNumber} {
		tok, err := card.New(k, card.Options{})
		if err != nil {
			t.Fatal(err)
		}
		field.Add(tok)
	}
	r := simreader.New(field, simreader.Options{})
	c, err := r.Poll(ctx, nfc.PollOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Whichever was activated answers (9000 or 6A82), the other stays quiet.
	if _, err := selectAP(ctx, c); err != nil && !errors.Is(err, apdu.ErrNotFound) {
		t.Fatalf("SELECT: %v", err)
	}
}

type recorder struct{ events []nfc.TraceEvent }

func (r *recorder) Trace(e nfc.TraceEvent) {
	r.events = append(r.events, nfc.TraceEvent{Layer: e.Layer, Out: e.Out, Data: append([]byte(nil), e.Data...)})
}
