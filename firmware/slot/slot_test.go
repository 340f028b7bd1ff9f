package slot

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// pi is a model of a Raspberry Pi's persistent state and firmware: two
// root slots, cmdline.txt and cmdline-try.txt, the one-shot tryboot flag
// and the agent's record on /perm.
type pi struct {
	slots   map[Slot]content
	cmdline Slot
	try     Slot
	flag    bool
	perm    *State
}

type content struct {
	build    uint64
	complete bool
}

type crashKind int

const (
	powerCut  crashKind = iota // flag lost
	warmReset                  // panic=10, watchdog, reboot: flag kept
)

func (k crashKind) String() string { return [...]string{"power cut", "warm reset"}[k] }

type crash struct {
	at   int
	kind crashKind
}

type scenario struct {
	healthOK bool
	writeErr bool
}

// sim runs the agent's machine against the pi model, crashing at the
// given global step numbers, and checks the invariants after every step.
type sim struct {
	t        *testing.T
	p        pi
	sc       scenario
	crashes  []crash
	step     int
	offered  bool
	accepted bool // the agent persisted that it started installing
	hits     int  // crashes that fired
	passed   bool // health checks passed at least once
	trials   int  // boots of build 2 through the tryboot flag
	maxBuild uint64
	log      []string
	m        Machine
}

func newSim(t *testing.T, sc scenario, crashes []crash) *sim {
	return &sim{t: t, sc: sc, crashes: crashes, p: pi{
		slots:   map[Slot]content{A: {1, true}, B: {0, false}},
		cmdline: A, try: A,
	}}
}

var errCrash = errors.New("crash")

func (s *sim) fail(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("%s\nafter: %s", fmt.Sprintf(format, args...), strings.Join(s.log, " → "))
}

// tick is one atomic step on the device; it returns errCrash if a crash
// was scheduled here.
func (s *sim) tick(what string) error {
	for _, c := range s.crashes {
		if c.at == s.step {
			s.hits++
			s.step++
			s.log = append(s.log, fmt.Sprintf("%s before %s", c.kind, what))
			if c.kind == powerCut {
				s.p.flag = false
			}
			return errCrash
		}
	}
	s.step++
	s.log = append(s.log, what)
	return nil
}

func (s *sim) invariants() {
	s.t.Helper()
	c := s.p.slots[s.p.cmdline]
	if !c.complete {
		s.fail("cmdline.txt points at slot %s, which is not complete", s.p.cmdline)
	}
	if c.build != 1 && !(c.build == 2 && s.passed) {
		s.fail("cmdline.txt points at build %d, which never passed its checks", c.build)
	}
	if s.p.flag && !s.p.slots[s.p.try].complete {
		s.fail("tryboot armed towards incomplete slot %s", s.p.try)
	}
	if s.p.perm != nil {
		if s.p.perm.Build < s.maxBuild {
			s.fail("committed build went down from %d to %d", s.maxBuild, s.p.perm.Build)
		}
		s.maxBuild = s.p.perm.Build
	}
	if s.trials > 1 {
		s.fail("trial slot booted %d times", s.trials)
	}
}

// firmware picks the root like the Pi firmware does; an incomplete slot
// panics the kernel, which (panic=10) resets the board, flag already gone.
func (s *sim) firmware() (root Slot, tryboot bool) {
	for range 3 {
		root, tryboot = s.p.cmdline, false
		if s.p.flag {
			s.p.flag = false
			root, tryboot = s.p.try, true
		}
		if s.p.slots[root].complete {
			if tryboot && root != s.p.cmdline {
				s.trials++
			}
			return root, tryboot
		}
		s.log = append(s.log, fmt.Sprintf("kernel panic: slot %s unbootable", root))
	}
	s.fail("no bootable slot")
	return 0, false
}

// run boots until the system is quiet; false if it crashed (call again).
func (s *sim) run() bool {
	root, tryboot := s.firmware()
	s.log = append(s.log, fmt.Sprintf("boot %s (tryboot=%v)", root, tryboot))
	var saved *State
	if s.p.perm != nil {
		c := s.p.perm.Clone()
		saved = &c
	}
	m, acts, err := Next(Machine{}, EvBoot{Running: root, Cmdline: s.p.cmdline, Tryboot: tryboot,
		RunningBuild: s.p.slots[root].build, Version: fmt.Sprint(s.p.slots[root].build), Saved: saved})
	if err != nil {
		s.fail("boot: %v", err)
	}
	s.m = m
	for {
		for len(acts) > 0 {
			a := acts[0]
			acts = acts[1:]
			ev, rebooted, crashed := s.do(a)
			if crashed {
				return false
			}
			if rebooted {
				return s.run()
			}
			if ev != nil {
				s.m, acts, err = Next(s.m, ev)
				if err != nil {
					s.fail("%T: %v", ev, err)
				}
			}
		}
		if s.m.Phase == Idle && !s.offered && s.m.Running == s.m.State.Committed {
			s.offered = true
			s.m, acts, err = Next(s.m, EvBundle{Build: 2, Version: "2"})
			if err != nil {
				s.fail("bundle: %v", err)
			}
			continue
		}
		if s.m.Phase == Halted || s.m.Phase == Rebooting {
			s.fail("phase %s without a pending reboot", s.m.Phase)
		}
		return true
	}
}

