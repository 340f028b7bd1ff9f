package pn532emu

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"kazasu/drivers/sim/rf"
	"kazasu/drivers/sim/vclock"
)

// PowerState is the chip's power mode.
type PowerState uint8

const (
	// LowVbat is the start-up state of a PN532 C106 (AN10609 appendix):
	// the first host activity wakes it and SAMConfiguration brings it to
	// Normal.
	LowVbat PowerState = iota
	// Normal is the working state.
	Normal
	// PowerDown is entered after answering PowerDown; only the wake-up
	// sources enabled in that command wake the chip.
	PowerDown
)

func (s PowerState) String() string {
	switch s {
	case LowVbat:
		return "LowVbat"
	case Normal:
		return "Normal"
	case PowerDown:
		return "PowerDown"
	}
	return fmt.Sprintf("PowerState(%d)", uint8(s))
}

// Link is the host interface the chip is strapped for (I0/I1 pins).
type Link uint8

const (
	LinkHSU Link = iota + 1 // high-speed UART
	LinkI2C                 // I2C slave at 0x24
	LinkSPI                 // SPI mode 0, LSB first
)

func (l Link) String() string {
	switch l {
	case LinkHSU:
		return "HSU"
	case LinkI2C:
		return "I2C"
	case LinkSPI:
		return "SPI"
	}
	return fmt.Sprintf("Link(%d)", uint8(l))
}

// wakeBit is the PowerDown WakeUpEnable bit of each link (pn532.md §2).
func (l Link) wakeBit() byte {
	switch l {
	case LinkHSU:
		return 0x10
	case LinkI2C:
		return 0x80
	case LinkSPI:
		return 0x20
	}
	return 0
}

// Options configure an Emulator.
type Options struct {
	// Field holds the PICCs the chip sees. Nil gives an empty field.
	Field *rf.Field
	// Clock is where modelled time is spent. Nil gives a virtual clock
	// (no real waiting); use vclock.Real{} to make a host see real timing.
	Clock vclock.Clock
	// Timing tunes the timing model; the zero value means DefaultTiming.
	Timing Timing
	// Faults are host-link faults to inject (see Fault).
	Faults []Fault
	// Baud is the HSU speed at reset (115200 when zero).
	Baud int
	// OnBaud, if set, is called when SetSerialBaudRate takes effect, so a
	// server on a real serial port can change its line speed.
	OnBaud func(baud int)
	// Logf, if set, receives one line per host event and command (command
	// codes, lengths and status only: data is never logged, so a PIN sent
	// in a VERIFY APDU cannot leak).
	Logf func(format string, args ...any)
	// RxTimeout is how long the line may stay quiet in the middle of a
	// frame before the chip gives the frame up (HSU). Default 100 ms.
	RxTimeout time.Duration
}

// Emulator is one emulated PN532 (firmware v1.6). Exactly one host
// interface may be attached to it at a time.
type Emulator struct {
	opts  Options
	field *rf.Field
	clock vclock.Clock
	tm    Timing
	meter vclock.Meter

	// runMu serialises host input processing (one host link).
	runMu sync.Mutex
	p     parser
	port  hostPort

	mu       sync.Mutex // guards everything below
	power    PowerState
	asleep   bool // LowVbat before the first wake-up, or PowerDown
	wake     byte // WakeUpEnable of the last PowerDown
	downNext bool // PowerDown answered: sleep once the answer is out
	gen      uint64
	cancel   context.CancelFunc
	done     chan struct{}
	lastResp []byte // last response frame, for NACK
	frames   int    // host command frames received (1-based count)
	baud     int
	newBaud  int // SetSerialBaudRate answered, waiting for the host's ACK
	gone     bool
	faults   []Fault // injected while running

	// chip state, touched only by the running command (one at a time)
	regs      map[uint16]byte
	params    byte // SetParameters flags
	samMode   byte
	rfOn      bool
	autoRFCA  bool
	timings   [3]byte // RFConfiguration item 02
	maxRtyCOM byte
	maxRetry  [3]byte // MxRtyATR, MxRtyPSL, MxRtyPassiveActivation
	analog    map[byte][]byte
	targets   []*target
	lastErr   byte
}

