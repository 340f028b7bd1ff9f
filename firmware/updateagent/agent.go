// Package updateagent is kazasu's on-device update agent: it accepts a
// signed bundle (firmware/bundle), streams its root into the inactive slot,
// reads it back, arms a one-shot trial boot, runs health checks on the
// trial boot and commits or rolls back. The decisions are made by the pure
// state machine in firmware/slot; this package performs its actions on a
// Platform (the Pi, the qemu test VM, or a fake in tests) and serves a
// small HTTP API (see http.go) with a Go client for `kazasu push` and
// `kazasu status`.
package updateagent

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"sync"
	"time"

	"kazasu/firmware/bundle"
	"kazasu/firmware/slot"
	"kazasu/firmware/trialguard"
)

// SlotDevice is a root partition opened for writing and reading back.
type SlotDevice = slot.Device

// Platform is the device: the boot partition, the slots, the firmware's
// tryboot flag and reset.
type Platform interface {
	// Observe reports the slot this boot runs from (/proc/cmdline), the
	// slot cmdline.txt names, and whether this is a tryboot boot.
	Observe() (running, cmdline slot.Slot, tryboot bool, err error)
	// OpenSlot opens a root partition.
	OpenSlot(s slot.Slot) (SlotDevice, error)
	// WriteCmdline rewrites cmdline.txt (try=false) or cmdline-try.txt
	// (try=true) in place to name s, and syncs.
	WriteCmdline(try bool, s slot.Slot) error
	// ArmTryboot sets the one-shot tryboot flag.
	ArmTryboot() error
	// Reboot resets the board through the firmware (never kexec).
	Reboot(reason string) error
}

// Release is the running root's /etc/kazasu/release.json (the fields the
// agent needs).
type Release struct {
	Version string    `json:"version"`
	Build   uint64    `json:"build"`
	Board   string    `json:"board"`
	Kernel  string    `json:"kernel"`
	Created time.Time `json:"created"`
}

// Config configures an Agent.
type Config struct {
	Platform  Platform
	Keys      bundle.Keys
	Release   Release
	StatePath string // the persistent record, on /perm
	Checks    []Check
	// CheckDeadline bounds the whole health check (default 3 minutes):
	// a trial that cannot pass by then rolls back.
	CheckDeadline time.Duration
	// RebootDelay lets the HTTP answer reach the client before a reboot
	// (default 1 s).
	RebootDelay time.Duration
	Now         func() time.Time
	Logf        func(format string, args ...any)
	// SettledPath, if set, is created once a trial is decided, for
	// kazasu-init's trial guard (firmware/trialguard).
	SettledPath string
}

// Agent runs the update protocol.
type Agent struct {
	c        Config
	mu       sync.Mutex
	m        slot.Machine
	busy     bool
	progress string
	checks   []CheckResult
}

// Status is what GET /v1/status returns.
type Status struct {
	Board          string        `json:"board"`
	Version        string        `json:"version"` // of the running root
	Build          uint64        `json:"build"`   // of the running root
	RunningSlot    string        `json:"running_slot"`
	CommittedSlot  string        `json:"committed_slot"`
	CommittedBuild uint64        `json:"committed_build"` // highest committed build
	Phase          string        `json:"phase"`           // idle, writing, rebooting, trying, halted
	Progress       string        `json:"progress,omitempty"`
	Trial          *slot.Trial   `json:"trial,omitempty"`
	Last           *slot.Result  `json:"last,omitempty"` // last update attempt
	Checks         []CheckResult `json:"checks,omitempty"`
}

// New makes an agent; call Start once per boot.
func New(c Config) *Agent {
	if c.CheckDeadline == 0 {
		c.CheckDeadline = 3 * time.Minute
	}
	if c.RebootDelay == 0 {
		c.RebootDelay = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logf == nil {
		c.Logf = log.Printf
	}
	return &Agent{c: c}
}

// Status reports the agent's state.
func (a *Agent) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.m.State.Clone()
	return Status{Board: a.c.Release.Board, Version: a.c.Release.Version, Build: a.c.Release.Build,
		RunningSlot: a.m.Running.String(), CommittedSlot: s.Committed.String(), CommittedBuild: s.Build,
		Phase: a.m.Phase.String(), Progress: a.progress, Trial: s.Trial, Last: s.Last,
		Checks: append([]CheckResult(nil), a.checks...)}
}

