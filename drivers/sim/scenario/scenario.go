// Package scenario scripts what happens around an emulated reader: which
// token is tapped and when it leaves, its PIN counters and other options,
// and the faults to inject on the host link (into package pn532emu) and on
// the card (wrappers around rf.PICC). It is virtual hardware, like the rest
// of drivers/sim.
//
// # Format
//
// A scenario is UTF-8 text, one directive per line. Blank lines are
// ignored; # starts a comment that runs to the end of the line. Words are
// separated by spaces or tabs; options are key=value.
//
//	card KIND [key=value …]   the token: a kind (mynumber, android, iphone,
//	                          iphone-armed, juki, typea, …) and options passed
//	                          as they are to the card factory (for the
//	                          standard cards: auth-pin-tries=2, seed=x, …)
//	tap                       put the current card in the field
//	remove                    take it out of the field
//	wait DURATION             let DURATION of wall time pass ("500ms", "2s")
//	wait-frames N             wait until the host has sent N command frames
//	                          (counted from the chip's reset)
//	wait-apdus N              wait until the card has received N APDUs
//	reset                     reset the reader chip (RSTPDN): it drops what it
//	                          was doing and comes back as from power-up
//	fault NAME key=value …    inject a fault (below)
//
// Steps (card, tap, remove, wait…) run in order on a timeline started by
// Run. A card directive replaces the current card (a new token; the old one
// is removed from the field if it is in it). Fault directives are not
// steps: they apply from the start, wherever they stand, and count host
// frames from the chip's reset and APDUs from the start over all taps.
//
// Host-link faults (frame=N is the Nth command frame from the host):
//
//	fault checksum frame=N          the answer to frame N has a wrong DCS
//	fault rx-checksum frame=N       frame N arrives damaged: no ACK, no answer
//	fault drop frame=N [bytes=K]    K bytes (default 1) lost from the answer
//	fault ack-delay frame=N delay=D the ACK of frame N comes D late
//	fault no-ack frame=N            the ACK of frame N is lost
//	fault gone frame=N              the reader vanishes: the link is closed
//
// Card faults (apdu=N is the Nth APDU the card receives):
//
//	fault remove apdu=N             the card leaves the field just before
//	                                APDU N reaches it
//	fault wtx apdu=N [count=K]      K S(WTX) requests (default 50) before
//	                                the answer to APDU N (a WTX storm)
//	fault sw apdu=N sw=XXXX         APDU N is answered with status word XXXX
//	                                only (the card still executes it)
//
// Examples are in testdata/.
package scenario

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"kazasu/drivers/sim/pn532emu"
)

// Op is a timeline step's operation.
type Op uint8

const (
	OpCard Op = iota + 1
	OpTap
	OpRemove
	OpWait
	OpWaitFrames
	OpWaitAPDUs
	OpReset
)

