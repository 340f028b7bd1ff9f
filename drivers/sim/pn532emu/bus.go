package pn532emu

import (
	"bytes"
	"context"
	"fmt"
	"math/bits"
	"sync"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
)

// I2CAddr is the PN532's 7-bit I2C address (0x48/0x49 in 8-bit form).
const I2CAddr = 0x24

// SPI operation bytes: the first byte of every transaction (pn532.md §3).
const (
	spiDataWrite  = 0x01
	spiStatusRead = 0x02
	spiDataRead   = 0x03
)

// queuePort is the chip end of I2C and SPI: frames wait in a queue until
// the host reads them; a read with nothing queued finds the chip busy.
type queuePort struct {
	e    *Emulator
	l    Link
	mu   sync.Mutex
	q    [][]byte
	gone bool
}

func (p *queuePort) link() Link { return p.l }

func (p *queuePort) send(frame []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.q = append(p.q, append([]byte(nil), frame...))
}

// wire is 0: I2C and SPI account whole transactions instead.
func (p *queuePort) wire(int) time.Duration { return 0 }

func (p *queuePort) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gone = true
	p.q = nil
}

func (p *queuePort) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.q = nil
}

func (p *queuePort) isGone() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gone
}

// pop returns the next frame, or nil when the chip is busy.
func (p *queuePort) pop() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.q) == 0 {
		return nil
	}
	f := p.q[0]
	p.q = p.q[1:]
	if !bytes.Equal(f, ACKFrame) {
		p.e.mu.Lock()
		if p.e.downNext {
			p.e.sleepNow()
		}
		p.e.mu.Unlock()
	}
	return f
}

func (p *queuePort) ready() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.q) > 0
}

// touch is the start of a transaction: it wakes a sleeping chip if this
// link may, and reports whether the chip is awake.
func (e *Emulator) touch(l Link) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.asleep {
		return true
	}
	if e.power == LowVbat || e.wake&l.wakeBit() != 0 {
		e.asleep = false
		if e.power == PowerDown {
			e.power = Normal
		}
		return true
	}
	return false
}

// writeFrame delivers one write transaction's frame bytes to the chip.
func (e *Emulator) writeFrame(b []byte) {
	e.runMu.Lock()
	e.p.reset()
	e.runMu.Unlock()
	e.hostBytes(b)
}

// I2CBus is the chip on an I2C bus, as a periph.io i2c.Bus. Only address
// 0x24 answers. A write transaction carries one frame; every read
// transaction starts with the ready byte (01 ready: the next frame
// follows; 00 busy: zeros follow) and consumes the frame it carries, even
// partly read (a host that reads only the header sends NACK to get the
// response again). A one-byte read is a status poll and consumes nothing.
type I2CBus struct {
	p  *queuePort
	mu sync.Mutex
	hz int64
}

var _ i2c.Bus = (*I2CBus)(nil)

// I2C attaches the chip's I2C interface.
func (e *Emulator) I2C() (*I2CBus, error) {
	p := &queuePort{e: e, l: LinkI2C}
	if err := e.attach(p); err != nil {
		return nil, err
	}
	return &I2CBus{p: p, hz: e.tm.I2CHz}, nil
}

// Close detaches the interface (the running command is stopped).
func (b *I2CBus) Close() error { b.p.e.detach(); return nil }

func (b *I2CBus) String() string { return "pn532emu-i2c" }

// SetSpeed sets the bus clock used by the timing model.
func (b *I2CBus) SetSpeed(f physic.Frequency) error {
	hz := int64(f / physic.Hertz)
	if hz <= 0 || hz > 3_400_000 {
		return fmt.Errorf("pn532emu: i2c: speed %v out of range", f)
	}
	b.mu.Lock()
	b.hz = hz
	b.mu.Unlock()
	return nil
}

// Tx does a write and/or a read transaction at addr.
func (b *I2CBus) Tx(addr uint16, w, r []byte) error {
	e := b.p.e
	if addr != I2CAddr || b.p.isGone() {
		return fmt.Errorf("pn532emu: i2c: no ACK from address 0x%02X", addr)
	}
	if !e.touch(LinkI2C) {
		return fmt.Errorf("pn532emu: i2c: no ACK from address 0x%02X (chip asleep, I2C wake-up disabled)", addr)
	}
	b.mu.Lock()
	hz := b.hz
	b.mu.Unlock()
	ctx := context.Background()
	if len(w) > 0 {
		_ = e.spend(ctx, CatHostLink, i2cTime(len(w), hz))
		e.writeFrame(w)
	}
	if len(r) > 0 {
		clear(r)
		ready := false
		if len(r) == 1 {
			// A status-only read (Adafruit's isready, pn532.md §3) does
			// not consume the frame: hosts poll the ready byte this way
			// and then read status + frame in a second transaction.
			if ready = b.p.ready(); ready {
				r[0] = 0x01
			}
		} else if f := b.p.pop(); f != nil {
			ready = true
			r[0] = 0x01
			copy(r[1:], f)
		}
		// Timing model: a read answered "busy" happens while the chip is
		// still working, in parallel with the processing and air time
		// already charged, so it does not lengthen the transaction; the
		// read that finds the chip ready does.
		if ready {
			_ = e.spend(ctx, CatHostLink, i2cTime(len(r), hz))
		}
	}
	return nil
}

