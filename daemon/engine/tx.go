package engine

import (
	"context"
	"fmt"
	"sync"

	"kazasu/daemon/api"
)

// tx is one transaction. The worker goroutine drives it; API calls hand
// over the PIN, the last-try confirmation and cancellation.
type tx struct {
	e       *Engine
	id      string
	reader  string
	service string

	ctx    context.Context
	cancel context.CancelCauseFunc

	mu        sync.Mutex
	st        api.TxStatus
	waitPIN   bool // pin-required: a PIN may be submitted now
	lastTry   bool // the next attempt is the last one
	confirmed bool // the person confirmed the last try
	pin       []byte
	pinReady  chan struct{} // signalled (buffered 1) when pin is set
	done      bool
}

// errCancelled is the cause of a transaction cancelled by the kiosk.
var errCancelled = fmt.Errorf("cancelled")

func newTx(e *Engine, id, reader, service string) *tx {
	ctx, cancel := context.WithCancelCause(context.Background())
	t := &tx{e: e, id: id, reader: reader, service: service, ctx: ctx, cancel: cancel, pinReady: make(chan struct{}, 1)}
	t.st = api.TxStatus{ID: id, Reader: reader, Service: service}
	return t
}

// publish updates the snapshot with f and publishes it.
func (t *tx) publish(f func(s *api.TxStatus)) api.TxStatus {
	t.mu.Lock()
	if t.done {
		st := t.st
		t.mu.Unlock()
		return st
	}
	f(&t.st)
	t.st.Updated = t.e.opts.Now()
	if t.st.Final {
		t.done = true
	}
	st := t.st
	t.mu.Unlock()
	t.e.broker.Publish(st)
	return st
}

func (t *tx) snapshot() api.TxStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st
}

func (t *tx) ended() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.done
}

// askPIN opens the PIN slot and publishes pin-required.
func (t *tx) askPIN(tries int, lastTry bool) {
	t.mu.Lock()
	t.waitPIN = true
	t.lastTry = lastTry
	if !lastTry {
		t.confirmed = false
	}
	t.mu.Unlock()
	n := tries
	t.publish(func(s *api.TxStatus) {
		s.State = api.StatePINRequired
		s.TriesLeft = &n
		s.LastTry = lastTry
	})
}

func (t *tx) submitPIN(pin []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.done:
		return fmt.Errorf("engine: %s: %w", t.id, api.ErrTxEnded)
	case !t.waitPIN:
		return fmt.Errorf("engine: %s is %s: %w", t.id, t.st.State, api.ErrWrongState)
	case t.lastTry && !t.confirmed:
		return fmt.Errorf("engine: %s: %w", t.id, api.ErrLastTryUnconfirm)
	}
	t.waitPIN = false
	t.pin = append(make([]byte, 0, len(pin)), pin...)
	select {
	case t.pinReady <- struct{}{}:
	default:
	}
	return nil
}

// takePIN waits for the PIN (or the end of ctx) and hands it over; the
// caller must clear() it after VERIFY. The second result is whether the
// person confirmed the last try.
func (t *tx) takePIN(ctx context.Context) ([]byte, bool, error) {
	select {
	case <-ctx.Done():
		t.mu.Lock()
		t.waitPIN = false
		if t.pin != nil {
			clear(t.pin)
			t.pin = nil
		}
		t.mu.Unlock()
		return nil, false, context.Cause(ctx)
	case <-t.pinReady:
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	pin, confirmed := t.pin, t.confirmed
	t.pin = nil
	return pin, confirmed, nil
}

func (t *tx) confirmLastTry() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.done:
		return fmt.Errorf("engine: %s: %w", t.id, api.ErrTxEnded)
	case !t.waitPIN || !t.lastTry:
		return fmt.Errorf("engine: %s: no last try to confirm: %w", t.id, api.ErrWrongState)
	}
	t.confirmed = true
	return nil
}

func (t *tx) cancelByUser() error {
	if t.ended() {
		return fmt.Errorf("engine: %s: %w", t.id, api.ErrTxEnded)
	}
	t.cancel(errCancelled)
	return nil
}
