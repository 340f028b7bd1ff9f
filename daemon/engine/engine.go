// Package engine is kazasud's transaction engine: one worker per reader that
// opens the reader (and re-opens it after loss), waits for a tap when the
// kiosk starts a transaction, runs the JPKI user authentication on the card
// or phone, validates the certificate, fetches the issuance service's
// challenge, has the token sign it, checks the signature and relays the
// request — reporting every step to the kiosk API as events.
//
// # The flow per token type (jpki.md §5.5, §8)
//
//	card     read cert ─┬─ validate (in the background) ─┐
//	                    └─ PIN status → pin-required → VERIFY ─┴→ challenge → sign → check → relay
//	android  PIN status → pin-required → VERIFY → read cert → validate → challenge → sign → check → relay
//	iphone   read cert (not armed: arm-your-phone, wait for the armed re-tap) → validate → challenge → sign → check → relay
//
// The challenge is fetched while the person types the PIN, so after Enter
// the person waits only for VERIFY, the signature, the local check and the
// relay. Cancel, removal and timeouts end a transaction at any step with a
// reason code; nothing about the PIN is kept (it is zeroed after VERIFY).
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"kazasu/daemon/api"
	"kazasu/daemon/audit"
	"kazasu/daemon/pki"
	"kazasu/daemon/quirks"
	"kazasu/daemon/relay"
	"kazasu/drivers/nfc"
)

// Validator validates certificates and challenge signatures (*pki.Validator).
type Validator interface {
	Validate(ctx context.Context, req pki.Request) *pki.Verdict
}

// Relay is the issuance service client (*relay.Client).
type Relay interface {
	Challenge(ctx context.Context, r relay.ChallengeRequest) (*relay.Challenge, error)
	Submit(ctx context.Context, key string, s relay.Submission) (*relay.Issued, error)
}

// Reader describes one configured reader.
type Reader struct {
	Name string // [a-z0-9_-]{1,32}
	// Open opens the reader; the engine calls it again after the reader is
	// lost (backoff between tries).
	Open func(ctx context.Context) (nfc.Reader, error)
	// Poll is the poll order and ISO-DEP mode.
	Poll nfc.PollOptions
}

// Timeouts bound the steps a person controls or a peer may stall.
type Timeouts struct {
	Tap     time.Duration // waiting for a tap (default 60s)
	PIN     time.Duration // waiting for the PIN (default 60s)
	Card    time.Duration // one card step, e.g. signing (default 10s)
	Relay   time.Duration // challenge + submission (default 20s)
	Removal time.Duration // waiting for the card to leave after the end (default 30s)
}

func (t Timeouts) withDefaults() Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Tap, 60*time.Second)
	def(&t.PIN, 60*time.Second)
	def(&t.Card, 10*time.Second)
	def(&t.Relay, 20*time.Second)
	def(&t.Removal, 30*time.Second)
	return t
}

// Journal records in-flight submissions (see Options.Journal).
type Journal interface {
	// Begin durably records s (keyed by its transaction id) before it is
	// sent; an error stops the transaction before anything is sent.
	Begin(ctx context.Context, s relay.Submission) error
	// End removes the record once the outcome is durable elsewhere (the
	// receipt queued) or the service refused the submission.
	End(txID string) error
}

// Metrics receives measurements (daemon/obs implements it). All methods
// must be cheap and safe for concurrent use.
type Metrics interface {
	Tap(reader string)
	Transaction(outcome, token string)
	Step(step string, d time.Duration)
	ReaderError(reader, kind string)
}

type noMetrics struct{}

func (noMetrics) Tap(string)                      {}
func (noMetrics) Transaction(string, string)      {}
func (noMetrics) Step(string, time.Duration)      {}
func (noMetrics) ReaderError(reader, kind string) {}