func (s *sim) do(a Action) (ev Event, rebooted, crashed bool) {
	check := func(err error) bool {
		if err != nil {
			return true
		}
		s.invariants()
		return false
	}
	switch a := a.(type) {
	case Save:
		if check(s.tick("save")) {
			return nil, false, true
		}
		st := a.State.Clone()
		s.p.perm = &st
		s.accepted = s.accepted || st.Last != nil && st.Last.Outcome == Installing
		s.invariants()
	case WriteSlot:
		if a.Slot == s.p.cmdline {
			s.fail("writing the committed slot %s", a.Slot)
		}
		if check(s.tick("write " + a.Slot.String())) {
			return nil, false, true
		}
		s.p.slots[a.Slot] = content{2, false}
		s.invariants()
		if check(s.tick("finish " + a.Slot.String())) {
			return nil, false, true
		}
		if s.sc.writeErr {
			return EvWritten{errors.New("read-back mismatch at byte 4096")}, false, false
		}
		s.p.slots[a.Slot] = content{2, true}
		s.invariants()
		return EvWritten{}, false, false
	case WriteTryCmdline:
		if check(s.tick("try→" + a.Slot.String())) {
			return nil, false, true
		}
		s.p.try = a.Slot
		s.invariants()
	case ArmTryboot:
		if check(s.tick("arm")) {
			return nil, false, true
		}
		s.p.flag = true
		s.invariants()
	case Reboot:
		if check(s.tick("reboot")) {
			return nil, false, true
		}
		return nil, true, false
	case CheckHealth:
		if check(s.tick("health")) { // a hang here is the watchdog: a warm reset
			return nil, false, true
		}
		s.passed = s.passed || s.sc.healthOK
		if !s.sc.healthOK {
			return EvHealth{errors.New("reader self-test: no PN532 on /dev/ttyAMA0")}, false, false
		}
		return EvHealth{}, false, false
	case WriteCmdline:
		if check(s.tick("commit→" + a.Slot.String())) {
			return nil, false, true
		}
		s.p.cmdline = a.Slot
		s.invariants()
	default:
		s.fail("unknown action %T", a)
	}
	return nil, false, false
}

// final runs the simulation to the end and checks the outcome.
func (s *sim) final() {
	s.t.Helper()
	crashed := len(s.crashes) > 0
	for range 10 {
		if s.run() {
			break
		}
	}
	if s.hits != len(s.crashes) {
		s.fail("%d of %d scheduled crashes fired", s.hits, len(s.crashes))
	}
	// Quiet: one more boot without crashes must change nothing.
	s.crashes = nil
	st := s.p.perm.Clone()
	cmd := s.p.cmdline
	if !s.run() || s.p.cmdline != cmd || s.p.perm.Build != st.Build {
		s.fail("not stable across a reboot")
	}
	build := s.p.slots[s.p.cmdline].build
	if s.p.perm.Committed != s.p.cmdline || s.p.perm.Build != build || s.p.perm.Trial != nil {
		s.fail("record %+v disagrees with cmdline.txt → %s (build %d)", s.p.perm, s.p.cmdline, build)
	}
	last := s.p.perm.Last
	switch {
	case build == 2 && !s.sc.healthOK:
		s.fail("committed a build whose checks failed")
	case build == 2 && (last == nil || last.Outcome != Committed):
		s.fail("committed build 2 but last result is %+v", last)
	case build == 1 && s.accepted && (last == nil || last.Outcome == Committed || last.Outcome == Installing):
		s.fail("still on build 1 but last result is %+v", last)
	case build == 1 && last != nil && !s.sc.healthOK && !s.sc.writeErr && last.Outcome == Failed && !strings.Contains(last.Reason, "interrupted"):
		s.fail("unexplained failure %+v", last)
	}
	if !crashed && s.sc.healthOK && !s.sc.writeErr && build != 2 && s.trials == 0 {
		s.fail("update never tried")
	}
}

func scenarios() map[string]scenario {
	return map[string]scenario{
		"healthy":      {healthOK: true},
		"health fails": {healthOK: false},
		"write fails":  {healthOK: true, writeErr: true},
	}
}

