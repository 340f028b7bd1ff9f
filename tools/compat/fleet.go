package compat

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"kazasu/drivers/libnfc"
	"kazasu/drivers/nfc"
	"kazasu/drivers/pn532"
	"kazasu/drivers/reader"
	"kazasu/drivers/sim/card"
	"kazasu/drivers/sim/simreader"
)

// FleetOptions configure SimFleet.
type FleetOptions struct {
	// Trials per run (default 3).
	Trials int
	// Paths are the sim reader paths (default FleetPaths()).
	Paths []string
	// Profiles are drivers/sim/card profile names (default: all of
	// card.Profiles()).
	Profiles []string
	// Seed seeds the simulated tokens (default "compat").
	Seed     string
	Software string
	Now      func() time.Time
	// Progress receives one line per run (from several goroutines, one
	// at a time).
	Progress func(string)
	// MaxCommand caps the command sweep (default FleetMaxCommand).
	MaxCommand int
	// PerPath is how many profiles run at once on each path (default 2).
	PerPath int
}

// FleetMaxCommand is the fleet's default command-sweep ceiling: the
// simulated tokens take any extended Lc, so larger commands would only
// show the path again, at the cost of CI time.
const FleetMaxCommand = 4096

// SimOSBuild is the OS build recorded for simulated phones and cards.
const SimOSBuild = "sim"

// FleetPaths lists the simulated reader paths: the direct simulator, the
// PN532 driver over the emulator's UART (pty), I2C and SPI, and libnfc's
// pn532_uart driver over a pty when this build has libnfc (build tag
// libnfc, cgo).
func FleetPaths() []string {
	p := []string{reader.ViaDirect, reader.ViaPN532UART, reader.ViaPN532I2C, reader.ViaPN532SPI}
	if libnfc.Available {
		p = append(p, reader.ViaLibnfc)
	}
	return p
}

// FleetProfiles lists the profile names of the simulated fleet.
func FleetProfiles() []string {
	var out []string
	for _, p := range card.Profiles() {
		out = append(out, p.Name)
	}
	return out
}

