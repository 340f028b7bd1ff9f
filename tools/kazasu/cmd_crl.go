package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"kazasu/daemon/pki"
	"kazasu/daemon/revocation"
	"kazasu/drivers/sim/testpki"
)

const crlDefaultStore = "/var/lib/kazasu/revocation.kzr"

const crlUsage = `usage: kazasu crl import [--store PATH] [--roots DIR] [--test-roots] FILE
       kazasu crl check [--store PATH] [--issuer FINGERPRINT] [--at RFC3339] SERIAL
       kazasu crl bench [--n N] [--dir DIR]

import streams a CRL (DER or PEM; complete or delta) into the revocation
store, checking its signature against the trust store's roots. A complete
CRL replaces its issuer's entries; a delta replaces the previous delta over
its base (deltas are cumulative). Nothing changes on any error.

check looks SERIAL (hex; "0x" and colons allowed) up in the store, for the
issuer whose root SHA-256 fingerprint (or issuer key id, hex) starts with
FINGERPRINT, or for every issuer in the store. Exit 0: not revoked; 1:
revoked; 3: the issuer has no CRL in the store or its CRL is stale.

bench generates (once, cached in DIR) an N-entry CRL and compares, each in
its own process: crypto/x509.ParseRevocationList (baseline) against the
streaming ingest, store load and lookup; it prints times, peak RSS, bytes
per entry and the ratios.

  --store PATH      revocation store (default ` + crlDefaultStore + `)
  --roots DIR, --test-roots, --test-seed SEED   trust store, as for kazasu cert
  --n N             bench: revoked serials (default 10000000)
  --dir DIR         bench: where the CRL is cached (default the temp dir)`

func init() {
	// Child processes of `kazasu crl bench` measure one contender each.
	if mode := os.Getenv("KAZASU_CRL_BENCH_CHILD"); mode != "" {
		os.Exit(crlBenchChild(mode, os.Getenv("KAZASU_CRL_BENCH_FILE")))
	}
	register(&command{
		Name:    "crl",
		Summary: "import CRLs into the revocation store, check serials, benchmark",
		Usage:   crlUsage,
		Run:     runCRL,
	})
}

func runCRL(ctx context.Context, env *Env) error {
	if len(env.Args) == 0 {
		return errUsage
	}
	switch env.Args[0] {
	case "import":
		return runCRLImport(env, env.Args[1:])
	case "check":
		return runCRLCheck(env, env.Args[1:])
	case "bench":
		return runCRLBench(ctx, env, env.Args[1:])
	}
	return errUsage
}

