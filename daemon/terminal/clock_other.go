//go:build !linux

package terminal

import (
	"time"

	"kazasu/daemon/pki"
)

// kernelClock: only Linux reports its synchronisation state here; elsewhere
// the clock is never trusted outside test mode.
func kernelClock() pki.Clock {
	return pki.ClockFunc(func() pki.ClockReading { return pki.ClockReading{Time: time.Now()} })
}