// New returns a chip fresh from reset, in LowVbat.
func New(opts Options) *Emulator {
	e := &Emulator{opts: opts, field: opts.Field, clock: opts.Clock, tm: opts.Timing}
	if e.field == nil {
		e.field = &rf.Field{}
	}
	if e.clock == nil {
		e.clock = vclock.NewVirtual(time.Unix(0, 0))
	}
	if e.tm == (Timing{}) {
		e.tm = DefaultTiming
	}
	if e.opts.RxTimeout <= 0 {
		e.opts.RxTimeout = 100 * time.Millisecond
	}
	e.baud = opts.Baud
	if e.baud == 0 {
		e.baud = 115200
	}
	e.resetState()
	return e
}

// resetState puts the chip state to its reset values (UM defaults where
// pn532.md gives them).
func (e *Emulator) resetState() {
	e.power = LowVbat
	e.asleep = true
	e.regs = map[uint16]byte{}
	e.params = 0
	e.samMode = 0x01
	e.rfOn = false
	e.timings = [3]byte{0x00, 0x0B, 0x0A}
	e.maxRtyCOM = 0
	e.maxRetry = [3]byte{0xFF, 0x01, 0xFF}
	e.analog = map[byte][]byte{}
	e.targets = nil
}

// Reset is a hardware reset (RSTPDN pulsed low): the running command is
// dropped unanswered, the RF field goes off, and the chip comes back as
// from power-up — LowVbat and asleep, registers, parameters, RF settings
// and targets at their reset values, the HSU at Options.Baud. The frame
// count (Frames) goes on, so faults keep their numbering.
func (e *Emulator) Reset() {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	e.abortRunning()
	e.p.reset()
	if e.port != nil {
		e.port.flush()
	}
	e.field.SetOn(false)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.resetState()
	e.lastResp, e.newBaud, e.downNext, e.wake = nil, 0, false, 0
	e.baud = e.opts.Baud
	if e.baud == 0 {
		e.baud = 115200
	}
}

// Field returns the RF field the chip drives.
func (e *Emulator) Field() *rf.Field { return e.field }

// Meter returns the accumulated modelled time, by category (CatHostLink,
// CatAir, CatFirmware, CatCard, CatPoll).
func (e *Emulator) Meter() *vclock.Meter { return &e.meter }

// Power returns the chip's power state.
func (e *Emulator) Power() PowerState {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.power
}

// Baud returns the HSU speed in use.
func (e *Emulator) Baud() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.baud
}

// Register returns the value of a chip register as the host would read it.
func (e *Emulator) Register(addr uint16) byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.regs[addr]
}

// Frames returns the number of command frames received from the host.
func (e *Emulator) Frames() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.frames
}

func (e *Emulator) logf(format string, args ...any) {
	if e.opts.Logf != nil {
		e.opts.Logf(format, args...)
	}
}

// spend accounts d to category cat and lets it pass on the clock.
func (e *Emulator) spend(ctx context.Context, cat string, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	e.meter.Add(cat, d)
	return e.clock.Sleep(ctx, d)
}

// hostPort is the chip end of one host interface.
type hostPort interface {
	link() Link
	// send delivers one frame to the host (ACK, response or error frame).
	send(frame []byte)
	// wire is the modelled host-link time of n frame bytes in either
	// direction (0 for links that account per transaction instead).
	wire(n int) time.Duration
	// close is called for the "reader gone" fault.
	close()
	// flush drops frames not yet delivered (chip reset).
	flush()
}

