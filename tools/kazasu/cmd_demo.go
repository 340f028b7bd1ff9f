package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"kazasu/daemon/api"
	"kazasu/daemon/config"
	"kazasu/daemon/issuance"
	"kazasu/daemon/terminal"
	"kazasu/drivers/reader"
	"kazasu/drivers/sim/card"
)

const demoUsage = `usage: kazasu demo [--dir DIR] [--uri SIMURI] [-v]

The main job on the embedded default: starts kazasud (the transaction
engine, validation, relay, queue and audit) on a simulated reader together
with the reference issuance service on loopback (mutual TLS), then runs real
transactions end to end — a My Number Card, an Android phone, an armed
iPhone, and a wrong PIN followed by the right one — printing each step with
its timing. Exit 0 when every transaction ends as expected.

  --dir DIR     data directory (default: a temporary one, removed after)
  --uri SIMURI  the simulated reader (default sim:?realtime=1: air time and
                card processing are spent for real, so timings are those of
                the timing model; try sim:?via=pn532_uart&realtime=1)
  -v            daemon logs on stderr`

func init() {
	register(&command{Name: "demo", Summary: "run kazasud on the simulator with the reference issuance service, end to end", Usage: demoUsage, Run: runDemo})
}

// demoStep is one scripted transaction.
type demoStep struct {
	name   string
	kind   card.Kind
	pins   []string // PINs typed in order
	want   api.State
	reason string // for a failure
}

