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

func TestBoardReader(t *testing.T) {
	rc, _, err := boardReader("pi4", "")
	if err != nil || rc.URI != "pn532_uart:/dev/ttyAMA0:115200" {
		t.Fatalf("pi4 default: %+v %v", rc, err)
	}
	rc, _, err = boardReader("pi5", "i2c")
	if err != nil || rc.URI != "pn532_i2c:/dev/i2c-1" {
		t.Fatalf("pi5 i2c: %+v %v", rc, err)
	}
	if _, _, err := boardReader("pi9", ""); err == nil {
		t.Fatal("unknown board accepted")
	}
}
