package pn532emu

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestPTY(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "ttyUSB9")
	// An existing symlink is replaced; a regular file is refused.
	if err := os.Symlink("/nonexistent", link); err != nil {
		t.Fatal(err)
	}
	p, err := OpenPTY(link)
	if err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(link); err != nil || target != p.Name() || !strings.HasPrefix(p.Name(), "/dev/pts/") || p.Link() != link {
		t.Fatalf("link → %q (%v), pty %q", target, err, p.Name())
	}
	regular := filepath.Join(dir, "file")
	if err := os.WriteFile(regular, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenPTY(regular); err == nil {
		t.Fatal("OpenPTY replaced a regular file")
	}

	e := New(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.ServePTY(ctx, p) }()
	c, err := os.OpenFile(link, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(append([]byte{0x55, 0x55, 0x00, 0x00}, frame(0x02)...)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 6+13)
	rd := make(chan error, 1)
	go func() { _, err := io.ReadFull(c, got); rd <- err }()
	select {
	case err := <-rd:
		if err != nil || got[11] != 0xD5 || got[12] != 0x03 {
			t.Fatalf("answer % X, %v", got, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer through the pty")
	}
	// A client closing its side does not end the server (the emulator
	// keeps a slave open); a second client can talk to it.
	c.Close()
	c2, err := os.OpenFile(link, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.Write(frame(0x02)); err != nil {
		t.Fatal(err)
	}
	go func() { _, err := io.ReadFull(c2, got); rd <- err }()
	select {
	case err := <-rd:
		if err != nil || got[12] != 0x03 {
			t.Fatalf("second client: % X, %v", got, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer to the second client")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("ServePTY = %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Fatalf("link left behind: %v", err)
	}
}

func TestPTYReaderGone(t *testing.T) {
	link := filepath.Join(t.TempDir(), "ttyUSB9")
	p, err := OpenPTY(link)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	e := New(Options{Faults: []Fault{{Kind: FaultGone, Frame: 1}}})
	done := make(chan error, 1)
	go func() { done <- e.ServePTY(context.Background(), p) }()
	c, err := os.OpenFile(link, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(append([]byte{0x55}, frame(0x02)...)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrReaderGone) {
			t.Fatalf("ServePTY = %v, want ErrReaderGone", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the gone fault did not end ServePTY")
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Fatalf("link of a gone reader still there: %v", err)
	}
}