func (o Op) String() string {
	switch o {
	case OpCard:
		return "card"
	case OpTap:
		return "tap"
	case OpRemove:
		return "remove"
	case OpWait:
		return "wait"
	case OpWaitFrames:
		return "wait-frames"
	case OpWaitAPDUs:
		return "wait-apdus"
	case OpReset:
		return "reset"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Step is one timeline directive.
type Step struct {
	Line    int
	Op      Op
	Kind    string     // OpCard
	Options []KeyValue // OpCard, in file order
	Delay   time.Duration
	N       int // OpWaitFrames, OpWaitAPDUs
}

// KeyValue is one key=value option.
type KeyValue struct{ Key, Value string }

// CardFaultKind is a fault injected by the card wrapper.
type CardFaultKind uint8

const (
	CardRemove CardFaultKind = iota + 1
	CardWTXStorm
	CardSW
)

func (k CardFaultKind) String() string {
	switch k {
	case CardRemove:
		return "remove"
	case CardWTXStorm:
		return "wtx"
	case CardSW:
		return "sw"
	}
	return fmt.Sprintf("CardFaultKind(%d)", uint8(k))
}

// CardFault is a fault tied to the Nth APDU the card receives (1-based).
type CardFault struct {
	Kind  CardFaultKind
	APDU  int
	Count int    // CardWTXStorm
	SW    uint16 // CardSW
}

// Script is a parsed scenario.
type Script struct {
	Steps      []Step
	HostFaults []pn532emu.Fault
	CardFaults []CardFault
}

// HasCard reports whether the script chooses its own card.
func (s *Script) HasCard() bool {
	for _, st := range s.Steps {
		if st.Op == OpCard {
			return true
		}
	}
	return false
}

// Limits that keep a hostile scenario from asking for absurd work.
const (
	maxLine  = 4096
	maxSteps = 10000
	maxN     = 1 << 24
	maxWait  = 24 * time.Hour
)

// Parse reads a scenario. Errors name the line: "scenario: line 3: …".
func Parse(r io.Reader) (*Script, error) {
	s := &Script{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), maxLine)
	n := 0
	for sc.Scan() {
		n++
		if err := s.parseLine(n, sc.Text()); err != nil {
			return nil, fmt.Errorf("scenario: line %d: %w", n, err)
		}
		if len(s.Steps)+len(s.HostFaults)+len(s.CardFaults) > maxSteps {
			return nil, fmt.Errorf("scenario: line %d: more than %d directives", n, maxSteps)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scenario: line %d: %w", n+1, err)
	}
	return s, nil
}

// ParseString parses a scenario held in a string.
func ParseString(text string) (*Script, error) { return Parse(strings.NewReader(text)) }

func (s *Script) parseLine(n int, line string) error {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	words := strings.Fields(line)
	if len(words) == 0 {
		return nil
	}
	if !bytes.Equal([]byte(line), bytes.ToValidUTF8([]byte(line), nil)) {
		return fmt.Errorf("not UTF-8")
	}
	dir, args := words[0], words[1:]
	switch dir {
	case "card":
		if len(args) < 1 || strings.Contains(args[0], "=") {
			return fmt.Errorf("card: want KIND [key=value …]")
		}
		kv, err := keyValues(args[1:])
		if err != nil {
			return fmt.Errorf("card: %w", err)
		}
		s.Steps = append(s.Steps, Step{Line: n, Op: OpCard, Kind: args[0], Options: kv})
	case "tap", "remove", "reset":
		if len(args) != 0 {
			return fmt.Errorf("%s takes no arguments", dir)
		}
		op := map[string]Op{"tap": OpTap, "remove": OpRemove, "reset": OpReset}[dir]
		s.Steps = append(s.Steps, Step{Line: n, Op: op})
	case "wait":
		if len(args) != 1 {
			return fmt.Errorf("wait: want DURATION")
		}
		d, err := duration(args[0])
		if err != nil {
			return fmt.Errorf("wait: %w", err)
		}
		s.Steps = append(s.Steps, Step{Line: n, Op: OpWait, Delay: d})
	case "wait-frames", "wait-apdus":
		if len(args) != 1 {
			return fmt.Errorf("%s: want N", dir)
		}
		v, err := count(args[0], 0)
		if err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		op := OpWaitFrames
		if dir == "wait-apdus" {
			op = OpWaitAPDUs
		}
		s.Steps = append(s.Steps, Step{Line: n, Op: op, N: v})
	case "fault":
		if len(args) < 1 {
			return fmt.Errorf("fault: want NAME key=value …")
		}
		return s.parseFault(args[0], args[1:])
	default:
		return fmt.Errorf("unknown directive %q", dir)
	}
	return nil
}

func keyValues(args []string) ([]KeyValue, error) {
	var out []KeyValue
	for i, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			// The word itself is not echoed: it may be a mistyped PIN.
			return nil, fmt.Errorf("option %d is not key=value", i+1)
		}
		out = append(out, KeyValue{k, v})
	}
	return out, nil
}

