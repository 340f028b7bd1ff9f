package serial

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"kazasu/drivers/nfc"
)

// openPair opens a pty and a TTY on its slave side. The test keeps the
// master; t.Cleanup closes everything still open.
func openPair(t *testing.T, baud int) (*os.File, *TTY) {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	// Raw mode on the slave so that nothing is echoed or translated.
	tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Lflag &^= unix.ECHO | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Iflag &^= unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	if err := unix.IoctlSetTermios(int(slave.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	name := slave.Name()
	tty, err := Open(name, baud)
	if err != nil {
		t.Fatal(err)
	}
	slave.Close() // the TTY holds its own descriptor
	t.Cleanup(func() {
		tty.Close()
		master.Close()
	})
	return master, tty
}

// readFull reads exactly n bytes from the TTY.
func readFull(t *testing.T, tty *TTY, n int) []byte {
	t.Helper()
	out := make([]byte, 0, n)
	b := make([]byte, n)
	for len(out) < n {
		k, err := tty.Read(b[:n-len(out)])
		if err != nil {
			t.Fatalf("read after %d of %d bytes: %v", len(out), n, err)
		}
		out = append(out, b[:k]...)
	}
	return out
}

func TestTTYReadWrite(t *testing.T) {
	master, tty := openPair(t, 115200)
	if err := tty.SetReadTimeout(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Host → device.
	frame := []byte{0x00, 0x00, 0xFF, 0x02, 0xFE, 0xD4, 0x02, 0x2A, 0x00}
	if n, err := tty.Write(frame); err != nil || n != len(frame) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	got := make([]byte, len(frame))
	if _, err := io.ReadFull(master, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, frame) {
		t.Fatalf("master got % X, want % X", got, frame)
	}
	// Device → host, including 0x00 and 0xFF which a cooked tty would mangle.
	answer := []byte{0x00, 0x00, 0xFF, 0x06, 0xFA, 0xD5, 0x03, 0x32, 0x01, 0x06, 0x07, 0xE8, 0x00}
	if _, err := master.Write(answer); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, tty, len(answer)); !bytes.Equal(got, answer) {
		t.Fatalf("tty got % X, want % X", got, answer)
	}
}

func TestTTYTimeoutIsNotEOF(t *testing.T) {
	_, tty := openPair(t, 115200)
	if err := tty.SetReadTimeout(20 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	n, err := tty.Read(make([]byte, 8))
	if n != 0 || !errors.Is(err, ErrTimeout) || !errors.Is(err, nfc.ErrTimeout) {
		t.Fatalf("Read = %d, %v; want 0, ErrTimeout", n, err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, nfc.ErrReaderGone) {
		t.Fatalf("timeout %v looks like a closed port", err)
	}
	// The port still works after a timeout (the background reader saw several
	// of tarm's (0, EOF) returns by now and must not have taken them for a
	// hang-up).
	if err := tty.SetReadTimeout(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * vtime) // let tarm time out at least twice underneath
	if _, err := tty.Write([]byte{1}); err != nil {
		t.Fatalf("Write after timeout: %v", err)
	}
}

func TestTTYSetReadTimeoutRejectsZero(t *testing.T) {
	_, tty := openPair(t, 115200)
	for _, d := range []time.Duration{0, -time.Second} {
		if err := tty.SetReadTimeout(d); err == nil {
			t.Errorf("SetReadTimeout(%v) = nil, want an error", d)
		}
	}
}

func TestTTYCloseWakesBlockedRead(t *testing.T) {
	_, tty := openPair(t, 115200)
	if err := tty.SetReadTimeout(time.Hour); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := tty.Read(make([]byte, 1))
		errc <- err
	}()
	// Give the reader a moment to block (not needed for correctness: a Read
	// that starts after Close fails the same way).
	time.Sleep(10 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- tty.Close() }()
	// These bounds only catch a deadlock; they are not timing assertions.
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close deadlocked with a blocked Read")
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("blocked Read = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read still blocked after Close")
	}
	if err := tty.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if _, err := tty.Write([]byte{0}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close = %v, want ErrClosed", err)
	}
}

func TestTTYReadContext(t *testing.T) {
	_, tty := openPair(t, 115200)
	if err := tty.SetReadTimeout(time.Hour); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := tty.ReadContext(ctx, make([]byte, 1))
	if !errors.Is(err, context.Canceled) || !errors.Is(err, nfc.ErrTimeout) {
		t.Fatalf("ReadContext(cancelled) = %v", err)
	}
}

func TestTTYSetBaudKeepsPort(t *testing.T) {
	master, tty := openPair(t, 115200)
	if err := tty.SetReadTimeout(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := tty.SetBaud(921600); err != nil {
		t.Fatal(err)
	}
	if got := tty.Baud(); got != 921600 {
		t.Fatalf("Baud = %d after SetBaud(921600)", got)
	}
	if err := tty.SetBaud(1288000); !errors.Is(err, nfc.ErrNotSupported) {
		t.Fatalf("SetBaud(1288000) = %v, want ErrNotSupported", err)
	}
	if got := tty.Baud(); got != 921600 {
		t.Fatalf("Baud = %d after a refused SetBaud", got)
	}
	// The same *TTY still carries bytes both ways.
	if _, err := master.Write([]byte{0xAA, 0x55}); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, tty, 2); !bytes.Equal(got, []byte{0xAA, 0x55}) {
		t.Fatalf("after SetBaud got % X", got)
	}
	if _, err := tty.Write([]byte{0x42}); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(master, b); err != nil || b[0] != 0x42 {
		t.Fatalf("master read % X, %v", b, err)
	}
}

func TestTTYFlushDropsPendingInput(t *testing.T) {
	master, tty := openPair(t, 115200)
	if err := tty.SetReadTimeout(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Send a stale byte and wait until the TTY has certainly seen it: a
	// marker written after it comes back only once both have arrived.
	if _, err := master.Write([]byte{0x11, 0x22}); err != nil {
		t.Fatal(err)
	}
	readFull(t, tty, 1) // 0x11; 0x22 may be buffered here or in the kernel
	time.Sleep(2 * vtime)
	if err := tty.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := master.Write([]byte{0x33}); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, tty, 1); got[0] != 0x33 {
		t.Fatalf("after Flush read % X, want 33", got)
	}
}

func TestTTYVanishedDevice(t *testing.T) {
	master, tty := openPair(t, 115200)
	if err := tty.SetReadTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	master.Close() // the "adapter" is unplugged: the slave side hangs up
	_, err := tty.Read(make([]byte, 1))
	if !errors.Is(err, nfc.ErrReaderGone) {
		t.Fatalf("Read after hang-up = %v, want ErrReaderGone", err)
	}
	if _, err := tty.Write([]byte{0}); !errors.Is(err, nfc.ErrReaderGone) {
		t.Fatalf("Write after hang-up = %v, want ErrReaderGone", err)
	}
	// The pty is gone for good, so reopening fails, and says why.
	if err := tty.Reopen(); !errors.Is(err, nfc.ErrReaderGone) {
		t.Fatalf("Reopen of a vanished pty = %v, want ErrReaderGone", err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open("/dev/does-not-exist-kazasu", 115200); !errors.Is(err, nfc.ErrReaderGone) {
		t.Errorf("Open(missing) = %v, want ErrReaderGone", err)
	}
	if _, err := Open("/dev/null", 123); !errors.Is(err, nfc.ErrNotSupported) {
		t.Errorf("Open(baud 123) = %v, want ErrNotSupported", err)
	}
}

func TestByteTime(t *testing.T) {
	for _, tc := range []struct {
		baud, n int
		want    time.Duration
	}{
		{115200, 0, 0},
		{115200, 9, 781250 * time.Nanosecond},
		{921600, 265, 2875434 * time.Nanosecond},
		{0, 10, 0},
	} {
		if got := ByteTime(tc.baud, tc.n); got != tc.want {
			t.Errorf("ByteTime(%d, %d) = %v, want %v", tc.baud, tc.n, got, tc.want)
		}
	}
}

func TestTTYReopen(t *testing.T) {
	master, tty := openPair(t, 115200)
	if err := tty.SetReadTimeout(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := tty.Reopen(); err != nil {
		t.Fatalf("Reopen: %v", err)
	}
	if got := tty.Baud(); got != 115200 {
		t.Fatalf("Baud after Reopen = %d", got)
	}
	if _, err := master.Write([]byte{0x5A}); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, tty, 1); got[0] != 0x5A {
		t.Fatalf("after Reopen read % X", got)
	}
	if tty.String() != tty.Path() || tty.Path() == "" {
		t.Errorf("String %q, Path %q", tty.String(), tty.Path())
	}
}

// TestTTYTimeoutResolution logs how long timed-out Reads take for read
// timeouts below tarm's 100 ms VTIME floor (run with -v for the figures).
// Only the lower bound is checked: a timer never fires early.
func TestTTYTimeoutResolution(t *testing.T) {
	_, tty := openPair(t, 115200)
	for _, d := range []time.Duration{5 * time.Millisecond, 20 * time.Millisecond, 150 * time.Millisecond} {
		if err := tty.SetReadTimeout(d); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err := tty.Read(make([]byte, 1))
		elapsed := time.Since(start)
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("Read = %v", err)
		}
		if elapsed < d {
			t.Errorf("timeout %v returned after %v", d, elapsed)
		}
		t.Logf("read timeout %v: returned after %v", d, elapsed.Round(10*time.Microsecond))
	}
}

func TestTTYDeviceNodeRemoved(t *testing.T) {
	// A USB adapter's /dev/serial/by-id link disappears with the adapter.
	// Here the pty stays, only the link we opened goes away.
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	link := t.TempDir() + "/ttyUSB-link"
	if err := os.Symlink(slave.Name(), link); err != nil {
		t.Fatal(err)
	}
	tty, err := Open(link, 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	if err := tty.SetReadTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if _, err := tty.Read(make([]byte, 1)); !errors.Is(err, nfc.ErrReaderGone) {
		t.Fatalf("Read after the node went = %v, want ErrReaderGone", err)
	}
}
