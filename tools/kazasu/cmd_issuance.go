package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"kazasu/daemon/issuance"
	"kazasu/drivers/sim/testpki"
)

func init() {
	register(&command{
		Name:    "issuance",
		Summary: "run the reference issuance service, or make its throwaway mTLS files",
		Usage: `usage: kazasu issuance serve [flags]
       kazasu issuance tls [--tls-dir DIR] [--terminal ID] [--host H]...

serve runs the reference issuance service (daemon/issuance) over mutual TLS:
challenges, validated submissions returning a ticket and a PDF, receipts,
audit uploads. It creates the throwaway CA, server and client certificates
in --tls-dir unless they exist (point kazasud's relay.ca, client_cert and
client_key at ca.pem, client.pem and client-key.pem there).

  --listen ADDR      listen address (default 127.0.0.1:8443)
  --tls-dir DIR      mTLS files (default kazasu-data/tls)
  --terminal ID      client certificate common name = the terminal id the
                     service accepts (default kz-sim-0001)
  --host H           extra server certificate name or IP (repeatable)
  --test-roots       trust the testpki hierarchy (simulated cards), seed
                     --test-seed (default kazasu)
  --roots-dir DIR    trust the root certificates (PEM or DER) in DIR
  --state FILE       persist answers, tickets, receipts and audit uploads
  --ttl DURATION     challenge lifetime (default 60s)

tls only creates the files and exits.`,
		Run: runIssuance,
	})
}

type hostList []string

func (h *hostList) String() string     { return strings.Join(*h, ",") }
func (h *hostList) Set(v string) error { *h = append(*h, v); return nil }

func runIssuance(ctx context.Context, env *Env) error {
	if len(env.Args) == 0 {
		return errUsage
	}
	sub := env.Args[0]
	fs := flag.NewFlagSet("issuance "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	tlsDir := fs.String("tls-dir", "kazasu-data/tls", "")
	terminal := fs.String("terminal", "kz-sim-0001", "")
	var hosts hostList
	fs.Var(&hosts, "host", "")
	var (
		listen, seed, rootsDir, state *string
		testRoots                     *bool
		ttl                           *time.Duration
	)
	switch sub {
	case "serve":
		listen = fs.String("listen", "127.0.0.1:8443", "")
		testRoots = fs.Bool("test-roots", false, "")
		seed = fs.String("test-seed", "kazasu", "")
		rootsDir = fs.String("roots-dir", "", "")
		state = fs.String("state", "", "")
		ttl = fs.Duration("ttl", 60*time.Second, "")
	case "tls":
	default:
		return errUsage
	}
	if err := fs.Parse(env.Args[1:]); err != nil || fs.NArg() != 0 {
		return errUsage
	}
	if err := issuance.EnsureTLS(*tlsDir, *terminal, hosts); err != nil {
		return err
	}
	if sub == "tls" {
		fmt.Fprintf(env.Stdout, "mTLS files in %s\n", *tlsDir)
		return nil
	}
	if *testRoots == (*rootsDir != "") {
		return exitCode(2, errors.New("give exactly one of --test-roots and --roots-dir"))
	}
	if *ttl < time.Second || *ttl > time.Hour {
		return exitCode(2, errors.New("--ttl must be between 1s and 1h"))
	}
	pool := x509.NewCertPool()
	if *testRoots {
		h := testpki.New(*seed)
		for gen := 1; gen <= testpki.Generations; gen++ {
			c, _, err := h.RootE(testpki.Auth, gen)
			if err != nil {
				return err
			}
			pool.AddCert(c)
		}
	} else if err := loadRoots(pool, *rootsDir); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, nil))
	svc, err := issuance.New(issuance.Options{
		Validator:    &issuance.X509Validator{Roots: pool},
		ChallengeTTL: *ttl,
		StatePath:    *state,
		BindTerminal: true,
		Log:          log,
	})
	if err != nil {
		return err
	}
	tlsCfg, err := issuance.ServerTLSConfig(*tlsDir)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "issuance service on https://%s (mTLS files in %s, terminal %s)\n", ln.Addr(), *tlsDir, *terminal)
	return issuance.Serve(ctx, ln, svc.Handler(), tlsCfg, log)
}

// loadRoots adds every certificate (PEM or DER) in dir to pool.
func loadRoots(pool *x509.CertPool, dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	n := 0
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		var ders [][]byte
		for rest := b; ; {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			if blk.Type == "CERTIFICATE" {
				ders = append(ders, blk.Bytes)
			}
		}
		if len(ders) == 0 {
			ders = [][]byte{b}
		}
		for _, der := range ders {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return fmt.Errorf("%s: %w", e.Name(), err)
			}
			pool.AddCert(c)
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("no certificates in %s", dir)
	}
	return nil
}
