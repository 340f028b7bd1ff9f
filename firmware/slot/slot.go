// Package slot is the A/B update state machine of the kazasu update agent,
// as a pure function: Next(machine, event) returns the new machine and the
// actions the agent must perform, in order. It does no I/O; the agent
// (firmware/updateagent) performs the actions and feeds back their results
// as events, and tests drive it against a model of the Raspberry Pi firmware.
//
// The device has two root slots (partitions 2 and 3, gokrazy's layout) and
// one boot partition with two padded command lines: cmdline.txt (named by
// config.txt) points at the committed slot, cmdline-try.txt (named by
// tryboot.txt) at the slot on trial. The Pi firmware reads tryboot.txt
// instead of config.txt exactly once after the one-shot tryboot flag was
// set, and clears the flag before the kernel starts. So:
//
//   - the inactive slot is written and read back before anything points at it;
//   - the trial is armed (record saved, cmdline-try.txt written, flag set)
//     and the board rebooted without kexec;
//   - on the trial boot the agent runs health checks; passing them, it
//     commits by rewriting cmdline.txt (the single commit point) and then
//     the record;
//   - everything else (failed checks, panic, hang caught by the watchdog,
//     power cut) boots cmdline.txt, the old slot, because the flag is gone.
//
// cmdline.txt is the truth; the persisted record (State) is reconciled
// with it at every boot.
package slot

import (
	"errors"
	"fmt"
)

// Slot is a root partition number: A = 2, B = 3.
type Slot int

const (
	A Slot = 2
	B Slot = 3
)

// Other is the other slot.
func (s Slot) Other() Slot {
	if s == A {
		return B
	}
	return A
}

// Valid reports whether s is A or B.
func (s Slot) Valid() bool { return s == A || s == B }

func (s Slot) String() string {
	switch s {
	case A:
		return "A"
	case B:
		return "B"
	}
	return fmt.Sprintf("Slot(%d)", int(s))
}

// Outcome is the result of an update attempt.
type Outcome string

const (
	Committed  Outcome = "committed"
	RolledBack Outcome = "rolled-back"
	Failed     Outcome = "failed"     // failed before the trial boot
	Installing Outcome = "installing" // a slot write is under way
)

// Result records the last update attempt.
type Result struct {
	Build   uint64  `json:"build"`
	Version string  `json:"version"`
	Outcome Outcome `json:"outcome"`
	Reason  string  `json:"reason,omitempty"`
}

// Trial is an armed or running trial boot.
type Trial struct {
	Slot    Slot   `json:"slot"`
	Build   uint64 `json:"build"`
	Version string `json:"version"`
	// Booted is set when the trial slot came up; a trial that rolls back
	// after booting crashed, hung or lost power during its checks.
	Booted bool `json:"booted"`
}

// State is the agent's persistent record (/perm/kazasu/update/state.json).
type State struct {
	Committed Slot    `json:"committed"`
	Build     uint64  `json:"build"` // highest committed build; never decreases
	Version   string  `json:"version"`
	Trial     *Trial  `json:"trial,omitempty"`
	Last      *Result `json:"last,omitempty"`
}

// Clone is a deep copy.
func (s State) Clone() State {
	if s.Trial != nil {
		t := *s.Trial
		s.Trial = &t
	}
	if s.Last != nil {
		l := *s.Last
		s.Last = &l
	}
	return s
}

// Phase is the agent's in-memory phase.
type Phase int

const (
	Starting  Phase = iota // before EvBoot
	Idle                   // running the committed slot, accepting bundles
	Writing                // streaming a bundle into the inactive slot
	Rebooting              // trial armed, reboot requested
	Trying                 // running the trial slot, health checks under way
	Halted                 // unexpected boot: waiting for the reboot back
)

func (p Phase) String() string {
	return [...]string{"starting", "idle", "writing", "rebooting", "trying", "halted"}[p]
}

// Machine is the agent's whole state.
type Machine struct {
	State   State
	Phase   Phase
	Running Slot // the slot this boot runs from
	// Writing: the bundle being installed.
	Target  Slot
	Build   uint64
	Version string
}

// Event is something that happened: a boot, an admitted bundle, the
// result of a slot write or of the health checks.
type Event interface{ event() }

// EvBoot is the first event of every boot: what the agent observes.
type EvBoot struct {
	Running      Slot   // root= of /proc/cmdline
	Cmdline      Slot   // root= of the boot partition's cmdline.txt
	Tryboot      bool   // /proc/device-tree/chosen/bootloader/tryboot == 1
	RunningBuild uint64 // build of the running root (its release.json)
	Version      string // version of the running root
	Saved        *State // the persisted record; nil on first boot
}

