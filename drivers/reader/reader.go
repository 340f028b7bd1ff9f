package reader

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/host/v3"

	"kazasu/drivers/iso14443"
	"kazasu/drivers/isodep"
	"kazasu/drivers/libnfc"
	"kazasu/drivers/nfc"
	"kazasu/drivers/pn532"
	"kazasu/drivers/serial"
	"kazasu/drivers/sim/card"
	"kazasu/drivers/sim/pn532emu"
	"kazasu/drivers/sim/rf"
	"kazasu/drivers/sim/simreader"
	"kazasu/drivers/sim/vclock"
)

// Options configure Open.
type Options struct {
	// Mode is the ISO-DEP mode used when a poll asks for ISODepAuto.
	// Auto means host-managed on PN532 readers (FSD 256: fewer RF blocks;
	// iso14443b.md §7) and whatever the driver does elsewhere.
	Mode nfc.ISODepMode
	// Tracer receives host frames, RF blocks and APDUs (VERIFY redacted).
	Tracer nfc.Tracer
	// PN532 overrides driver options (timeouts, pins). The URI's speed and
	// Tracer take precedence over the matching fields.
	PN532 *pn532.Opts
	// SimCard is applied to every simulated token of a sim: URI.
	SimCard card.Options
	// SimTimeModel, if set, is charged with the modelled time of simulated
	// readers (air, host link, card processing).
	SimTimeModel func(time.Duration)
}

// Reader is an opened reader: the driver's nfc.Reader plus host-managed
// ISO-DEP for PN532 chips and, for sim: URIs, the simulated field.
type Reader struct {
	nfc.Reader
	uri  URI
	opts Options
	dev  *pn532.Dev // set for PN532 drivers (incl. sim via pn532_uart)
	sim  *Sim

	closeOnce sync.Once
	closers   []func() error
}

var _ nfc.Reader = (*Reader)(nil)

// URI returns the URI the reader was opened with.
func (r *Reader) URI() URI { return r.uri }

// Sim returns the simulated field of a sim: reader, or nil.
func (r *Reader) Sim() *Sim { return r.sim }

// PN532 returns the PN532 driver of PN532 readers, or nil.
func (r *Reader) PN532() *pn532.Dev { return r.dev }

