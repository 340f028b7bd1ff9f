package pn532emu

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"kazasu/drivers/sim/rf"
)

// testHost is the host end of an HSU link to an emulator over net.Pipe.
type testHost struct {
	t   testing.TB
	c   net.Conn
	emu *Emulator
}

// newHost starts an emulator with opts on a pipe and returns the host end.
// The chip is woken and brought to Normal with SAMConfiguration unless
// raw is set.
func newHost(t testing.TB, opts Options, raw bool) *testHost {
	t.Helper()
	a, b := net.Pipe()
	e := New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.ServeStream(ctx, b) }()
	t.Cleanup(func() {
		cancel()
		a.Close()
		b.Close()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) && !errors.Is(err, ErrReaderGone) {
			t.Errorf("ServeStream: %v", err)
		}
	})
	h := &testHost{t: t, c: a, emu: e}
	if !raw {
		h.write(append([]byte{0x55, 0x55, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, frame(0x14, 0x01)...))
		h.expectACK()
		h.expect(0x15)
	}
	return h
}

// frame builds a host frame D4 + pd.
func frame(pd ...byte) []byte {
	f, err := EncodeFrame(tfiHost, pd)
	if err != nil {
		panic(err)
	}
	return f
}

func (h *testHost) write(b []byte) {
	h.t.Helper()
	_ = h.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := h.c.Write(b); err != nil {
		h.t.Fatalf("host write: %v", err)
	}
}

func (h *testHost) readN(n int) []byte {
	h.t.Helper()
	_ = h.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(h.c, b); err != nil {
		h.t.Fatalf("host read %d bytes: %v", n, err)
	}
	return b
}

func (h *testHost) expectACK() {
	h.t.Helper()
	if got := h.readN(6); !bytes.Equal(got, ACKFrame) {
		h.t.Fatalf("got % X, want ACK", got)
	}
}

// readFrame reads one frame from the chip and returns TFI+PD, or nil for
// the error frame. It checks LCS, DCS, TFI and the postamble.
func (h *testHost) readFrame() []byte {
	h.t.Helper()
	hd := h.readN(5)
	if !bytes.Equal(hd[:3], []byte{0, 0, 0xFF}) {
		h.t.Fatalf("frame starts % X", hd)
	}
	var n int
	switch {
	case hd[3] == 0x01 && hd[4] == 0xFF:
		rest := h.readN(3)
		if !bytes.Equal(rest, []byte{0x7F, 0x81, 0x00}) {
			h.t.Fatalf("bad error frame tail % X", rest)
		}
		return nil
	case hd[3] == 0xFF && hd[4] == 0xFF:
		x := h.readN(3)
		if x[0]+x[1]+x[2] != 0 {
			h.t.Fatalf("extended LCS wrong: % X", x)
		}
		n = int(x[0])<<8 | int(x[1])
		if n <= 255 {
			h.t.Fatalf("extended frame for %d bytes", n)
		}
	default:
		if hd[3]+hd[4] != 0 {
			h.t.Fatalf("LCS wrong: % X", hd)
		}
		n = int(hd[3])
	}
	if n-1 > MaxPD {
		h.t.Fatalf("frame with %d PD bytes", n-1)
	}
	body := h.readN(n + 2)
	var sum byte
	for _, c := range body[:n+1] {
		sum += c
	}
	if sum != 0 || body[n+1] != 0 || body[0] != tfiChip {
		h.t.Fatalf("bad frame body % X", body)
	}
	return body[:n]
}

// expect reads a response and checks its PD begins with want.
func (h *testHost) expect(want ...byte) []byte {
	h.t.Helper()
	f := h.readFrame()
	if f == nil {
		h.t.Fatalf("got the error frame, want % X…", want)
	}
	if !bytes.HasPrefix(f[1:], want) {
		h.t.Fatalf("got % X, want % X…", f[1:], want)
	}
	return f[1:]
}

// cmd sends a command and returns its response PD (nil: error frame).
func (h *testHost) cmd(pd ...byte) []byte {
	h.t.Helper()
	h.write(frame(pd...))
	h.expectACK()
	f := h.readFrame()
	if f == nil {
		return nil
	}
	if f[1] != pd[0]+1 {
		h.t.Fatalf("response code %02X to command %02X", f[1], pd[0])
	}
	return f[1:]
}

// firmware checks the chip still answers GetFirmwareVersion.
func (h *testHost) firmware() {
	h.t.Helper()
	if got := h.cmd(0x02); !bytes.Equal(got, []byte{0x03, 0x32, 0x01, 0x06, 0x07}) {
		h.t.Fatalf("GetFirmwareVersion = % X", got)
	}
}

// fieldWith returns a field holding the given PICCs.
func fieldWith(ps ...rf.PICC) *rf.Field {
	f := &rf.Field{}
	for _, p := range ps {
		f.Add(p)
	}
	return f
}