// Start observes the boot, reconciles the record and, on a trial boot,
// starts the health checks (their outcome commits or reboots).
func (a *Agent) Start(ctx context.Context) error {
	running, cmdline, tryboot, err := a.c.Platform.Observe()
	if err != nil {
		return fmt.Errorf("updateagent: observing the boot: %w", err)
	}
	saved, err := loadState(a.c.StatePath)
	if err != nil {
		// A torn or corrupt record is not fatal: cmdline.txt is the truth.
		a.c.Logf("updateagent: %v; rebuilding the record from cmdline.txt", err)
		saved = nil
	}
	a.mu.Lock()
	m, acts, err := slot.Next(slot.Machine{}, slot.EvBoot{Running: running, Cmdline: cmdline, Tryboot: tryboot,
		RunningBuild: a.c.Release.Build, Version: a.c.Release.Version, Saved: saved})
	if err != nil {
		a.mu.Unlock()
		return fmt.Errorf("updateagent: %w", err)
	}
	a.m = m
	a.mu.Unlock()
	a.c.Logf("updateagent: boot from slot %s (cmdline.txt: %s, tryboot: %v), phase %s", running, cmdline, tryboot, m.Phase)
	return a.run(ctx, acts, nil)
}

// run performs actions in order, feeding results back to the machine.
// src is the bundle payload for WriteSlot.
func (a *Agent) run(ctx context.Context, acts []slot.Action, src *payload) error {
	_, err := a.runWrite(ctx, acts, src)
	return err
}

// runWrite is run, also returning the slot write's error (nil if there
// was no write or it succeeded).
func (a *Agent) runWrite(ctx context.Context, acts []slot.Action, src *payload) (writeErr error, err error) {
	for len(acts) > 0 {
		act := acts[0]
		acts = acts[1:]
		var ev slot.Event
		switch act := act.(type) {
		case slot.Save:
			if err := saveState(a.c.StatePath, act.State); err != nil {
				return writeErr, err
			}
		case slot.WriteSlot:
			writeErr = a.writeSlot(ctx, act.Slot, src)
			ev = slot.EvWritten{Err: writeErr}
		case slot.WriteTryCmdline:
			if err := a.c.Platform.WriteCmdline(true, act.Slot); err != nil {
				return writeErr, fmt.Errorf("updateagent: writing cmdline-try.txt: %w", err)
			}
		case slot.ArmTryboot:
			if err := a.c.Platform.ArmTryboot(); err != nil {
				return writeErr, fmt.Errorf("updateagent: arming tryboot: %w", err)
			}
		case slot.WriteCmdline:
			if err := a.c.Platform.WriteCmdline(false, act.Slot); err != nil {
				return writeErr, fmt.Errorf("updateagent: committing cmdline.txt: %w", err)
			}
			a.c.Logf("updateagent: committed slot %s", act.Slot)
		case slot.Reboot:
			a.c.Logf("updateagent: reboot: %s", act.Reason)
			go func() {
				time.Sleep(a.c.RebootDelay)
				if err := a.c.Platform.Reboot(act.Reason); err != nil {
					a.c.Logf("updateagent: reboot: %v", err)
				}
			}()
		case slot.CheckHealth:
			go a.checkHealth(ctx)
		default:
			return writeErr, fmt.Errorf("updateagent: unknown action %T", act)
		}
		if ev != nil {
			a.mu.Lock()
			m, more, err := slot.Next(a.m, ev)
			if err == nil {
				a.m = m
			}
			a.mu.Unlock()
			if err != nil {
				return writeErr, fmt.Errorf("updateagent: %w", err)
			}
			acts = append(more, acts...)
		}
	}
	return writeErr, nil
}

func (a *Agent) setProgress(s string) {
	a.mu.Lock()
	a.progress = s
	a.mu.Unlock()
}

// checkHealth runs the checks and feeds the outcome to the machine.
func (a *Agent) checkHealth(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, a.c.CheckDeadline)
	defer cancel()
	results, err := RunChecks(ctx, a.c.Checks, func(r []CheckResult) {
		a.mu.Lock()
		a.checks = r
		a.mu.Unlock()
	})
	a.mu.Lock()
	a.checks = results
	m, acts, nerr := slot.Next(a.m, slot.EvHealth{Err: err})
	if nerr == nil {
		a.m = m
	}
	a.mu.Unlock()
	if nerr != nil {
		a.c.Logf("updateagent: %v", nerr)
		return
	}
	if err != nil {
		a.c.Logf("updateagent: health check failed: %v", err)
	}
	if rerr := a.run(ctx, acts, nil); rerr != nil {
		a.c.Logf("updateagent: %v", rerr)
		return
	}
	if a.c.SettledPath != "" {
		if err := trialguard.MarkSettled(a.c.SettledPath); err != nil {
			a.c.Logf("updateagent: %v", err)
		}
	}
}

// Refusal wraps an error that is the bundle's or the request's fault, not
// the device's.
type Refusal struct{ Err error }

func (r *Refusal) Error() string { return r.Err.Error() }
func (r *Refusal) Unwrap() error { return r.Err }

// ErrBootPayload: this agent installs roots only.
var ErrBootPayload = errors.New("updateagent: bundle carries a boot partition; kernel and firmware changes need a reflash (kazasu flash) in this version")

type payload struct {
	r    *bundle.Reader
	p    *bundle.Payload
	data io.Reader
}

