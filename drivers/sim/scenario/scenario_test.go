package scenario

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"kazasu/drivers/sim/pn532emu"
)

func TestParse(t *testing.T) {
	s, err := ParseString(`
# comment line
card mynumber auth-pin-tries=2 seed=x   # trailing comment
tap
wait 250ms
wait-frames 12
wait-apdus 3
remove
reset
fault checksum frame=5
fault rx-checksum frame=6
fault drop frame=7 bytes=3
fault drop frame=8
fault ack-delay frame=9 delay=400ms
fault no-ack frame=10
fault gone frame=11
fault remove apdu=4
fault wtx apdu=2
fault wtx apdu=3 count=7
fault sw apdu=5 sw=6a82
`)
	if err != nil {
		t.Fatal(err)
	}
	wantSteps := []Step{
		{Line: 3, Op: OpCard, Kind: "mynumber", Options: []KeyValue{{"auth-pin-tries", "2"}, {"seed", "x"}}},
		{Line: 4, Op: OpTap},
		{Line: 5, Op: OpWait, Delay: 250 * time.Millisecond},
		{Line: 6, Op: OpWaitFrames, N: 12},
		{Line: 7, Op: OpWaitAPDUs, N: 3},
		{Line: 8, Op: OpRemove},
		{Line: 9, Op: OpReset},
	}
	if !reflect.DeepEqual(s.Steps, wantSteps) {
		t.Errorf("steps:\n got %+v\nwant %+v", s.Steps, wantSteps)
	}
	wantHost := []pn532emu.Fault{
		{Kind: pn532emu.FaultChecksum, Frame: 5},
		{Kind: pn532emu.FaultRxChecksum, Frame: 6},
		{Kind: pn532emu.FaultDrop, Frame: 7, Count: 3},
		{Kind: pn532emu.FaultDrop, Frame: 8, Count: 1},
		{Kind: pn532emu.FaultACKDelay, Frame: 9, Delay: 400 * time.Millisecond},
		{Kind: pn532emu.FaultNoACK, Frame: 10},
		{Kind: pn532emu.FaultGone, Frame: 11},
	}
	if !reflect.DeepEqual(s.HostFaults, wantHost) {
		t.Errorf("host faults:\n got %+v\nwant %+v", s.HostFaults, wantHost)
	}
	wantCard := []CardFault{
		{Kind: CardRemove, APDU: 4},
		{Kind: CardWTXStorm, APDU: 2, Count: 50},
		{Kind: CardWTXStorm, APDU: 3, Count: 7},
		{Kind: CardSW, APDU: 5, SW: 0x6A82},
	}
	if !reflect.DeepEqual(s.CardFaults, wantCard) {
		t.Errorf("card faults:\n got %+v\nwant %+v", s.CardFaults, wantCard)
	}
	if !s.HasCard() {
		t.Error("HasCard() = false")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"tap\nbogus", "scenario: line 2: unknown directive \"bogus\""},
		{"card", "line 1: card: want KIND"},
		{"card a=b", "line 1: card: want KIND"},
		{"card mynumber seed=1 1234", "line 1: card: option 2 is not key=value"},
		{"tap now", "line 1: tap takes no arguments"},
		{"remove x", "line 1: remove takes no arguments"},
		{"reset now", "line 1: reset takes no arguments"},
		{"wait", "line 1: wait: want DURATION"},
		{"wait 5", "line 1: wait: time: missing unit"},
		{"wait -1s", "out of range"},
		{"wait 25h", "out of range"},
		{"wait-frames x", "line 1: wait-frames: \"x\" is not a number"},
		{"wait-apdus -1", "out of range"},
		{"fault", "line 1: fault: want NAME"},
		{"fault meteor frame=1", "unknown fault \"meteor\""},
		{"fault checksum", "fault checksum: frame= missing"},
		{"fault checksum frame=0", "fault checksum: frame: 0 out of range"},
		{"fault checksum frame=1 apdu=2", "unknown key \"apdu\""},
		{"fault checksum frame=1 frame=2", "frame given twice"},
		{"fault ack-delay frame=1", "delay= missing"},
		{"fault ack-delay frame=1 delay=x", "fault ack-delay: delay: time: invalid duration"},
		{"fault sw apdu=1 sw=6A", "not 4 hex digits"},
		{"fault sw apdu=1 sw=zzzz", "not 4 hex digits"},
		{"fault wtx apdu=1 count=0", "count: 0 out of range"},
		{"fault remove frame=3", "unknown key \"frame\""},
		{"\n\n  fault drop frame=2 bytes=0", "scenario: line 3: fault drop: bytes: 0 out of range"},
		{"card \xff", "not UTF-8"},
		{strings.Repeat("x", maxLine+1), "line 1: bufio.Scanner: token too long"},
	}
	for _, tt := range tests {
		_, err := ParseString(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
}

func TestTestdataParses(t *testing.T) {
	files, err := filepath.Glob("testdata/*.scn")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ParseString(string(b))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if !s.HasCard() || len(s.Steps) < 2 {
			t.Errorf("%s: %d steps, card %v", f, len(s.Steps), s.HasCard())
		}
	}
}

func TestEnumStrings(t *testing.T) {
	for _, s := range []interface{ String() string }{OpCard, OpTap, OpRemove, OpWait, OpWaitFrames, OpWaitAPDUs, OpReset, Op(0), CardRemove, CardWTXStorm, CardSW, CardFaultKind(0)} {
		if s.String() == "" {
			t.Errorf("%#v: empty String()", s)
		}
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.scn")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(string(b))
	}
	f.Add("fault sw apdu=1 sw=9000\nwait 1ms\nwait-frames 3")
	f.Add("card x a=b=c\n#\n\t\ttap")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseString(in)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "scenario: line ") {
				t.Fatalf("error without a line number: %v", err)
			}
			return
		}
		for _, st := range s.Steps {
			if st.Line < 1 || st.Op < OpCard || st.Op > OpReset || st.Delay < 0 || st.N < 0 {
				t.Fatalf("bad step %+v", st)
			}
		}
		for _, h := range s.HostFaults {
			if h.Frame < 1 || h.Kind == 0 {
				t.Fatalf("bad host fault %+v", h)
			}
		}
		for _, c := range s.CardFaults {
			if c.APDU < 1 || c.Kind == 0 {
				t.Fatalf("bad card fault %+v", c)
			}
		}
	})
}
