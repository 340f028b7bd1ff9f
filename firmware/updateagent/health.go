package updateagent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Check is one health check of a trial boot. Run is called repeatedly
// (every Interval) until it returns nil or the deadline passes; the last
// error is reported.
type Check struct {
	Name     string
	Interval time.Duration // default 1 s
	Run      func(ctx context.Context) error
}

// CheckResult is a check's outcome, for the status API.
type CheckResult struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// RunChecks runs the checks one after the other, each retried until it
// passes or ctx ends. It returns every result and an error naming the
// first check that did not pass.
func RunChecks(ctx context.Context, checks []Check, progress func([]CheckResult)) ([]CheckResult, error) {
	results := make([]CheckResult, 0, len(checks))
	for _, c := range checks {
		iv := c.Interval
		if iv == 0 {
			iv = time.Second
		}
		var err error
		for {
			if err = c.Run(ctx); err == nil {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(iv):
				continue
			}
			break
		}
		r := CheckResult{Name: c.Name, OK: err == nil}
		if err != nil {
			r.Detail = err.Error()
		}
		results = append(results, r)
		if progress != nil {
			progress(results)
		}
		if err != nil {
			return results, fmt.Errorf("%s: %w", c.Name, err)
		}
	}
	return results, nil
}

// ServiceStable passes when a process running path has been up, with the
// same pid, for at least window: the supervisor is not restarting it.
func ServiceStable(procDir, path string, window time.Duration) Check {
	var pid int
	var since time.Time
	return Check{Name: "service " + filepath.Base(path), Run: func(ctx context.Context) error {
		p, err := findProcess(procDir, path)
		if err != nil {
			pid = 0
			return err
		}
		if p != pid {
			pid, since = p, time.Now()
		}
		if up := time.Since(since); up < window {
			return fmt.Errorf("%s (pid %d) up for %s, need %s without a restart", path, pid, up.Round(time.Second), window)
		}
		return nil
	}}
}

// findProcess returns the pid of a live (not zombie) process whose argv[0]
// is path.
func findProcess(procDir, path string) (int, error) {
	ents, err := os.ReadDir(procDir)
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procDir, e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv0, _, _ := strings.Cut(string(b), "\x00")
		if argv0 != path {
			continue
		}
		st, err := os.ReadFile(filepath.Join(procDir, e.Name(), "stat"))
		if err == nil {
			// state is the field after the parenthesised comm.
			if i := strings.LastIndexByte(string(st), ')'); i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
				continue
			}
		}
		return pid, nil
	}
	return 0, fmt.Errorf("%s is not running", path)
}

// ClockSet passes once the clock reads after notBefore (the build time):
// a Pi has no RTC and starts in 1970 until NTP answers.
func ClockSet(now func() time.Time, notBefore time.Time) Check {
	return Check{Name: "clock", Run: func(ctx context.Context) error {
		if t := now(); t.Before(notBefore) {
			return fmt.Errorf("clock reads %s, before the build time %s (no NTP yet?)", t.UTC().Format(time.RFC3339), notBefore.UTC().Format(time.RFC3339))
		}
		return nil
	}}
}

// DataWritable passes when a file can be created, synced, read back and
// removed in dir (on /perm).
func DataWritable(dir string) Check {
	return Check{Name: "data partition", Run: func(ctx context.Context) error {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		p := filepath.Join(dir, ".health-probe")
		want := []byte(time.Now().UTC().Format(time.RFC3339Nano))
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		_, werr := f.Write(want)
		serr := f.Sync()
		cerr := f.Close()
		if err := errors.Join(werr, serr, cerr); err != nil {
			return err
		}
		got, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if string(got) != string(want) {
			return fmt.Errorf("%s read back %q, wrote %q", p, got, want)
		}
		return os.Remove(p)
	}}
}
