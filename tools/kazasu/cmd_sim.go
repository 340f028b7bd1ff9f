package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"

	"kazasu/drivers/sim/card"
	"kazasu/drivers/sim/pn532emu"
	"kazasu/drivers/sim/rf"
	"kazasu/drivers/sim/scenario"
	"kazasu/drivers/sim/vclock"
)

const simUsage = `usage: kazasu sim pn532 --link PATH [--card KIND] [--scenario FILE] [--virtual-time] [-v]

Runs an emulated PN532 (firmware 1.6) on a pseudo-terminal and makes PATH a
symbolic link to it, so that libnfc (LIBNFC_DEVICE=pn532_uart:PATH) or a
serial PN532 driver can open it. Prints exactly one line, "ready PATH", on
stdout once the chip accepts commands, then serves until SIGTERM or SIGINT
(exit 0).

  --link PATH      the symlink to create (replaced if it is a symlink)
  --card KIND      the token in the field at start: mynumber, android, iphone,
                   iphone-armed, juki, typea, nonjpki, or none (default
                   mynumber)
  --scenario FILE  a scenario script (see package drivers/sim/scenario): its
                   card directive overrides --card, and the card enters the
                   field only when the scenario taps it
  --virtual-time   do not sleep the modelled time (default: real time)
  -v               log host events and commands on stderr (never data)`

func init() {
	register(&command{
		Name:    "sim",
		Summary: "run virtual hardware (kazasu sim pn532 --link PATH)",
		Usage:   simUsage,
		Run:     runSim,
	})
}

func runSim(ctx context.Context, env *Env) error {
	if len(env.Args) < 1 || env.Args[0] != "pn532" {
		return errUsage
	}
	fs := flag.NewFlagSet("sim pn532", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	link := fs.String("link", "", "")
	cardKind := fs.String("card", "mynumber", "")
	scenarioFile := fs.String("scenario", "", "")
	virtual := fs.Bool("virtual-time", false, "")
	verbose := fs.Bool("v", false, "")
	if err := fs.Parse(env.Args[1:]); err != nil || fs.NArg() != 0 || *link == "" {
		return errUsage
	}
	sim, err := newSimulation(*cardKind, *scenarioFile)
	if err != nil {
		return exitCode(2, err)
	}
	opts := sim.options
	if !*virtual {
		opts.Clock = vclock.Real{}
	}
	if *verbose {
		l := log.New(env.Stderr, "pn532emu: ", log.Lmicroseconds)
		opts.Logf = l.Printf
	}
	emu := pn532emu.New(opts)
	p, err := pn532emu.OpenPTY(*link)
	if err != nil {
		return exitCode(1, err)
	}
	defer p.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if sim.run != nil {
		go func() {
			if err := sim.run(ctx, emu); err != nil && ctx.Err() == nil {
				fmt.Fprintf(env.Stderr, "kazasu sim: scenario: %v\n", err)
			}
		}()
	}
	errc := make(chan error, 1)
	go func() { errc <- emu.ServePTY(ctx, p) }()
	fmt.Fprintf(env.Stdout, "ready %s\n", *link)
	if f, ok := env.Stdout.(*os.File); ok {
		_ = f.Sync()
	}
	err = <-errc
	switch {
	case errors.Is(err, context.Canceled):
		return nil
	case errors.Is(err, pn532emu.ErrReaderGone):
		// The scenario unplugged the reader; stay up until signalled, as
		// a USB adapter's process would.
		<-ctx.Done()
		return nil
	}
	return exitCode(1, err)
}

// simulation is what --card and --scenario set up.
type simulation struct {
	options pn532emu.Options
	run     func(ctx context.Context, e *pn532emu.Emulator) error
}

// newCard is the scenario card factory: a standard simulated token of
// drivers/sim/card, its options set by name.
func newCard(kind string, kv []scenario.KeyValue) (rf.PICC, error) {
	k, err := card.ParseKind(kind)
	if err != nil {
		return nil, err
	}
	var o card.Options
	for _, p := range kv {
		if err := o.Set(p.Key, p.Value); err != nil {
			return nil, err
		}
	}
	return card.New(k, o)
}

// newSimulation builds the field and, with a scenario, its runner. Without
// a scenario the --card token is in the field from the start. With one,
// the scenario's card directive wins; if it has none, the --card token is
// its card, and the scenario taps it when it says so.
func newSimulation(kind, scenarioFile string) (*simulation, error) {
	field := &rf.Field{}
	s := &simulation{options: pn532emu.Options{Field: field}}
	if kind != "none" {
		if _, err := card.ParseKind(kind); err != nil {
			return nil, fmt.Errorf("--card: %w", err)
		}
	}
	if scenarioFile == "" {
		if kind != "none" {
			tok, err := newCard(kind, nil)
			if err != nil {
				return nil, fmt.Errorf("--card %s: %w", kind, err)
			}
			field.Add(tok)
		}
		return s, nil
	}
	f, err := os.Open(scenarioFile)
	if err != nil {
		return nil, fmt.Errorf("--scenario: %w", err)
	}
	defer f.Close()
	script, err := scenario.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("--scenario %s: %w", scenarioFile, err)
	}
	if !script.HasCard() && kind != "none" {
		script.Steps = append([]scenario.Step{{Line: 0, Op: scenario.OpCard, Kind: kind}}, script.Steps...)
	}
	// Make every card now (RSA keys take a while), so that "ready" means the
	// scenario's taps happen on time; the runner takes them in order.
	var made []rf.PICC
	for _, st := range script.Steps {
		if st.Op != scenario.OpCard {
			continue
		}
		tok, err := newCard(st.Kind, st.Options)
		if err != nil {
			return nil, fmt.Errorf("--scenario %s: line %d: %w", scenarioFile, st.Line, err)
		}
		made = append(made, tok)
	}
	next := func(string, []scenario.KeyValue) (rf.PICC, error) {
		tok := made[0]
		made = made[1:]
		return tok, nil
	}
	s.options.Faults = script.HostFaults
	s.run = func(ctx context.Context, e *pn532emu.Emulator) error {
		r := scenario.NewRunner(script, field, next, e.Frames)
		r.ChipReset = e.Reset
		return r.Run(ctx)
	}
	return s, nil
}
