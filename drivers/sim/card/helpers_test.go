package card

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// hx decodes hex with optional spaces; it panics on a typo in a test.
func hx(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func newToken(t testing.TB, k Kind, o Options) *Token {
	t.Helper()
	tok, err := New(k, o)
	if err != nil {
		t.Fatalf("New(%s): %v", k, err)
	}
	return tok
}

// send runs one APDU given in hex and splits the response.
func send(a *Applet, apdu []byte) ([]byte, SW, time.Duration) {
	resp, proc := a.Process(apdu)
	if len(resp) < 2 {
		return nil, 0, proc
	}
	n := len(resp) - 2
	return resp[:n], SW(resp[n])<<8 | SW(resp[n+1]), proc
}

// expect runs an APDU (hex) and checks its SW.
func expect(t testing.TB, a *Applet, apdu string, want SW) []byte {
	t.Helper()
	data, sw, _ := send(a, hx(apdu))
	if sw != want {
		t.Fatalf("%s → %v, want %v", apdu, sw, want)
	}
	return data
}

const (
	selJPKI    = "00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01"
	selText    = "00 A4 04 0C 0A D3 92 10 00 31 00 01 01 04 08"
	selISD     = "00 A4 04 0C 07 A0 00 00 01 51 00 00"
	selEF0001  = "00 A4 02 0C 02 00 01"
	selEF0002  = "00 A4 02 0C 02 00 02"
	selToken   = "00 A4 02 0C 02 00 06"
	selEF0008  = "00 A4 02 0C 02 00 08"
	selAuth    = "00 A4 02 0C 02 00 0A"
	selAuthCA  = "00 A4 02 0C 02 00 0B"
	selAuthKey = "00 A4 02 0C 02 00 17"
	selAuthPIN = "00 A4 02 0C 02 00 18"
	selSignKey = "00 A4 02 0C 02 00 1A"
	selSignPIN = "00 A4 02 0C 02 00 1B"
	selTextPIN = "00 A4 02 0C 02 00 11"
	verifyAuth = "00 20 00 80 04 31 32 33 34"       // "1234"
	verifySign = "00 20 00 80 06 41 42 43 31 32 33" // "ABC123"
	// sha256DigestInfoPrefix is the DER prefix of a SHA-256 DigestInfo.
	sha256DigestInfoPrefix = "30 31 30 0D 06 09 60 86 48 01 65 03 04 02 01 05 00 04 20"
)

// readAll reads n bytes of the current EF in 256-byte chunks.
func readAll(t testing.TB, a *Applet, n int) []byte {
	t.Helper()
	var out []byte
	for off := 0; off < n; {
		le := min(n-off, 256)
		cmd := []byte{0x00, 0xB0, byte(off >> 8), byte(off), byte(le)}
		data, sw, _ := send(a, cmd)
		if sw != SWOK {
			t.Fatalf("READ BINARY at %d: %v", off, sw)
		}
		out = append(out, data...)
		off += len(data)
	}
	return out
}
