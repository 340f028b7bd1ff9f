package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"kazasu/daemon/quirks"
	"kazasu/drivers/jpki"
	"kazasu/drivers/nfc"
	"kazasu/drivers/reader"
	"kazasu/tools/compat"
)

const compatUsage = `usage: kazasu compat run --reader URI --label "MODEL / OS BUILD" --db FILE [--trials N]
                          [--test-pin PIN] [--board B] [--rf-profile R] [--mode auto|chip|host]
                          [--compare-modes] [--poll BA|AB] [--tap-timeout 30s]
       kazasu compat run --sim-fleet --db FILE [--trials N] [--profiles P,...] [--paths VIA,...]
       kazasu compat report --db FILE --out DIR
       kazasu compat derive --db FILE --out quirks.json [--readers R,...]

The phone-model compatibility lab.

run         runs the suite on whatever is tapped on the reader, --trials times
            (default 5): activation success and time, Type A or B, ATQB/ATS,
            FSC, FWT, bit rates, an APDU size sweep (short, extended,
            chaining), S(WTX), the JPKI steps with timings (SELECT, token,
            certificate, PIN status), removal and re-tap, errors by kind. The
            operator is prompted to tap and remove. The run (with reader
            model and firmware, board, RF profile and this software's version)
            is stored in the results database.
            VERIFY and signing run only with --test-pin, and only on TEST
            tokens: the suite verifies only while the counter shows 2 or more
            tries and stops after one refusal, but a wrong PIN still costs a
            try. The PIN is never printed or stored; "--test-pin -" reads it
            from standard input (not visible in the process list). On an
            iPhone signing also needs --test-pin (any 4 digits; not sent).
            --compare-modes adds a chip-managed and host-managed ISO-DEP
            comparison (PN532 readers).
run --sim-fleet
            runs every simulated phone and card profile (drivers/sim/card)
            over every simulated reader path (direct, PN532 UART, I2C, SPI,
            and libnfc in builds with the libnfc tag) in modelled time, with
            the simulated tokens' own test PINs. Default 3 trials.
report      writes DIR/index.html (success rate and step latency per phone ×
            reader, inline SVG), DIR/matrix.md and DIR/quirks.json from the
            latest run of every key.
derive      writes the quirk profiles derived from the latest runs, for
            kazasud's quirks file. Profiles match tokens, not readers, and
            take the smallest limits of all reader paths in the database:
            --readers keeps only the runs on the named paths (e.g. the
            kiosk's own, "pn532_uart"), so a libnfc run's limits do not
            constrain a PN532 kiosk.

Exit status: 0 done, 1 failure, 2 usage.`

func init() {
	register(&command{Name: "compat", Summary: "phone-model compatibility lab: run the suite, report, derive quirk profiles", Usage: compatUsage, Run: runCompat})
}

func runCompat(ctx context.Context, env *Env) error {
	if len(env.Args) == 0 {
		return errUsage
	}
	sub, args := env.Args[0], env.Args[1:]
	switch sub {
	case "run":
		return compatRun(ctx, env, args)
	case "report":
		return compatReport(ctx, env, args)
	case "derive":
		return compatDerive(ctx, env, args)
	}
	return errUsage
}

// softwareVersion names this build for the runs it records.
func softwareVersion() string {
	v, rev, dirty := "(devel)", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	s := "kazasu " + v
	if rev != "" {
		s += " " + rev[:min(12, len(rev))]
		if dirty {
			s += "+dirty"
		}
	}
	return s
}

