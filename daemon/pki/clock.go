package pki

import "time"

// ClockReading is the time as a trusted clock reports it.
type ClockReading struct {
	Time time.Time
	// Uncertainty bounds |Time - true time| (from the sync source, e.g.
	// NTP root distance). Validation requires validity over the whole
	// interval [Time-Uncertainty, Time+Uncertainty].
	Uncertainty time.Duration
	// Synchronised is false until the clock has been set from a trusted
	// source since boot (a kiosk's RTC may be unset or wrong).
	Synchronised bool
}

// Clock is the validator's time source.
type Clock interface {
	Now() ClockReading
}

// ClockFunc adapts a function to Clock.
type ClockFunc func() ClockReading

func (f ClockFunc) Now() ClockReading { return f() }

// FixedClock is a synchronised clock stopped at t (tests, `--at`).
func FixedClock(t time.Time) Clock {
	return ClockFunc(func() ClockReading { return ClockReading{Time: t, Synchronised: true} })
}

// SystemClock reads time.Now and trusts it, with the given uncertainty: for
// tools and hosts whose clock is managed elsewhere. The daemon supplies a
// clock that knows its sync state.
func SystemClock(uncertainty time.Duration) Clock {
	return ClockFunc(func() ClockReading {
		return ClockReading{Time: time.Now(), Uncertainty: uncertainty, Synchronised: true}
	})
}
