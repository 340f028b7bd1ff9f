package terminal

import (
	"time"

	"golang.org/x/sys/unix"

	"kazasu/daemon/pki"
)

// kernelClock is the validator's clock in production: the kernel's time,
// trusted only while the kernel says it is synchronised (adjtimex: no
// STA_UNSYNC, state not TIME_ERROR — set by NTP/chrony/systemd-timesyncd),
// with its maximum error as the uncertainty. A Pi has no RTC: until NTP has
// run, certificate validity cannot be judged, and validation refuses with
// clock_unsynchronised.
func kernelClock() pki.Clock {
	return pki.ClockFunc(func() pki.ClockReading {
		now := time.Now()
		var tx unix.Timex
		state, err := unix.Adjtimex(&tx)
		if err != nil {
			return pki.ClockReading{Time: now}
		}
		synced := tx.Status&unix.STA_UNSYNC == 0 && state != unix.TIME_ERROR
		return pki.ClockReading{Time: now, Synchronised: synced, Uncertainty: time.Duration(tx.Maxerror) * time.Microsecond}
	})
}
