package pn532

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"

	"kazasu/drivers/nfc"
)

// Opts configures a Dev. Zero fields take the value from DefaultOpts, so
// &Opts{Tracer: t} is a valid argument.
type Opts struct {
	// Baud is the HSU rate NewUART switches to after bring-up with
	// SetSerialBaudRate (UM0701 §7.2.8). 921600 cuts the host-link time of a
	// transaction by 8× (project notes iso14443b.md §6.6). Use 115200 on a
	// Raspberry Pi mini UART (/dev/ttyS0), whose rate follows the core clock.
	// If the switch fails the driver falls back to 115200. UART only.
	Baud int
	// ACKTimeout is how long the chip has to acknowledge a frame once it has
	// been sent (the wire time of the frame is added); then the frame is
	// sent again. nfcpy expects the ACK within 15 ms; USB serial adapters
	// add their latency timer (16 ms), and a busy host its scheduling
	// delays. A lost ACK is rare, so the default errs on the long side.
	ACKTimeout time.Duration
	// CommandTimeout bounds the chip's own processing of a command that does
	// not wait for a target (GetFirmwareVersion, registers, RFConfiguration…).
	// It is also the margin added to timeouts computed from the spec.
	CommandTimeout time.Duration
	// CardTimeout is the processing time allowed to a card on top of the
	// frame waiting times of an exchange. The chip answers S(WTX) requests
	// on its own, so a card signing with RSA may legitimately take longer
	// than its FWT.
	CardTimeout time.Duration
	// Retries is how often a command is sent again when no ACK comes, and
	// how often the chip is asked (NACK) to resend an answer whose checksum
	// failed. Zero means the default: there is always at least one retry.
	Retries int
	// PollRetries is MxRtyPassiveActivation (RFConfiguration item 05): how
	// many times the chip repeats an InListPassiveTarget before answering
	// "no target". The power-on value 0xFF (forever) is never used. 0 means
	// the default; use 1…254.
	PollRetries int
	// Tracer receives every host frame, raw RF frame and APDU. PINs are
	// redacted (nfc.RedactVerify) before they reach it.
	Tracer nfc.Tracer
	// Reset is the RSTPDN pin (active low), optional. With it Reset does a
	// hardware reset.
	Reset gpio.PinOut
	// IRQ is the P70_IRQ pin (active low while an answer is ready), optional.
	// With it I2C and SPI wait for an edge instead of polling the status.
	IRQ gpio.PinIn
	// PollInterval is the pause between two status reads on I2C and SPI
	// when IRQ is not wired.
	PollInterval time.Duration
	// I2CAddr is the chip's 7-bit I2C address (0x24).
	I2CAddr uint16
	// I2CSpeed is the I2C clock, used only to size timeouts (the bus owner
	// sets the real clock). 100 kHz unless told.
	I2CSpeed physic.Frequency
	// SPISpeed is the SPI clock NewSPI connects at. libnfc uses 1 MHz; the
	// PN532 is rated to 5 MHz; slow it down for long wires.
	SPISpeed physic.Frequency
	// KeepPowerOnClose skips the PowerDown that Close otherwise sends.
	KeepPowerOnClose bool

	clock clock // tests inject a fake clock
}

// DefaultOpts is what zero Opts fields become.
var DefaultOpts = Opts{
	Baud:           921600,
	ACKTimeout:     100 * time.Millisecond,
	CommandTimeout: 350 * time.Millisecond, // libnfc's NP_TIMEOUT_COMMAND
	CardTimeout:    5 * time.Second,
	Retries:        2,
	PollRetries:    2, // libnfc's single-shot listing uses 32 05 00 01 02
	PollInterval:   time.Millisecond,
	I2CAddr:        0x24,
	I2CSpeed:       100 * physic.KiloHertz,
	SPISpeed:       physic.MegaHertz,
}