func TestNoCrash(t *testing.T) {
	for name, sc := range scenarios() {
		t.Run(name, func(t *testing.T) {
			s := newSim(t, sc, nil)
			s.final()
			want := map[string]Outcome{"healthy": Committed, "health fails": RolledBack, "write fails": Failed}[name]
			if got := s.p.perm.Last.Outcome; got != want {
				t.Fatalf("outcome %s, want %s; %s", got, want, strings.Join(s.log, " → "))
			}
			t.Log(strings.Join(s.log, " → "))
		})
	}
}

// Crash after every prefix of every action sequence, with both crash
// kinds, and then crash again after every prefix of the recovery.
func TestCrashAfterEveryPrefix(t *testing.T) {
	runs := 0
	for name, sc := range scenarios() {
		n := stepsOf(t, sc, nil)
		t.Logf("%s: %d steps without crashes", name, n)
		for k1 := 0; k1 < n; k1++ {
			for _, c1 := range []crashKind{powerCut, warmReset} {
				first := []crash{{k1, c1}}
				newSim(t, sc, first).final()
				runs++
				n2 := stepsOf(t, sc, first)
				for k2 := k1 + 1; k2 < n2; k2++ {
					for _, c2 := range []crashKind{powerCut, warmReset} {
						s := newSim(t, sc, []crash{{k1, c1}, {k2, c2}})
						s.final()
						runs++
					}
				}
			}
		}
		_ = name
	}
	t.Logf("%d crash schedules checked", runs)
}

func stepsOf(t *testing.T, sc scenario, crashes []crash) int {
	s := newSim(t, sc, crashes)
	s.final()
	return s.step
}

func TestRefusals(t *testing.T) {
	m, _, err := Next(Machine{}, EvBoot{Running: A, Cmdline: A, RunningBuild: 5})
	if err != nil || m.Phase != Idle || m.State.Build != 5 {
		t.Fatalf("%+v %v", m, err)
	}
	if _, _, err := Next(m, EvBundle{Build: 5}); !errors.Is(err, ErrNotNewer) {
		t.Errorf("replay: %v", err)
	}
	if _, _, err := Next(m, EvBundle{Build: 4}); !errors.Is(err, ErrNotNewer) {
		t.Errorf("downgrade: %v", err)
	}
	w, acts, err := Next(m, EvBundle{Build: 6})
	if err != nil || len(acts) != 2 || acts[1] != (WriteSlot{B}) {
		t.Fatalf("%v %v", acts, err)
	}
	if _, _, err := Next(w, EvBundle{Build: 7}); !errors.Is(err, ErrBusy) {
		t.Errorf("second bundle while writing: %v", err)
	}
	tr := Machine{Phase: Trying, State: State{Committed: A, Trial: &Trial{Slot: B, Build: 6}}}
	if _, _, err := Next(tr, EvBundle{Build: 7}); !errors.Is(err, ErrInTrial) {
		t.Errorf("bundle during trial: %v", err)
	}
	if _, _, err := Next(m, EvHealth{}); !errors.Is(err, ErrBadEvent) {
		t.Errorf("health while idle: %v", err)
	}
	if _, _, err := Next(Machine{}, EvBoot{Running: 7, Cmdline: A}); !errors.Is(err, ErrBadReport) {
		t.Errorf("bad slot: %v", err)
	}
	// Running the uncommitted slot with no trial: reboot back.
	h, acts, _ := Next(Machine{}, EvBoot{Running: B, Cmdline: A, Saved: &State{Committed: A, Build: 3}})
	if h.Phase != Halted || len(acts) != 2 {
		t.Fatalf("%v %v", h.Phase, acts)
	}
	if _, ok := acts[1].(Reboot); !ok {
		t.Fatalf("%v", acts)
	}
}

// Random event sequences: Next never panics, never lowers the committed
// build, and never targets the committed slot.
func FuzzNext(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 0, 4})
	f.Fuzz(func(t *testing.T, ops []byte) {
		m := Machine{}
		var build uint64
		for _, op := range ops {
			var ev Event
			switch op % 6 {
			case 0:
				m.Phase = Starting
				ev = EvBoot{Running: Slot(2 + op/6%2), Cmdline: Slot(2 + op/12%2), Tryboot: op&0x80 != 0, RunningBuild: uint64(op / 8), Saved: &m.State}
			case 1:
				ev = EvBundle{Build: uint64(op / 4)}
			case 2:
				ev = EvWritten{}
			case 3:
				ev = EvWritten{errors.New("x")}
			case 4:
				ev = EvHealth{}
			case 5:
				ev = EvHealth{errors.New("x")}
			}
			n, acts, err := Next(m, ev)
			if err != nil {
				continue
			}
			for _, a := range acts {
				if w, ok := a.(WriteSlot); ok && w.Slot == n.State.Committed {
					t.Fatalf("writes the committed slot")
				}
			}
			if _, boot := ev.(EvBoot); !boot && n.State.Build < build {
				t.Fatalf("build went down %d → %d", build, n.State.Build)
			}
			build, m = n.State.Build, n
		}
	})
}
