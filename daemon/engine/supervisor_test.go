package engine_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"kazasu/daemon/api"
	"kazasu/daemon/engine"
	"kazasu/daemon/relay"
	"kazasu/drivers/nfc"
)

// hungReader is a reader whose chip stopped answering: every poll times
// out. Reset works resetsOK times, then fails.
type hungReader struct {
	mu       sync.Mutex
	resets   int
	resetsOK int
	closed   bool
}

func (h *hungReader) Info() nfc.Info { return nfc.Info{Driver: "hung"} }
func (h *hungReader) Poll(ctx context.Context, o nfc.PollOptions) (nfc.Card, error) {
	return nil, nfc.Errorf("hung: InListPassiveTarget", nfc.ErrTimeout, "no ACK")
}
func (h *hungReader) SetField(context.Context, bool) error { return nil }
func (h *hungReader) Reset(context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.resets++
	if h.resets > h.resetsOK {
		return errors.New("chip does not come back")
	}
	return nil
}
func (h *hungReader) Close() error { h.mu.Lock(); h.closed = true; h.mu.Unlock(); return nil }

type noRelay struct{}

func (noRelay) Challenge(context.Context, relay.ChallengeRequest) (*relay.Challenge, error) {
	return nil, relay.ErrUnavailable
}
func (noRelay) Submit(context.Context, string, relay.Submission) (*relay.Issued, error) {
	return nil, relay.ErrUnavailable
}

// TestHungChipIsResetThenReopened: polls that keep timing out make the
// worker reset the reader; when the reset fails, the reader is reported
// offline and opened again.
func TestHungChipIsResetThenReopened(t *testing.T) {
	hr := &hungReader{resetsOK: 1}
	var mu sync.Mutex
	opens := 0
	eng, err := engine.New(engine.Options{
		TerminalID: "T-0001",
		Readers: []engine.Reader{{Name: "r0", Open: func(ctx context.Context) (nfc.Reader, error) {
			mu.Lock()
			defer mu.Unlock()
			opens++
			return hr, nil
		}}},
		Validator:    validator(t, time.Now()),
		Relay:        noRelay{},
		PollInterval: time.Millisecond,
		Timeouts:     engine.Timeouts{Tap: 10 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go eng.Run(ctx)
	for i := 0; eng.Ready() != nil; i++ {
		if i > 1000 {
			t.Fatal("never ready")
		}
		time.Sleep(2 * time.Millisecond)
	}
	st, err := eng.Start(ctx, "r0", "juminhyo")
	if err != nil {
		t.Fatal(err)
	}
	ch, stop, _ := eng.Subscribe(st.ID)
	defer stop()
	var last api.TxStatus
	for ev := range ch {
		last = ev.Tx
		if ev.Tx.Final {
			break
		}
	}
	if last.State != api.StateFailed || last.Reason != "reader_gone" {
		t.Fatalf("transaction ended %s/%s, want failed/reader_gone", last.State, last.Reason)
	}
	hr.mu.Lock()
	resets := hr.resets
	hr.mu.Unlock()
	if resets != 2 {
		t.Fatalf("%d resets, want 2 (one that worked, one that failed)", resets)
	}
	// The worker re-opens the lost reader.
	for i := 0; ; i++ {
		mu.Lock()
		n := opens
		mu.Unlock()
		if n >= 2 {
			break
		}
		if i > 2000 {
			t.Fatal("reader not re-opened")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