func (o *Opts) withDefaults() Opts {
	var r Opts
	if o != nil {
		r = *o
	}
	d := DefaultOpts
	if r.Baud == 0 {
		r.Baud = d.Baud
	}
	if r.ACKTimeout <= 0 {
		r.ACKTimeout = d.ACKTimeout
	}
	if r.CommandTimeout <= 0 {
		r.CommandTimeout = d.CommandTimeout
	}
	if r.CardTimeout <= 0 {
		r.CardTimeout = d.CardTimeout
	}
	if r.Retries <= 0 {
		r.Retries = d.Retries
	}
	if r.PollRetries <= 0 || r.PollRetries > 0xFE {
		r.PollRetries = d.PollRetries
	}
	if r.PollInterval <= 0 {
		r.PollInterval = d.PollInterval
	}
	if r.I2CAddr == 0 {
		r.I2CAddr = d.I2CAddr
	}
	if r.I2CSpeed <= 0 {
		r.I2CSpeed = d.I2CSpeed
	}
	if r.SPISpeed <= 0 {
		r.SPISpeed = d.SPISpeed
	}
	if r.Reset == gpio.INVALID {
		r.Reset = nil
	}
	if r.IRQ == gpio.INVALID {
		r.IRQ = nil
	}
	if r.clock == nil {
		r.clock = realClock{}
	}
	return r
}

// clock is time as the driver sees it; tests replace it.
type clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// link is one host interface (HSU, I2C, SPI) turned into a frame pipe. The
// core Dev does everything else.
type link interface {
	// String names the link, e.g. "pn532_uart(/dev/ttyAMA0)".
	String() string
	driver() string
	// send writes one complete frame.
	send(ctx context.Context, frame []byte) error
	// recv returns the next frame from the chip within timeout. max is the
	// longest frame expected (the read size on I2C and SPI). Junk before a
	// frame is skipped. A frame whose data checksum fails gives
	// ErrChecksum; silence gives errLinkTimeout.
	recv(ctx context.Context, timeout time.Duration, max int) (Frame, error)
	// drain discards stale input before a new command.
	drain() error
	// wake brings the chip out of power-down or LowVbat.
	wake(ctx context.Context) error
	// wireTime is how long n bytes take on the link.
	wireTime(n int) time.Duration
	// wakeBit is the PowerDown WakeUpEnable bit of this link.
	wakeBit() byte
	close() error
}

// anyLen is request.maxResp for answers of any length.
const anyLen = -1

// firstReadAnyLen is the first read size (frame bytes) on I2C and SPI for
// answers of unknown length: a frame of up to 32 data bytes.
const firstReadAnyLen = 32 + 12

var errLinkTimeout = errors.New("pn532: no frame from the chip in time")

// Firmware is the answer to GetFirmwareVersion (UM0701 §7.2.2).
type Firmware struct {
	IC      byte // 0x32 for a PN532
	Ver     byte
	Rev     byte
	Support byte // bit 0 ISO14443A, bit 1 ISO14443B, bit 2 ISO18092
}

func (f Firmware) String() string {
	return fmt.Sprintf("PN5%02X v%d.%d", f.IC, f.Ver, f.Rev)
}

// Dev is a PN532. Create it with NewUART, NewI2C or NewSPI. Its methods are
// safe for concurrent use: commands are serialised. Close and Halt may be
// called from any goroutine and cancel the command in flight.
type Dev struct {
	opts Opts
	link link
	clk  clock

	mu sync.Mutex // held for one command (or one sequence of them)
	// State below is guarded by mu; fw and baud are written with cmu held
	// too, so that Info, Firmware and Baud never wait for a command.
	fw         Firmware
	asleep     bool // the next command must be preceded by a wake-up
	rfTimeout  byte // RFConfiguration item 02 retry timeout in use; 0 = unknown
	retriesSet bool // RFConfiguration item 05 sent since the last init
	crcOn      bool // CIU TxMode/RxMode CRC bits known to be on
	active     *Card
	stale      bool // the chip may still list a target that left the field
	baud       int  // current HSU rate (UART), 0 otherwise
	bringUp    func(ctx context.Context) error

	cmu      sync.Mutex // guards the fields below
	life     context.Context
	kill     context.CancelFunc // Close
	opCancel context.CancelFunc // current command
	closed   bool
}

var (
	_ nfc.Reader         = (*Dev)(nil)
	_ nfc.RawTransceiver = (*Dev)(nil)
	_ conn.Resource      = (*Dev)(nil)
)

