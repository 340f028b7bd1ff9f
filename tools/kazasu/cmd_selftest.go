package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"kazasu/daemon/config"
	"kazasu/tools/selftest"
)

const selftestUsage = `usage: kazasu selftest [--board NAME] [--reader URI] [--config FILE]
                       [--data-dir DIR] [--service URL] [--json]

The commissioning check, run on the terminal: board profile (detected from
the device tree unless --board), reader (--reader, else the first reader of
--config, else the board's default wiring), PN532 firmware (1.6 expected),
the Diagnose communication-line test, RF field on and off, a poll (a test
card on the reader is read and released; none is fine), LED and buzzer on
the board profile's GPIO pins (skipped, never passed, on a machine without
GPIO), clock (set and synchronised), the data directory writable (fsync'd
probe file) and the issuance service reachable (TCP, then a TLS handshake
with the relay's CA and client certificate when --config names them).

The RF field state is read from the PN532's CIU_TxControl register; where
that register is not modelled (the PN532 emulator on a pty) the check is
skipped with the reason. With a sim: reader the simulated field is read.

--config is kazasud's configuration: its data_dir, relay url and readers
are used unless --data-dir, --service or --reader say otherwise.

Prints one line per check (PASS, FAIL, WARN, SKIP) and a verdict; --json
prints the report as JSON. Exit status: 0 nothing failed, 1 a check failed,
2 usage or configuration error.`

func init() {
	register(&command{Name: "selftest", Summary: "commissioning check of a terminal: reader, chip, RF, GPIO, clock, storage, service", Usage: selftestUsage, Run: runSelftest})
}

// selftestHooks lets tests replace parts of the configuration.
var selftestHooks struct {
	adjust func(*selftest.Config)
}

func runSelftest(ctx context.Context, env *Env) error {
	fs := flag.NewFlagSet("selftest", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	board := fs.String("board", "", "")
	uri := fs.String("reader", "", "")
	cfgPath := fs.String("config", "", "")
	dataDir := fs.String("data-dir", "", "")
	service := fs.String("service", "", "")
	asJSON := fs.Bool("json", false, "")
	if err := fs.Parse(env.Args); err != nil || fs.NArg() != 0 {
		return errUsage
	}
	c := selftest.Config{Board: *board, ReaderURI: *uri, DataDir: *dataDir, ServiceURL: *service, NotBefore: selftestBuildTime()}
	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return exitCode(2, err)
		}
		if c.DataDir == "" {
			c.DataDir = cfg.DataDir
		}
		if c.ServiceURL == "" {
			c.ServiceURL = cfg.Relay.URL
		}
		if rs := cfg.SortedReaders(); c.ReaderURI == "" && len(rs) > 0 {
			c.ReaderURI = rs[0].URI
		}
		if *service == "" && cfg.Relay.CA != "" {
			c.ServiceTLS = func() (*tls.Config, error) { return relayTLS(cfg) }
		}
	}
	if g, err := selftest.HostGPIO(); err == nil {
		c.GPIO = g
	} else if !errors.Is(err, selftest.ErrNoGPIO) {
		return exitCode(1, err)
	}
	if selftestHooks.adjust != nil {
		selftestHooks.adjust(&c)
	}
	rep := selftest.Run(ctx, c)
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		printSelftest(env.Stdout, rep)
	}
	if f := rep.Failed(); len(f) > 0 {
		var names []string
		for _, c := range f {
			names = append(names, c.Name)
		}
		return exitCode(1, fmt.Errorf("%d of %d checks failed: %s", len(f), len(rep.Checks), strings.Join(names, ", ")))
	}
	return nil
}

func printSelftest(w io.Writer, rep *selftest.Report) {
	board, rd := rep.Board, rep.Reader
	if board == "" {
		board = "unknown"
	}
	if rd == "" {
		rd = "none"
	}
	fmt.Fprintf(w, "kazasu selftest  board %s  reader %s  %s\n", board, rd, rep.Time.Format(time.RFC3339))
	counts := map[selftest.Status]int{}
	for _, c := range rep.Checks {
		counts[c.Status]++
		fmt.Fprintf(w, "  %-4s  %-18s  %s\n", strings.ToUpper(string(c.Status)), c.Name, c.Detail)
	}
	verdict := "PASS"
	if !rep.OK {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "result: %s (%d passed, %d failed, %d warnings, %d skipped)\n", verdict,
		counts[selftest.Pass], counts[selftest.Fail], counts[selftest.Warn], counts[selftest.Skip])
}

// selftestBuildTime is the commit time stamped into the binary, the earliest
// plausible clock reading; 2026-01-01 for development builds.
func selftestBuildTime() time.Time {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.time" {
				if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
					return t
				}
			}
		}
	}
	return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
}

// relayTLS is the terminal's TLS client configuration for the issuance
// service, from kazasud's [relay] section (paths relative to data_dir).
func relayTLS(cfg *config.Config) (*tls.Config, error) {
	pem, err := os.ReadFile(cfg.Path(cfg.Relay.CA))
	if err != nil {
		return nil, fmt.Errorf("relay ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("relay ca %s holds no PEM certificate", cfg.Path(cfg.Relay.CA))
	}
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cfg.Relay.ClientCert != "" {
		pair, err := tls.LoadX509KeyPair(cfg.Path(cfg.Relay.ClientCert), cfg.Path(cfg.Relay.ClientKey))
		if err != nil {
			return nil, fmt.Errorf("relay client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}
