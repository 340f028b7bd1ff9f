// Package queue is kazasud's durable store-and-forward queue: what must
// reach the issuance service even when it is down (completion receipts,
// audit records for upload) is written to a bbolt file and delivered by a
// loop that retries with bounded, jittered exponential backoff.
//
// # Guarantees
//
//   - Durable: [Queue.Enqueue] returns only after the bbolt transaction is
//     committed and fsync'd. An item survives kill -9 and power loss from
//     then on.
//   - Never lost: an item is deleted only after its sender reported a
//     confirmed delivery. An item the receiver refuses for good
//     ([Permanent]) moves to a dead-letter bucket, still on disk.
//   - Exactly-once effect: delivery is at-least-once (a crash between the
//     receiver's answer and the delete redelivers); every item carries a
//     caller-chosen idempotency key that the receiver uses to deduplicate.
//     Enqueueing a key that is already queued is a no-op.
//
// Order is FIFO by enqueue time; the head item blocks the ones behind it
// while it is retried (the usual cause, the service being down, affects all).
//
// # File layout
//
// Buckets: "items" (8-byte big-endian sequence → JSON [Item]), "keys"
// (idempotency key → sequence), "dead" (sequence → JSON Item).
package queue

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// MaxBody bounds one item's body.
const MaxBody = 1 << 20

var (
	bItems = []byte("items")
	bKeys  = []byte("keys")
	bDead  = []byte("dead")
)

var (
	// ErrConflict: the key is queued already with a different body.
	ErrConflict = errors.New("queue: idempotency key already queued with a different body")
	// ErrInvalid: a malformed item.
	ErrInvalid = errors.New("queue: invalid item")
	// ErrPermanent marks a sender error that retrying cannot cure.
	ErrPermanent = errors.New("permanent delivery failure")
)

// Permanent wraps err so that the delivery loop dead-letters the item
// instead of retrying it.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

var (
	reKey  = regexp.MustCompile(`^[\x21-\x7e]{1,200}$`)
	reKind = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)
)