// Open opens the reader named by uri.
func Open(ctx context.Context, uri string, opts Options) (*Reader, error) {
	u, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	r := &Reader{uri: u, opts: opts}
	if err := r.open(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *Reader) pn532Opts(speed int) *pn532.Opts {
	var o pn532.Opts
	if r.opts.PN532 != nil {
		o = *r.opts.PN532
	}
	if r.opts.Tracer != nil {
		o.Tracer = r.opts.Tracer
	}
	if speed > 0 {
		o.Baud = speed
	}
	return &o
}

var hostInit sync.Once
var hostInitErr error

// periphInit loads periph's host drivers once.
func periphInit() error {
	hostInit.Do(func() { _, hostInitErr = host.Init() })
	return hostInitErr
}

func (r *Reader) open(ctx context.Context) error {
	u := r.uri
	switch u.Driver {
	case "pn532_uart":
		port, err := serial.Open(u.Path, 115200)
		if err != nil {
			return fmt.Errorf("reader: %s: %w", u, err)
		}
		dev, err := pn532.NewUARTContext(ctx, port, r.pn532Opts(u.Speed))
		if err != nil {
			port.Close()
			return fmt.Errorf("reader: %s: %w", u, err)
		}
		r.dev, r.Reader = dev, dev
	case "pn532_i2c":
		if err := periphInit(); err != nil {
			return fmt.Errorf("reader: %s: periph: %w", u, err)
		}
		bus, err := i2creg.Open(u.Path)
		if err != nil {
			return nfc.Wrap("reader: "+u.String(), nfc.ErrReaderGone, err)
		}
		r.closers = append(r.closers, bus.Close)
		dev, err := pn532.NewI2CContext(ctx, bus, r.pn532Opts(0))
		if err != nil {
			return fmt.Errorf("reader: %s: %w", u, err)
		}
		r.dev, r.Reader = dev, dev
	case "pn532_spi":
		if err := periphInit(); err != nil {
			return fmt.Errorf("reader: %s: periph: %w", u, err)
		}
		port, err := spireg.Open(u.Path)
		if err != nil {
			return nfc.Wrap("reader: "+u.String(), nfc.ErrReaderGone, err)
		}
		r.closers = append(r.closers, port.Close)
		o := r.pn532Opts(0)
		if u.Speed > 0 {
			o.SPISpeed = physic.Frequency(u.Speed) * physic.Hertz
		}
		dev, err := pn532.NewSPIContext(ctx, port, o)
		if err != nil {
			return fmt.Errorf("reader: %s: %w", u, err)
		}
		r.dev, r.Reader = dev, dev
	case "libnfc":
		lr, err := libnfc.Open(u.Path, libnfc.Options{Tracer: r.opts.Tracer})
		if err != nil {
			return fmt.Errorf("reader: %s: %w", u, err)
		}
		r.Reader = lr
	case "sim":
		return r.openSim(ctx)
	default:
		return fmt.Errorf("reader: %s: unknown driver", u)
	}
	return nil
}

// Poll runs one poll cycle. On PN532 readers in host-managed mode it takes
// the target over from the chip: InDeselect, then its own WUPB/ATTRIB with
// FSD 256 and no CID (Type B), and software ISO-DEP over InCommunicateThru.
func (r *Reader) Poll(ctx context.Context, opts nfc.PollOptions) (nfc.Card, error) {
	mode := opts.Mode
	if mode == nfc.ISODepAuto {
		mode = r.opts.Mode
	}
	if r.dev == nil {
		if mode == nfc.ISODepHost {
			if _, ok := r.Reader.(*simreader.Reader); ok {
				opts.Mode = nfc.ISODepAuto // the direct sim reader always runs ISO-DEP on the host
				return r.Reader.Poll(ctx, opts)
			}
			return nil, nfc.Errorf("reader: poll", nfc.ErrNotSupported, "%s runs ISO-DEP in its own firmware", r.uri.Driver)
		}
		opts.Mode = nfc.ISODepAuto
		return r.Reader.Poll(ctx, opts)
	}
	if mode == nfc.ISODepAuto {
		mode = nfc.ISODepHost
	}
	opts.Mode = nfc.ISODepChip
	c, err := r.dev.PollCard(ctx, opts)
	if err != nil {
		return nil, err
	}
	if opts.ModeFor != nil {
		if m := opts.ModeFor(c.Target()); m != nfc.ISODepAuto {
			mode = m
		}
	}
	if mode == nfc.ISODepChip {
		return c, nil
	}
	return r.hostManaged(ctx, c, opts.AFI)
}

// hostManaged turns a chip-activated target into a host-managed one.
func (r *Reader) hostManaged(ctx context.Context, c *pn532.Card, afi byte) (nfc.Card, error) {
	const op = "reader: host-managed ISO-DEP"
	t := c.Target()
	var target nfc.Target
	switch t.Tech {
	case nfc.TechB:
		// The chip's ATTRIB gave FSD 64 and CID 1 (pn532.md §6): deselect
		// (S(DESELECT), the card halts) and activate again with WUPB.
		if err := r.dev.InDeselect(ctx, c.Tg()); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		nt, err := iso14443.ActivateB(ctx, r.dev, afi, iso14443.FrameSizeCode(256), -1)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		target = nt
	case nfc.TechA:
		// The chip's RATS activated the target without CID; keep it and run
		// the blocks on the host from block number 0.
		target = t
		target.CID = -1
	default:
		return nil, nfc.Errorf(op, nfc.ErrNotSupported, "technology %v", t.Tech)
	}
	target.Mode = nfc.ISODepHost
	p := isodep.ParamsFor(target)
	p.Tracer = r.opts.Tracer
	return &hostCard{pcd: isodep.NewPCD(r.dev, p), target: target, chip: c}, nil
}

// hostCard is a card whose ISO-DEP runs on the host over the chip's raw
// frames.
type hostCard struct {
	pcd    *isodep.PCD
	target nfc.Target
	chip   *pn532.Card
	mu     sync.Mutex
	done   bool
}

var _ nfc.Card = (*hostCard)(nil)

func (h *hostCard) Target() nfc.Target { return h.target }

func (h *hostCard) MaxAPDU() (int, int) { return 65535 + 9, isodep.DefaultMaxResponse }

func (h *hostCard) Transceive(ctx context.Context, apdu []byte) ([]byte, error) {
	h.mu.Lock()
	done := h.done
	h.mu.Unlock()
	if done {
		return nil, nfc.Errorf("reader: transceive", nfc.ErrTargetGone, "card released")
	}
	return h.pcd.Transceive(ctx, apdu)
}

func (h *hostCard) Present(ctx context.Context) error { return h.pcd.Present(ctx) }

func (h *hostCard) Release(ctx context.Context) error {
	h.mu.Lock()
	if h.done {
		h.mu.Unlock()
		return nil
	}
	h.done = true
	h.mu.Unlock()
	err := h.pcd.Deselect(ctx)
	if rerr := h.chip.Release(ctx); err == nil && rerr != nil && !errors.Is(rerr, nfc.ErrTargetGone) {
		err = rerr
	}
	return err
}

// Ping checks that the reader still answers (a PN532 GetFirmwareVersion;
// nothing on air). Readers without a cheap check report nil. Supervisors
// call it while idle, so an unplugged reader is noticed before the next tap.
func (r *Reader) Ping(ctx context.Context) error {
	if r.dev != nil {
		_, err := r.dev.GetFirmwareVersion(ctx)
		return err
	}
	return nil
}

// Close closes the reader and everything it opened.
func (r *Reader) Close() error {
	var errs []error
	r.closeOnce.Do(func() {
		if r.Reader != nil {
			errs = append(errs, r.Reader.Close())
		}
		for i := len(r.closers) - 1; i >= 0; i-- {
			errs = append(errs, r.closers[i]())
		}
	})
	return errors.Join(errs...)
}

// Sim is the simulated side of a sim: reader.
type Sim struct {
	Field    *rf.Field
	Tokens   []*card.Token      // tokens named in the URI, in order
	Emulator *pn532emu.Emulator // nil for via=direct
}

// Tap places tok in the field (a new tap).
func (s *Sim) Tap(tok *card.Token) { s.Field.Add(tok) }

// Remove takes tok out of the field.
func (s *Sim) Remove(tok *card.Token) { s.Field.Remove(tok) }

func (r *Reader) emuOptions(f *rf.Field) pn532emu.Options {
	o := pn532emu.Options{Field: f}
	if r.uri.RealTime() {
		o.Clock = vclock.Real{}
	}
	return o
}

func (r *Reader) openSim(ctx context.Context) error {
	u := r.uri
	sim := &Sim{Field: &rf.Field{}}
	opts := r.opts.SimCard
	if seed := u.Query.Get("seed"); seed != "" {
		opts.Seed = seed
	}
	for i, name := range u.SimCards() {
		o := opts
		if o.Seed != "" && i > 0 {
			o.Seed = o.Seed + "/" + strconv.Itoa(i)
		}
		var tok *card.Token
		var err error
		if k, kerr := card.ParseKind(name); kerr == nil {
			tok, err = card.New(k, o)
		} else {
			tok, err = card.NewProfile(name, o)
		}
		if err != nil {
			return fmt.Errorf("reader: %s: card %q: %w", u, name, err)
		}
		sim.Tokens = append(sim.Tokens, tok)
		sim.Field.Add(tok)
	}
	r.sim = sim
	switch u.Via() {
	case ViaDirect:
		r.Reader = simreader.New(sim.Field, simreader.Options{Path: u.Raw, Tracer: r.opts.Tracer, TimeModel: r.opts.SimTimeModel, RealTime: u.RealTime()})
		return nil
	case ViaPN532I2C:
		sim.Emulator = pn532emu.New(r.emuOptions(sim.Field))
		bus, err := sim.Emulator.I2C()
		if err != nil {
			return fmt.Errorf("reader: %s: %w", u, err)
		}
		r.closers = append(r.closers, bus.Close)
		if u.Speed > 0 { // the bus owner sets the clock
			if err := bus.SetSpeed(physic.Frequency(u.Speed) * physic.Hertz); err != nil {
				return fmt.Errorf("reader: %s: %w", u, err)
			}
		}
		dev, err := pn532.NewI2CContext(ctx, bus, r.pn532Opts(0))
		if err != nil {
			return fmt.Errorf("reader: %s: %w", u, err)
		}
		r.dev, r.Reader = dev, dev
		return nil
	case ViaPN532SPI:
		sim.Emulator = pn532emu.New(r.emuOptions(sim.Field))
		port, err := sim.Emulator.SPI()
		if err != nil {
			return fmt.Errorf("reader: %s: %w", u, err)
		}
		r.closers = append(r.closers, port.Close)
		o := r.pn532Opts(0)
		if u.Speed > 0 {
			o.SPISpeed = physic.Frequency(u.Speed) * physic.Hertz
		}
		dev, err := pn532.NewSPIContext(ctx, port, o)
		if err != nil {
			return fmt.Errorf("reader: %s: %w", u, err)
		}
		r.dev, r.Reader = dev, dev
		return nil
	case ViaPN532UART, ViaLibnfc:
		sim.Emulator = pn532emu.New(r.emuOptions(sim.Field))
		p, err := pn532emu.OpenPTY("")
		if err != nil {
			return fmt.Errorf("reader: %s: %w", u, err)
		}
		sctx, cancel := context.WithCancel(context.Background())
		served := make(chan struct{})
		go func() { sim.Emulator.ServePTY(sctx, p); close(served) }()
		r.closers = append(r.closers, func() error { cancel(); <-served; return p.Close() })
		if u.Via() == ViaLibnfc {
			lr, err := libnfc.Open("pn532_uart:"+p.Name(), libnfc.Options{Tracer: r.opts.Tracer})
			if err != nil {
				return fmt.Errorf("reader: %s: %w", u, err)
			}
			r.Reader = lr
			return nil
		}
		port, err := serial.Open(p.Name(), 115200)
		if err != nil {
			return fmt.Errorf("reader: %s: %w", u, err)
		}
		dev, err := pn532.NewUARTContext(ctx, port, r.pn532Opts(u.Speed))
		if err != nil {
			port.Close()
			return fmt.Errorf("reader: %s: %w", u, err)
		}
		r.dev, r.Reader = dev, dev
		return nil
	}
	return fmt.Errorf("reader: %s: via=%s not supported", u, u.Via())
}
