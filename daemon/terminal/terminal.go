// Package terminal wires kazasud together from its configuration: readers,
// trust store and revocation set, validator, relay client, durable queue,
// audit log, the transaction engine, the local kiosk API and observability.
// It is the only package that imports all of them (tailscale's tsd.System
// pattern); daemon/cmd/kazasud and `kazasu demo` are thin shells around it.
//
// # Test mode
//
// With trust.test_mode on (the embedded default, which uses simulated
// readers) the terminal also trusts the JPKI-TEST hierarchy the simulated
// tokens are issued from (drivers/sim/testpki, seed card.DefaultPKISeed),
// keeps fresh test CRLs for its CAs in the revocation store, and creates a
// throwaway mutual-TLS setup for the relay when none exists. None of this
// happens without test mode: production trusts the embedded J-LIS roots and
// pinned additions only.
package terminal

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"

	"kazasu/boards"
	"kazasu/daemon/audit"
	"kazasu/daemon/config"
	"kazasu/daemon/engine"
	"kazasu/daemon/issuance"
	"kazasu/daemon/obs"
	"kazasu/daemon/pki"
	"kazasu/daemon/queue"
	"kazasu/daemon/quirks"
	"kazasu/daemon/relay"
	"kazasu/daemon/revocation"
	"kazasu/drivers/nfc"
	"kazasu/drivers/pn532"
	"kazasu/drivers/reader"
	"kazasu/drivers/sim/card"
	"kazasu/drivers/sim/testpki"
)

// Options adjust New; the zero value is production wiring.
type Options struct {
	Log *slog.Logger
	// OnReader is called with every reader the engine opens (the demo uses
	// it to reach the simulated fields).
	OnReader func(name string, r *reader.Reader)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Terminal is a wired kazasud.
type Terminal struct {
	Config     *config.Config
	Log        *slog.Logger
	Trust      *pki.TrustStore
	Revocation *revocation.Store
	Validator  *pki.Validator
	Relay      *relay.Client
	Queue      *queue.Queue
	Audit      *audit.Log
	Engine     *engine.Engine
	Quirks     *quirks.Set
	Metrics    *obs.Metrics
	Health     *obs.Health

	opts    Options
	journal *journal
	mu      sync.Mutex
	closers []func() error
}

// New builds a terminal from cfg. Nothing runs until Run.
func New(ctx context.Context, cfg *config.Config, opts Options) (_ *Terminal, err error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	t := &Terminal{Config: cfg, Log: opts.Log, opts: opts, Metrics: obs.NewMetrics(), Health: obs.NewHealth(2 * time.Second)}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("terminal: data dir: %w", err)
	}
	if err := t.buildTrust(); err != nil {
		return nil, err
	}
	if err := t.buildRelay(); err != nil {
		return nil, err
	}
	// When the CRL of an issuer is stale or missing, ask the issuance
	// service's status endpoint (the checker stays fail-closed otherwise).
	if c, ok := t.Validator.Revocation.(*revocation.Checker); ok {
		c.Online = onlineStatus{t.Relay}
	}
	q, err := queue.Open(filepath.Join(cfg.DataDir, "queue.db"), queue.Options{})
	if err != nil {
		return nil, fmt.Errorf("terminal: %w", err)
	}
	t.Queue = q
	t.closers = append(t.closers, q.Close)
	t.Metrics.RegisterQueue(q.Len, q.DeadLen)
	al, err := audit.Open(filepath.Join(cfg.DataDir, "audit"), audit.Options{Terminal: cfg.TerminalID})
	if err != nil {
		return nil, fmt.Errorf("terminal: %w", err)
	}
	t.Audit = al
	t.closers = append(t.closers, al.Close)
	if err := t.loadQuirks(); err != nil {
		return nil, err
	}
	t.journal = &journal{dir: filepath.Join(cfg.DataDir, "inflight")}
	if err := t.buildEngine(); err != nil {
		return nil, err
	}
	return t, nil
}

