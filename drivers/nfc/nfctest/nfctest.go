// Package nfctest has test helpers for the layers above the reader
// contract: hex frames written with spaces, and a RawTransceiver that
// replays an exact frame transcript.
package nfctest

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"kazasu/drivers/nfc"
)

// Hex decodes hex with optional spaces ("00 A4 04 00"), failing the test
// on bad input.
func Hex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// Step is one scripted round trip: the frame the code under test must
// send, the answer (hex; "" = no answer, a timeout; "!" = a CRC error),
// and, if not zero, the timeout it must ask for.
type Step struct {
	Out     string
	In      string
	Timeout time.Duration
}

// Script is an nfc.RawTransceiver replaying Steps in order; a frame other
// than the next one expected fails the test.
type Script struct {
	T     testing.TB
	Steps []Step
}

func (s *Script) TransceiveRaw(_ context.Context, frame []byte, timeout time.Duration) ([]byte, error) {
	s.T.Helper()
	if len(s.Steps) == 0 {
		s.T.Fatalf("unexpected frame % X", frame)
	}
	st := s.Steps[0]
	s.Steps = s.Steps[1:]
	if !bytes.Equal(frame, Hex(s.T, st.Out)) {
		s.T.Fatalf("sent % X, want %s", frame, st.Out)
	}
	if st.Timeout != 0 && timeout != st.Timeout {
		s.T.Errorf("timeout for %s = %v, want %v", st.Out, timeout, st.Timeout)
	}
	switch st.In {
	case "":
		return nil, nfc.Errorf("script", nfc.ErrTimeout, "no answer")
	case "!":
		return nil, nfc.Errorf("script", nfc.ErrTransmission, "CRC error")
	}
	return Hex(s.T, st.In), nil
}

// Done fails the test if scripted frames were not sent.
func (s *Script) Done() {
	s.T.Helper()
	if len(s.Steps) != 0 {
		s.T.Errorf("%d scripted frames not sent, next %s", len(s.Steps), s.Steps[0].Out)
	}
}