func runCRLImport(env *Env, args []string) error {
	fs := flag.NewFlagSet("crl import", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cf certFlags
	cf.register(fs)
	storePath := fs.String("store", crlDefaultStore, "")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		return errUsage
	}
	ts, err := cf.trustStore()
	if err != nil {
		return err
	}
	st, err := revocation.Open(*storePath)
	if err != nil {
		return err
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	// PEM is small enough to decode whole only when it is PEM; DER streams.
	head := make([]byte, 11)
	n, _ := io.ReadFull(f, head)
	if bytes.HasPrefix(head[:n], []byte("-----BEGIN ")) {
		rest, err := io.ReadAll(f)
		if err != nil {
			return err
		}
		r = bytes.NewReader(certDER(append(head[:n], rest...)))
	} else {
		r = io.MultiReader(bytes.NewReader(head[:n]), f)
	}
	start := time.Now()
	info, err := st.Import(r, ts.Certificates())
	if err != nil {
		return exitCode(1, err)
	}
	kind := "complete"
	if info.IsDelta() {
		kind = fmt.Sprintf("delta (base #%v)", info.BaseNumber)
	}
	fmt.Fprintf(env.Stdout, "imported %s CRL #%v from %s\n", kind, info.Number, crlIssuerName(ts, info.Issuer))
	fmt.Fprintf(env.Stdout, "  entries %d (removeFromCRL %d), thisUpdate %s, nextUpdate %s, %s\n", info.Entries, info.Removed,
		info.ThisUpdate.UTC().Format(time.RFC3339), info.NextUpdate.UTC().Format(time.RFC3339), time.Since(start).Round(time.Millisecond))
	set := st.Set()
	fmt.Fprintf(env.Stdout, "store %s: %d issuers, %d revoked serials, %d bytes\n", st.Path(), len(set.Issuers()), set.Len(), set.Size())
	return nil
}

// crlIssuerName describes an issuer key id by the root it belongs to.
func crlIssuerName(ts *pki.TrustStore, id revocation.IssuerID) string {
	for _, r := range ts.Roots() {
		if revocation.IssuerIDOf(r.Cert) == id {
			t := ""
			if r.Test {
				t = " TEST"
			}
			return fmt.Sprintf("%s%s generation %d (root SHA-256 %s)", r.Kind, t, r.Generation, r.Fingerprint())
		}
	}
	return "issuer key " + id.String()
}

func runCRLCheck(env *Env, args []string) error {
	fs := flag.NewFlagSet("crl check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cf certFlags
	cf.register(fs)
	storePath := fs.String("store", crlDefaultStore, "")
	issuer := fs.String("issuer", "", "")
	at := fs.String("at", "", "")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		return errUsage
	}
	now := time.Now()
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return fmt.Errorf("%w: --at: %v", errUsage, err)
		}
		now = t
	}
	hexSerial := strings.NewReplacer("0x", "", "0X", "", ":", "", " ", "").Replace(fs.Arg(0))
	serial, ok := new(big.Int).SetString(hexSerial, 16)
	if !ok || hexSerial == "" {
		return fmt.Errorf("%w: serial %q is not hex", errUsage, fs.Arg(0))
	}
	ts, err := cf.trustStore()
	if err != nil {
		return err
	}
	st, err := revocation.Open(*storePath)
	if err != nil {
		return err
	}
	set := st.Set()
	want := strings.ToLower(strings.ReplaceAll(*issuer, ":", ""))
	matched, revoked, unusable := 0, false, false
	for _, info := range set.Issuers() {
		if want != "" && !strings.HasPrefix(info.Issuer.String(), want) && !crlRootMatches(ts, info.Issuer, want) {
			continue
		}
		matched++
		state := "not revoked"
		if set.Revoked(info.Issuer, revocation.SerialBytes(serial)) {
			state, revoked = "REVOKED", true
		}
		fresh := "fresh"
		if info.NextUpdate.IsZero() || now.After(info.NextUpdate) {
			fresh, unusable = "STALE", true
		}
		fmt.Fprintf(env.Stdout, "%X: %s by %s (CRL #%v, nextUpdate %s, %s)\n", serial, state, crlIssuerName(ts, info.Issuer), info.Number,
			info.NextUpdate.UTC().Format(time.RFC3339), fresh)
	}
	switch {
	case revoked:
		return exitCode(1, nil)
	case matched == 0:
		return exitCode(3, fmt.Errorf("no CRL in %s for issuer %q", st.Path(), *issuer))
	case unusable:
		return exitCode(3, fmt.Errorf("CRL stale: status unknown"))
	}
	return nil
}

func crlRootMatches(ts *pki.TrustStore, id revocation.IssuerID, prefix string) bool {
	for _, r := range ts.Roots() {
		if revocation.IssuerIDOf(r.Cert) == id && strings.HasPrefix(strings.ToLower(r.Fingerprint()), prefix) {
			return true
		}
	}
	return false
}

// crlBenchResult is what a bench child reports on stdout.
type crlBenchResult struct {
	Seconds   float64 `json:"seconds"`     // wall time of the measured section
	CPU       float64 `json:"cpu_seconds"` // process CPU (all threads, GC included) of the section
	Entries   int     `json:"entries"`
	SetBytes  int     `json:"set_bytes,omitempty"`
	LookupNS  float64 `json:"lookup_ns,omitempty"`
	WarmNS    float64 `json:"warm_ns,omitempty"`
	HeapBytes uint64  `json:"heap_bytes,omitempty"`
}

const crlBenchSeed = "kazasu-crl-bench"

