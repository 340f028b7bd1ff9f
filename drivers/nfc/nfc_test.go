package nfc

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

func TestErrorKinds(t *testing.T) {
	cause := io.ErrUnexpectedEOF
	err := fmt.Errorf("outer: %w", Wrap("pn532: InDataExchange", ErrTransmission, cause))
	if !errors.Is(err, ErrTransmission) || !errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrTimeout) {
		t.Fatalf("errors.Is through *Error: %v", err)
	}
	if Kind(err) != ErrTransmission {
		t.Fatalf("Kind = %v", Kind(err))
	}
	if Kind(io.EOF) != nil {
		t.Fatal("Kind of a foreign error")
	}
	if Wrap("x", ErrTimeout, nil) != nil {
		t.Fatal("Wrap(nil) is not nil")
	}
	if got := Errorf("simreader: Poll", ErrNoTarget, "empty field").Error(); got != "simreader: Poll: no target: empty field" {
		t.Fatalf("message %q", got)
	}
}

func TestRedactVerify(t *testing.T) {
	cases := []struct{ in, want []byte }{
		// VERIFY with a 4-digit PIN.
		{[]byte{0x00, 0x20, 0x00, 0x80, 0x04, '1', '2', '3', '4'}, []byte{0x00, 0x20, 0x00, 0x80, 0x04, '*', '*', '*', '*'}},
		// The retry query (no data): unchanged.
		{[]byte{0x00, 0x20, 0x00, 0x80}, []byte{0x00, 0x20, 0x00, 0x80}},
		// CHANGE REFERENCE DATA.
		{[]byte{0x00, 0x24, 0x01, 0x80, 0x06, 'A', 'B', 'C', '1', '2', '3'}, []byte{0x00, 0x24, 0x01, 0x80, 0x06, '*', '*', '*', '*', '*', '*'}},
		// Extended Lc.
		{[]byte{0x00, 0x20, 0x00, 0x80, 0x00, 0x00, 0x02, '5', '6'}, []byte{0x00, 0x20, 0x00, 0x80, 0x00, 0x00, 0x02, '*', '*'}},
		// Other commands untouched.
		{[]byte{0x00, 0xA4, 0x04, 0x0C, 0x02, 0x20, 0x20}, []byte{0x00, 0xA4, 0x04, 0x0C, 0x02, 0x20, 0x20}},
		{nil, nil},
	}
	for _, c := range cases {
		in := append([]byte(nil), c.in...)
		got := RedactVerify(in)
		if !bytes.Equal(got, c.want) {
			t.Errorf("RedactVerify(% X) = % X, want % X", c.in, got, c.want)
		}
		if !bytes.Equal(in, c.in) {
			t.Errorf("RedactVerify modified its input % X", c.in)
		}
	}
}

func FuzzRedactVerify(f *testing.F) {
	f.Add([]byte{0x00, 0x20, 0x00, 0x80, 0x04, '1', '2', '3', '4'})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := RedactVerify(b)
		if len(r) != len(b) {
			t.Fatal("length changed")
		}
		if len(b) > 5 && (b[1] == 0x20 || b[1] == 0x24) && b[0] != 0xFF && bytes.Equal(r[len(r)-1:], b[len(b)-1:]) && b[len(b)-1] != '*' {
			t.Fatalf("data of % X left in the clear", b)
		}
	})
}

// fakeReader finds a card at the nth poll; its card leaves after m presence
// checks.
type fakeReader struct {
	polls, nth int
	err        error
	card       *fakeCard
}

type fakeCard struct{ checks, leaveAfter int }

func (c *fakeCard) Target() Target { return Target{Tech: TechB, CID: -1} }
func (c *fakeCard) Transceive(context.Context, []byte) ([]byte, error) {
	return []byte{0x90, 0x00}, nil
}
func (c *fakeCard) Release(context.Context) error { return nil }
func (c *fakeCard) Present(context.Context) error {
	c.checks++
	if c.checks > c.leaveAfter {
		return Errorf("fake: presence", ErrTargetGone, "no answer")
	}
	return nil
}

func (r *fakeReader) Info() Info { return Info{Driver: "fake"} }
func (r *fakeReader) Poll(ctx context.Context, o PollOptions) (Card, error) {
	r.polls++
	if r.err != nil {
		return nil, r.err
	}
	if r.polls < r.nth {
		return nil, Errorf("fake: poll", ErrNoTarget, "empty")
	}
	return r.card, nil
}
func (r *fakeReader) SetField(context.Context, bool) error { return nil }
func (r *fakeReader) Reset(context.Context) error          { return nil }
func (r *fakeReader) Close() error                         { return nil }

func TestWaitForCardAndRemoval(t *testing.T) {
	ctx := context.Background()
	r := &fakeReader{nth: 4, card: &fakeCard{leaveAfter: 3}}
	c, err := WaitForCard(ctx, r, PollOptions{}, time.Millisecond)
	if err != nil || c == nil || r.polls != 4 {
		t.Fatalf("WaitForCard: %v after %d polls", err, r.polls)
	}
	if err := WaitRemoved(ctx, c, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if r.card.checks != 4 {
		t.Fatalf("%d presence checks, want 4", r.card.checks)
	}
	// A reader error other than "no target" ends the wait.
	gone := &fakeReader{err: Errorf("fake: poll", ErrReaderGone, "unplugged")}
	if _, err := WaitForCard(ctx, gone, PollOptions{}, time.Millisecond); !errors.Is(err, ErrReaderGone) {
		t.Fatalf("reader gone: %v", err)
	}
	// Cancellation ends it too.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := WaitForCard(cctx, &fakeReader{nth: 1 << 30}, PollOptions{}, time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled wait: %v", err)
	}
}

func TestPollOptionsAndStrings(t *testing.T) {
	if o := (PollOptions{}).Techs(); len(o) != 2 || o[0] != TechB || o[1] != TechA {
		t.Fatalf("default order %v", o)
	}
	tg := Target{Tech: TechB, ID: []byte{1, 2, 3, 4}, FSC: 256, FSD: 64, FWT: 309 * time.Millisecond, CID: 1, BitRatePCD: 106, BitRatePICC: 106, Mode: ISODepChip}
	if got := tg.String(); got != "B PUPI 01020304 FSC 256 FSD 64 FWT 309ms CID 1 106/106 kbps ISO-DEP chip" {
		t.Fatalf("Target.String() = %q", got)
	}
	if TechA.String() != "A" || ISODepHost.String() != "host" || LayerRF.String() != "rf" {
		t.Fatal("enum strings")
	}
}

func TestAPDUNe(t *testing.T) {
	for _, tc := range []struct {
		apdu string
		ne   int
		ok   bool
	}{
		{"00A40000", 0, true},                   // case 1
		{"00B0000000", 256, true},               // case 2, Le 00
		{"00B0000010", 16, true},                // case 2
		{"00A4040C023F00", 0, true},             // case 3
		{"00A40400023F0000", 256, true},         // case 4
		{"00B0000000FFFF", 65535, true},         // case 2 extended
		{"00B00000000000", 65536, true},         // case 2 extended, Le 0000
		{"0022000000000201020000", 65536, true}, // case 4 extended
		{"00220000000002AABB", 0, true},         // case 3 extended
		{"00A4040C0A3F00", 0, false},            // Lc past the end
		{"00A4", 0, false},
	} {
		ne, ok := APDUNe(mustHex(t, tc.apdu))
		if ne != tc.ne || ok != tc.ok {
			t.Errorf("APDUNe(%s) = %d, %v; want %d, %v", tc.apdu, ne, ok, tc.ne, tc.ok)
		}
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