// Options configure New.
type Options struct {
	TerminalID string
	Readers    []Reader
	// Services lists the service codes the kiosk may request.
	Services  []string
	Validator Validator
	Relay     Relay
	// Receipt is called with the completion receipt of every issued
	// document (normally: enqueue in the durable store-and-forward queue).
	// An error fails nothing (the document was issued) but is logged.
	Receipt func(ctx context.Context, r relay.Receipt) error
	// Document receives the issued document for printing; nil discards it.
	Document func(ticket string, doc relay.Document) error
	// Audit records transaction events (PII-free); nil records nothing.
	Audit func(audit.Entry) error
	// Journal makes each submission durable before it is sent, so that a
	// crash in the middle of the relay is finished after a restart:
	// nothing lost, nothing issued twice (the service deduplicates by the
	// idempotency key). Nil: no journal.
	Journal Journal
	// Quirks tune timeouts, read sizes, ISO-DEP mode and poll order per
	// token (derived by kazasu compat); nil means defaults.
	Quirks   *quirks.Set
	Timeouts Timeouts
	// PollInterval is the pause between poll cycles (default 150ms) and
	// between presence checks.
	PollInterval time.Duration
	// IdleCheck is how often an idle reader is checked (Ping, where the
	// reader has one); default 5s.
	IdleCheck time.Duration
	Metrics   Metrics
	Log       *slog.Logger
	Now       func() time.Time
}

// Engine runs transactions; it implements api.Engine.
type Engine struct {
	opts    Options
	broker  *api.Broker
	workers map[string]*worker
	order   []string
	svc     map[string]bool

	mu  sync.Mutex
	txs map[string]*tx
}

var _ api.Engine = (*Engine)(nil)

var reName = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// New checks opts and builds an engine; Run starts it.
func New(opts Options) (*Engine, error) {
	if opts.TerminalID == "" {
		return nil, errors.New("engine: terminal id is empty")
	}
	if opts.Validator == nil || opts.Relay == nil {
		return nil, errors.New("engine: a validator and a relay are required")
	}
	if len(opts.Readers) == 0 {
		return nil, errors.New("engine: no readers")
	}
	if len(opts.Services) == 0 {
		opts.Services = []string{"juminhyo"}
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 150 * time.Millisecond
	}
	if opts.Metrics == nil {
		opts.Metrics = noMetrics{}
	}
	if opts.IdleCheck <= 0 {
		opts.IdleCheck = 5 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Timeouts = opts.Timeouts.withDefaults()
	e := &Engine{opts: opts, broker: api.NewBroker(64, 256), workers: map[string]*worker{}, svc: map[string]bool{}, txs: map[string]*tx{}}
	for _, s := range opts.Services {
		e.svc[s] = true
	}
	for _, r := range opts.Readers {
		if !reName.MatchString(r.Name) {
			return nil, fmt.Errorf("engine: reader name %q: want [a-z0-9_-]{1,32}", r.Name)
		}
		if _, dup := e.workers[r.Name]; dup {
			return nil, fmt.Errorf("engine: reader %q configured twice", r.Name)
		}
		if r.Open == nil {
			return nil, fmt.Errorf("engine: reader %q has no Open", r.Name)
		}
		e.workers[r.Name] = &worker{e: e, spec: r, start: make(chan *tx, 1), state: api.ReaderOffline, errCode: "not_opened"}
		e.order = append(e.order, r.Name)
	}
	return e, nil
}

// Run runs the reader workers until ctx ends. It returns nil on
// cancellation.
func (e *Engine) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, name := range e.order {
		w := e.workers[name]
		wg.Add(1)
		go func() { defer wg.Done(); w.run(ctx) }()
	}
	wg.Wait()
	e.broker.Close()
	return nil
}

// Ready reports whether at least one reader is open (for /readyz).
func (e *Engine) Ready() error {
	for _, name := range e.order {
		w := e.workers[name]
		w.mu.Lock()
		st := w.state
		w.mu.Unlock()
		if st != api.ReaderOffline {
			return nil
		}
	}
	return errors.New("no reader is open")
}

