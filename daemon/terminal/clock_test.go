package terminal

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestKernelClock checks the reading against adjtimex directly: the
// synchronisation flag and the uncertainty come from the kernel.
func TestKernelClock(t *testing.T) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		t.Skipf("adjtimex: %v", err)
	}
	r := kernelClock().Now()
	want := tx.Status&unix.STA_UNSYNC == 0 && state != unix.TIME_ERROR
	if r.Synchronised != want {
		t.Fatalf("Synchronised = %v, kernel says %v (status %#x, state %d)", r.Synchronised, want, tx.Status, state)
	}
	if d := time.Since(r.Time); d < 0 || d > time.Minute {
		t.Fatalf("time off by %v", d)
	}
	if r.Uncertainty <= 0 && !r.Synchronised {
		t.Fatalf("an unsynchronised clock with no uncertainty: %+v", r)
	}
}
