// Package vclock is the time source of kazasu's virtual hardware: a
// [Virtual] clock that only moves when a model says time has passed (fast,
// deterministic tests) and a [Real] clock that sleeps (benchmarks and the
// `kazasu sim` emulators, where a real host program measures wall time).
//
// Emulators call [Clock.Sleep] with the duration their timing model assigns
// to each step (bytes on a host link, frames on air, chip firmware, card
// processing). With [Real] the call takes that long; with [Virtual] it
// returns at once and the clock's Now moves forward by the same amount, so
// the total modelled time is still observable through Now and through a
// [Meter].
//
// The package sits with the rest of drivers/sim, outside the reader stack.
package vclock

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Clock is a source of time that models can spend.
type Clock interface {
	// Now is the clock's current time.
	Now() time.Time
	// Sleep lets d pass. It returns ctx.Err() if ctx ends first; d <= 0
	// returns at once.
	Sleep(ctx context.Context, d time.Duration) error
}

// Real is wall-clock time.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// Sleep blocks for d or until ctx is done.
func (Real) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Virtual is a clock that advances only through Sleep and Advance. It is
// safe for concurrent use; concurrent sleepers each add their duration
// (the model is of one serial timeline, which is what an emulated chip is).
type Virtual struct {
	mu sync.Mutex
	t  time.Time
}

// NewVirtual returns a virtual clock reading start.
func NewVirtual(start time.Time) *Virtual { return &Virtual{t: start} }

// Now returns the virtual time.
func (v *Virtual) Now() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.t
}

// Sleep advances the clock by d without blocking. It returns ctx.Err() if
// ctx is already done (and then does not advance).
func (v *Virtual) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v.Advance(d)
	return nil
}

// Advance moves the clock forward by d (negative d is ignored).
func (v *Virtual) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	v.mu.Lock()
	v.t = v.t.Add(d)
	v.mu.Unlock()
}

// Meter accumulates modelled time by category ("host link", "air", ...).
// The zero value is ready to use and it is safe for concurrent use.
type Meter struct {
	mu  sync.Mutex
	sum map[string]time.Duration
}

// Add adds d to category cat.
func (m *Meter) Add(cat string, d time.Duration) {
	if d <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sum == nil {
		m.sum = map[string]time.Duration{}
	}
	m.sum[cat] += d
}

// Get returns the total of one category.
func (m *Meter) Get(cat string) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sum[cat]
}

// Total returns the sum over all categories.
func (m *Meter) Total() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	var t time.Duration
	for _, d := range m.sum {
		t += d
	}
	return t
}

// Snapshot returns a copy of every category's total.
func (m *Meter) Snapshot() map[string]time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]time.Duration, len(m.sum))
	for k, v := range m.sum {
		out[k] = v
	}
	return out
}

// Reset sets every category to zero.
func (m *Meter) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sum = nil
}

// String lists the categories in name order, e.g.
// "air 12.3ms, host link 4ms (total 16.3ms)".
func (m *Meter) String() string {
	s := m.Snapshot()
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	var total time.Duration
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %v", k, s[k].Round(time.Microsecond))
		total += s[k]
	}
	fmt.Fprintf(&b, " (total %v)", total.Round(time.Microsecond))
	return b.String()
}