// Readers implements api.Engine.
func (e *Engine) Readers(ctx context.Context) []api.ReaderStatus {
	out := make([]api.ReaderStatus, 0, len(e.order))
	for _, name := range e.order {
		w := e.workers[name]
		w.mu.Lock()
		rs := api.ReaderStatus{Name: name, State: w.state}
		if w.state == api.ReaderOffline {
			rs.Error = w.errCode
		}
		if w.cur != nil {
			rs.TransactionID = w.cur.id
		}
		w.mu.Unlock()
		out = append(out, rs)
	}
	return out
}

func newTxID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return "tx-" + hex.EncodeToString(b[:])
}

// Start implements api.Engine.
func (e *Engine) Start(ctx context.Context, readerName, service string) (api.TxStatus, error) {
	w, ok := e.workers[readerName]
	if !ok {
		return api.TxStatus{}, fmt.Errorf("engine: %q: %w", readerName, api.ErrUnknownReader)
	}
	if !e.svc[service] {
		return api.TxStatus{}, fmt.Errorf("engine: %q: %w", service, api.ErrUnknownService)
	}
	w.mu.Lock()
	if w.state == api.ReaderOffline {
		w.mu.Unlock()
		return api.TxStatus{}, fmt.Errorf("engine: %s (%s): %w", readerName, w.errCode, api.ErrReaderOffline)
	}
	if w.cur != nil {
		id := w.cur.id
		w.mu.Unlock()
		return api.TxStatus{}, fmt.Errorf("engine: %s runs %s: %w", readerName, id, api.ErrReaderBusy)
	}
	t := newTx(e, newTxID(), readerName, service)
	w.cur = t
	w.state = api.ReaderBusy
	w.mu.Unlock()
	e.mu.Lock()
	e.txs[t.id] = t
	e.gcLocked()
	e.mu.Unlock()
	st := t.publish(func(s *api.TxStatus) { s.State = api.StateWaitingForTap })
	e.audit(audit.Entry{Event: audit.EventTxStart, TxID: t.id, Reader: readerName, Service: service})
	w.start <- t
	return st, nil
}

// gcLocked forgets ended transactions beyond the last 256.
func (e *Engine) gcLocked() {
	if len(e.txs) <= 512 {
		return
	}
	for id, t := range e.txs {
		if t.ended() {
			delete(e.txs, id)
		}
		if len(e.txs) <= 256 {
			return
		}
	}
}

func (e *Engine) lookup(id string) (*tx, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.txs[id]
	if !ok {
		return nil, fmt.Errorf("engine: %q: %w", id, api.ErrUnknownTx)
	}
	return t, nil
}

// SubmitPIN implements api.Engine. The PIN is copied once into the
// transaction's hand-over slot and zeroed by the worker after VERIFY.
func (e *Engine) SubmitPIN(ctx context.Context, id string, pin []byte) error {
	t, err := e.lookup(id)
	if err != nil {
		return err
	}
	return t.submitPIN(pin)
}

// ConfirmLastTry implements api.Engine.
func (e *Engine) ConfirmLastTry(ctx context.Context, id string) error {
	t, err := e.lookup(id)
	if err != nil {
		return err
	}
	return t.confirmLastTry()
}

// Cancel implements api.Engine.
func (e *Engine) Cancel(ctx context.Context, id string) error {
	t, err := e.lookup(id)
	if err != nil {
		return err
	}
	return t.cancelByUser()
}

// Status implements api.Engine.
func (e *Engine) Status(ctx context.Context, id string) (api.TxStatus, error) {
	t, err := e.lookup(id)
	if err != nil {
		return api.TxStatus{}, err
	}
	return t.snapshot(), nil
}

// Subscribe implements api.Engine.
func (e *Engine) Subscribe(id string) (<-chan api.Event, func(), error) {
	if id != "" {
		if _, err := e.lookup(id); err != nil {
			return nil, nil, err
		}
	}
	return e.broker.Subscribe(id)
}

func (e *Engine) audit(en audit.Entry) {
	if e.opts.Audit == nil {
		return
	}
	if err := e.opts.Audit(en); err != nil {
		e.opts.Log.Error("audit append failed", "event", string(en.Event), "err", err)
	}
}