// buildTrust sets up the trust store, the revocation store and checker,
// and the validator.
func (t *Terminal) buildTrust() error {
	cfg := t.Config
	ts, err := pki.NewTrustStore()
	if err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	if cfg.Trust.RootsDir != "" {
		if err := addPinnedRoots(ts, cfg.Path(cfg.Trust.RootsDir), cfg.Trust.PinnedRoots); err != nil {
			return err
		}
	}
	store, err := revocation.Open(cfg.Path(cfg.Revocation.Store))
	if err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	t.Trust, t.Revocation = ts, store
	if cfg.Trust.TestMode {
		ts.EnableTestMode()
		if err := t.installTestHierarchy(); err != nil {
			return err
		}
	}
	checker := &revocation.Checker{Sets: store, FailOpen: !cfg.Revocation.FailClosed}
	clock := kernelClock()
	if cfg.Trust.TestMode {
		// Development machines and CI rarely run NTP; test mode trusts the
		// host's clock. Production refuses to judge validity on a clock the
		// kernel does not call synchronised.
		clock = pki.SystemClock(0)
		t.Log.Warn("test mode: trusting the host clock without checking its synchronisation")
	}
	t.Validator = &pki.Validator{
		Roots:      ts,
		Clock:      clock,
		Revocation: checker,
	}
	return nil
}

// addPinnedRoots adds every certificate file in dir whose SHA-256 is in
// pinned; a root that is not pinned is refused, loudly.
func addPinnedRoots(ts *pki.TrustStore, dir string, pinned []string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("terminal: trust.roots_dir: %w", err)
	}
	want := map[string]bool{}
	for _, p := range pinned {
		want[strings.ToLower(p)] = true
	}
	for _, e := range ents {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".pem") || strings.HasSuffix(e.Name(), ".der") || strings.HasSuffix(e.Name(), ".cer")) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		var added bool
		for fp := range want {
			if _, err := ts.AddPinnedFile(path, fp, 0); err == nil {
				added = true
				break
			} else if errors.Is(err, pki.ErrDuplicateRoot) {
				added = true
				break
			}
		}
		if !added {
			return fmt.Errorf("terminal: %s matches no fingerprint in trust.pinned_roots", path)
		}
	}
	return nil
}

// installTestHierarchy trusts the JPKI-TEST roots of the simulated tokens
// and keeps fresh (empty) test CRLs for them. Test mode only.
//
// The test hierarchy's keys are derived deterministically, which costs
// seconds of prime search; the root certificates are therefore cached in
// data_dir/test-roots, and keys are derived only when a test CRL must be
// re-signed (once a day), so a restart is fast.
func (t *Terminal) installTestHierarchy() error {
	h := testpki.New(card.DefaultPKISeed)
	now := t.opts.Now()
	set := t.Revocation.Set()
	cache := filepath.Join(t.Config.DataDir, "test-roots")
	if err := os.MkdirAll(cache, 0o750); err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	for gen := 1; gen <= 3; gen++ {
		for _, k := range []testpki.Kind{testpki.Auth, testpki.Sign} {
			name := filepath.Join(cache, fmt.Sprintf("%s-%s-gen%d.der", card.DefaultPKISeed, k, gen))
			var root *x509.Certificate
			if der, err := os.ReadFile(name); err == nil {
				if c, err := x509.ParseCertificate(der); err == nil {
					root = c
				}
			}
			if root == nil {
				c, _, err := h.RootE(k, gen)
				if err != nil {
					return fmt.Errorf("terminal: test hierarchy: %w", err)
				}
				root = c
				if err := os.WriteFile(name, c.Raw, 0o640); err != nil {
					return fmt.Errorf("terminal: %w", err)
				}
			}
			if _, err := t.Trust.AddTestRoot(root, gen); err != nil && !errors.Is(err, pki.ErrDuplicateRoot) {
				return fmt.Errorf("terminal: test root: %w", err)
			}
			if fresh(set, root, now) {
				continue
			}
			// A growing CRL number, so a refreshed CRL supersedes the last one.
			crl, err := h.CRL(k, gen, nil, now.Add(-time.Hour), now.Add(24*time.Hour), testpki.CRLOptions{Number: big.NewInt(now.Unix())})
			if err != nil {
				return fmt.Errorf("terminal: test CRL: %w", err)
			}
			if _, err := t.Revocation.Import(bytes.NewReader(crl), []*x509.Certificate{root}); err != nil {
				return fmt.Errorf("terminal: test CRL import: %w", err)
			}
		}
	}
	return nil
}

// fresh reports whether set holds a CRL of root's CA valid for at least
// another hour.
func fresh(set *revocation.Set, root *x509.Certificate, now time.Time) bool {
	info, ok := set.Info(revocation.IssuerIDOf(root))
	return ok && info.NextUpdate.After(now.Add(time.Hour))
}

