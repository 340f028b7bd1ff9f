//go:build cgo && libnfc

package libnfc_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"kazasu/drivers/libnfc"
	"kazasu/drivers/nfc"
	"kazasu/drivers/sim/card"
	"kazasu/drivers/sim/pn532emu"
	"kazasu/drivers/sim/rf"
)

// rig serves an emulated PN532 with field on a pty and opens it through
// libnfc.
func rig(t *testing.T, field *rf.Field) *libnfc.Reader {
	t.Helper()
	if os.Getenv("LIBNFC_LOG_LEVEL") == "" {
		os.Setenv("LIBNFC_LOG_LEVEL", "0")
	}
	link := filepath.Join(t.TempDir(), "ttyPN532")
	emu := pn532emu.New(pn532emu.Options{Field: field})
	p, err := pn532emu.OpenPTY(link)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { emu.ServePTY(ctx, p); close(done) }()
	r, err := libnfc.Open("pn532_uart:"+p.Name(), libnfc.Options{})
	if err != nil {
		cancel()
		<-done
		p.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Close()
		cancel()
		<-done
		p.Close()
	})
	return r
}

func TestLibnfcReaderMyNumberCard(t *testing.T) {
	tok, err := card.New(card.KindMyNumber, card.Options{Seed: "libnfc-test"})
	if err != nil {
		t.Fatal(err)
	}
	field := &rf.Field{}
	field.Add(tok)
	r := rig(t, field)
	if info := r.Info(); info.Chip != "PN532" || info.Firmware != "1.6" {
		t.Fatalf("info %+v", info)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := r.Poll(ctx, nfc.PollOptions{Order: []nfc.Tech{nfc.TechB}})
	if err != nil {
		t.Fatal(err)
	}
	tg := c.Target()
	if tg.Tech != nfc.TechB || !bytes.Equal(tg.ATQB[9:12], []byte{0xB3, 0x81, 0xA1}) || tg.FSC != 256 {
		t.Fatalf("target %v ATQB % X", tg, tg.ATQB)
	}
	// SELECT the JPKI AP, read the token label.
	resp, err := c.Transceive(ctx, []byte{0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01})
	if err != nil || !bytes.Equal(resp, []byte{0x90, 0x00}) {
		t.Fatalf("SELECT AP: % X, %v", resp, err)
	}
	c.Transceive(ctx, []byte{0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x06})
	resp, err = c.Transceive(ctx, []byte{0x00, 0xB0, 0x00, 0x00, 0x20})
	if err != nil || !bytes.HasPrefix(resp, []byte("JPKIAPICCTOKEN2 ")) {
		t.Fatalf("token EF: %q, %v", resp, err)
	}
	// A 256-byte answer crosses the PN532's 64-byte FSD and comes back
	// whole through libnfc's MI reassembly.
	c.Transceive(ctx, []byte{0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x0A})
	resp, err = c.Transceive(ctx, []byte{0x00, 0xB0, 0x00, 0x00, 0x00})
	if err != nil || len(resp) != 258 || resp[0] != 0x30 || resp[256] != 0x90 {
		t.Fatalf("READ BINARY 256: %d bytes, %v", len(resp), err)
	}
	if err := c.Present(ctx); err != nil {
		t.Fatalf("present: %v", err)
	}
	// Oversized APDUs are refused before libnfc (which would overflow).
	if _, err := c.Transceive(ctx, make([]byte, 300)); !errors.Is(err, nfc.ErrNotSupported) {
		t.Fatalf("300-byte APDU: %v", err)
	}
	if err := c.Release(ctx); err != nil {
		t.Fatalf("release: %v", err)
	}
	if _, err := c.Transceive(ctx, []byte{0x00, 0xA4, 0x04, 0x0C, 0x00}); !errors.Is(err, nfc.ErrTargetGone) {
		t.Fatalf("transceive after release: %v", err)
	}
	// The card leaves: the next poll finds nothing, quickly.
	field.Remove(tok)
	if _, err := r.Poll(ctx, nfc.PollOptions{}); !errors.Is(err, nfc.ErrNoTarget) {
		t.Fatalf("poll on empty field: %v", err)
	}
}

func TestOpenMissingDevice(t *testing.T) {
	os.Setenv("LIBNFC_LOG_LEVEL", "0")
	_, err := libnfc.Open("pn532_uart:"+filepath.Join(t.TempDir(), "nothing"), libnfc.Options{})
	if !errors.Is(err, nfc.ErrReaderGone) {
		t.Fatalf("err %v", err)
	}
}

// TestTypeAPhoneATS: a phone presenting as Type A ISO-DEP is found, and its
// ATS carries the TL byte as the contract says (libnfc stores it without).
func TestTypeAPhoneATS(t *testing.T) {
	tok, err := card.New(card.KindAndroid, card.Options{Seed: "libnfc-test"})
	if err != nil {
		t.Fatal(err)
	}
	field := &rf.Field{}
	field.Add(tok)
	r := rig(t, field)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := r.Poll(ctx, nfc.PollOptions{Order: []nfc.Tech{nfc.TechA}})
	if err != nil {
		t.Fatal(err)
	}
	tg := c.Target()
	if tg.Tech != nfc.TechA || len(tg.ATS) < 2 || int(tg.ATS[0]) != len(tg.ATS) {
		t.Fatalf("target %v ATS % X: TL must equal the ATS length", tg, tg.ATS)
	}
	resp, err := c.Transceive(ctx, []byte{0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01})
	if err != nil || !bytes.Equal(resp, []byte{0x90, 0x00}) {
		t.Fatalf("SELECT AP on the phone: % X, %v", resp, err)
	}
}
