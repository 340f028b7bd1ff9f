package trialguard

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func now(time.Duration) <-chan time.Time {
	c := make(chan time.Time, 1)
	c <- time.Time{}
	return c
}

func TestGuard(t *testing.T) {
	for _, c := range []struct {
		trial, settled, want bool
	}{{false, false, false}, {true, true, false}, {true, false, true}} {
		var got string
		g := Guard{Deadline: time.Minute, IsTrial: func() bool { return c.trial }, Settled: func() bool { return c.settled },
			After: now, Reboot: func(r string) error { got = r; return nil }}
		if c.trial == false {
			g.After = func(time.Duration) <-chan time.Time { t.Fatal("waited on a normal boot"); return nil }
		}
		rebooted, err := g.Run()
		if err != nil || rebooted != c.want || (got != "") != c.want {
			t.Errorf("%+v: rebooted %v %q %v", c, rebooted, got, err)
		}
	}
	g := Guard{IsTrial: func() bool { return true }, Settled: func() bool { return false }, After: now,
		Reboot: func(string) error { return errors.New("EPERM") }}
	if _, err := g.Run(); err == nil {
		t.Error("reboot error lost")
	}
}

func TestIsTrialBoot(t *testing.T) {
	dir := t.TempDir()
	cmd, dt := filepath.Join(dir, "cmdline"), filepath.Join(dir, "tryboot")
	os.WriteFile(cmd, []byte("console=ttyAMA0 root=x kazasu.tryboot=1\n"), 0o644)
	if !IsTrialBoot(cmd, dt) {
		t.Error("VM trial not seen")
	}
	os.WriteFile(cmd, []byte("console=ttyAMA0 kazasu.tryboot=10\n"), 0o644)
	if IsTrialBoot(cmd, dt) {
		t.Error("kazasu.tryboot=10 taken for a trial")
	}
	os.WriteFile(dt, []byte{0, 0, 0, 1}, 0o644)
	if !IsTrialBoot(cmd, dt) {
		t.Error("Pi tryboot not seen")
	}
	os.WriteFile(dt, []byte{0, 0, 0, 0}, 0o644)
	if IsTrialBoot(cmd, dt) {
		t.Error("tryboot=0 taken for a trial")
	}
	p := filepath.Join(dir, "run", "kazasu", "trial-settled")
	if err := MarkSettled(p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
}

func TestReadDeadline(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "trial-guard")
	if d, err := ReadDeadline(p); err != nil || d != DefaultDeadline {
		t.Fatal(d, err)
	}
	for in, want := range map[string]time.Duration{"90s\n": 90 * time.Second, "1h": time.Hour} {
		os.WriteFile(p, []byte(in), 0o644)
		if d, err := ReadDeadline(p); err != nil || d != want {
			t.Errorf("%q: %v %v", in, d, err)
		}
	}
	for _, in := range []string{"5s", "2h", "soon", ""} {
		os.WriteFile(p, []byte(in), 0o644)
		if d, err := ReadDeadline(p); err == nil || d != DefaultDeadline {
			t.Errorf("%q accepted: %v", in, d)
		}
	}
}
