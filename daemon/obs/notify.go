package obs

import (
	"context"
	"fmt"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notify sends a state string to systemd (sd_notify). sent is false when
// not running under systemd (no NOTIFY_SOCKET): that is not an error.
func Notify(state string) (sent bool, err error) {
	sent, err = daemon.SdNotify(false, state)
	if err != nil {
		return false, fmt.Errorf("obs: sd_notify: %w", err)
	}
	return sent, nil
}

// Ready tells systemd that start-up finished (READY=1) with a status line.
func Ready(status string) error {
	_, err := Notify(daemon.SdNotifyReady + "\nSTATUS=" + status)
	return err
}

// Stopping tells systemd that shutdown began (STOPPING=1).
func Stopping() error {
	_, err := Notify(daemon.SdNotifyStopping)
	return err
}

// Status sets the one-line status shown by systemctl status.
func Status(s string) error {
	_, err := Notify("STATUS=" + s)
	return err
}

// Watchdog pets systemd's watchdog (WATCHDOG=1) at half the interval
// systemd asked for (WatchdogSec=, seen as WATCHDOG_USEC), but only while
// alive returns nil: a wedged daemon stops petting and systemd restarts it.
// Without a watchdog configured it returns nil at once. It returns when ctx
// is done (not an error).
func Watchdog(ctx context.Context, alive func(ctx context.Context) error) error {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return fmt.Errorf("obs: watchdog: %w", err)
	}
	if interval <= 0 {
		return nil
	}
	return WatchdogEvery(ctx, interval/2, alive)
}

// WatchdogEvery pets the watchdog every period while alive returns nil.
func WatchdogEvery(ctx context.Context, period time.Duration, alive func(ctx context.Context) error) error {
	if period <= 0 {
		return fmt.Errorf("obs: watchdog period %v", period)
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, period)
		err := alive(cctx)
		cancel()
		if err == nil {
			if _, err := Notify(daemon.SdNotifyWatchdog); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
