package vclock

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestVirtual(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	v := NewVirtual(start)
	if err := v.Sleep(context.Background(), 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	v.Advance(-time.Second) // ignored
	v.Advance(500 * time.Millisecond)
	if got := v.Now().Sub(start); got != 2*time.Second {
		t.Fatalf("virtual time moved %v, want 2s", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := v.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on a cancelled context = %v", err)
	}
	if got := v.Now().Sub(start); got != 2*time.Second {
		t.Fatalf("a cancelled Sleep advanced the clock to %v", got)
	}
	// Concurrent sleepers add up.
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _ = v.Sleep(context.Background(), time.Millisecond) }()
	}
	wg.Wait()
	if got := v.Now().Sub(start); got != 2*time.Second+10*time.Millisecond {
		t.Fatalf("after 10 concurrent 1 ms sleeps: %v", got)
	}
}

func TestReal(t *testing.T) {
	var r Real
	if d := time.Since(r.Now()); d < 0 || d > time.Minute {
		t.Fatalf("Real.Now is %v away from time.Now", d)
	}
	start := time.Now()
	if err := r.Sleep(context.Background(), 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 5*time.Millisecond {
		t.Fatalf("Real.Sleep(5ms) returned after %v", el)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Real.Sleep on a cancelled context = %v", err)
	}
	if err := r.Sleep(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
}

func TestMeter(t *testing.T) {
	var m Meter
	if m.Total() != 0 || m.Get("air") != 0 {
		t.Fatal("zero Meter not empty")
	}
	m.Add("air", 3*time.Millisecond)
	m.Add("air", 2*time.Millisecond)
	m.Add("host link", time.Millisecond)
	m.Add("card", -time.Second) // ignored
	if m.Get("air") != 5*time.Millisecond || m.Total() != 6*time.Millisecond {
		t.Fatalf("air %v total %v", m.Get("air"), m.Total())
	}
	if s := m.String(); s != "air 5ms, host link 1ms (total 6ms)" {
		t.Fatalf("String() = %q", s)
	}
	snap := m.Snapshot()
	snap["air"] = 0
	if m.Get("air") != 5*time.Millisecond {
		t.Fatal("Snapshot is not a copy")
	}
	m.Reset()
	if m.Total() != 0 || !strings.Contains(m.String(), "total 0s") {
		t.Fatalf("after Reset: %v", m.String())
	}
}