// Item is one queued message.
type Item struct {
	Key       string    `json:"key"`  // idempotency key, printable ASCII, 1..200
	Kind      string    `json:"kind"` // what it is, [a-z0-9_]{1,32}: "receipt", "audit", ...
	Body      []byte    `json:"body"`
	Enqueued  time.Time `json:"enqueued"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
}

// Sender delivers one item. It returns nil only when the receiver confirmed
// the item (or had it already: same key); an error wrapping [ErrPermanent]
// dead-letters the item; any other error is retried.
type Sender func(ctx context.Context, it Item) error

// Backoff is a bounded exponential backoff with jitter.
type Backoff struct {
	Initial time.Duration // first delay (default 200ms)
	Max     time.Duration // cap (default 1m)
}

// Delay returns the delay before retry n (n >= 1): "equal jitter", a
// uniformly random value in [d/2, d] where d = min(Max, Initial·2^(n-1)).
func (b Backoff) Delay(n int) time.Duration {
	if b.Initial <= 0 {
		b.Initial = 200 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = time.Minute
	}
	d := b.Initial
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	half := d / 2
	return half + rand.N(d-half+1)
}

// Options configures Open.
type Options struct {
	Backoff Backoff
	Now     func() time.Time
	// OnDelivery, if set, is called after each delivery attempt (metrics).
	OnDelivery func(kind string, err error)
}

// Queue is an open queue; one process at a time (bbolt holds a file lock).
type Queue struct {
	db     *bolt.DB
	opts   Options
	wake   chan struct{}
	depth  atomic.Int64
	dead   atomic.Int64
	active atomic.Bool // a Run is in progress
}

// Open opens or creates the queue file at path.
func Open(path string, opts Options) (*Queue, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("queue: open %s: %w", path, err)
	}
	q := &Queue{db: db, opts: opts, wake: make(chan struct{}, 1)}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bItems, bKeys, bDead} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		q.depth.Store(int64(tx.Bucket(bItems).Stats().KeyN))
		q.dead.Store(int64(tx.Bucket(bDead).Stats().KeyN))
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("queue: %w", err)
	}
	return q, nil
}

// Close closes the file. Run must have returned first.
func (q *Queue) Close() error {
	return q.db.Close()
}

// Len is the number of items waiting for delivery (for metrics).
func (q *Queue) Len() int { return int(q.depth.Load()) }

// DeadLen is the number of dead-lettered items.
func (q *Queue) DeadLen() int { return int(q.dead.Load()) }

// Enqueue stores it durably. Key, Kind and Body are used; Enqueued is set.
// A key already queued with the same kind and body is a no-op.
func (q *Queue) Enqueue(ctx context.Context, it Item) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch {
	case !reKey.MatchString(it.Key):
		return fmt.Errorf("%w: key %q", ErrInvalid, it.Key)
	case !reKind.MatchString(it.Kind):
		return fmt.Errorf("%w: kind %q", ErrInvalid, it.Kind)
	case len(it.Body) > MaxBody:
		return fmt.Errorf("%w: body of %d bytes (max %d)", ErrInvalid, len(it.Body), MaxBody)
	}
	it.Enqueued, it.Attempts, it.LastError = q.opts.Now().UTC(), 0, ""
	added := false
	err := q.db.Update(func(tx *bolt.Tx) error {
		items, keys := tx.Bucket(bItems), tx.Bucket(bKeys)
		if seq := keys.Get([]byte(it.Key)); seq != nil {
			old, err := decode(items.Get(seq))
			if err != nil {
				return err
			}
			if old.Kind != it.Kind || string(old.Body) != string(it.Body) {
				return ErrConflict
			}
			return nil
		}
		n, err := items.NextSequence()
		if err != nil {
			return err
		}
		v, err := json.Marshal(&it)
		if err != nil {
			return err
		}
		seq := seqKey(n)
		if err := items.Put(seq, v); err != nil {
			return err
		}
		added = true
		return keys.Put([]byte(it.Key), seq)
	})
	if err != nil {
		if errors.Is(err, ErrConflict) {
			return err
		}
		return fmt.Errorf("queue: enqueue: %w", err)
	}
	if added {
		q.depth.Add(1)
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

func seqKey(n uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return b[:]
}

func decode(v []byte) (Item, error) {
	var it Item
	if v == nil {
		return it, errors.New("queue: dangling key index")
	}
	if err := json.Unmarshal(v, &it); err != nil {
		return it, fmt.Errorf("queue: corrupt item: %w", err)
	}
	return it, nil
}

// head returns the oldest queued item and its sequence key. An item that
// does not decode (a damaged file) is moved, bytes intact, to the dead
// bucket instead of stopping delivery for everything behind it.
func (q *Queue) head() (seq []byte, it Item, ok bool, err error) {
	for {
		var raw []byte
		err = q.db.View(func(tx *bolt.Tx) error {
			k, v := tx.Bucket(bItems).Cursor().First()
			if k == nil {
				return nil
			}
			seq, ok = append([]byte(nil), k...), true
			var derr error
			if it, derr = decode(v); derr != nil {
				raw = append([]byte(nil), v...)
			}
			return nil
		})
		if err != nil || !ok || raw == nil {
			return seq, it, ok, err
		}
		if err := q.quarantine(seq, raw); err != nil {
			return nil, Item{}, false, err
		}
		ok = false
	}
}

// quarantine moves an undecodable item to the dead bucket.
func (q *Queue) quarantine(seq, raw []byte) error {
	err := q.db.Update(func(tx *bolt.Tx) error {
		keys := tx.Bucket(bKeys)
		c := keys.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if string(v) == string(seq) {
				if err := c.Delete(); err != nil {
					return err
				}
				break
			}
		}
		if err := tx.Bucket(bItems).Delete(seq); err != nil {
			return err
		}
		return tx.Bucket(bDead).Put(seq, raw)
	})
	if err != nil {
		return fmt.Errorf("queue: quarantine: %w", err)
	}
	q.depth.Add(-1)
	q.dead.Add(1)
	return nil
}

// Items returns up to max queued items, oldest first (for operators).
func (q *Queue) Items(max int) ([]Item, error) {
	var out []Item
	err := q.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bItems).Cursor()
		for k, v := c.First(); k != nil && len(out) < max; k, v = c.Next() {
			it, err := decode(v)
			if err != nil {
				return err
			}
			out = append(out, it)
		}
		return nil
	})
	return out, err
}

// ack deletes a delivered item; dead moves it to the dead-letter bucket.
func (q *Queue) ack(seq []byte, it Item, dead bool) error {
	err := q.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bItems).Delete(seq); err != nil {
			return err
		}
		if err := tx.Bucket(bKeys).Delete([]byte(it.Key)); err != nil {
			return err
		}
		if !dead {
			return nil
		}
		v, err := json.Marshal(&it)
		if err != nil {
			return err
		}
		return tx.Bucket(bDead).Put(seq, v)
	})
	if err != nil {
		return fmt.Errorf("queue: ack: %w", err)
	}
	q.depth.Add(-1)
	if dead {
		q.dead.Add(1)
	}
	return nil
}

// noteFailure persists the attempt count and last error of the head item.
func (q *Queue) noteFailure(seq []byte, it Item) error {
	v, err := json.Marshal(&it)
	if err != nil {
		return err
	}
	return q.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bItems).Put(seq, v) })
}

// ErrRunning is returned by a second concurrent Run.
var ErrRunning = errors.New("queue: delivery loop already running")

// Run delivers items until ctx is done, which is not an error: it returns
// nil then. It returns an error only when the queue file fails, or
// ErrRunning if another Run is active (one loop per queue keeps FIFO order
// and avoids delivering one item twice concurrently).
func (q *Queue) Run(ctx context.Context, send Sender) error {
	if !q.active.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer q.active.Store(false)
	failures := 0
	for {
		if ctx.Err() != nil {
			return nil
		}
		seq, it, ok, err := q.head()
		if err != nil {
			return err
		}
		if !ok {
			select {
			case <-ctx.Done():
				return nil
			case <-q.wake:
				continue
			}
		}
		err = send(ctx, it)
		if q.opts.OnDelivery != nil {
			q.opts.OnDelivery(it.Kind, err)
		}
		switch {
		case err == nil:
			failures = 0
			if err := q.ack(seq, it, false); err != nil {
				return err
			}
			continue
		case errors.Is(err, ErrPermanent):
			it.Attempts++
			it.LastError = truncate(err.Error(), 200)
			if err := q.ack(seq, it, true); err != nil {
				return err
			}
			continue
		case ctx.Err() != nil:
			return nil // the attempt was cut short by shutdown; the item stays
		}
		failures++
		it.Attempts++
		it.LastError = truncate(err.Error(), 200)
		if err := q.noteFailure(seq, it); err != nil {
			return fmt.Errorf("queue: %w", err)
		}
		t := time.NewTimer(q.opts.Backoff.Delay(failures))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
