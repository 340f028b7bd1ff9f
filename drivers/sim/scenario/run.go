package scenario

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"kazasu/drivers/sim/rf"
)

// Factory makes a card of kind with the options of a card directive.
type Factory func(kind string, opts []KeyValue) (rf.PICC, error)

// Runner runs a Script's timeline against a field.
type Runner struct {
	// ChipReset, if set, performs the reset directive
	// (pn532emu.Emulator.Reset); a script with reset fails without it.
	ChipReset func()

	script  *Script
	field   *rf.Field
	factory Factory
	frames  func() int

	apdus atomic.Int64
	mu    sync.Mutex
	card  *Faulty
}

// NewRunner prepares a run. frames reports the number of command frames
// the host has sent (pn532emu.Emulator.Frames); it may be nil if the script
// has no wait-frames step.
func NewRunner(s *Script, field *rf.Field, factory Factory, frames func() int) *Runner {
	return &Runner{script: s, field: field, factory: factory, frames: frames}
}

// APDUs returns the number of APDUs the script's cards have received.
func (r *Runner) APDUs() int { return int(r.apdus.Load()) }

// Card returns the current card (nil before the first card step).
func (r *Runner) Card() rf.PICC {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.card == nil {
		return nil
	}
	return r.card
}

// Run executes the steps in order and returns when the last is done, when
// ctx ends, or at the first error (naming the step's line).
func (r *Runner) Run(ctx context.Context) error {
	for _, st := range r.script.Steps {
		if err := r.step(ctx, st); err != nil {
			return fmt.Errorf("scenario: line %d: %s: %w", st.Line, st.Op, err)
		}
	}
	return nil
}

func (r *Runner) step(ctx context.Context, st Step) error {
	switch st.Op {
	case OpCard:
		if r.factory == nil {
			return fmt.Errorf("no card factory")
		}
		p, err := r.factory(st.Kind, st.Options)
		if err != nil {
			return err
		}
		r.mu.Lock()
		old := r.card
		r.card = r.wrap(p)
		r.mu.Unlock()
		if old != nil {
			r.field.Remove(old)
		}
	case OpTap:
		c := r.Card()
		if c == nil {
			return fmt.Errorf("no card: a card directive must come first")
		}
		for _, p := range r.field.PICCs() {
			if p == c {
				return nil
			}
		}
		r.field.Add(c)
	case OpRemove:
		if c := r.Card(); c != nil {
			r.field.Remove(c)
		}
	case OpReset:
		if r.ChipReset == nil {
			return fmt.Errorf("no reader chip to reset")
		}
		r.ChipReset()
	case OpWait:
		t := time.NewTimer(st.Delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	case OpWaitFrames, OpWaitAPDUs:
		get := r.APDUs
		if st.Op == OpWaitFrames {
			if r.frames == nil {
				return fmt.Errorf("no frame counter")
			}
			get = r.frames
		}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for get() < st.N {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
	}
	return nil
}

// wrap puts the script's card faults around p. The APDU count is shared by
// every card of the run.
func (r *Runner) wrap(p rf.PICC) *Faulty {
	return &Faulty{PICC: p, Faults: r.script.CardFaults, Field: r.field, counter: &r.apdus}
}
