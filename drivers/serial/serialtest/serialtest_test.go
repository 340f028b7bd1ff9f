package serialtest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"kazasu/drivers/nfc"
	"kazasu/drivers/serial"
)

func TestPlaybackScript(t *testing.T) {
	gone := nfc.Errorf("serial: read", nfc.ErrReaderGone, "unplugged")
	p := &Playback{Ops: []Op{
		{W: []byte{1, 2, 3}},                      // written in two pieces below
		{R: []byte{4, 5, 6}},                      // read in two pieces below
		{Timeout: true, ReadTimeout: time.Second}, // silent line
		{Flush: true},                             // explicit drain
		{Baud: 921600},                            // rate change
		{Err: gone},                               // adapter unplugged
	}}
	if _, err := p.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	p.Flush() // an unscripted Flush in the middle is ignored
	if _, err := p.Write([]byte{2, 3}); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 2)
	if n, err := p.Read(b); n != 2 || err != nil || b[0] != 4 || b[1] != 5 {
		t.Fatalf("Read = %d %v % X", n, err, b)
	}
	if n, err := p.Read(b); n != 1 || err != nil || b[0] != 6 {
		t.Fatalf("Read = %d %v % X", n, err, b)
	}
	p.SetReadTimeout(time.Second)
	if _, err := p.Read(b); !errors.Is(err, serial.ErrTimeout) {
		t.Fatalf("Read = %v, want ErrTimeout", err)
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := p.SetBaud(921600); err != nil || p.Baud() != 921600 {
		t.Fatalf("SetBaud: %v, Baud %d", err, p.Baud())
	}
	if _, err := p.Read(b); !errors.Is(err, nfc.ErrReaderGone) {
		t.Fatalf("Read = %v, want ErrReaderGone", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
}

func TestPlaybackMismatches(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []Op
		run  func(p *Playback) error
		want string
	}{
		{"wrong write", []Op{{W: []byte{1, 2}}}, func(p *Playback) error { _, err := p.Write([]byte{1, 3}); return err }, "want [01 02]"},
		{"write while device talks", []Op{{R: []byte{1}}}, func(p *Playback) error { _, err := p.Write([]byte{1}); return err }, "unexpected write"},
		{"read while device listens", []Op{{W: []byte{1}}}, func(p *Playback) error { _, err := p.Read(make([]byte, 1)); return err }, "unexpected Read"},
		{"wrong timeout", []Op{{Timeout: true, ReadTimeout: time.Second}}, func(p *Playback) error {
			p.SetReadTimeout(time.Millisecond)
			_, err := p.Read(make([]byte, 1))
			return err
		}, "read timeout is 1ms"},
		{"wrong baud", []Op{{Baud: 921600}}, func(p *Playback) error { return p.SetBaud(460800) }, "want SetBaud(921600)"},
		{"past the end", nil, func(p *Playback) error { _, err := p.Write([]byte{9}); return err }, "after the end"},
		{"zero timeout", nil, func(p *Playback) error { return p.SetReadTimeout(0) }, "positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Playback{Ops: tc.ops}
			err := tc.run(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if cerr := p.Close(); cerr == nil || cerr.Error() != err.Error() {
				t.Fatalf("Close = %v, want the first mismatch %v", cerr, err)
			}
		})
	}
}

func TestPlaybackLeftovers(t *testing.T) {
	p := &Playback{Ops: []Op{{W: []byte{1}}, {R: []byte{2}}}}
	p.Write([]byte{1})
	if err := p.Close(); err == nil || !strings.Contains(err.Error(), "1 of 2 ops used") {
		t.Fatalf("Close = %v, want a leftover error", err)
	}
	if _, err := p.Read(make([]byte, 1)); !errors.Is(err, serial.ErrClosed) {
		t.Fatalf("Read after Close = %v", err)
	}
}

func TestRecordReplays(t *testing.T) {
	// Record a session against a scripted "device", then replay the
	// recording: the same calls must satisfy it.
	script := []Op{{W: []byte{1, 2}}, {R: []byte{3, 4}}, {Timeout: true}, {Baud: 921600}, {W: []byte{5}}}
	rec := &Record{Port: &Playback{Ops: script}}
	session := func(p serial.Port) error {
		if _, err := p.Write([]byte{1}); err != nil {
			return err
		}
		if _, err := p.Write([]byte{2}); err != nil {
			return err
		}
		b := make([]byte, 1)
		for i := 0; i < 2; i++ {
			if _, err := p.Read(b); err != nil {
				return err
			}
		}
		if _, err := p.Read(b); !errors.Is(err, serial.ErrTimeout) {
			return err
		}
		if err := p.SetBaud(921600); err != nil {
			return err
		}
		_, err := p.Write([]byte{5})
		return err
	}
	if err := session(rec); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	got := rec.Ops()
	if len(got) != len(script) {
		t.Fatalf("recorded %v", got)
	}
	replay := &Playback{Ops: got}
	if err := session(replay); err != nil {
		t.Fatal(err)
	}
	if err := replay.Close(); err != nil {
		t.Fatal(err)
	}
	if s := rec.String(); !strings.Contains(s, "{W: []byte{0x01, 0x02}},") || !strings.Contains(s, "{Baud: 921600},") {
		t.Errorf("String() =\n%s", s)
	}
}
