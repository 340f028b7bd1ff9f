package engine_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"math/big"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"kazasu/daemon/api"
	"kazasu/daemon/audit"
	"kazasu/daemon/engine"
	"kazasu/daemon/engine/enginetest"
	"kazasu/daemon/issuance"
	"kazasu/daemon/pki"
	"kazasu/daemon/revocation"
	"kazasu/drivers/reader"
	"kazasu/drivers/sim/card"
	"kazasu/drivers/sim/testpki"
)

// validator trusts the test hierarchy the simulated tokens are issued from.
func validator(t testing.TB, at time.Time) *pki.Validator { return enginetest.Validator(t, at, nil) }

func validatorWith(t testing.TB, at time.Time, rc pki.RevocationChecker) *pki.Validator {
	return enginetest.Validator(t, at, rc)
}

// harness is enginetest's harness with short names for these tests.
type harness struct {
	*enginetest.Harness
	eng *engine.Engine
	sim *reader.Sim
	svc *issuance.Service
	srv *httptest.Server
}

func wrap(h *enginetest.Harness) *harness {
	return &harness{Harness: h, eng: h.Engine, sim: h.Sim, svc: h.Service, srv: h.Server}
}

func newHarness(t *testing.T) *harness { return wrap(enginetest.New(t, enginetest.Options{})) }

func newHarnessWith(t *testing.T, val *pki.Validator) *harness {
	return wrap(enginetest.New(t, enginetest.Options{Validator: val}))
}

// newHarnessReaders runs the engine on the given readers instead of the
// simulated "sim0".
func newHarnessReaders(t *testing.T, readers []engine.Reader) *harness {
	return wrap(enginetest.New(t, enginetest.Options{Real: readers}))
}

// watcher collects a transaction's states.
type watcher struct {
	ch     <-chan api.Event
	cancel func()
	states []api.State
	last   api.TxStatus
}

func (h *harness) start(t *testing.T) (*watcher, string) {
	t.Helper()
	st, err := h.eng.Start(context.Background(), "sim0", "juminhyo")
	if err != nil {
		t.Fatal(err)
	}
	ch, cancel, err := h.eng.Subscribe(st.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	return &watcher{ch: ch, cancel: cancel}, st.ID
}

// until reads events until state s (or the end); it returns the snapshot.
func (w *watcher) until(t *testing.T, s api.State) api.TxStatus {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-w.ch:
			if !ok {
				t.Fatalf("stream ended before %s; states %v, last %+v", s, w.states, w.last)
			}
			if len(w.states) == 0 || w.states[len(w.states)-1] != ev.Tx.State {
				w.states = append(w.states, ev.Tx.State)
			}
			w.last = ev.Tx
			if ev.Tx.State == s {
				return ev.Tx
			}
			if ev.Tx.Final && s != "" {
				t.Fatalf("ended in %s (%s) before %s; states %v", ev.Tx.State, ev.Tx.Reason, s, w.states)
			}
		case <-timeout:
			t.Fatalf("no %s after 20s; states %v, last %+v", s, w.states, w.last)
		}
	}
}

// final reads until the final event.
func (w *watcher) final(t *testing.T) api.TxStatus {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-w.ch:
			if !ok {
				return w.last
			}
			if len(w.states) == 0 || w.states[len(w.states)-1] != ev.Tx.State {
				w.states = append(w.states, ev.Tx.State)
			}
			w.last = ev.Tx
			if ev.Tx.Final {
				return ev.Tx
			}
		case <-timeout:
			t.Fatalf("no final event; states %v", w.states)
		}
	}
}

