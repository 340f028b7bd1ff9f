// Package enginetest runs a real transaction engine for tests: simulated
// readers, a validator that trusts the JPKI-TEST hierarchy of the simulated
// tokens, and the reference issuance service over mutual TLS on loopback.
// Tests tap tokens with Harness.Sim.Tap and drive the engine through its
// api.Engine methods (or an API server built on it).
package enginetest

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"kazasu/daemon/audit"
	"kazasu/daemon/engine"
	"kazasu/daemon/issuance"
	"kazasu/daemon/pki"
	"kazasu/daemon/quirks"
	"kazasu/daemon/relay"
	"kazasu/drivers/nfc"
	"kazasu/drivers/reader"
	"kazasu/drivers/sim/card"
	"kazasu/drivers/sim/testpki"
)

// TerminalID is the terminal the harness runs as.
const TerminalID = "T-0001"

// Validator returns a validator in test mode that trusts every generation
// of the test hierarchy's roots, with the clock fixed at at, and rc as its
// revocation checker (nil: no revocation checks).
func Validator(t testing.TB, at time.Time, rc pki.RevocationChecker) *pki.Validator {
	t.Helper()
	ts, err := pki.NewTrustStore()
	if err != nil {
		t.Fatal(err)
	}
	ts.EnableTestMode()
	h := testpki.New(card.DefaultPKISeed)
	for gen := 1; gen <= 3; gen++ {
		for _, k := range []testpki.Kind{testpki.Auth, testpki.Sign} {
			root, _, err := h.RootE(k, gen)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ts.AddTestRoot(root, gen); err != nil && !errors.Is(err, pki.ErrDuplicateRoot) {
				t.Fatal(err)
			}
		}
	}
	return &pki.Validator{Roots: ts, Clock: pki.FixedClock(at), Revocation: rc}
}

// issuanceValidator adapts pki.Validator to the reference service (the
// production adapter is terminal.IssuanceValidator; the engine's tests
// cannot import the wiring package).
type issuanceValidator struct{ v *pki.Validator }

func (iv issuanceValidator) ValidateAuth(ctx context.Context, cert, msg, sig []byte) (issuance.Verdict, error) {
	v := iv.v.Validate(ctx, pki.Request{Cert: cert, Expect: pki.KindAuth, Challenge: msg, Signature: sig})
	if v.Valid {
		return issuance.Verdict{Valid: true}, nil
	}
	return issuance.Verdict{Code: v.Reasons()[0].String()}, nil
}

// Options configure New. Zero values give one simulated reader "sim0",
// the juminhyo service and short timeouts.
type Options struct {
	// Readers names the simulated readers to create (default: sim0).
	Readers []string
	// Real, if set, replaces the simulated readers.
	Real      []engine.Reader
	Validator *pki.Validator // default: Validator(t, time.Now(), nil)
	Services  []string       // default: juminhyo
	Timeouts  engine.Timeouts
	Quirks    *quirks.Set
	// PollInterval (default 10ms) and IdleCheck (default 100ms).
	PollInterval, IdleCheck time.Duration
}

// Harness is a running engine with its peers.
type Harness struct {
	Engine    *engine.Engine
	Sims      map[string]*reader.Sim // simulated fields by reader name
	Sim       *reader.Sim            // the first reader's field
	Service   *issuance.Service
	Server    *httptest.Server // the issuance service (Close it to take it down)
	Validator *pki.Validator

	mu       sync.Mutex
	receipts []relay.Receipt
	audits   []audit.Entry
}

// Receipts returns the completion receipts the engine produced.
func (h *Harness) Receipts() []relay.Receipt {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]relay.Receipt(nil), h.receipts...)
}

// Audits returns the audit entries the engine recorded.
func (h *Harness) Audits() []audit.Entry {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]audit.Entry(nil), h.audits...)
}

// New starts the harness; everything stops at the end of the test.
func New(t testing.TB, o Options) *Harness {
	t.Helper()
	if o.Validator == nil {
		o.Validator = Validator(t, time.Now(), nil)
	}
	if len(o.Services) == 0 {
		o.Services = []string{"juminhyo"}
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 10 * time.Millisecond
	}
	if o.IdleCheck <= 0 {
		o.IdleCheck = 100 * time.Millisecond
	}
	if o.Timeouts == (engine.Timeouts{}) {
		o.Timeouts = engine.Timeouts{Tap: 2 * time.Second, PIN: 5 * time.Second, Removal: 2 * time.Second}
	}
	svc, err := issuance.New(issuance.Options{Validator: issuanceValidator{o.Validator}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := issuance.EnsureTLS(dir, TerminalID, nil); err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := issuance.ServerTLSConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(svc.Handler())
	srv.TLS = tlsCfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	cc, err := relay.LoadClientConfig("https://"+srv.Listener.Addr().String(), filepath.Join(dir, issuance.CAFile),
		filepath.Join(dir, issuance.ClientCertFile), filepath.Join(dir, issuance.ClientKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	cc.Retry = relay.Retry{MaxAttempts: 2, Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}
	rc, err := relay.NewClient(cc)
	if err != nil {
		t.Fatal(err)
	}
	h := &Harness{Sims: map[string]*reader.Sim{}, Service: svc, Server: srv, Validator: o.Validator}
	readers := o.Real
	if readers == nil {
		names := o.Readers
		if len(names) == 0 {
			names = []string{"sim0"}
		}
		for _, name := range names {
			rd, err := reader.Open(context.Background(), "sim:", reader.Options{})
			if err != nil {
				t.Fatal(err)
			}
			h.Sims[name] = rd.Sim()
			opened := false
			readers = append(readers, engine.Reader{Name: name, Open: func(ctx context.Context) (nfc.Reader, error) {
				if opened {
					return nil, errors.New("enginetest: simulated reader already open")
				}
				opened = true
				return rd, nil
			}})
		}
		h.Sim = h.Sims[names[0]]
	}
	h.Engine, err = engine.New(engine.Options{
		TerminalID: TerminalID,
		Readers:    readers,
		Services:   o.Services,
		Validator:  o.Validator,
		Relay:      rc,
		Quirks:     o.Quirks,
		Receipt: func(ctx context.Context, r relay.Receipt) error {
			h.mu.Lock()
			h.receipts = append(h.receipts, r)
			h.mu.Unlock()
			return nil
		},
		Audit: func(e audit.Entry) error {
			h.mu.Lock()
			h.audits = append(h.audits, e)
			h.mu.Unlock()
			return nil
		},
		PollInterval: o.PollInterval,
		IdleCheck:    o.IdleCheck,
		Timeouts:     o.Timeouts,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Engine.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; rc.Close() })
	deadline := time.Now().Add(60 * time.Second)
	for h.Engine.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatal("enginetest: no reader became ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return h
}