func duration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < 0 || d > maxWait {
		return 0, fmt.Errorf("duration %v out of range [0, %v]", d, maxWait)
	}
	return d, nil
}

func count(s string, min int) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if v < min || v > maxN {
		return 0, fmt.Errorf("%d out of range [%d, %d]", v, min, maxN)
	}
	return v, nil
}

// parseFault handles "fault NAME key=value …": every key must be known to
// the fault, and the required ones present.
func (s *Script) parseFault(name string, args []string) error {
	kv, err := keyValues(args)
	if err != nil {
		return fmt.Errorf("fault %s: %w", name, err)
	}
	type spec struct {
		required, optional []string
	}
	specs := map[string]spec{
		"checksum":    {[]string{"frame"}, nil},
		"rx-checksum": {[]string{"frame"}, nil},
		"drop":        {[]string{"frame"}, []string{"bytes"}},
		"ack-delay":   {[]string{"frame", "delay"}, nil},
		"no-ack":      {[]string{"frame"}, nil},
		"gone":        {[]string{"frame"}, nil},
		"remove":      {[]string{"apdu"}, nil},
		"wtx":         {[]string{"apdu"}, []string{"count"}},
		"sw":          {[]string{"apdu", "sw"}, nil},
	}
	sp, ok := specs[name]
	if !ok {
		return fmt.Errorf("unknown fault %q", name)
	}
	vals := map[string]string{}
	for _, p := range kv {
		known := false
		for _, k := range append(append([]string(nil), sp.required...), sp.optional...) {
			known = known || k == p.Key
		}
		if !known {
			return fmt.Errorf("fault %s: unknown key %q", name, p.Key)
		}
		if _, dup := vals[p.Key]; dup {
			return fmt.Errorf("fault %s: %s given twice", name, p.Key)
		}
		vals[p.Key] = p.Value
	}
	for _, k := range sp.required {
		if _, ok := vals[k]; !ok {
			return fmt.Errorf("fault %s: %s= missing", name, k)
		}
	}
	num := func(k string, min, def int) (int, error) {
		v, ok := vals[k]
		if !ok {
			return def, nil
		}
		n, err := count(v, min)
		if err != nil {
			return 0, fmt.Errorf("fault %s: %s: %w", name, k, err)
		}
		return n, nil
	}
	if _, ok := vals["frame"]; ok {
		frame, err := num("frame", 1, 0)
		if err != nil {
			return err
		}
		f := pn532emu.Fault{Frame: frame}
		switch name {
		case "checksum":
			f.Kind = pn532emu.FaultChecksum
		case "rx-checksum":
			f.Kind = pn532emu.FaultRxChecksum
		case "drop":
			f.Kind = pn532emu.FaultDrop
			if f.Count, err = num("bytes", 1, 1); err != nil {
				return err
			}
		case "ack-delay":
			f.Kind = pn532emu.FaultACKDelay
			if f.Delay, err = duration(vals["delay"]); err != nil {
				return fmt.Errorf("fault %s: delay: %w", name, err)
			}
		case "no-ack":
			f.Kind = pn532emu.FaultNoACK
		case "gone":
			f.Kind = pn532emu.FaultGone
		}
		s.HostFaults = append(s.HostFaults, f)
		return nil
	}
	apdu, err := num("apdu", 1, 0)
	if err != nil {
		return err
	}
	f := CardFault{APDU: apdu}
	switch name {
	case "remove":
		f.Kind = CardRemove
	case "wtx":
		f.Kind = CardWTXStorm
		if f.Count, err = num("count", 1, 50); err != nil {
			return err
		}
	case "sw":
		f.Kind = CardSW
		b, err := hex.DecodeString(vals["sw"])
		if err != nil || len(b) != 2 {
			return fmt.Errorf("fault sw: sw=%q is not 4 hex digits", vals["sw"])
		}
		f.SW = uint16(b[0])<<8 | uint16(b[1])
	}
	s.CardFaults = append(s.CardFaults, f)
	return nil
}