func parsePoll(s string) ([]nfc.Tech, error) {
	var out []nfc.Tech
	for _, c := range strings.ToUpper(s) {
		switch c {
		case 'A':
			out = append(out, nfc.TechA)
		case 'B':
			out = append(out, nfc.TechB)
		default:
			return nil, fmt.Errorf("poll order %q: want letters A and B, e.g. BA", s)
		}
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func compatRun(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("compat run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	uri := fs.String("reader", "", "")
	label := fs.String("label", "", "")
	trials := fs.Int("trials", 0, "")
	dbPath := fs.String("db", "", "")
	testPIN := fs.String("test-pin", "", "")
	board := fs.String("board", "", "")
	rf := fs.String("rf-profile", "default", "")
	modeS := fs.String("mode", "auto", "")
	compare := fs.Bool("compare-modes", false, "")
	pollS := fs.String("poll", "", "")
	tapTimeout := fs.Duration("tap-timeout", 30*time.Second, "")
	fleet := fs.Bool("sim-fleet", false, "")
	profiles := fs.String("profiles", "", "")
	paths := fs.String("paths", "", "")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 || *dbPath == "" || *trials < 0 {
		return errUsage
	}
	if *fleet {
		if *uri != "" || *label != "" || *testPIN != "" {
			return exitCode(2, errors.New("--sim-fleet takes no --reader, --label or --test-pin (the simulated tokens bring their own test PINs)"))
		}
		return compatFleet(ctx, env, *dbPath, *trials, splitList(*profiles), splitList(*paths))
	}
	if *uri == "" || *label == "" {
		return errUsage
	}
	if !strings.Contains(*label, " / ") {
		return exitCode(2, fmt.Errorf("label %q: want \"MODEL / OS BUILD\"", *label))
	}
	mode, err := parseMode(*modeS)
	if err != nil {
		return exitCode(2, err)
	}
	poll, err := parsePoll(*pollS)
	if err != nil {
		return exitCode(2, err)
	}
	var pin []byte
	if *testPIN == "-" { // from standard input: not in the process list or shell history
		line, err := bufio.NewReader(io.LimitReader(env.Stdin, 64)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return exitCode(2, fmt.Errorf("--test-pin -: %w", err))
		}
		*testPIN = strings.TrimRight(line, "\r\n")
		if *testPIN == "" {
			return exitCode(2, errors.New("--test-pin -: no PIN on standard input"))
		}
	}
	if *testPIN != "" {
		pin = []byte(*testPIN)
		*testPIN = ""
		if !jpki.ValidPIN(pin) {
			return exitCode(2, errors.New("--test-pin must be 4 digits"))
		}
		defer clear(pin)
	}
	db, err := compat.Open(ctx, *dbPath)
	if err != nil {
		return exitCode(1, err)
	}
	defer db.Close()
	wtx := &compat.WTXCounter{}
	octx, cancel := context.WithTimeout(ctx, 15*time.Second)
	rd, err := reader.Open(octx, *uri, reader.Options{Tracer: wtx})
	cancel()
	if err != nil {
		return exitCode(1, err)
	}
	defer rd.Close()
	so := compat.SuiteOptions{
		Label: *label, Trials: *trials, TestPIN: pin,
		Board: *board, RFProfile: *rf, ReaderURI: *uri, Software: softwareVersion(),
		Modes: []nfc.ISODepMode{mode}, PollOrder: poll, WTX: wtx, TapTimeout: *tapTimeout,
		Prompt:   func(msg string) { fmt.Fprintf(env.Stderr, ">>> %s\n", msg) },
		Progress: func(msg string) { fmt.Fprintf(env.Stderr, "%s\n", msg) },
	}
	if *compare {
		if rd.PN532() == nil {
			return exitCode(2, fmt.Errorf("--compare-modes: %s runs ISO-DEP one way only (PN532 readers run it either way)", rd.Info().Driver))
		}
		if mode == nfc.ISODepAuto {
			so.Modes[0] = nfc.ISODepHost // what Auto means on a PN532
		}
		for _, m := range []nfc.ISODepMode{nfc.ISODepChip, nfc.ISODepHost} {
			if m != so.Modes[0] {
				so.Modes = append(so.Modes, m)
			}
		}
	}
	compat.SimHooks(rd, &so)
	run, err := compat.RunSuite(ctx, rd, so)
	if err != nil {
		return exitCode(1, err)
	}
	if err := db.Insert(ctx, run); err != nil {
		return exitCode(1, err)
	}
	printRun(env.Stdout, run)
	fmt.Fprintf(env.Stdout, "stored as run %d in %s\n", run.ID, *dbPath)
	return nil
}

func compatFleet(ctx context.Context, env *Env, dbPath string, trials int, profiles, paths []string) error {
	db, err := compat.Open(ctx, dbPath)
	if err != nil {
		return exitCode(1, err)
	}
	defer db.Close()
	t0 := time.Now()
	runs, err := compat.SimFleet(ctx, compat.FleetOptions{
		Trials: trials, Profiles: profiles, Paths: paths, Software: softwareVersion(),
		Progress: func(s string) { fmt.Fprintln(env.Stderr, s) },
	})
	if err != nil {
		return exitCode(1, err)
	}
	for _, r := range runs {
		if err := db.Insert(ctx, r); err != nil {
			return exitCode(1, err)
		}
	}
	m := compat.BuildMatrix(runs)
	fmt.Fprintf(env.Stdout, "%d runs (%d phones/cards × %d reader paths) stored in %s in %v\n",
		len(runs), len(m.Rows), len(m.Cols), dbPath, time.Since(t0).Round(100*time.Millisecond))
	return nil
}

func printRun(w io.Writer, r *compat.Run) {
	fmt.Fprintf(w, "%s on %s (%s %s), %d trials, %s time\n", r.Label, r.Key.Reader, r.ReaderModel, r.ReaderFirmware, r.Trials, r.TimeBase)
	if r.Tech != "" {
		fmt.Fprintf(w, "target:      Type %s, features %s, FSC %d, FSD %d, FWT %v, bit rates %s, ISO-DEP %s\n",
			r.Tech, r.Features, r.FSC, r.FSD, r.FWT(), r.BitRates, r.ISODepMode)
	}
	if r.RFSettings != "" {
		fmt.Fprintf(w, "RF:          %s (%s)\n", r.RFSettings, r.Key.RFProfile)
	}
	fmt.Fprintf(w, "token:       %s\n", r.Key.Token)
	fmt.Fprintf(w, "APDU sizes:  short ≤ %d, extended ≤ %d (%v), command ≤ %d bytes\n", r.MaxShortResponse, r.MaxExtendedResponse, r.ExtendedOK, r.MaxCommand)
	if r.WTXObserved {
		fmt.Fprintf(w, "S(WTX):      %d (at most %d in one signature)\n", r.WTXSeen, r.SignWTX)
	}
	for _, s := range r.Steps {
		line := fmt.Sprintf("  %-11s %d/%d ok", s.Name, s.OK, s.Trials)
		if s.OK > 0 {
			line += fmt.Sprintf(", p50 %v, p95 %v", time.Duration(s.P50us)*time.Microsecond, time.Duration(s.P95us)*time.Microsecond)
		}
		if s.Skipped > 0 {
			line += fmt.Sprintf(" (skipped %d)", s.Skipped)
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "activation %.0f%%, JPKI transaction %.0f%%\n", 100*r.ActivationRate(), 100*r.TransactionRate())
	for k, n := range r.Errors {
		fmt.Fprintf(w, "  error %s × %d\n", k, n)
	}
}

func latestRuns(ctx context.Context, fs *flag.FlagSet, args []string) ([]*compat.Run, string, error) {
	dbPath := fs.String("db", "", "")
	out := fs.String("out", "", "")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 || *dbPath == "" || *out == "" {
		return nil, "", errUsage
	}
	if _, err := os.Stat(*dbPath); err != nil {
		return nil, "", exitCode(1, fmt.Errorf("results database: %w", err))
	}
	db, err := compat.Open(ctx, *dbPath)
	if err != nil {
		return nil, "", exitCode(1, err)
	}
	defer db.Close()
	runs, err := db.Latest(ctx)
	if err != nil {
		return nil, "", exitCode(1, err)
	}
	if len(runs) == 0 {
		return nil, "", exitCode(1, fmt.Errorf("%s holds no runs", *dbPath))
	}
	return runs, *out, nil
}

func compatReport(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("compat report", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	runs, out, err := latestRuns(ctx, fs, args)
	if err != nil {
		return err
	}
	if err := compat.WriteReport(out, runs, time.Now()); err != nil {
		return exitCode(1, err)
	}
	fmt.Fprintf(env.Stdout, "report of %d runs: %s, %s, %s\n", len(runs),
		filepath.Join(out, "index.html"), filepath.Join(out, "matrix.md"), filepath.Join(out, "quirks.json"))
	return nil
}

func compatDerive(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("compat derive", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	readers := fs.String("readers", "", "")
	runs, out, err := latestRuns(ctx, fs, args)
	if err != nil {
		return err
	}
	if want := splitList(*readers); len(want) > 0 {
		var kept []*compat.Run
		for _, r := range runs {
			if slices.Contains(want, r.Key.Reader) {
				kept = append(kept, r)
			}
		}
		if len(kept) == 0 {
			return exitCode(1, fmt.Errorf("no runs on readers %s", *readers))
		}
		runs = kept
	}
	set := compat.Derive(runs)
	if err := writeQuirks(out, set); err != nil {
		return exitCode(1, err)
	}
	fmt.Fprintf(env.Stdout, "%d quirk profiles from %d runs written to %s\n", len(set.Profiles), len(runs), out)
	return nil
}

// writeQuirks writes set atomically and checks that it loads back.
func writeQuirks(path string, set *quirks.Set) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := set.Write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		tmp.Close()
		return err
	}
	if _, err := quirks.Load(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("derived profiles do not load: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
