package pn532

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
)

// I2C and SPI are transaction buses: the chip says "ready" through a status
// byte (or P70_IRQ) and the host then reads the whole frame in one
// transaction. Both share the waiting logic below.

// errNotReady: an I2C read's status byte said busy.
var errNotReady = errors.New("pn532: chip not ready")

// statusReady is bit 0 of the I2C/SPI status byte (UM0701 §6.2.4, §6.2.5).
const statusReady = 0x01

// txBus is the part that differs between I2C and SPI.
type txBus interface {
	fmt.Stringer
	write(frame []byte) error
	status() (byte, error)
	read(n int) ([]byte, error) // n bytes after the status byte
}

// busLink is a link over a transaction bus.
type busLink struct {
	bus      txBus
	name     string
	irq      gpio.PinIn
	clk      clock
	interval time.Duration
	bitTime  time.Duration // per byte on the wire
	wakeFn   func(ctx context.Context) error
	grow     int  // read at least this much next (a frame was cut short)
	wakeEn   byte // PowerDown WakeUpEnable bit of this bus
}

func (b *busLink) String() string { return b.bus.String() }
func (b *busLink) driver() string { return b.name }
func (b *busLink) drain() error   { return nil }
func (b *busLink) close() error   { return nil } // the caller owns the bus

func (b *busLink) wireTime(n int) time.Duration { return time.Duration(n) * b.bitTime }

func (b *busLink) wakeBit() byte { return b.wakeEn }

func (b *busLink) wake(ctx context.Context) error {
	if b.wakeFn == nil {
		return nil
	}
	return b.wakeFn(ctx)
}

// send writes a frame, retrying a refused transaction twice: a chip that
// wakes from power-down stretches the clock or does not answer its address
// at once (libnfc retries three times too).
func (b *busLink) send(ctx context.Context, frame []byte) error {
	var err error
	for try := 0; try < 3; try++ {
		if err = b.bus.write(frame); err == nil {
			return nil
		}
		if serr := b.clk.Sleep(ctx, b.interval); serr != nil {
			return serr
		}
	}
	return err
}

// waitReady returns when the chip has a frame ready, polling the status byte
// every interval or waiting for P70_IRQ to go low.
func (b *busLink) waitReady(ctx context.Context, deadline time.Time) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		remaining := deadline.Sub(b.clk.Now())
		if b.irq != nil {
			if b.irq.Read() == gpio.Low {
				return nil
			}
			if remaining <= 0 {
				return errLinkTimeout
			}
			// Short slices so that a cancelled ctx is seen.
			b.irq.WaitForEdge(min(remaining, 10*time.Millisecond))
			continue
		}
		s, err := b.bus.status()
		if err != nil {
			return err
		}
		if s&statusReady != 0 {
			return nil
		}
		if remaining <= 0 {
			return errLinkTimeout
		}
		if err := b.clk.Sleep(ctx, min(remaining, b.interval)); err != nil {
			return err
		}
	}
}

func (b *busLink) recv(ctx context.Context, timeout time.Duration, want int) (Frame, error) {
	deadline := b.clk.Now().Add(timeout)
	want = max(want, ackLen)
	for {
		if err := b.waitReady(ctx, deadline); err != nil {
			return Frame{}, err
		}
		n := max(want, b.grow)
		buf, err := b.bus.read(n)
		if errors.Is(err, errNotReady) {
			continue // the status said ready, the read's own status did not
		}
		if err != nil {
			return Frame{}, err
		}
		f, _, err := DecodeFrame(buf)
		if errors.Is(err, ErrIncomplete) {
			// Ready, but no whole frame in the read: the answer was longer
			// than expected, or the transfer was damaged. Read the length
			// the header announces next time; the caller asks for the
			// frame again (NACK) as for a bad checksum.
			if l := frameLen(buf); l > len(buf) && l <= MaxFrameLen {
				b.grow = l
			}
			return Frame{}, ErrChecksum
		}
		b.grow = 0
		return f, err
	}
}

// --- I2C (UM0701 §6.2.4) ------------------------------------------------------

type i2cBus struct {
	bus  i2c.Bus
	addr uint16
}

func (i *i2cBus) String() string { return fmt.Sprintf("%s@%#02x", i.bus, i.addr) }

func (i *i2cBus) write(frame []byte) error { return i.bus.Tx(i.addr, frame, nil) }

func (i *i2cBus) status() (byte, error) {
	var b [1]byte
	if err := i.bus.Tx(i.addr, nil, b[:]); err != nil {
		return 0, err
	}
	return b[0], nil
}

// read reads the status byte and n frame bytes in one transaction; the chip
// starts every read with the status byte.
func (i *i2cBus) read(n int) ([]byte, error) {
	b := make([]byte, 1+n)
	if err := i.bus.Tx(i.addr, nil, b); err != nil {
		return nil, err
	}
	if b[0]&statusReady == 0 {
		return nil, errNotReady
	}
	return b[1:], nil
}