func (t *Terminal) buildRelay() error {
	cfg := t.Config
	ca, cert, key := cfg.Path(cfg.Relay.CA), cfg.Path(cfg.Relay.ClientCert), cfg.Path(cfg.Relay.ClientKey)
	if cfg.Trust.TestMode {
		// A throwaway mutual-TLS setup, shared with `kazasu issuance serve
		// --tls-dir` when both point at the same directory.
		dir := filepath.Dir(ca)
		if filepath.Dir(cert) == dir && filepath.Dir(key) == dir {
			if err := issuance.EnsureTLS(dir, cfg.TerminalID, nil); err != nil {
				return fmt.Errorf("terminal: %w", err)
			}
		}
	}
	cc, err := relay.LoadClientConfig(cfg.Relay.URL, ca, cert, key)
	if err != nil {
		return fmt.Errorf("terminal: relay: %w", err)
	}
	if d := cfg.Relay.ConnectTimeout.D(); d > 0 {
		cc.ConnectTimeout = d
	}
	if d := cfg.Relay.RequestTimeout.D(); d > 0 {
		cc.RequestTimeout = d
	}
	if r := cfg.Relay.Retry; r.MaxAttempts > 0 {
		cc.Retry = relay.Retry{MaxAttempts: r.MaxAttempts, Initial: r.InitialBackoff.D(), Max: r.MaxBackoff.D()}
	}
	rc, err := relay.NewClient(cc)
	if err != nil {
		return fmt.Errorf("terminal: relay: %w", err)
	}
	t.Relay = rc
	t.closers = append(t.closers, func() error { rc.Close(); return nil })
	return nil
}

// loadQuirks loads data_dir/quirks.json when present.
func (t *Terminal) loadQuirks() error {
	p := filepath.Join(t.Config.DataDir, "quirks.json")
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	defer f.Close()
	s, err := quirks.Load(f)
	if err != nil {
		return fmt.Errorf("terminal: %s: %w", p, err)
	}
	t.Quirks = s
	t.Log.Info("quirk profiles loaded", "file", p, "profiles", len(s.Profiles))
	return nil
}

func modeOf(s string) nfc.ISODepMode {
	switch s {
	case "chip":
		return nfc.ISODepChip
	case "host":
		return nfc.ISODepHost
	}
	return nfc.ISODepAuto
}

func (t *Terminal) buildEngine() error {
	cfg := t.Config
	var readers []engine.Reader
	rcs := cfg.SortedReaders()
	var boardOpts *pn532.Opts
	if len(rcs) == 0 && cfg.Board != "" {
		rc, opts, err := boardReader(cfg.Board, cfg.BoardBus)
		if err != nil {
			return fmt.Errorf("terminal: %w", err)
		}
		rcs, boardOpts = []config.Reader{rc}, opts
		t.Log.Info("reader from the board profile", "board", cfg.Board, "uri", rc.URI)
	}
	for _, rc := range rcs {
		rc := rc
		mode := modeOf(rc.ISODEP)
		readers = append(readers, engine.Reader{
			Name: rc.Name,
			Poll: nfc.PollOptions{Mode: mode},
			Open: func(ctx context.Context) (nfc.Reader, error) {
				octx, cancel := context.WithTimeout(ctx, 15*time.Second)
				defer cancel()
				r, err := reader.Open(octx, rc.URI, reader.Options{Mode: mode, PN532: boardOpts})
				if err != nil {
					return nil, err
				}
				if t.opts.OnReader != nil {
					t.opts.OnReader(rc.Name, r)
				}
				return r, nil
			},
		})
	}
	spool := filepath.Join(cfg.DataDir, "spool")
	eng, err := engine.New(engine.Options{
		TerminalID: cfg.TerminalID,
		Readers:    readers,
		Services:   []string{"juminhyo", "inkan", "kazei"},
		Validator:  t.Validator,
		Relay:      t.Relay,
		Receipt:    t.enqueueReceipt,
		Document:   func(ticket string, doc relay.Document) error { return spoolDocument(spool, ticket, doc) },
		Audit:      t.appendAudit,
		Journal:    t.journal,
		Quirks:     t.Quirks,
		Timeouts: engine.Timeouts{
			Tap:     cfg.Timeouts.Tap.D(),
			PIN:     cfg.Timeouts.PIN.D(),
			Card:    max(cfg.Timeouts.Read.D(), cfg.Timeouts.Verify.D()),
			Relay:   cfg.Timeouts.Relay.D(),
			Removal: cfg.Timeouts.Remove.D(),
		},
		Metrics: engineMetrics{t.Metrics},
		Log:     t.Log,
		Now:     t.opts.Now,
	})
	if err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	t.Engine = eng
	t.Health.Register("readers", func(ctx context.Context) error { return eng.Ready() })
	t.Health.Register("clock", func(ctx context.Context) error {
		if r := t.Validator.Clock.Now(); !r.Synchronised {
			return errors.New("clock not synchronised")
		}
		return nil
	})
	return nil
}