func newDev(l link, o Opts) *Dev {
	d := &Dev{opts: o, link: l, clk: o.clock}
	d.life, d.kill = context.WithCancel(context.Background())
	d.asleep = true // C106 starts in LowVbat (AN10609 §1); wake it first
	return d
}

// String implements conn.Resource.
func (d *Dev) String() string { return "pn532(" + d.link.String() + ")" }

// Firmware returns what GetFirmwareVersion reported at bring-up.
func (d *Dev) Firmware() Firmware {
	d.cmu.Lock()
	defer d.cmu.Unlock()
	return d.fw
}

// setBaud records the HSU rate; d.mu must be held.
func (d *Dev) setBaud(b int) {
	d.cmu.Lock()
	d.baud = b
	d.cmu.Unlock()
}

// begin starts one operation: it takes the command lock and derives a
// context that Close and Halt cancel.
func (d *Dev) begin(ctx context.Context) (context.Context, func(), error) {
	d.cmu.Lock()
	if d.closed {
		d.cmu.Unlock()
		return nil, nil, nfc.Errorf("pn532", nfc.ErrReaderGone, "device closed")
	}
	life := d.life
	d.cmu.Unlock()
	d.mu.Lock()
	d.cmu.Lock()
	closed := d.closed
	d.cmu.Unlock()
	if closed { // Close ran while this call waited for the lock
		d.mu.Unlock()
		return nil, nil, nfc.Errorf("pn532", nfc.ErrReaderGone, "device closed")
	}
	octx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(life, cancel)
	d.cmu.Lock()
	d.opCancel = cancel
	d.cmu.Unlock()
	return octx, func() {
		d.cmu.Lock()
		d.opCancel = nil
		d.cmu.Unlock()
		stop()
		cancel()
		d.mu.Unlock()
	}, nil
}

// request is one command exchange.
type request struct {
	cmd     Command
	params  []byte
	timeout time.Duration // for the answer, after the ACK
	maxResp int           // most data bytes expected after the code (anyLen: up to 262)
	traced  []byte        // params as traced, when they hold a secret
	hostACK bool          // send an ACK after the answer (SetSerialBaudRate)
}

