package api

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
)

// Broker is a publish/subscribe hub with the semantics [Engine].Subscribe
// requires; an engine publishes every snapshot and delegates Subscribe.
// Publish never blocks: a subscriber whose buffer is full is dropped (its
// channel closed) and may subscribe again, getting fresh snapshots.
type Broker struct {
	buffer int
	keep   int

	mu     sync.Mutex
	seq    uint64
	last   map[string]Event // latest event per transaction
	ended  []string         // ended transactions, oldest first (bounded by keep)
	subs   map[*subscriber]struct{}
	closed bool
}

type subscriber struct {
	tx string // "" for all
	ch chan Event
}

// NewBroker returns a broker giving each subscriber buffer events of slack
// and remembering the last snapshot of up to keep ended transactions.
func NewBroker(buffer, keep int) *Broker {
	if buffer < 1 {
		buffer = 1
	}
	return &Broker{buffer: buffer, keep: keep, last: map[string]Event{}, subs: map[*subscriber]struct{}{}}
}

// Publish records st as the transaction's latest snapshot and sends it to
// the subscribers; it returns the event.
func (b *Broker) Publish(st TxStatus) Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	ev := Event{Seq: b.seq, Tx: st}
	prev, known := b.last[st.ID]
	b.last[st.ID] = ev
	if st.Final && !(known && prev.Tx.Final) {
		b.ended = append(b.ended, st.ID)
		for len(b.ended) > b.keep {
			delete(b.last, b.ended[0])
			b.ended = b.ended[1:]
		}
	}
	for s := range b.subs {
		if s.tx != "" && s.tx != st.ID {
			continue
		}
		select {
		case s.ch <- ev:
			if s.tx != "" && st.Final {
				b.drop(s)
			}
		default:
			b.drop(s) // fell behind
		}
	}
	return ev
}

func (b *Broker) drop(s *subscriber) {
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		close(s.ch)
	}
}

// Subscribe implements [Engine].Subscribe.
func (b *Broker) Subscribe(tx string) (<-chan Event, func(), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, nil, fmt.Errorf("api: broker closed: %w", ErrBusy)
	}
	var snap []Event
	if tx != "" {
		ev, ok := b.last[tx]
		if !ok {
			return nil, nil, fmt.Errorf("api: %q: %w", tx, ErrUnknownTx)
		}
		snap = append(snap, ev)
	} else {
		for _, ev := range b.last {
			if !ev.Tx.Final {
				snap = append(snap, ev)
			}
		}
		sortEvents(snap)
	}
	s := &subscriber{tx: tx, ch: make(chan Event, len(snap)+b.buffer)}
	for _, ev := range snap {
		s.ch <- ev
	}
	if tx != "" && snap[0].Tx.Final {
		close(s.ch)
		return s.ch, func() {}, nil
	}
	b.subs[s] = struct{}{}
	return s.ch, func() {
		b.mu.Lock()
		b.drop(s)
		b.mu.Unlock()
	}, nil
}

// Status returns the latest snapshot of tx.
func (b *Broker) Status(tx string) (TxStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ev, ok := b.last[tx]
	if !ok {
		return TxStatus{}, fmt.Errorf("api: %q: %w", tx, ErrUnknownTx)
	}
	return ev.Tx, nil
}

// Close drops every subscriber; later Subscribes fail.
func (b *Broker) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		b.drop(s)
	}
}

func sortEvents(evs []Event) {
	slices.SortFunc(evs, func(a, b Event) int { return cmp.Compare(a.Seq, b.Seq) })
}