// NewI2C returns a PN532 on an I2C bus at opts.I2CAddr (0x24) and brings
// it up (SAMConfiguration, GetFirmwareVersion, SetParameters). The bus
// belongs to the caller: Close leaves it open. Wire P70_IRQ to opts.IRQ to
// avoid status polling.
func NewI2C(bus i2c.Bus, opts *Opts) (*Dev, error) {
	return NewI2CContext(context.Background(), bus, opts)
}

// NewI2CContext is NewI2C with a context bounding the bring-up.
func NewI2CContext(ctx context.Context, bus i2c.Bus, opts *Opts) (*Dev, error) {
	if bus == nil {
		return nil, errors.New("pn532: NewI2C: nil bus")
	}
	o := opts.withDefaults()
	if o.I2CAddr >= 0x80 {
		return nil, fmt.Errorf("pn532: NewI2C: address %#x is not a 7-bit address", o.I2CAddr)
	}
	if err := setupIRQ(o.IRQ); err != nil {
		return nil, err
	}
	l := &busLink{
		bus:      &i2cBus{bus: bus, addr: o.I2CAddr},
		name:     "pn532_i2c",
		wakeEn:   WakeI2C,
		irq:      o.IRQ,
		clk:      o.clock,
		interval: o.PollInterval,
		// 9 bits per byte (8 + ACK) at the bus clock.
		bitTime: time.Duration(9 * int64(time.Second) / int64(o.I2CSpeed/physic.Hertz)),
	}
	d := newDev(l, o)
	if err := d.initialize(ctx); err != nil {
		d.closeAfterFailedInit()
		return nil, err
	}
	return d, nil
}

func setupIRQ(p gpio.PinIn) error {
	if p == nil {
		return nil
	}
	if err := p.In(gpio.PullUp, gpio.FallingEdge); err != nil {
		return fmt.Errorf("pn532: IRQ pin %s: %w", p, err)
	}
	return nil
}

// --- SPI (UM0701 §6.2.5) ------------------------------------------------------

// SPI direction bytes.
const (
	spiDataWrite  = 0x01
	spiStatusRead = 0x02
	spiDataRead   = 0x03
)

type spiBus struct {
	c conn.Conn
}

func (s *spiBus) String() string { return fmt.Sprint(s.c) }

// tx runs one full-duplex transaction with every byte bit-reversed: the
// PN532 is LSB first and the Raspberry Pi's SPI controller refuses
// spi.LSBFirst, so the driver reverses in software (as libnfc does).
func (s *spiBus) tx(w []byte) ([]byte, error) {
	out := make([]byte, len(w))
	for i, b := range w {
		out[i] = bits.Reverse8(b)
	}
	r := make([]byte, len(w))
	if err := s.c.Tx(out, r); err != nil {
		return nil, err
	}
	for i, b := range r {
		r[i] = bits.Reverse8(b)
	}
	return r, nil
}

func (s *spiBus) write(frame []byte) error {
	_, err := s.tx(append([]byte{spiDataWrite}, frame...))
	return err
}

func (s *spiBus) status() (byte, error) {
	r, err := s.tx([]byte{spiStatusRead, 0x00})
	if err != nil {
		return 0, err
	}
	return r[1], nil
}

func (s *spiBus) read(n int) ([]byte, error) {
	r, err := s.tx(make1(spiDataRead, n))
	if err != nil {
		return nil, err
	}
	return r[1:], nil
}

// make1 returns b followed by n zero bytes.
func make1(b byte, n int) []byte {
	out := make([]byte, 1+n)
	out[0] = b
	return out
}

// NewSPI returns a PN532 on an SPI port and brings it up. It connects at
// opts.SPISpeed in mode 0 with 8-bit words; the port belongs to the caller.
// Wire P70_IRQ to opts.IRQ to avoid status polling.
func NewSPI(port spi.Port, opts *Opts) (*Dev, error) {
	return NewSPIContext(context.Background(), port, opts)
}

// NewSPIContext is NewSPI with a context bounding the bring-up.
func NewSPIContext(ctx context.Context, port spi.Port, opts *Opts) (*Dev, error) {
	if port == nil {
		return nil, errors.New("pn532: NewSPI: nil port")
	}
	o := opts.withDefaults()
	c, err := port.Connect(o.SPISpeed, spi.Mode0, 8)
	if err != nil {
		return nil, fmt.Errorf("pn532: NewSPI: %w", err)
	}
	if err := setupIRQ(o.IRQ); err != nil {
		return nil, err
	}
	sb := &spiBus{c: c}
	l := &busLink{
		bus:      sb,
		name:     "pn532_spi",
		wakeEn:   WakeSPI,
		irq:      o.IRQ,
		clk:      o.clock,
		interval: o.PollInterval,
		bitTime:  time.Duration(8 * int64(time.Second) / int64(o.SPISpeed/physic.Hertz)),
	}
	// Waking from power-down: a transaction selects the chip (CS low), and
	// it needs about 2 ms before it listens (Adafruit holds CS low 2 ms).
	l.wakeFn = func(ctx context.Context) error {
		if _, err := sb.status(); err != nil {
			return err
		}
		return o.clock.Sleep(ctx, 2*time.Millisecond)
	}
	d := newDev(l, o)
	if err := d.initialize(ctx); err != nil {
		d.closeAfterFailedInit()
		return nil, err
	}
	return d, nil
}