// SimFleet runs the suite on every simulated profile over every path, in
// the simulators' modelled time (no real waiting; Run.TimeBase
// "modelled"). Test PINs come from the simulated tokens themselves (they
// are test tokens by construction), so VERIFY and signing run. On PN532
// paths the trials run host-managed ISO-DEP (kazasud's default) and a
// comparison runs chip-managed.
func SimFleet(ctx context.Context, o FleetOptions) ([]*Run, error) {
	if o.Trials <= 0 {
		o.Trials = 3
	}
	if len(o.Paths) == 0 {
		o.Paths = FleetPaths()
	}
	if len(o.Profiles) == 0 {
		o.Profiles = FleetProfiles()
	}
	if o.Seed == "" {
		o.Seed = "compat"
	}
	// Paths run side by side, and PerPath profiles on each: the simulators
	// spend little CPU (the PN532 host links poll with real sleeps), so the
	// runs overlap well.
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	perPath := cmp.Or(o.PerPath, 2)
	results := make([][]*Run, len(o.Paths))
	errs := make([]error, len(o.Paths)*len(o.Profiles))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, path := range o.Paths {
		results[i] = make([]*Run, len(o.Profiles))
		next := make(chan int)
		go func() {
			defer close(next)
			for j := range o.Profiles {
				select {
				case next <- j:
				case <-ctx.Done():
					return
				}
			}
		}()
		for range perPath {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range next {
					prof := o.Profiles[j]
					r, err := SimRun(ctx, prof, path, o)
					if err != nil {
						if ctx.Err() == nil || !errors.Is(err, context.Canceled) {
							errs[i*len(o.Profiles)+j] = err // not just stopped by another's failure
						}
						cancel()
						continue
					}
					if o.Progress != nil {
						mu.Lock()
						o.Progress(fmt.Sprintf("%-22s %-11s activation %3.0f%%  JPKI %3.0f%%", prof, path, 100*r.ActivationRate(), 100*r.TransactionRate()))
						mu.Unlock()
					}
					results[i][j] = r
				}
			}()
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := parent.Err(); err != nil {
		return nil, err
	}
	var runs []*Run
	for _, rs := range results {
		runs = append(runs, rs...)
	}
	return runs, nil
}

// simPN532 tunes the PN532 driver for the emulator: its answers take no
// real time (the modelled time is metered), so the I2C/SPI status polls can
// be quick, and the host-link timeouts generous, so that a loaded machine
// does not turn into timeouts that no reader would show. Neither changes
// the modelled timings.
var simPN532 = pn532.Opts{
	ACKTimeout:     time.Second,
	CommandTimeout: 2 * time.Second,
	PollInterval:   200 * time.Microsecond,
}

// SimURI is the reader URI of one simulated profile on one path. All
// profiles share the seed, so tokens of one kind share their (cached) keys.
func SimURI(profile, path, seed string) string {
	q := url.Values{"via": {path}, "seed": {seed}}
	return "sim:" + profile + "?" + q.Encode()
}

// SimRun runs the suite on one simulated profile over one path.
func SimRun(ctx context.Context, profile, path string, o FleetOptions) (*Run, error) {
	if _, ok := card.LookupProfile(profile); !ok {
		if _, err := card.ParseKind(profile); err != nil {
			return nil, fmt.Errorf("compat: no simulated profile or kind %q", profile)
		}
	}
	if o.Seed == "" {
		o.Seed = "compat"
	}
	uri := SimURI(profile, path, o.Seed)
	wtx := &WTXCounter{}
	// Opening runs the PN532 driver's start-up against the emulator with
	// real host-link timeouts; on a loaded machine a first attempt can
	// time out, so try three times.
	var rd *reader.Reader
	var err error
	for range 3 {
		if rd, err = reader.Open(ctx, uri, reader.Options{Tracer: wtx, PN532: &simPN532}); err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("compat: %s: %w", uri, err)
	}
	defer rd.Close()
	so := SuiteOptions{
		Label:      profile + " / " + SimOSBuild,
		Trials:     o.Trials,
		Board:      "sim",
		RFProfile:  "default",
		ReaderURI:  uri,
		Software:   o.Software,
		Now:        o.Now,
		WTX:        wtx,
		MaxCommand: cmp.Or(o.MaxCommand, FleetMaxCommand),
	}
	SimHooks(rd, &so)
	if pin, ok := rd.Sim().Tokens[0].PINValue(card.AuthPIN); ok {
		so.TestPIN = []byte(string(pin)) // a simulated token is a test token
	}
	if rd.PN532() != nil {
		so.Modes = []nfc.ISODepMode{nfc.ISODepAuto, nfc.ISODepChip}
	}
	run, err := RunSuite(ctx, rd, so)
	if err != nil {
		return nil, fmt.Errorf("compat: %s: %w", uri, err)
	}
	run.Key.Reader = path
	return run, nil
}

// SimHooks prepares so for a sim: reader: the first simulated token is
// taken out of the field and the suite taps and removes it itself (arming
// an iphone-armed token before each tap, as its owner would), and
// step timings use the simulator's modelled time. Other readers are left
// alone (the operator taps; wall-clock time).
func SimHooks(rd *reader.Reader, so *SuiteOptions) {
	sim := rd.Sim()
	if sim == nil || len(sim.Tokens) == 0 {
		return
	}
	tok := sim.Tokens[0]
	sim.Remove(tok)
	so.Tap = func(context.Context) error {
		if tok.Kind() == card.KindIPhoneArmed {
			// The person arms the iPhone (Face ID) before every tap: the
			// last command indicator of the previous session disarmed it.
			tok.Arm()
		}
		sim.Remove(tok) // a fresh power-up even if it never left
		sim.Tap(tok)
		return nil
	}
	so.Remove = func(context.Context) error { sim.Remove(tok); return nil }
	if sr, ok := rd.Reader.(*simreader.Reader); ok {
		so.Elapsed = sr.Elapsed
	} else if sim.Emulator != nil {
		so.Elapsed = sim.Emulator.Meter().Total
	}
}