// attach binds a host interface. It fails if one is already attached.
func (e *Emulator) attach(p hostPort) error {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	if e.port != nil {
		return errors.New("pn532emu: a host interface is already attached")
	}
	e.port = p
	e.p.reset()
	return nil
}

// detach unbinds the host interface and stops any running command.
func (e *Emulator) detach() {
	e.abortRunning()
	e.runMu.Lock()
	e.port = nil
	e.runMu.Unlock()
}

// hostBytes processes bytes the host sent. For I2C and SPI, one call is one
// write transaction.
func (e *Emulator) hostBytes(b []byte) {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	if e.port == nil || len(b) == 0 {
		return
	}
	if e.isGone() {
		return
	}
	e.mu.Lock()
	asleep := e.asleep
	wakeOK := e.power == LowVbat || e.wake&e.port.link().wakeBit() != 0
	if asleep && wakeOK {
		e.asleep = false
		if e.power == PowerDown {
			e.power = Normal
		}
	}
	e.mu.Unlock()
	if asleep {
		if !wakeOK {
			e.logf("asleep, %d bytes ignored (wake-up source not enabled)", len(b))
			return
		}
		if e.port.link() == LinkHSU {
			// The byte that wakes the HSU is lost (it is why hosts send 55).
			e.logf("wake-up on %v", e.port.link())
			b = b[1:]
		}
	}
	for _, ev := range e.p.feed(b) {
		if e.isGone() {
			return
		}
		e.handle(ev)
	}
}

// lineIdle tells the chip the HSU line has been quiet for RxTimeout.
func (e *Emulator) lineIdle() {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	if e.port == nil {
		return
	}
	for _, ev := range e.p.idle() {
		e.handle(ev)
	}
}

func (e *Emulator) isGone() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.gone
}

// handle reacts to one host event. Called with runMu held.
func (e *Emulator) handle(ev hostEvent) {
	ctx := context.Background()
	_ = e.spend(ctx, CatHostLink, e.port.wire(ev.wire))
	switch ev.kind {
	case evBadFrame:
		// A frame damaged in transit is not acknowledged: the host's ACK
		// timeout is its only signal (pn532.md §1 has nothing on a
		// checksum-error answer, and NACK is host → PN532 only).
		e.logf("host: %v (%s), ignored", ev.kind, ev.why)
	case evACK:
		running := e.abortRunning()
		e.mu.Lock()
		nb := e.newBaud
		e.newBaud = 0
		if nb != 0 {
			e.baud = nb
		}
		e.mu.Unlock()
		if nb != 0 {
			e.logf("host: ACK, HSU now %d baud", nb)
			if e.opts.OnBaud != nil {
				e.opts.OnBaud(nb)
			}
		} else if running {
			e.logf("host: ACK, command aborted")
		}
	case evNACK:
		e.mu.Lock()
		last := e.lastResp
		e.mu.Unlock()
		if last != nil {
			e.logf("host: NACK, last response sent again")
			_ = e.spend(ctx, CatHostLink, e.port.wire(len(last)))
			e.port.send(last)
		}
	case evFrame:
		e.command(ev.data)
	}
}

// abortRunning cancels the running command, if any, waits for it to stop,
// and reports whether one was running. Its answer is never sent.
func (e *Emulator) abortRunning() bool {
	e.mu.Lock()
	cancel, done := e.cancel, e.done
	e.gen++
	e.cancel, e.done = nil, nil
	e.mu.Unlock()
	if cancel == nil {
		return false
	}
	cancel()
	<-done
	return true
}

