package pn532emu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// ErrReaderGone is returned by the servers when a FaultGone fault closed
// the host link.
var ErrReaderGone = errors.New("pn532emu: reader gone (injected fault)")

// hsuPort is the HSU end of the chip: frames are written to a byte stream.
type hsuPort struct {
	e    *Emulator
	mu   sync.Mutex
	w    io.Writer
	gone chan struct{}
	once sync.Once
	shut func()
}

func (p *hsuPort) link() Link { return LinkHSU }

func (p *hsuPort) send(frame []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = p.w.Write(frame)
}

func (p *hsuPort) wire(n int) time.Duration { return uartTime(n, p.e.Baud()) }

// flush: bytes already written to the stream are the host's.
func (p *hsuPort) flush() {}

func (p *hsuPort) close() {
	p.once.Do(func() {
		close(p.gone)
		if p.shut != nil {
			p.shut()
		}
	})
}

// ServeStream serves the chip's HSU on rw: it reads host bytes (wake-up
// bytes, frames, ACK, NACK) and writes the chip's ACKs and responses. It
// returns when ctx ends (ctx.Err()), when reading rw fails (io.EOF or the
// read error), or with ErrReaderGone after a FaultGone fault. A read that
// is blocked when ctx ends is left to the caller: close rw to end it.
func (e *Emulator) ServeStream(ctx context.Context, rw io.ReadWriter) error {
	return e.serveStream(ctx, rw, nil)
}

func (e *Emulator) serveStream(ctx context.Context, rw io.ReadWriter, shut func()) error {
	p := &hsuPort{e: e, w: rw, gone: make(chan struct{}), shut: shut}
	if err := e.attach(p); err != nil {
		return err
	}
	defer e.detach()

	type chunk struct {
		b   []byte
		err error
	}
	chunks := make(chan chunk)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := rw.Read(buf)
			c := chunk{b: append([]byte(nil), buf[:n]...), err: err}
			select {
			case chunks <- c:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()

	idle := time.NewTimer(time.Hour)
	idle.Stop()
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.gone:
			return ErrReaderGone
		case <-idle.C:
			e.lineIdle()
		case c := <-chunks:
			if len(c.b) > 0 {
				e.hostBytes(c.b)
				e.runMu.Lock()
				pending := e.p.pending()
				e.runMu.Unlock()
				idle.Stop()
				if pending {
					idle.Reset(e.opts.RxTimeout)
				}
			}
			if c.err != nil {
				if errors.Is(c.err, io.EOF) {
					return io.EOF
				}
				return fmt.Errorf("pn532emu: hsu: read: %w", c.err)
			}
		}
	}
}

// PTY is a pseudo-terminal whose slave side a host program (libnfc's
// pn532_uart, a serial driver) opens as if it were the PN532's UART.
// The emulator keeps its own slave descriptor open in raw mode, so nothing
// is echoed before a client configures the line and the master does not
// fail with EIO when a client closes (pn532.md §9).
type PTY struct {
	master, slave *os.File
	link          string
	once          sync.Once
}

// OpenPTY creates a pty in raw mode. If link is not empty, link is made a
// symbolic link to the slave (replacing an existing symlink there, never a
// regular file).
func OpenPTY(link string) (*PTY, error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("pn532emu: pty: %w", err)
	}
	if err := makeRaw(int(s.Fd())); err != nil {
		m.Close()
		s.Close()
		return nil, fmt.Errorf("pn532emu: pty: raw mode: %w", err)
	}
	p := &PTY{master: m, slave: s}
	if link != "" {
		if err := symlink(s.Name(), link); err != nil {
			m.Close()
			s.Close()
			return nil, err
		}
		p.link = link
	}
	return p, nil
}

// makeRaw is cfmakeraw(3) on fd.
func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// symlink points link at target, atomically replacing an existing symlink.
func symlink(target, link string) error {
	if fi, err := os.Lstat(link); err == nil && fi.Mode()&os.ModeSymlink == 0 {
		return fmt.Errorf("pn532emu: pty: %s exists and is not a symlink", link)
	}
	tmp := filepath.Join(filepath.Dir(link), fmt.Sprintf(".%s.%d.tmp", filepath.Base(link), os.Getpid()))
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("pn532emu: pty: %w", err)
	}
	if err := os.Rename(tmp, link); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("pn532emu: pty: %w", err)
	}
	return nil
}

// Name is the slave's path, /dev/pts/N.
func (p *PTY) Name() string { return p.slave.Name() }

// Link is the symlink made by OpenPTY ("" if none).
func (p *PTY) Link() string { return p.link }

// Close closes both sides and removes the symlink (if it still points to
// this pty).
func (p *PTY) Close() error {
	var err error
	p.once.Do(func() {
		if p.link != "" {
			if t, lerr := os.Readlink(p.link); lerr == nil && t == p.slave.Name() {
				_ = os.Remove(p.link)
			}
		}
		err = errors.Join(p.master.Close(), p.slave.Close())
	})
	return err
}

// ServePTY serves the chip's HSU on p until ctx ends or a FaultGone fault
// "unplugs" the reader, which closes p (and removes its symlink).
func (e *Emulator) ServePTY(ctx context.Context, p *PTY) error {
	err := e.serveStream(ctx, p.master, func() { p.Close() })
	if errors.Is(err, ErrReaderGone) {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