// call sends one command and returns the answer's data after the response
// code. It is the whole host-link protocol of UM0701 §6.2.1: ACK wait with
// bounded resends, NACK on a bad checksum, stale frames skipped, abort (host
// ACK) on timeout or cancellation. d.mu must be held.
func (d *Dev) call(ctx context.Context, r request) ([]byte, error) {
	op := "pn532: " + r.cmd.String()
	data := make([]byte, 0, 2+len(r.params))
	data = append(data, tfiHost, byte(r.cmd))
	data = append(data, r.params...)
	frame, err := EncodeFrame(data)
	if err != nil {
		return nil, nfc.Errorf(op, nfc.ErrNotSupported, "%d bytes of parameters, the chip takes at most %d", len(r.params), MaxExtendedData-2)
	}
	if err := ctx.Err(); err != nil {
		return nil, &nfc.Error{Op: op, Kind: nfc.ErrTimeout, Err: err}
	}

	// Phase 1: the frame and its ACK.
	ackTimeout := d.opts.ACKTimeout + d.link.wireTime(len(frame)+ackLen)
	acked, gotEarly := false, false
	var early []byte // an answer that came without its ACK
	for attempt := 0; attempt <= d.opts.Retries && !acked; attempt++ {
		if err := d.link.drain(); err != nil {
			return nil, d.linkErr(op, err)
		}
		if d.asleep {
			if err := d.link.wake(ctx); err != nil {
				return nil, d.linkErr(op, err)
			}
		}
		d.traceHost(true, frame, r)
		if err := d.link.send(ctx, frame); err != nil {
			return nil, d.linkErr(op, err)
		}
		ackDeadline := d.clk.Now().Add(ackTimeout)
		for !acked {
			remaining := ackDeadline.Sub(d.clk.Now())
			if remaining <= 0 {
				break // resend
			}
			f, err := d.link.recv(ctx, remaining, ackLen)
			if errors.Is(err, errLinkTimeout) {
				break // resend
			}
			if errors.Is(err, ErrChecksum) {
				continue // a garbled stale frame: not our ACK
			}
			if err != nil {
				return nil, d.abort(ctx, op, err)
			}
			d.traceFrame(false, f)
			switch {
			case f.Type == FrameACK:
				acked = true
			case f.Type == FrameError:
				return nil, &nfc.Error{Op: op, Kind: nfc.ErrProtocol, Err: ErrSyntax}
			case isAnswer(f, r.cmd):
				// The ACK was lost on the way but the answer came. Input is
				// drained before every command and a new command cancels
				// the chip's previous one, so this answer is ours.
				acked, gotEarly, early = true, true, f.Data[2:]
			}
			// Any other information frame is a late answer to an earlier
			// command: skip it.
		}
	}
	if !acked {
		// The chip may have the command after all (only its ACKs lost):
		// abort it so that the next command starts clean.
		d.traceHostRaw(true, ackFrame)
		_ = d.link.send(context.WithoutCancel(ctx), ackFrame)
		return nil, nfc.Errorf(op, nfc.ErrTimeout, "no ACK after %d tries", d.opts.Retries+1)
	}
	d.asleep = false
	if gotEarly {
		return early, d.answered(ctx, op, r)
	}

	// Phase 2: the answer.
	max := r.maxResp
	if max < 0 || max > MaxExtendedData-2 {
		max = MaxExtendedData - 2
	}
	maxFrame := max + 2 + 10 // TFI, code, and the extended-frame overhead
	deadline := d.clk.Now().Add(r.timeout + d.link.wireTime(maxFrame))
	readSize := maxFrame
	if _, bus := d.link.(*busLink); bus && r.maxResp < 0 {
		// Answers of unknown length (raw RF frames, diagnostics) are mostly
		// short: on I2C and SPI, where a read costs its full length, read a
		// short frame first; a longer one comes back ErrIncomplete with its
		// length learnt, and is read whole after a NACK.
		readSize = min(maxFrame, firstReadAnyLen)
	}
	nacks := 0
	for {
		remaining := deadline.Sub(d.clk.Now())
		if remaining <= 0 {
			return nil, d.abort(ctx, op, errLinkTimeout)
		}
		f, err := d.link.recv(ctx, remaining, readSize)
		if errors.Is(err, ErrChecksum) {
			if nacks >= d.opts.Retries {
				return nil, d.abort(ctx, op, nfc.Errorf(op, nfc.ErrTransmission, "answer checksum failed %d times", nacks+1))
			}
			nacks++
			d.traceHostRaw(true, nackFrame)
			if err := d.link.send(ctx, nackFrame); err != nil {
				return nil, d.linkErr(op, err)
			}
			continue
		}
		if err != nil {
			return nil, d.abort(ctx, op, err)
		}
		d.traceFrame(false, f)
		switch f.Type {
		case FrameError:
			return nil, &nfc.Error{Op: op, Kind: nfc.ErrProtocol, Err: ErrSyntax}
		case FrameInfo:
			if isAnswer(f, r.cmd) {
				return f.Data[2:], d.answered(ctx, op, r)
			}
			// Anything else is stale (an answer to an aborted command) or
			// noise that happened to checksum: skip it.
		}
	}
}

// isAnswer reports whether f is the chip's answer to cmd.
func isAnswer(f Frame, cmd Command) bool {
	return f.Type == FrameInfo && len(f.Data) >= 2 && f.Data[0] == tfiChip && f.Data[1] == byte(cmd)+1
}

// answered finishes a command whose answer arrived: some commands want the
// host's ACK of it (SetSerialBaudRate switches rate on it).
func (d *Dev) answered(ctx context.Context, op string, r request) error {
	if !r.hostACK {
		return nil
	}
	d.traceHostRaw(true, ackFrame)
	if err := d.link.send(ctx, ackFrame); err != nil {
		return d.linkErr(op, err)
	}
	return nil
}

