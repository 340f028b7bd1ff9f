package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"kazasu/daemon/pki"
	"kazasu/daemon/revocation"
	"kazasu/drivers/sim/testpki"
)

const certUsage = `usage: kazasu cert verify [flags] CERT
       kazasu cert roots [--roots DIR] [--test-roots] [--test-seed SEED]

verify validates a JPKI end-entity certificate (PEM or DER) against the
trust store: chain to a root generation by key, validity, certificate type,
key usage, policy and, with --crl or --store, revocation (fail closed when
the CRL is stale). It prints the verdict and its reasons and exits 0 only
for a valid certificate (1 invalid, 2 usage).

roots lists the trusted roots: kind, generation, validity, SHA-256, source.

  --roots DIR        add the roots listed in DIR/SHA256SUMS (sha256sum format:
                     "<hex>  <file>"); each file must match its fingerprint.
                     JPKI-TEST roots found there are registered as test roots
  --test-roots       test mode: accept JPKI-TEST roots, and add the built-in
                     test hierarchy's roots (seed --test-seed)
  --test-seed SEED   seed of the built-in test hierarchy (default "kazasu")
  --crl FILE         check revocation with this CRL (DER or PEM); repeatable,
                     complete CRL first, then deltas
  --store PATH       check revocation with this revocation store instead
  --at RFC3339       validate at this instant (default: the system clock)
  --type auth|sign   expected certificate type (default auth)`

func init() {
	register(&command{
		Name:    "cert",
		Summary: "verify a JPKI certificate; list trusted roots",
		Usage:   certUsage,
		Run:     runCert,
	})
}

// certFlags are the trust-store flags shared by cert and crl commands.
type certFlags struct {
	rootsDir  string
	testRoots bool
	testSeed  string
}

func (c *certFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.rootsDir, "roots", "", "")
	fs.BoolVar(&c.testRoots, "test-roots", false, "")
	fs.StringVar(&c.testSeed, "test-seed", "kazasu", "")
}