func newToken(t *testing.T, kind card.Kind, opts card.Options) *card.Token {
	t.Helper()
	if opts.Seed == "" {
		opts.Seed = "engine"
	}
	tok, err := card.New(kind, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestCardTransaction(t *testing.T) {
	tok := newToken(t, card.KindMyNumber, card.Options{})
	h := newHarness(t)
	w, id := h.start(t)
	w.until(t, api.StateWaitingForTap)
	h.sim.Tap(tok)
	st := w.until(t, api.StatePINRequired)
	if st.TokenType != "card" || st.TriesLeft == nil || *st.TriesLeft != 3 || st.LastTry {
		t.Fatalf("pin-required: %+v", st)
	}
	if err := h.eng.SubmitPIN(context.Background(), id, []byte("1234")); err != nil {
		t.Fatal(err)
	}
	done := w.until(t, api.StateDone)
	if done.Ticket == "" {
		t.Fatalf("done without ticket: %+v", done)
	}
	w.until(t, api.StateRemoveCard)
	h.sim.Remove(tok)
	end := w.final(t)
	if end.State != api.StateRemoveCard || !end.Final {
		t.Fatalf("end %+v", end)
	}
	want := []api.State{api.StateWaitingForTap, api.StateReading, api.StatePINRequired, api.StateVerifying, api.StateRelaying, api.StateDone, api.StateRemoveCard}
	if len(w.states) != len(want) {
		t.Fatalf("states %v, want %v", w.states, want)
	}
	for i := range want {
		if w.states[i] != want[i] {
			t.Fatalf("states %v, want %v", w.states, want)
		}
	}
	if rc := h.Receipts(); len(rc) != 1 || rc[0].Ticket != done.Ticket {
		t.Fatalf("receipts %+v", rc)
	}
	var events []audit.Event
	for _, a := range h.Audits() {
		events = append(events, a.Event)
	}
	if events[0] != audit.EventTxStart || events[len(events)-1] != audit.EventIssued {
		t.Fatalf("audit %v", events)
	}
	if tok.Applet().Verified(card.AuthPIN) {
		t.Fatal("security state left on the card")
	}
}

func TestAndroidAndIPhone(t *testing.T) {
	android := newToken(t, card.KindAndroid, card.Options{})
	iphone := newToken(t, card.KindIPhone, card.Options{})
	h := newHarness(t)

	w, id := h.start(t)
	h.sim.Tap(android)
	st := w.until(t, api.StatePINRequired)
	if st.TokenType != "android" {
		t.Fatalf("%+v", st)
	}
	if err := h.eng.SubmitPIN(context.Background(), id, []byte("5678")); err != nil {
		t.Fatal(err)
	}
	w.until(t, api.StateDone)
	h.sim.Remove(android)
	w.final(t)

	// iPhone: not armed → arm-your-phone; armed → done without a PIN.
	w, _ = h.start(t)
	h.sim.Tap(iphone)
	w.until(t, api.StateArmYourPhone)
	iphone.Arm()
	done := w.until(t, api.StateDone)
	if done.TokenType != "iphone" || done.Ticket == "" {
		t.Fatalf("%+v", done)
	}
	for _, s := range w.states {
		if s == api.StatePINRequired {
			t.Fatal("an iPhone was asked for a PIN")
		}
	}
	h.sim.Remove(iphone)
	w.final(t)
}

func TestWrongPINThenRight(t *testing.T) {
	tok := newToken(t, card.KindMyNumber, card.Options{})
	h := newHarness(t)
	w, id := h.start(t)
	h.sim.Tap(tok)
	w.until(t, api.StatePINRequired)
	if err := h.eng.SubmitPIN(context.Background(), id, []byte("0000")); err != nil {
		t.Fatal(err)
	}
	st := w.until(t, api.StatePINRequired)
	if *st.TriesLeft != 2 {
		t.Fatalf("tries %d", *st.TriesLeft)
	}
	if err := h.eng.SubmitPIN(context.Background(), id, []byte("0000")); err != nil {
		t.Fatal(err)
	}
	st = w.until(t, api.StatePINRequired)
	if *st.TriesLeft != 1 || !st.LastTry {
		t.Fatalf("last try: %+v", st)
	}
	// The last try needs the person's confirmation first.
	if err := h.eng.SubmitPIN(context.Background(), id, []byte("1234")); !errors.Is(err, api.ErrLastTryUnconfirm) {
		t.Fatalf("unconfirmed last try: %v", err)
	}
	if err := h.eng.ConfirmLastTry(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if err := h.eng.SubmitPIN(context.Background(), id, []byte("1234")); err != nil {
		t.Fatal(err)
	}
	w.until(t, api.StateDone)
	if n, _ := tok.Tries(card.AuthPIN); n != 3 {
		t.Fatalf("counter not reset by the right PIN: %d", n)
	}
	h.sim.Remove(tok)
	w.final(t)
}

func TestFailures(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	run := func(tok *card.Token, wantReason string, act func(w *watcher, id string)) {
		t.Helper()
		w, id := h.start(t)
		if tok != nil {
			h.sim.Tap(tok)
		}
		if act != nil {
			act(w, id)
		}
		failed := w.until(t, api.StateFailed)
		if failed.Reason != wantReason {
			t.Fatalf("want failed %s; got %q, states %v", wantReason, failed.Reason, w.states)
		}
		if tok != nil {
			h.sim.Remove(tok)
		}
		if end := w.final(t); !end.Final {
			t.Fatalf("%s: not final", wantReason)
		}
	}
	blocked := newToken(t, card.KindMyNumber, card.Options{AuthPINTries: card.TriesBlocked})
	run(blocked, "pin_blocked", nil)
	run(newToken(t, card.KindJuki, card.Options{}), "unsupported_token", nil)
	run(newToken(t, card.KindNonJPKI, card.Options{}), "not_jpki", nil)
	// Removed during PIN entry.
	tok := newToken(t, card.KindMyNumber, card.Options{})
	run(tok, "card_removed", func(w *watcher, id string) {
		w.until(t, api.StatePINRequired)
		h.sim.Remove(tok)
	})
	// Cancelled while waiting for the PIN.
	run(newToken(t, card.KindMyNumber, card.Options{}), "cancelled", func(w *watcher, id string) {
		w.until(t, api.StatePINRequired)
		if err := h.eng.Cancel(ctx, id); err != nil {
			t.Fatal(err)
		}
	})
	// Nobody taps.
	run(nil, "tap_timeout", nil)
	// Service down: a clear failure.
	h.srv.Close()
	run(newToken(t, card.KindMyNumber, card.Options{}), "service_unavailable", func(w *watcher, id string) {
		w.until(t, api.StatePINRequired)
		h.eng.SubmitPIN(ctx, id, []byte("1234"))
	})
}

func TestAPIErrors(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if _, err := h.eng.Start(ctx, "nope", "juminhyo"); !errors.Is(err, api.ErrUnknownReader) {
		t.Fatal(err)
	}
	if _, err := h.eng.Start(ctx, "sim0", "pizza"); !errors.Is(err, api.ErrUnknownService) {
		t.Fatal(err)
	}
	_, id := h.start(t)
	if _, err := h.eng.Start(ctx, "sim0", "juminhyo"); !errors.Is(err, api.ErrReaderBusy) {
		t.Fatal(err)
	}
	if err := h.eng.SubmitPIN(ctx, id, []byte("1234")); !errors.Is(err, api.ErrWrongState) {
		t.Fatalf("PIN before pin-required: %v", err)
	}
	if err := h.eng.SubmitPIN(ctx, "tx-none", []byte("1234")); !errors.Is(err, api.ErrUnknownTx) {
		t.Fatal(err)
	}
	h.eng.Cancel(ctx, id)
	if rs := h.eng.Readers(ctx); len(rs) != 1 || rs[0].Name != "sim0" {
		t.Fatalf("%+v", rs)
	}
}

// identity issues a holder of the test hierarchy with options o, as card
// credentials.
func identity(t *testing.T, id string, o testpki.IssueOptions) *card.Credentials {
	t.Helper()
	ident, err := testpki.New(card.DefaultPKISeed).Issue(testpki.SamplePerson(id), o)
	if err != nil {
		t.Fatal(err)
	}
	return &card.Credentials{AuthCert: ident.AuthDER, AuthKey: ident.AuthKey, AuthCA: ident.AuthCADER,
		SignCert: ident.SignDER, SignKey: ident.SignKey, SignCA: ident.SignCADER}
}

// TestExpiredAndRevoked: the terminal refuses an expired certificate and a
// revoked one before anything is relayed, with the validation reason.
func TestExpiredAndRevoked(t *testing.T) {
	now := time.Now()
	h := testpki.New(card.DefaultPKISeed)
	expired := identity(t, "EXPIRED0001", testpki.IssueOptions{NotBefore: now.AddDate(-6, 0, 0), NotAfter: now.AddDate(0, 0, -1)})
	revoked := identity(t, "REVOKED0001", testpki.IssueOptions{Serial: big.NewInt(777001)})
	// A CRL of the generation-3 auth CA listing the revoked certificate.
	root, _, err := h.RootE(testpki.Auth, 3)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := h.CRL(testpki.Auth, 3, []testpki.Revoked{{Serial: big.NewInt(777001), Time: now.Add(-time.Hour), Reason: 1}},
		now.Add(-time.Hour), now.Add(24*time.Hour), testpki.CRLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := revocation.Open(filepath.Join(t.TempDir(), "revocation"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Import(bytes.NewReader(crl), []*x509.Certificate{root}); err != nil {
		t.Fatal(err)
	}
	// Every other CA must have a fresh CRL too (fail closed otherwise).
	for gen := 1; gen <= 3; gen++ {
		for _, k := range []testpki.Kind{testpki.Auth, testpki.Sign} {
			if k == testpki.Auth && gen == 3 {
				continue
			}
			r, _, err := h.RootE(k, gen)
			if err != nil {
				t.Fatal(err)
			}
			c, err := h.CRL(k, gen, nil, now.Add(-time.Hour), now.Add(24*time.Hour), testpki.CRLOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := store.Import(bytes.NewReader(c), []*x509.Certificate{r}); err != nil {
				t.Fatal(err)
			}
		}
	}
	hn := newHarnessWith(t, validatorWith(t, now, &revocation.Checker{Sets: store}))
	ctx := context.Background()
	for _, tc := range []struct {
		creds  *card.Credentials
		reason string
	}{
		{expired, "cert_expired"},
		{revoked, "cert_revoked"},
		{nil, ""}, // a good card still works with revocation checking on
	} {
		tok := newToken(t, card.KindMyNumber, card.Options{Seed: "engine-rev", Credentials: tc.creds})
		w, id := hn.start(t)
		hn.sim.Tap(tok)
		if tc.reason == "" {
			w.until(t, api.StatePINRequired)
			if err := hn.eng.SubmitPIN(ctx, id, []byte("1234")); err != nil {
				t.Fatal(err)
			}
			w.until(t, api.StateDone)
		} else {
			// The verdict arrives while the PIN is asked: the transaction
			// fails without a PIN being spent on a bad certificate.
			st := w.until(t, api.StateFailed)
			if st.Reason != tc.reason {
				t.Fatalf("reason %q, want %q", st.Reason, tc.reason)
			}
			if n, _ := tok.Tries(card.AuthPIN); n != 3 || tok.Applet().Verified(card.AuthPIN) {
				t.Fatalf("PIN touched for a bad certificate: tries %d", n)
			}
		}
		hn.sim.Remove(tok)
		w.final(t)
	}
	if n := hn.svc.Stats().Tickets; n != 1 {
		t.Fatalf("%d tickets issued, want 1 (only the good card)", n)
	}
}