// SPIPort is the chip on an SPI bus, as a periph.io spi.Port. Mode 0 only
// (PN532 C106). On the wire bytes are LSB first: unless the host connects
// with spi.LSBFirst (a controller that shifts LSB first itself), the
// emulator reverses the bits of every byte in both directions, as a
// correct host driver does on a controller that cannot send LSB first.
type SPIPort struct {
	p     *queuePort
	mu    sync.Mutex
	conns int
}

var _ spi.Port = (*SPIPort)(nil)

// SPI attaches the chip's SPI interface.
func (e *Emulator) SPI() (*SPIPort, error) {
	p := &queuePort{e: e, l: LinkSPI}
	if err := e.attach(p); err != nil {
		return nil, err
	}
	return &SPIPort{p: p}, nil
}

// Close detaches the interface.
func (s *SPIPort) Close() error { s.p.e.detach(); return nil }

func (s *SPIPort) String() string { return "pn532emu-spi" }

// Connect returns a connection; mode must be Mode0 and bits 8. f = 0 means
// the default clock (Timing.SPIHz).
func (s *SPIPort) Connect(f physic.Frequency, mode spi.Mode, nbits int) (spi.Conn, error) {
	if mode&spi.Mode3 != spi.Mode0 {
		return nil, fmt.Errorf("pn532emu: spi: %v not supported (PN532 C106: mode 0 only)", mode)
	}
	if mode&spi.HalfDuplex != 0 {
		return nil, fmt.Errorf("pn532emu: spi: half duplex not supported")
	}
	if nbits != 8 {
		return nil, fmt.Errorf("pn532emu: spi: %d bits per word, want 8", nbits)
	}
	hz := int64(f / physic.Hertz)
	if hz <= 0 {
		hz = s.p.e.tm.SPIHz
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns > 0 {
		return nil, fmt.Errorf("pn532emu: spi: Connect called twice")
	}
	s.conns++
	return &spiConn{p: s.p, hz: hz, hwLSB: mode&spi.LSBFirst != 0}, nil
}

type spiConn struct {
	p     *queuePort
	hz    int64
	hwLSB bool
	mu    sync.Mutex
}

var _ spi.Conn = (*spiConn)(nil)

func (c *spiConn) String() string       { return "pn532emu-spi" }
func (c *spiConn) Duplex() conn.Duplex  { return conn.Full }
func (c *spiConn) Tx(w, r []byte) error { return c.TxPackets([]spi.Packet{{W: w, R: r}}) }

// TxPackets runs the packets as one transaction (chip select held).
func (c *spiConn) TxPackets(ps []spi.Packet) error {
	var mosi []byte
	for _, p := range ps {
		if len(p.W) > 0 && len(p.R) > 0 && len(p.W) != len(p.R) {
			return fmt.Errorf("pn532emu: spi: full-duplex packet with %d bytes out, %d in", len(p.W), len(p.R))
		}
		n := max(len(p.W), len(p.R))
		w := make([]byte, n)
		copy(w, p.W)
		mosi = append(mosi, w...)
	}
	miso := c.transact(mosi)
	i := 0
	for _, p := range ps {
		n := max(len(p.W), len(p.R))
		copy(p.R, miso[i:i+n])
		i += n
	}
	return nil
}

func (c *spiConn) rev(b byte) byte {
	if c.hwLSB {
		return b
	}
	return bits.Reverse8(b)
}

// transact is one chip-select period: MOSI bytes in, MISO bytes out.
func (c *spiConn) transact(mosi []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	miso := make([]byte, len(mosi))
	e := c.p.e
	if len(mosi) == 0 {
		return miso
	}
	// Timing model: a status read answered "busy" overlaps the chip's
	// processing (see I2CBus.Tx) and is not charged.
	if c.rev(mosi[0]) != spiStatusRead || c.p.ready() {
		_ = e.spend(context.Background(), CatHostLink, spiTime(len(mosi), c.hz))
	}
	if c.p.isGone() || !e.touch(LinkSPI) {
		for i := range miso {
			miso[i] = 0xFF
		}
		return miso
	}
	switch c.rev(mosi[0]) {
	case spiDataWrite:
		f := make([]byte, len(mosi)-1)
		for i, b := range mosi[1:] {
			f[i] = c.rev(b)
		}
		e.writeFrame(f)
	case spiStatusRead:
		st := byte(0x00)
		if c.p.ready() {
			st = 0x01
		}
		for i := 1; i < len(miso); i++ {
			miso[i] = c.rev(st)
		}
	case spiDataRead:
		f := c.p.pop()
		for i := 1; i < len(miso) && i-1 < len(f); i++ {
			miso[i] = c.rev(f[i-1])
		}
	}
	return miso
}