// trustStore builds the trust store the flags describe.
func (c *certFlags) trustStore() (*pki.TrustStore, error) {
	s, err := pki.NewTrustStore()
	if err != nil {
		return nil, err
	}
	if c.testRoots {
		s.EnableTestMode()
		h := testpki.New(c.testSeed)
		for _, k := range []testpki.Kind{testpki.Auth, testpki.Sign} {
			for g := 1; g <= testpki.Generations; g++ {
				cert, _, err := h.RootE(k, g)
				if err != nil {
					return nil, err
				}
				if _, err := s.AddTestRoot(cert, g); err != nil && !errors.Is(err, pki.ErrDuplicateRoot) {
					return nil, err
				}
			}
		}
	}
	if c.rootsDir != "" {
		if err := certAddRootsDir(s, c.rootsDir); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// certAddRootsDir adds the roots listed in dir/SHA256SUMS.
func certAddRootsDir(s *pki.TrustStore, dir string) error {
	f, err := os.Open(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		return fmt.Errorf("--roots: %w (the directory must list its roots with their SHA-256)", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		sum, name, ok := strings.Cut(text, " ")
		name = strings.TrimPrefix(strings.TrimSpace(name), "*")
		if !ok || name == "" || strings.ContainsAny(name, `/\`) {
			return fmt.Errorf("--roots: SHA256SUMS line %d: want \"<sha256>  <file>\"", line)
		}
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("--roots: %w", err)
		}
		der := certDER(b)
		if bytes.Contains(der, []byte("JPKI-TEST")) {
			// A test root: checked against its pin here, registered as a
			// test root (usable only with --test-roots).
			if _, err := pinCheckTest(s, der, sum, path); err != nil {
				return err
			}
			continue
		}
		if _, err := s.AddPinned(b, sum, 0, "pinned:"+path); err != nil && !errors.Is(err, pki.ErrDuplicateRoot) {
			return fmt.Errorf("--roots: %s: %w", path, err)
		}
	}
	return sc.Err()
}

func pinCheckTest(s *pki.TrustStore, der []byte, sum, path string) (*pki.Root, error) {
	want := strings.ToUpper(strings.NewReplacer(":", "", " ", "").Replace(sum))
	got := fmt.Sprintf("%X", sha256.Sum256(der))
	if got != want {
		return nil, fmt.Errorf("--roots: %s: %w: file has %s, listed %s", path, pki.ErrFingerprintMismatch, got, want)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("--roots: %s: %w", path, err)
	}
	r, err := s.AddTestRoot(c, 0)
	if errors.Is(err, pki.ErrDuplicateRoot) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--roots: %s: %w", path, err)
	}
	return r, nil
}

// certDER returns the DER inside a PEM CERTIFICATE or CRL block, or b.
func certDER(b []byte) []byte {
	if blk, _ := pem.Decode(b); blk != nil {
		return blk.Bytes
	}
	return b
}

type certStrings []string

func (s *certStrings) Set(v string) error { *s = append(*s, v); return nil }
func (s *certStrings) String() string     { return strings.Join(*s, ",") }

func runCert(ctx context.Context, env *Env) error {
	if len(env.Args) == 0 {
		return errUsage
	}
	switch env.Args[0] {
	case "verify":
		return runCertVerify(ctx, env, env.Args[1:])
	case "roots":
		fs := flag.NewFlagSet("cert roots", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var cf certFlags
		cf.register(fs)
		if err := fs.Parse(env.Args[1:]); err != nil || fs.NArg() != 0 {
			return errUsage
		}
		s, err := cf.trustStore()
		if err != nil {
			return err
		}
		s.Describe(env.Stdout)
		return nil
	}
	return errUsage
}

func runCertVerify(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("cert verify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cf certFlags
	cf.register(fs)
	var crls certStrings
	fs.Var(&crls, "crl", "")
	storePath := fs.String("store", "", "")
	at := fs.String("at", "", "")
	typ := fs.String("type", "auth", "")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		return errUsage
	}
	kind := pki.KindAuth
	switch *typ {
	case "auth":
	case "sign":
		kind = pki.KindSign
	default:
		return errUsage
	}
	clock := pki.SystemClock(0)
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return fmt.Errorf("%w: --at: %v", errUsage, err)
		}
		clock = pki.FixedClock(t)
	}
	if len(crls) > 0 && *storePath != "" {
		return fmt.Errorf("%w: --crl and --store are exclusive", errUsage)
	}
	store, err := cf.trustStore()
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	val := &pki.Validator{Roots: store, Clock: clock}
	if len(crls) > 0 {
		dir, err := os.MkdirTemp("", "kazasu-cert-verify-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		rs, err := revocation.Open(filepath.Join(dir, "revocation.kzr"))
		if err != nil {
			return err
		}
		for _, p := range crls {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if _, err := rs.Import(bytes.NewReader(certDER(b)), store.Certificates()); err != nil {
				return fmt.Errorf("--crl %s: %w", p, err)
			}
		}
		val.Revocation = &revocation.Checker{Sets: rs}
	} else if *storePath != "" {
		rs, err := revocation.Open(*storePath)
		if err != nil {
			return err
		}
		val.Revocation = &revocation.Checker{Sets: rs}
	}
	v := val.Validate(ctx, pki.Request{Cert: certDER(raw), Expect: kind})
	certPrintVerdict(env.Stdout, v)
	if !v.Valid {
		return exitCode(1, nil)
	}
	return nil
}

func certPrintVerdict(w io.Writer, v *pki.Verdict) {
	if v.Cert != nil {
		fmt.Fprintf(w, "certificate: %s, serial %X\n", v.Cert.Subject, v.Cert.SerialNumber)
		fmt.Fprintf(w, "validity:    %s → %s\n", v.Cert.NotBefore.UTC().Format(time.RFC3339), v.Cert.NotAfter.UTC().Format(time.RFC3339))
		var pols []string
		for _, p := range v.Policy {
			pols = append(pols, p.String())
		}
		fmt.Fprintf(w, "policies:    %s\n", strings.Join(pols, ", "))
	}
	if v.Root != nil {
		fmt.Fprintf(w, "root:        %s\n", v.Root)
	}
	if !v.At.Time.IsZero() {
		fmt.Fprintf(w, "at:          %s\n", v.At.Time.UTC().Format(time.RFC3339))
	}
	switch {
	case v.RevocationChecked && len(v.Findings) == 0 || v.RevocationChecked && v.Revocation.Status != revocation.Unknown:
		fmt.Fprintf(w, "revocation:  %s (%s, nextUpdate %s)\n", v.Revocation.Status, v.Revocation.Source, v.Revocation.NextUpdate.UTC().Format(time.RFC3339))
	case !v.RevocationChecked:
		fmt.Fprintf(w, "revocation:  not checked (no --crl or --store)\n")
	}
	if v.Valid {
		fmt.Fprintln(w, "verdict:     VALID")
		return
	}
	fmt.Fprintln(w, "verdict:     INVALID")
	codes := make([]string, len(v.Findings))
	for i, f := range v.Findings {
		codes[i] = f.Reason.String()
	}
	fmt.Fprintf(w, "reasons:     %s\n", strings.Join(codes, ","))
	for _, f := range v.Findings {
		fmt.Fprintf(w, "  %s\n", f)
	}
}
