package trace_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kazasu/drivers/jpki"
	"kazasu/drivers/nfc"
	"kazasu/drivers/reader"
	"kazasu/drivers/trace"
)

// record runs a JPKI transaction (with VERIFY) on uri and returns the pcapng.
func record(t *testing.T, uri string, mode nfc.ISODepMode) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := trace.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := reader.Open(ctx, uri, reader.Options{Tracer: w})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := r.Poll(ctx, nfc.PollOptions{Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	s, err := jpki.Open(ctx, c, jpki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyAuthPIN(ctx, []byte("1234"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SignAuth(ctx, jpki.DigestInfoSHA256([]byte("c"))); err != nil {
		t.Fatal(err)
	}
	s.Close(ctx)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Packets() < 10 {
		t.Fatalf("only %d packets", w.Packets())
	}
	return buf.Bytes()
}

func TestPINNeverInTrace(t *testing.T) {
	for _, tc := range []struct {
		uri  string
		mode nfc.ISODepMode
	}{
		{"sim:mynumber", nfc.ISODepAuto},
		{"sim:mynumber?via=pn532_uart&baud=115200", nfc.ISODepChip},
		{"sim:mynumber?via=pn532_uart&baud=115200", nfc.ISODepHost},
	} {
		b := record(t, tc.uri, tc.mode)
		// The VERIFY command 00 20 00 80 04 '1234' must not appear, in any
		// framing.
		if bytes.Contains(b, []byte{0x20, 0x00, 0x80, 0x04, '1', '2', '3', '4'}) || bytes.Contains(b, []byte("1234")) {
			t.Fatalf("%s/%v: the PIN is in the trace", tc.uri, tc.mode)
		}
		if !bytes.Contains(b, []byte{0x20, 0x00, 0x80, 0x04, '*', '*', '*', '*'}) {
			t.Fatalf("%s/%v: the redacted VERIFY is missing", tc.uri, tc.mode)
		}
	}
}

// TestTsharkDecodes checks that tshark decodes the ISO 14443 frames of a
// recorded transaction.
func TestTsharkDecodes(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("KAZASU_REQUIRE_TOOLS") == "1" {
			t.Fatal("tshark missing (apt-get install tshark)")
		}
		t.Skip("tshark missing")
	}
	for _, tc := range []struct {
		uri  string
		mode nfc.ISODepMode
		want []string
	}{
		{"sim:mynumber", nfc.ISODepAuto, []string{"Message: WUPB", "Message: ATQB", "Message: Attrib", "Message: I-block", "ISO/IEC 7816", "Select file"}},
		{"sim:mynumber?via=pn532_uart&baud=115200", nfc.ISODepChip, []string{"Message: I-block", "ISO/IEC 7816", "Select file", "PN532 host→chip", "PN532 chip→host", "synthesized"}},
	} {
		b := record(t, tc.uri, tc.mode)
		p := filepath.Join(t.TempDir(), "trace.pcapng")
		os.WriteFile(p, b, 0o600)
		if d := os.Getenv("KAZASU_KEEP_TRACE"); d != "" {
			os.WriteFile(filepath.Join(d, strings.NewReplacer(":", "_", "/", "_", "?", "_", "&", "_", "=", "_").Replace(tc.uri)+".pcapng"), b, 0o600)
		}
		out, err := exec.Command(tshark, "-r", p, "-V", "-d", "iso14443.subdissector,iso7816").CombinedOutput()
		if err != nil {
			t.Fatalf("tshark: %v\n%s", err, out)
		}
		s := string(out)
		for _, w := range tc.want {
			if !strings.Contains(s, w) {
				t.Errorf("%s: tshark output lacks %q\n%s", tc.uri, w, s[:min(len(s), 3000)])
			}
		}
		if strings.Contains(s, "Malformed") {
			t.Errorf("%s: tshark reports malformed packets", tc.uri)
		}
	}
}