// abort ends a command that got no (valid) answer: the host ACK tells the
// chip to drop it (UM0701 §6.2.1.3), so the next command starts clean.
func (d *Dev) abort(ctx context.Context, op string, cause error) error {
	if errors.Is(cause, nfc.ErrReaderGone) {
		return d.linkErr(op, cause)
	}
	d.traceHostRaw(true, ackFrame)
	// The abort must go out even if ctx is done; it is one short write.
	_ = d.link.send(context.WithoutCancel(ctx), ackFrame)
	if errors.Is(cause, errLinkTimeout) {
		return nfc.Errorf(op, nfc.ErrTimeout, "no answer from the chip")
	}
	if err := ctx.Err(); err != nil {
		return &nfc.Error{Op: op, Kind: nfc.ErrTimeout, Err: err}
	}
	return d.linkErr(op, cause)
}

// linkErr gives a link error an nfc kind (a link error without one is a
// broken host link: ErrReaderGone).
func (d *Dev) linkErr(op string, err error) error {
	var ne *nfc.Error
	if errors.As(err, &ne) && ne.Op == op {
		return err
	}
	if k := nfc.Kind(err); k != nil {
		return &nfc.Error{Op: op, Kind: k, Err: err}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &nfc.Error{Op: op, Kind: nfc.ErrTimeout, Err: err}
	}
	return &nfc.Error{Op: op, Kind: nfc.ErrReaderGone, Err: err}
}

// Halt implements conn.Resource: it aborts the command in flight, waits for
// it to end and switches the RF field off.
func (d *Dev) Halt() error {
	d.cmu.Lock()
	if d.opCancel != nil {
		d.opCancel()
	}
	d.cmu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*d.opts.CommandTimeout)
	defer cancel()
	return d.SetField(ctx, false)
}

// Close implements nfc.Reader. It cancels the command in flight, releases the
// targets, switches the field off, restores 115200 baud on HSU (the chip
// keeps its rate until reset, and the next user expects the default), powers
// the chip down and closes the serial port. The I2C bus and SPI port belong
// to the caller and stay open.
func (d *Dev) Close() error {
	d.cmu.Lock()
	if d.closed {
		d.cmu.Unlock()
		return nil
	}
	d.closed = true
	d.kill()
	d.cmu.Unlock()

	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 4*d.opts.CommandTimeout)
	defer cancel()
	var first error
	keep := func(err error) {
		if first == nil && err != nil {
			first = err
		}
	}
	if !d.asleep {
		if d.active != nil {
			_, err := d.inRelease(ctx, 0)
			keep(err)
			d.active = nil
		}
		keep(d.rfConfiguration(ctx, RFField, []byte{0x00}))
		if u, ok := d.link.(*uartLink); ok && d.baud != 0 && d.baud != uartDefaultBaud {
			keep(d.switchBaud(ctx, u, uartDefaultBaud))
		}
		if !d.opts.KeepPowerOnClose {
			_, err := d.powerDown(ctx, WakeHSU|WakeSPI|WakeGPIO|WakeI2C, false)
			keep(err)
		}
	}
	keep(d.link.close())
	return first
}

// trace helpers ---------------------------------------------------------------

func (d *Dev) emit(l nfc.Layer, out bool, b []byte) {
	if d.opts.Tracer == nil {
		return
	}
	d.opts.Tracer.Trace(nfc.TraceEvent{Time: d.clk.Now(), Layer: l, Out: out, Data: b})
}

// traceHost traces a command frame, rebuilt from the traced parameters when
// the real ones carry a secret.
func (d *Dev) traceHost(out bool, frame []byte, r request) {
	if d.opts.Tracer == nil {
		return
	}
	if r.traced != nil {
		data := append([]byte{tfiHost, byte(r.cmd)}, r.traced...)
		frame = mustFrame(data)
	}
	d.emit(nfc.LayerHost, out, frame)
}

func (d *Dev) traceHostRaw(out bool, frame []byte) { d.emit(nfc.LayerHost, out, frame) }

func (d *Dev) traceFrame(out bool, f Frame) {
	if d.opts.Tracer == nil {
		return
	}
	switch f.Type {
	case FrameACK:
		d.emit(nfc.LayerHost, out, ackFrame)
	case FrameNACK:
		d.emit(nfc.LayerHost, out, nackFrame)
	case FrameError:
		d.emit(nfc.LayerHost, out, mustFrame([]byte{tfiErr}))
	default:
		d.emit(nfc.LayerHost, out, mustFrame(f.Data))
	}
}