// boardReader is the reader a board profile's PN532 wiring gives, with its
// RSTPDN and IRQ lines when periph finds them (on the board itself).
func boardReader(board, bus string) (config.Reader, *pn532.Opts, error) {
	p, err := boards.ByID(board)
	if err != nil {
		return config.Reader{}, nil, err
	}
	w := p.Default()
	if bus != "" {
		b, err := boards.ParseBus(bus)
		if err != nil {
			return config.Reader{}, nil, err
		}
		if w, err = p.Wiring(b); err != nil {
			return config.Reader{}, nil, err
		}
	}
	opts := &pn532.Opts{}
	if _, err := host.Init(); err == nil {
		names := w.GPIONames()
		if n, ok := names["RSTPDN"]; ok {
			if pin := gpioreg.ByName(n); pin != nil {
				opts.Reset = pin
			}
		}
		if n, ok := names["IRQ"]; ok {
			if pin := gpioreg.ByName(n); pin != nil {
				opts.IRQ = pin
			}
		}
	}
	return config.Reader{Name: "board", URI: w.ReaderURI(), ISODEP: "auto"}, opts, nil
}

// engineMetrics adapts obs.Metrics to the engine.
type engineMetrics struct{ m *obs.Metrics }

func (e engineMetrics) Tap(reader string)                 { e.m.Tap(reader, "") }
func (e engineMetrics) Transaction(outcome, token string) { e.m.Transaction(outcome, token) }
func (e engineMetrics) Step(step string, d time.Duration) { e.m.ObserveStep(step, d) }
func (e engineMetrics) ReaderError(reader, kind string)   { e.m.ReaderError(reader, kind) }

// enqueueReceipt puts a completion receipt in the durable queue.
func (t *Terminal) enqueueReceipt(ctx context.Context, r relay.Receipt) error {
	it, err := relay.ReceiptItem(r)
	if err != nil {
		return err
	}
	return t.Queue.Enqueue(ctx, it)
}

// appendAudit appends to the audit log and queues the record for upload.
func (t *Terminal) appendAudit(e audit.Entry) error {
	a, err := t.Audit.Append(e)
	if err != nil {
		return err
	}
	it, err := relay.AuditItem(t.Config.TerminalID, a.Seq, a.Line)
	if err != nil {
		return err
	}
	return t.Queue.Enqueue(context.Background(), it)
}

// spoolDocument writes an issued document for the printer, atomically.
func spoolDocument(dir, ticket string, doc relay.Document) error {
	if !relay.ValidKey(ticket) || strings.ContainsAny(ticket, "/\\") {
		return fmt.Errorf("terminal: ticket %q cannot name a spool file", ticket)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	ext := ".txt"
	if doc.ContentType == "application/pdf" {
		ext = ".pdf"
	}
	tmp, err := os.CreateTemp(dir, ".spool-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(doc.Data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, ticket+ext))
}

// Run runs the engine and the queue's delivery loop until ctx ends.
func (t *Terminal) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := t.Queue.Run(ctx, t.Relay.QueueSender()); err != nil && ctx.Err() == nil {
			t.Log.Error("queue delivery stopped", "err", err)
		}
	}()
	t.appendAudit(audit.Entry{Event: audit.EventDaemonStart})
	wg.Add(1)
	go func() { defer wg.Done(); t.recoverInFlight(ctx) }()
	err := t.Engine.Run(ctx)
	wg.Wait()
	t.appendAudit(audit.Entry{Event: audit.EventDaemonStop})
	return err
}

// Close releases what New opened, in reverse order.
func (t *Terminal) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for i := len(t.closers) - 1; i >= 0; i-- {
		errs = append(errs, t.closers[i]())
	}
	t.closers = nil
	return errors.Join(errs...)
}