// EvBundle: a verified and admitted bundle wants to be installed.
type EvBundle struct {
	Build   uint64
	Version string
}

// EvWritten: the slot write and read-back finished; Err is nil on success.
type EvWritten struct{ Err error }

// EvHealth: the health checks finished; Err is nil if they all passed.
type EvHealth struct{ Err error }

func (EvBoot) event()    {}
func (EvBundle) event()  {}
func (EvWritten) event() {}
func (EvHealth) event()  {}

// Action is something the agent must do, in order. Save persists the
// record atomically (temp file, fsync, rename, fsync dir).
type Action interface{ action() }

type (
	// Save the record.
	Save struct{ State State }
	// WriteSlot streams the bundle's root payload into Slot, syncs, reads
	// it back and re-hashes it, then reports EvWritten.
	WriteSlot struct{ Slot Slot }
	// WriteTryCmdline points cmdline-try.txt at Slot (in-place, one sector).
	WriteTryCmdline struct{ Slot Slot }
	// ArmTryboot sets the firmware's one-shot tryboot flag.
	ArmTryboot struct{}
	// Reboot resets the board through the firmware (never kexec).
	Reboot struct{ Reason string }
	// CheckHealth runs the health checks and reports EvHealth.
	CheckHealth struct{}
	// WriteCmdline points cmdline.txt at Slot: the commit point.
	WriteCmdline struct{ Slot Slot }
)

func (Save) action()            {}
func (WriteSlot) action()       {}
func (WriteTryCmdline) action() {}
func (ArmTryboot) action()      {}
func (Reboot) action()          {}
func (CheckHealth) action()     {}
func (WriteCmdline) action()    {}

// Refusals of EvBundle.
var (
	ErrBusy      = errors.New("update: another update is in progress")
	ErrInTrial   = errors.New("update: this boot is a trial; wait until it is committed or rolled back")
	ErrNotNewer  = errors.New("update: build is not newer than the committed build")
	ErrBadEvent  = errors.New("update: event not expected in this phase")
	ErrBadReport = errors.New("update: inconsistent boot report")
)

// Next is the state machine. It never mutates m; on error the machine is
// unchanged and no action is to be taken.
func Next(m Machine, ev Event) (Machine, []Action, error) {
	m.State = m.State.Clone()
	switch ev := ev.(type) {
	case EvBoot:
		if m.Phase != Starting {
			return m, nil, fmt.Errorf("%w: boot in phase %s", ErrBadEvent, m.Phase)
		}
		return boot(m, ev)
	case EvBundle:
		switch m.Phase {
		case Idle:
		case Trying:
			return m, nil, ErrInTrial
		case Writing, Rebooting:
			return m, nil, ErrBusy
		default:
			return m, nil, fmt.Errorf("%w: bundle in phase %s", ErrBadEvent, m.Phase)
		}
		if ev.Build <= m.State.Build {
			return m, nil, fmt.Errorf("%w: build %d, committed %d", ErrNotNewer, ev.Build, m.State.Build)
		}
		m.Phase, m.Target, m.Build, m.Version = Writing, m.State.Committed.Other(), ev.Build, ev.Version
		m.State.Last = &Result{Build: ev.Build, Version: ev.Version, Outcome: Installing}
		return m, []Action{Save{m.State.Clone()}, WriteSlot{m.Target}}, nil
	case EvWritten:
		if m.Phase != Writing {
			return m, nil, fmt.Errorf("%w: write result in phase %s", ErrBadEvent, m.Phase)
		}
		if ev.Err != nil {
			m.Phase = Idle
			m.State.Last = &Result{Build: m.Build, Version: m.Version, Outcome: Failed, Reason: ev.Err.Error()}
			return m, []Action{Save{m.State.Clone()}}, nil
		}
		m.Phase = Rebooting
		m.State.Trial = &Trial{Slot: m.Target, Build: m.Build, Version: m.Version}
		return m, []Action{
			Save{m.State.Clone()},
			WriteTryCmdline{m.Target},
			ArmTryboot{},
			Reboot{fmt.Sprintf("trial boot of build %d in slot %s", m.Build, m.Target)},
		}, nil
	case EvHealth:
		if m.Phase != Trying {
			return m, nil, fmt.Errorf("%w: health result in phase %s", ErrBadEvent, m.Phase)
		}
		t := m.State.Trial
		if ev.Err != nil {
			m.Phase = Halted
			m.State.Trial = nil
			m.State.Last = &Result{Build: t.Build, Version: t.Version, Outcome: RolledBack, Reason: "health check failed: " + ev.Err.Error()}
			return m, []Action{Save{m.State.Clone()}, Reboot{"rolling back: health check failed"}}, nil
		}
		m.Phase = Idle
		m.State = State{Committed: t.Slot, Build: t.Build, Version: t.Version,
			Last: &Result{Build: t.Build, Version: t.Version, Outcome: Committed}}
		return m, []Action{WriteCmdline{t.Slot}, Save{m.State.Clone()}}, nil
	}
	return m, nil, fmt.Errorf("%w: %T", ErrBadEvent, ev)
}