func crlBenchChild(mode, file string) int {
	res, err := crlBenchRun(mode, file)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench %s: %v\n", mode, err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

func crlBenchRoots() []*x509.Certificate {
	c, _, err := testpki.New(crlBenchSeed).RootE(testpki.Auth, 3)
	if err != nil {
		panic(err)
	}
	return []*x509.Certificate{c}
}

func crlBenchRun(mode, file string) (crlBenchResult, error) {
	var res crlBenchResult
	roots := crlBenchRoots() // before the clock starts: key derivation is setup
	runtime.GC()
	cpu0 := crlCPU(syscall.RUSAGE_SELF)
	start := time.Now()
	switch mode {
	case "baseline":
		der, err := os.ReadFile(file)
		if err != nil {
			return res, err
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return res, err
		}
		res.Entries = len(crl.RevokedCertificateEntries)
		runtime.KeepAlive(crl)
	case "ingest":
		f, err := os.Open(file)
		if err != nil {
			return res, err
		}
		defer f.Close()
		in, err := revocation.Ingest(f, roots)
		if err != nil {
			return res, err
		}
		res.Entries = in.Info.Entries
	case "import":
		f, err := os.Open(file)
		if err != nil {
			return res, err
		}
		defer f.Close()
		st, err := revocation.Open(file + ".store")
		if err != nil {
			return res, err
		}
		if _, err := st.Import(f, roots); err != nil {
			return res, err
		}
		res.Entries, res.SetBytes = st.Set().Len(), st.Set().Size()
	case "load", "lookup":
		st, err := revocation.Open(file + ".store")
		if err != nil {
			return res, err
		}
		set := st.Set()
		res.Entries, res.SetBytes = set.Len(), set.Size()
		if mode == "load" {
			break
		}
		id := revocation.IssuerIDOf(roots[0])
		// Probes over the whole set, half listed serials, half not.
		rng := rand.New(rand.NewPCG(1, 1))
		const probes = 1 << 20
		// One contiguous buffer: the probes themselves should not cost
		// cache misses the set does not cause.
		keys := make([][]byte, probes)
		flat := make([]byte, 20*probes)
		for i := range keys {
			s := testpki.BenchSerial(rng.IntN(res.Entries), flat[20*i:20*i+20])
			if i%2 == 1 {
				s[len(s)-1] ^= 0x5a
			}
			keys[i] = s
		}
		hits := 0
		// Thread CPU time, not wall time: the figure must not depend on
		// what else the machine runs.
		runtime.LockOSThread()
		t0 := crlCPU(1) // RUSAGE_THREAD
		for _, k := range keys {
			if set.Revoked(id, k) {
				hits++
			}
		}
		res.LookupNS = float64(crlCPU(1)-t0) / probes
		// Warm: the first 4096 probes again and again, so the set's lines
		// they touch stay in cache: the lookup's own cost.
		t0 = crlCPU(1)
		for range 256 {
			for _, k := range keys[:4096] {
				if set.Revoked(id, k) {
					hits++
				}
			}
		}
		res.WarmNS = float64(crlCPU(1)-t0) / (256 * 4096)
		runtime.UnlockOSThread()
		if hits < probes/2 {
			return res, fmt.Errorf("only %d of %d listed serials found", hits, probes/2)
		}
	case "latency":
		// The machine's dependent random-load latency over an array the
		// size of the loaded set: the floor for any lookup that must touch
		// memory the caches do not hold.
		st, err := os.Stat(file + ".store")
		if err != nil {
			return res, err
		}
		n := max(int(st.Size())/8, 1<<16)
		a := make([]uint64, n)
		rng := rand.New(rand.NewPCG(2, 2))
		perm := rng.Perm(n)
		for i := range n {
			a[perm[i]] = uint64(perm[(i+1)%n])
		}
		runtime.LockOSThread()
		const steps = 1 << 20
		t0 := crlCPU(1)
		p := uint64(0)
		for range steps {
			p = a[p]
		}
		res.LookupNS = float64(crlCPU(1)-t0) / steps
		runtime.UnlockOSThread()
		runtime.KeepAlive(p)
		res.Entries = n
	default:
		return res, fmt.Errorf("unknown mode %q", mode)
	}
	res.Seconds = time.Since(start).Seconds()
	res.CPU = (crlCPU(syscall.RUSAGE_SELF) - cpu0).Seconds()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapBytes = ms.HeapInuse
	return res, nil
}

func runCRLBench(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("crl bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	n := fs.Int("n", 10_000_000, "")
	dir := fs.String("dir", os.TempDir(), "")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 || *n <= 0 {
		return errUsage
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	t0 := time.Now()
	file, err := testpki.New(crlBenchSeed).BenchCRL(*dir, *n)
	if err != nil {
		return err
	}
	st, err := os.Stat(file)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "CRL %s: %d entries, %d bytes (ready in %s)\n", file, *n, st.Size(), time.Since(t0).Round(time.Millisecond))
	os.Remove(file + ".store")
	defer os.Remove(file + ".store")

	type row struct {
		mode string
		res  crlBenchResult
		rss  int64 // peak RSS of the child process, bytes
	}
	var rows []row
	for _, mode := range []string{"baseline", "ingest", "import", "load", "lookup", "latency"} {
		cmd := exec.CommandContext(ctx, exe)
		cmd.Env = append(os.Environ(), "KAZASU_CRL_BENCH_CHILD="+mode, "KAZASU_CRL_BENCH_FILE="+file, "GODEBUG=")
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stderr = env.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("bench child %s: %w", mode, err)
		}
		var r row
		r.mode = mode
		if err := json.Unmarshal(out.Bytes(), &r.res); err != nil {
			return fmt.Errorf("bench child %s: %w (%q)", mode, err, out.String())
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.rss = int64(ru.Maxrss) * 1024 // Linux reports KiB (int32 on 32-bit arm)
		}
		rows = append(rows, r)
	}
	tw := tabwriter.NewWriter(env.Stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "contender\tentries\twall\tCPU\tpeak RSS\tnotes")
	for _, r := range rows {
		note := ""
		switch r.mode {
		case "baseline":
			note = "os.ReadFile + x509.ParseRevocationList (no signature check)"
		case "ingest":
			note = "streaming parse + SHA-256 + RSA check + compact set in memory"
		case "import":
			note = fmt.Sprintf("ingest + write store + reload; set %d bytes", r.res.SetBytes)
		case "load":
			note = fmt.Sprintf("open store (checksum + full structure check); %.2f bytes/entry", float64(r.res.SetBytes)/float64(r.res.Entries))
		case "lookup":
			note = fmt.Sprintf("%.1f ns/lookup over 1Mi random probes (half listed); %.1f ns warm (4Ki probes repeated)", r.res.LookupNS, r.res.WarmNS)
		case "latency":
			note = fmt.Sprintf("%.1f ns per dependent random load in an array of the set's size", r.res.LookupNS)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.3fs\t%.3fs\t%s\t%s\n", r.mode, r.res.Entries, r.res.Seconds, r.res.CPU, crlMiB(r.rss), note)
	}
	tw.Flush()
	base, ing, load := rows[0], rows[1], rows[3]
	if base.res.Entries != ing.res.Entries {
		return fmt.Errorf("entry counts differ: baseline %d, ingest %d", base.res.Entries, ing.res.Entries)
	}
	fmt.Fprintf(env.Stdout, "\n(CPU = process user+system time of the measured section, all threads; wall time depends on machine load)\n")
	fmt.Fprintf(env.Stdout, "ingest speed vs ParseRevocationList: %.1fx less CPU, %.1fx less wall time (target >= 10x)\n", base.res.CPU/ing.res.CPU, base.res.Seconds/ing.res.Seconds)
	fmt.Fprintf(env.Stdout, "ingest peak RSS vs ParseRevocationList: %.3f (target <= 0.100)\n", float64(ing.rss)/float64(base.rss))
	fmt.Fprintf(env.Stdout, "resident set: %.2f bytes/entry in the loaded set (target <= 8); load peak RSS %s\n", float64(load.res.SetBytes)/float64(load.res.Entries), crlMiB(load.rss))
	fmt.Fprintf(env.Stdout, "lookup: %.1f ns thread CPU per cold lookup (target <= 100) = %.1f x this machine's dependent memory load (%.1f ns); %.1f ns warm\n",
		rows[4].res.LookupNS, rows[4].res.LookupNS/rows[5].res.LookupNS, rows[5].res.LookupNS, rows[4].res.WarmNS)
	return nil
}

// crlCPU returns user+system CPU time of the process or (who = 1,
// RUSAGE_THREAD) the calling thread.
func crlCPU(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func crlMiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
