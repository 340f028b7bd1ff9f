package updateagent

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

func fakeProc(t *testing.T, procs map[string][2]string) string {
	dir := t.TempDir()
	for pid, p := range procs {
		d := filepath.Join(dir, pid)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "cmdline"), []byte(p[0]), 0o644)
		os.WriteFile(filepath.Join(d, "stat"), []byte(pid+" (x y) "+p[1]+" 1 2 3"), 0o644)
	}
	os.MkdirAll(filepath.Join(dir, "self"), 0o755)
	return dir
}

func TestFindProcess(t *testing.T) {
	dir := fakeProc(t, map[string][2]string{
		"10": {"/user/kazasud\x00-config\x00x", "Z"}, // zombie: a crashed instance
		"11": {"/user/kazasu-update\x00", "S"},
		"12": {"/user/kazasud\x00-config\x00x", "S"},
	})
	if pid, err := findProcess(dir, "/user/kazasud"); err != nil || pid != 12 {
		t.Fatalf("%d %v", pid, err)
	}
	if _, err := findProcess(dir, "/user/nope"); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatal(err)
	}
	c := ServiceStable(dir, "/user/kazasud", 0)
	if err := c.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	c = ServiceStable(dir, "/user/kazasud", time.Hour)
	if err := c.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "without a restart") {
		t.Fatal(err)
	}
}

func TestRunChecks(t *testing.T) {
	n := 0
	checks := []Check{
		{Name: "eventually", Interval: time.Millisecond, Run: func(context.Context) error {
			n++
			if n < 3 {
				return errors.New("not yet")
			}
			return nil
		}},
		{Name: "never", Interval: time.Millisecond, Run: func(context.Context) error { return errors.New("broken") }},
		{Name: "not reached", Run: func(context.Context) error { t.Fatal("ran after a failure"); return nil }},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res, err := RunChecks(ctx, checks, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "never: broken") || len(res) != 2 || !res[0].OK || res[1].OK {
		t.Fatalf("%v %+v", err, res)
	}
}

func TestClockAndData(t *testing.T) {
	build := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := ClockSet(func() time.Time { return time.Unix(0, 0) }, build).Run(context.Background()); err == nil || !strings.Contains(err.Error(), "1970") {
		t.Fatal(err)
	}
	if err := ClockSet(func() time.Time { return build.Add(time.Second) }, build).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "perm")
	if err := DataWritable(dir).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o755)
	if os.Geteuid() != 0 { // root ignores the mode
		if err := DataWritable(dir).Run(context.Background()); err == nil {
			t.Fatal("read-only dir passed")
		}
	}
}

// A PN532 on a pty answers GetFirmwareVersion.
func TestProbeUART(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skip("no pty:", err)
	}
	defer ptmx.Close()
	name := tty.Name()
	defer tty.Close()
	go func() {
		buf := make([]byte, 256)
		var got []byte
		for !bytes.Contains(got, pn532GetFW) {
			n, err := ptmx.Read(buf)
			if err != nil {
				return
			}
			got = append(got, buf[:n]...)
		}
		ptmx.Write([]byte{0x00, 0x00, 0xff, 0x00, 0xff, 0x00}) // ACK
		ptmx.Write([]byte{0x00, 0x00, 0xff, 0x06, 0xfa, 0xd5, 0x03, 0x32, 0x01, 0x06, 0x07, 0xe8, 0x00})
	}()
	v, err := probeUART(context.Background(), name, 115200)
	if err != nil || !bytes.Equal(v, []byte{0x32, 0x01, 0x06, 0x07}) {
		t.Fatalf("% x %v", v, err)
	}
	// Silence is a failure with a clear message.
	ptmx2, tty2, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx2.Close()
	defer tty2.Close()
	go func() { // swallow what the probe writes
		buf := make([]byte, 256)
		for {
			if _, err := ptmx2.Read(buf); err != nil {
				return
			}
		}
	}()
	if _, err := probeUART(context.Background(), tty2.Name(), 115200); err == nil || !strings.Contains(err.Error(), "no PN532") {
		t.Fatal(err)
	}
	if err := ReaderCheck("uart", "/nonexistent/tty", 115200).Run(context.Background()); err == nil {
		t.Fatal("missing device passed")
	}
}