func boot(m Machine, ev EvBoot) (Machine, []Action, error) {
	if !ev.Running.Valid() || !ev.Cmdline.Valid() {
		return m, nil, fmt.Errorf("%w: running %v, cmdline.txt %v", ErrBadReport, ev.Running, ev.Cmdline)
	}
	m.Running = ev.Running
	var s State
	if ev.Saved != nil {
		s = ev.Saved.Clone()
	}
	var acts []Action
	dirty := false
	if ev.Saved == nil || !s.Committed.Valid() {
		// First boot of a flashed image: adopt what cmdline.txt says.
		s = State{Committed: ev.Cmdline}
		if ev.Running == ev.Cmdline {
			s.Build, s.Version = ev.RunningBuild, ev.Version
		}
		dirty = true
	}
	if s.Committed != ev.Cmdline {
		// cmdline.txt is the truth. The only way it moves is a commit that
		// was interrupted before its record was saved: finish it.
		if s.Trial != nil && s.Trial.Slot == ev.Cmdline {
			t := s.Trial
			s = State{Committed: t.Slot, Build: t.Build, Version: t.Version,
				Last: &Result{Build: t.Build, Version: t.Version, Outcome: Committed}}
		} else {
			s.Committed, s.Trial = ev.Cmdline, nil
			if ev.Running == ev.Cmdline && ev.RunningBuild > s.Build {
				s.Build, s.Version = ev.RunningBuild, ev.Version
			}
		}
		dirty = true
	}
	if s.Last != nil && s.Last.Outcome == Installing {
		s.Last.Outcome, s.Last.Reason = Failed, "interrupted while writing the inactive slot (crash or power loss)"
		dirty = true
	}
	switch {
	case ev.Tryboot && s.Trial != nil && ev.Running == s.Trial.Slot && ev.Running != s.Committed:
		// The trial boot: checks decide.
		if s.Trial.Booted {
			// Cannot happen with a one-shot flag; never test twice.
			return rollbackOnBoot(m, s, "trial slot booted a second time")
		}
		s.Trial.Booted = true
		m.State, m.Phase = s, Trying
		return m, []Action{Save{s.Clone()}, CheckHealth{}}, nil
	case ev.Running != s.Committed:
		// Running an uncommitted slot without a matching trial: get back
		// to the committed slot.
		if s.Trial != nil {
			return rollbackOnBoot(m, s, "unexpected boot of the trial slot")
		}
		m.State, m.Phase = s, Halted
		acts = append(acts, Save{s.Clone()}, Reboot{fmt.Sprintf("running uncommitted slot %s; committed is %s", ev.Running, s.Committed)})
		return m, acts, nil
	case s.Trial != nil:
		// Back on the committed slot with a trial on record: it rolled back.
		t := s.Trial
		reason := "trial slot never reached its health checks (it crashed or hung early, lost power, or the reboot into it did not happen); firmware fell back"
		if t.Booted {
			reason = "trial boot did not finish its health checks (crash, hang or power loss); firmware fell back"
		}
		s.Trial = nil
		s.Last = &Result{Build: t.Build, Version: t.Version, Outcome: RolledBack, Reason: reason}
		dirty = true
	}
	m.State, m.Phase = s, Idle
	if dirty {
		acts = append(acts, Save{s.Clone()})
	}
	return m, acts, nil
}

func rollbackOnBoot(m Machine, s State, why string) (Machine, []Action, error) {
	t := s.Trial
	s.Trial = nil
	s.Last = &Result{Build: t.Build, Version: t.Version, Outcome: RolledBack, Reason: why}
	m.State, m.Phase = s, Halted
	return m, []Action{Save{s.Clone()}, Reboot{"rolling back: " + why}}, nil
}