// command starts one host command frame (TFI + PD). Called with runMu held.
func (e *Emulator) command(data []byte) {
	e.abortRunning()
	e.mu.Lock()
	e.newBaud = 0
	e.frames++
	n := e.frames
	gen := e.gen
	e.mu.Unlock()

	f := e.faultsFor(n)
	if f.gone {
		e.logf("fault: reader gone at host frame %d", n)
		e.mu.Lock()
		e.gone = true
		e.mu.Unlock()
		e.port.close()
		return
	}
	if f.rxCorrupt {
		e.logf("fault: host frame %d received with a bad DCS, ignored", n)
		return
	}
	code := byte(0xFF)
	if len(data) > 1 {
		code = data[1]
	}
	e.logf("host: frame %d, %s, %d bytes", n, commandName(code), len(data)-2)
	if f.ackDelay > 0 {
		e.logf("fault: ACK delayed %v", f.ackDelay)
		_ = vclock.Real{}.Sleep(context.Background(), f.ackDelay)
	}
	if f.noACK {
		e.logf("fault: ACK of frame %d not sent", n)
	} else {
		_ = e.spend(context.Background(), CatHostLink, e.port.wire(len(ACKFrame)))
		e.port.send(ACKFrame)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	e.mu.Lock()
	e.cancel, e.done = cancel, done
	e.mu.Unlock()
	go func() {
		defer close(done)
		defer cancel()
		pd, err := e.execute(ctx, data)
		if ctx.Err() != nil {
			return
		}
		var frame []byte
		switch {
		case errors.Is(err, errSyntax):
			e.logf("chip: command %02X: syntax error, error frame", code)
			frame = ErrorFrame
		case err != nil:
			e.logf("chip: command %02X: %v, no answer", code, err)
			return
		default:
			var ferr error
			frame, ferr = EncodeFrame(tfiChip, pd)
			if ferr != nil {
				// A handler bug; answer as the chip would to an impossible request.
				e.logf("chip: %v", ferr)
				frame = ErrorFrame
			}
		}
		if e.params&paramNoPrePost != 0 {
			// SetParameters fRemovePrePostAmble: no preamble, no postamble
			// (information and error frames; the ACK keeps its form).
			frame = frame[1 : len(frame)-1]
		}
		frame = f.mangle(frame)
		if e.spend(ctx, CatHostLink, e.port.wire(len(frame))) != nil {
			return
		}
		e.mu.Lock()
		if e.gen != gen {
			e.mu.Unlock()
			return
		}
		e.lastResp = frame
		if e.downNext && e.port.link() == LinkHSU {
			// PowerDown: the chip sleeps once this answer is out. On I2C
			// and SPI that is when the host has read it (see pop).
			e.sleepNow()
		}
		e.mu.Unlock()
		if len(pd) > 1 && statusFirst(code) {
			e.logf("chip: %s answered, status %02X, %d bytes", commandName(code), pd[1], len(pd)-2)
		}
		e.port.send(frame)
	}()
}

var (
	// errSyntax makes the chip answer with the application error frame.
	errSyntax = errors.New("syntax error")
	// errSilent makes the chip send nothing (it waits until aborted).
	errSilent = errors.New("silent")
)

// execute runs one command frame and returns the response PD.
func (e *Emulator) execute(ctx context.Context, data []byte) ([]byte, error) {
	if len(data) < 2 || data[0] != tfiHost {
		return nil, errSyntax
	}
	if err := e.spend(ctx, CatFirmware, e.tm.Firmware); err != nil {
		return nil, err
	}
	code, args := data[1], data[2:]
	h, ok := handlers[code]
	if !ok {
		return nil, errSyntax
	}
	resp, err := h(e, ctx, args)
	if err != nil {
		return nil, err
	}
	return append([]byte{code + 1}, resp...), nil
}

// statusFirst reports whether the command's answer starts with a status byte.
func statusFirst(code byte) bool {
	switch code {
	case cmdInDataExchange, cmdInCommunicateThru, cmdInDeselect, cmdInRelease, cmdInSelect, cmdPowerDown:
		return true
	}
	return false
}

// sleepNow enters PowerDown after the PowerDown answer. Called with mu held.
func (e *Emulator) sleepNow() {
	e.power = PowerDown
	e.asleep = true
	e.downNext = false
}