// Install verifies a bundle read from r and installs it: on success the
// board reboots into the trial within RebootDelay. Errors wrapping a
// *Refusal are the bundle's fault (signature, board, expiry, build).
func (a *Agent) Install(ctx context.Context, r io.Reader) error {
	a.mu.Lock()
	if a.busy {
		a.mu.Unlock()
		return &Refusal{slot.ErrBusy}
	}
	a.busy = true
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.busy = false
		a.progress = ""
		a.mu.Unlock()
	}()

	br, err := bundle.Read(r, a.c.Keys)
	if err != nil {
		return &Refusal{err}
	}
	man := br.Manifest()
	a.mu.Lock()
	installed := a.m.State.Build
	a.mu.Unlock()
	err = man.Admit(bundle.Policy{Board: a.c.Release.Board, Kind: bundle.KindUpdate, InstalledBuild: installed,
		Kernel: a.c.Release.Kernel, Now: a.c.Now(), ClockValidAfter: a.c.Release.Created.Add(-24 * time.Hour)})
	if err != nil {
		return &Refusal{err}
	}
	if man.Payload(bundle.RoleBoot) != nil {
		return &Refusal{ErrBootPayload}
	}
	p, data, err := br.Next()
	if err != nil {
		return &Refusal{err}
	}
	if p.Role != bundle.RoleRoot {
		return &Refusal{fmt.Errorf("updateagent: first payload is %s, want root", p.Role)}
	}
	a.mu.Lock()
	m, acts, err := slot.Next(a.m, slot.EvBundle{Build: man.Build, Version: man.Version})
	if err == nil {
		a.m = m
	}
	a.mu.Unlock()
	if err != nil {
		return &Refusal{err}
	}
	a.c.Logf("updateagent: installing %s build %d (signed by %s)", man.Version, man.Build, br.KeyID())
	werr, err := a.runWrite(ctx, acts, &payload{r: br, p: p, data: data})
	if err != nil {
		return err
	}
	if werr != nil {
		// Recorded as failed; the bundle's own faults (corrupt chunk,
		// truncation) stay recognisable through the wrap.
		return fmt.Errorf("updateagent: installing build %d into the inactive slot: %w", man.Build, werr)
	}
	return nil
}

// writeSlot streams the root payload into the slot, checks that the
// bundle ends there, syncs, drops the cache, reads back and re-hashes.
func (a *Agent) writeSlot(ctx context.Context, s slot.Slot, src *payload) error {
	if src == nil {
		return errors.New("no bundle to write")
	}
	dev, err := a.c.Platform.OpenSlot(s)
	if err != nil {
		return fmt.Errorf("opening slot %s: %w", s, err)
	}
	defer dev.Close()
	if src.p.Size > dev.Size() {
		return fmt.Errorf("root of %d bytes does not fit slot %s (%d bytes)", src.p.Size, s, dev.Size())
	}
	buf := make([]byte, bundle.ChunkSize)
	var off int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := io.ReadFull(src.data, buf)
		if n > 0 {
			if _, err := dev.WriteAt(buf[:n], off); err != nil {
				return fmt.Errorf("writing slot %s at %d: %w", s, off, err)
			}
			off += int64(n)
			a.setProgress(fmt.Sprintf("writing slot %s: %d of %d bytes", s, off, src.p.Size))
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return rerr // already says which chunk failed
		}
	}
	if off != src.p.Size {
		return fmt.Errorf("wrote %d of %d bytes", off, src.p.Size)
	}
	if _, _, err := src.r.Next(); err != io.EOF {
		if err == nil {
			err = errors.New("unexpected second payload")
		}
		return err
	}
	if err := dev.Sync(); err != nil {
		return fmt.Errorf("syncing slot %s: %w", s, err)
	}
	if err := dev.DropCache(); err != nil {
		return fmt.Errorf("dropping the cache of slot %s: %w", s, err)
	}
	a.setProgress(fmt.Sprintf("verifying slot %s", s))
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(dev, 0, src.p.Size)); err != nil {
		return fmt.Errorf("reading back slot %s: %w", s, err)
	}
	var got bundle.Digest
	h.Sum(got[:0])
	if got != src.p.SHA256 {
		return fmt.Errorf("read-back of slot %s: sha256 %s, bundle says %s", s, got, src.p.SHA256)
	}
	return nil
}

// loadState reads the record; a missing file is (nil, nil).
func loadState(path string) (*slot.State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("updateagent: reading %s: %w", path, err)
	}
	var s slot.State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("updateagent: %s: %w", path, err)
	}
	return &s, nil
}

// saveState writes the record atomically: temp file, fsync, rename, fsync
// of the directory.
func saveState(path string, s slot.State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("updateagent: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("updateagent: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".state-*")
	if err != nil {
		return fmt.Errorf("updateagent: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("updateagent: writing state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("updateagent: syncing state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("updateagent: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("updateagent: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("updateagent: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("updateagent: syncing %s: %w", dir, err)
	}
	return nil
}
