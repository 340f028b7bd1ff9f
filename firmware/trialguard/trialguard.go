// Package trialguard bounds a trial boot from PID 1: if the update agent
// has neither committed nor given up within the deadline (it hung, or
// never started), kazasu-init resets the board, and the firmware, its
// one-shot tryboot flag consumed, boots the committed slot. The hardware
// watchdog covers a hung kernel or init; this covers a hung agent.
package trialguard

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"time"
)

// SettledFile is created by the update agent once the trial is decided
// (committed, or rolled back and rebooting). It lives on /run (tmpfs), so
// it never survives a boot.
const SettledFile = "/run/kazasu/trial-settled"

// DefaultDeadline leaves room for the agent's 3-minute health checks.
const DefaultDeadline = 10 * time.Minute

// DeadlineFile, if present in the root, overrides DefaultDeadline (a Go
// duration, 30s to 1h); fwbuild writes it for test images.
const DeadlineFile = "/etc/kazasu/trial-guard"

// ReadDeadline returns the deadline configured in path, DefaultDeadline if
// there is none, and an error for a malformed or out-of-range value.
func ReadDeadline(path string) (time.Duration, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return DefaultDeadline, nil
	}
	if err != nil {
		return DefaultDeadline, err
	}
	d, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil || d < 30*time.Second || d > time.Hour {
		return DefaultDeadline, fmt.Errorf("trialguard: %s: %q is not a duration between 30s and 1h", path, strings.TrimSpace(string(b)))
	}
	return d, nil
}

// Guard is what Run needs; every field is injectable for tests.
type Guard struct {
	Deadline time.Duration
	IsTrial  func() bool
	Settled  func() bool
	After    func(time.Duration) <-chan time.Time
	Reboot   func(reason string) error
	Logf     func(format string, args ...any)
}

// Run returns at once on a normal boot; on a trial boot it waits for the
// deadline and reboots unless the agent settled the trial. It reports
// whether it rebooted.
func (g Guard) Run() (rebooted bool, err error) {
	if !g.IsTrial() {
		return false, nil
	}
	<-g.After(g.Deadline)
	if g.Settled() {
		return false, nil
	}
	reason := "trial boot not settled by the update agent within " + g.Deadline.String()
	if g.Logf != nil {
		g.Logf("kazasu-init: %s; rebooting into the committed slot", reason)
	}
	return true, g.Reboot(reason)
}

// IsTrialBoot reads the facts of this boot: the Pi firmware's
// chosen/bootloader/tryboot, or the VM harness's kazasu.tryboot=1.
func IsTrialBoot(procCmdline, dtTryboot string) bool {
	if b, err := os.ReadFile(dtTryboot); err == nil && len(b) == 4 && binary.BigEndian.Uint32(b) == 1 {
		return true
	}
	b, err := os.ReadFile(procCmdline)
	return err == nil && strings.Contains(" "+strings.TrimSpace(string(b))+" ", " kazasu.tryboot=1 ")
}

// MarkSettled creates SettledFile (path) for the guard.
func MarkSettled(path string) error {
	if err := os.MkdirAll(path[:strings.LastIndexByte(path, '/')], 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644)
}