func runDemo(ctx context.Context, env *Env) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("dir", "", "")
	uri := fs.String("uri", "sim:?realtime=1", "")
	verbose := fs.Bool("v", false, "")
	if err := fs.Parse(env.Args); err != nil || fs.NArg() != 0 {
		return errUsage
	}
	if !strings.HasPrefix(*uri, "sim:") {
		return exitCode(2, fmt.Errorf("--uri must be a sim: reader"))
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "kazasu-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	out := env.Stdout
	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The configuration: the embedded default, in the demo's directory.
	cfg := config.Default()
	cfg.DataDir = *dir
	cfg.Readers = []config.Reader{{Name: "sim0", URI: *uri, ISODEP: "auto"}}
	cfg.Timeouts.Tap = config.Duration(20 * time.Second)
	cfg.Timeouts.PIN = config.Duration(20 * time.Second)
	cfg.Timeouts.Remove = config.Duration(10 * time.Second)
	tlsDir := filepath.Join(*dir, "tls")
	if err := issuance.EnsureTLS(tlsDir, cfg.TerminalID, nil); err != nil {
		return err
	}

	// The reference issuance service on a loopback port.
	t0 := time.Now()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	cfg.Relay.URL = "https://" + ln.Addr().String()
	// The terminal (kazasud) itself.
	var simMu sync.Mutex
	var sim *reader.Sim
	term, err := terminal.New(ctx, cfg, terminal.Options{Log: log, OnReader: func(name string, r *reader.Reader) {
		simMu.Lock()
		sim = r.Sim()
		simMu.Unlock()
	}})
	if err != nil {
		ln.Close()
		return exitCode(1, err)
	}
	defer term.Close()
	svc, err := issuance.New(issuance.Options{Validator: terminal.IssuanceValidator(term.Validator), Log: log})
	if err != nil {
		ln.Close()
		return err
	}
	tlsCfg, err := issuance.ServerTLSConfig(tlsDir)
	if err != nil {
		ln.Close()
		return err
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); issuance.Serve(ctx, ln, svc.Handler(), tlsCfg, log) }()
	go func() { defer wg.Done(); term.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()
	for i := 0; term.Engine.Ready() != nil; i++ {
		if i > 1000 {
			return exitCode(1, errors.New("the simulated reader did not come up"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	simMu.Lock()
	s := sim
	simMu.Unlock()
	fmt.Fprintf(out, "kazasud ready in %v: terminal %s, reader %s, issuance service %s (mutual TLS)\n\n",
		time.Since(t0).Round(time.Millisecond), cfg.TerminalID, *uri, cfg.Relay.URL)

	steps := []demoStep{
		{name: "My Number Card", kind: card.KindMyNumber, pins: []string{"1234"}, want: api.StateDone},
		{name: "Android phone (JPKI on GP-SE)", kind: card.KindAndroid, pins: []string{"5678"}, want: api.StateDone},
		{name: "iPhone, armed with Face ID", kind: card.KindIPhoneArmed, want: api.StateDone},
		{name: "My Number Card, wrong PIN first", kind: card.KindMyNumber, pins: []string{"9999", "1234"}, want: api.StateDone},
	}
	failures := 0
	for i, st := range steps {
		ok, err := demoTransaction(ctx, out, term.Engine, s, i+1, st)
		if err != nil {
			fmt.Fprintf(out, "  ERROR: %v\n", err)
		}
		if !ok {
			failures++
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "queue: %d item(s) waiting for delivery; audit: %d record(s)\n", term.Queue.Len(), term.Audit.Head().Seq)
	if failures > 0 {
		return exitCode(1, fmt.Errorf("%d of %d transactions did not end as expected", failures, len(steps)))
	}
	fmt.Fprintf(out, "all %d transactions ended as expected\n", len(steps))
	return nil
}

// demoTransaction runs one scripted transaction through the kiosk API's
// engine interface, printing each state with the time since the tap.
func demoTransaction(ctx context.Context, out io.Writer, eng api.Engine, sim *reader.Sim, n int, st demoStep) (bool, error) {
	fmt.Fprintf(out, "%d. %s\n", n, st.name)
	tok, err := card.New(st.kind, card.Options{Seed: fmt.Sprintf("demo-%d", n)})
	if err != nil {
		return false, err
	}
	status, err := eng.Start(ctx, "sim0", "juminhyo")
	if err != nil {
		return false, err
	}
	events, stop, err := eng.Subscribe(status.ID)
	if err != nil {
		return false, err
	}
	defer stop()
	start := time.Now()
	var tapAt, pinAt time.Time
	pins := st.pins
	last := api.TxStatus{}
	timeout := time.After(60 * time.Second)
	for {
		var ev api.Event
		var ok bool
		select {
		case ev, ok = <-events:
		case <-timeout:
			return false, errors.New("no progress for 60s")
		}
		if !ok {
			break
		}
		tx := ev.Tx
		if tx.State == last.State {
			last = tx
			if tx.Final {
				break
			}
			continue
		}
		el := time.Since(start)
		if !tapAt.IsZero() {
			el = time.Since(tapAt)
		}
		line := fmt.Sprintf("   %8.1f ms  %s", float64(el)/float64(time.Millisecond), tx.State)
		switch tx.State {
		case api.StateWaitingForTap:
			line += " — tapping the " + string(st.kind)
			sim.Tap(tok)
			tapAt = time.Now()
		case api.StatePINRequired:
			line += fmt.Sprintf(" (%d tries left", *tx.TriesLeft)
			if tx.LastTry {
				line += ", last try"
			}
			line += fmt.Sprintf(") — tap→PIN prompt %.1f ms", float64(time.Since(tapAt))/float64(time.Millisecond))
		case api.StateDone:
			line += fmt.Sprintf(" — ticket %s", tx.Ticket)
			if !pinAt.IsZero() {
				line += fmt.Sprintf("; PIN→result %.1f ms", float64(time.Since(pinAt))/float64(time.Millisecond))
			}
		case api.StateFailed:
			line += " — " + tx.Reason
		case api.StateRemoveCard:
			sim.Remove(tok)
		}
		if tx.TokenType != "" && last.TokenType == "" {
			line += " [token " + tx.TokenType + "]"
		}
		fmt.Fprintln(out, line)
		if tx.State == api.StatePINRequired {
			if len(pins) == 0 {
				return false, errors.New("asked for a PIN the script does not have")
			}
			pinAt = time.Now()
			// What the person types on the kiosk's PIN pad: never printed.
			if err := eng.SubmitPIN(ctx, tx.ID, []byte(pins[0])); err != nil {
				return false, err
			}
			pins = pins[1:]
		}
		last = tx
		if tx.Final {
			break
		}
	}
	sim.Remove(tok)
	reached := last.State == st.want || (last.State == api.StateRemoveCard && last.Reason == "" && st.want == api.StateDone && last.Ticket != "")
	return reached && len(pins) == 0, nil
}
