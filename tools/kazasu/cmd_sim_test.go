package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSimUsage(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.scn")
	if err := os.WriteFile(bad, []byte("tap\nexplode\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"sim"}, 2, "usage: kazasu sim pn532"},
		{[]string{"sim", "pn533", "--link", "x"}, 2, "usage"},
		{[]string{"sim", "pn532"}, 2, "usage"},
		{[]string{"sim", "pn532", "--link", filepath.Join(dir, "l"), "extra"}, 2, "usage"},
		{[]string{"sim", "pn532", "--link", filepath.Join(dir, "l"), "--card", "felica"}, 2, "unknown kind"},
		{[]string{"sim", "pn532", "--link", filepath.Join(dir, "l"), "--scenario", bad}, 2, "line 2: unknown directive"},
		{[]string{"sim", "pn532", "--link", filepath.Join(dir, "l"), "--scenario", filepath.Join(dir, "missing")}, 2, "no such file"},
	}
	for _, tt := range tests {
		code, out, errs := run(t, tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.err) || out != "" {
			t.Errorf("kazasu %q: code %d, stdout %q, stderr %q; want %d and %q", tt.args, code, out, errs, tt.code, tt.err)
		}
	}
}

// TestSimServes runs the command in-process: exactly one "ready PATH" line,
// PATH links to a pty that answers a PN532 GetFirmwareVersion, and
// cancelling (what SIGTERM does in main) ends it with exit 0 and removes
// the link.
func TestSimServes(t *testing.T) {
	link := filepath.Join(t.TempDir(), "ttyPN532")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		var errb strings.Builder
		code := runMain(ctx, []string{"sim", "pn532", "--link", link, "--card", "none"}, strings.NewReader(""), pw, &errb)
		pw.Close()
		if code != 0 {
			t.Errorf("exit %d: %s", code, errb.String())
		}
		done <- code
	}()
	br := bufio.NewReader(pr)
	line, err := br.ReadString('\n')
	if err != nil || line != "ready "+link+"\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	go io.Copy(io.Discard, br)

	f, err := os.OpenFile(link, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Wake-up and SAMConfiguration back to back, as libnfc sends them, then
	// GetFirmwareVersion once the answer is in (a new frame would cancel
	// a pending answer).
	exchange(t, f, []byte{0x55, 0x55, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0x00, 0x00, 0xFF, 0x03, 0xFD, 0xD4, 0x14, 0x01, 0x17, 0x00},
		[]byte{0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00, 0x00, 0x00, 0xFF, 0x02, 0xFE, 0xD5, 0x15, 0x16, 0x00})
	exchange(t, f, []byte{0x00, 0x00, 0xFF, 0x02, 0xFE, 0xD4, 0x02, 0x2A, 0x00},
		[]byte{0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00, 0x00, 0x00, 0xFF, 0x06, 0xFA, 0xD5, 0x03, 0x32, 0x01, 0x06, 0x07, 0xE8, 0x00})
	f.Close()
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d", code)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Fatalf("link still there after exit: %v", err)
	}
}

// TestSimSIGTERM runs the real binary (this test binary re-executed as
// kazasu) with the simulated My Number Card, lists it with libnfc's
// nfc-list through the link, and stops it with SIGTERM: exit status 0.
func TestSimSIGTERM(t *testing.T) {
	if os.Getenv("KAZASU_SIM_CHILD") != "" {
		os.Args = append([]string{"kazasu"}, strings.Fields(os.Getenv("KAZASU_SIM_CHILD"))...)
		main()
		return
	}
	link := filepath.Join(t.TempDir(), "ttyPN532")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSimSIGTERM$")
	cmd.Env = append(os.Environ(), "KAZASU_SIM_CHILD=sim pn532 --card mynumber --link "+link)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready "+link+"\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	// Other tools use exactly this: libnfc on the link once "ready" is out.
	if nl, err := exec.LookPath("nfc-list"); err == nil {
		lc := exec.CommandContext(ctx, nl)
		lc.Env = append(os.Environ(), "LIBNFC_DEVICE=pn532_uart:"+link, "LIBNFC_LOG_LEVEL=0")
		out, err := lc.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "ISO/IEC 14443-4B (106 kbps) target:") || !strings.Contains(string(out), "Protocol Info: b3  81  a1") {
			t.Errorf("nfc-list on the link: %v\n%s", err, out)
		}
	} else if os.Getenv("KAZASU_REQUIRE_TOOLS") == "1" {
		t.Errorf("nfc-list not found and KAZASU_REQUIRE_TOOLS=1")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v", err)
	}
}

// exchange writes msg to the pty and expects exactly want back.
func exchange(t *testing.T, f *os.File, msg, want []byte) {
	t.Helper()
	if _, err := f.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	rd := make(chan error, 1)
	go func() { _, err := io.ReadFull(f, got); rd <- err }()
	select {
	case err := <-rd:
		if err != nil || string(got) != string(want) {
			t.Fatalf("pty answered % X, %v; want % X", got, err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no answer on the pty: % X", got)
	}
}

// TestSimScenario: a scenario whose card option is invalid is refused
// before "ready" (exit 2, the line named); a valid one taps its card.
func TestSimScenario(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.scn")
	if err := os.WriteFile(bad, []byte("# x\ncard mynumber auth-pin-tries=9\ntap\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(t, "sim", "pn532", "--link", filepath.Join(dir, "l"), "--scenario", bad)
	if code != 2 || out != "" || !strings.Contains(errs, "line 2") || !strings.Contains(errs, "auth-pin-tries") {
		t.Fatalf("bad card option: code %d, stdout %q, stderr %q", code, out, errs)
	}
}

func TestSimScenarioTaps(t *testing.T) {
	dir := t.TempDir()
	scn := filepath.Join(dir, "tap.scn")
	if err := os.WriteFile(scn, []byte("card typea seed=cli\ntap\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "ttyPN532")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		var errb strings.Builder
		code := runMain(ctx, []string{"sim", "pn532", "--link", link, "--scenario", scn, "--virtual-time"}, strings.NewReader(""), pw, &errb)
		pw.Close()
		if code != 0 {
			t.Errorf("exit %d: %s", code, errb.String())
		}
		done <- code
	}()
	br := bufio.NewReader(pr)
	if line, err := br.ReadString('\n'); err != nil || line != "ready "+link+"\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	go io.Copy(io.Discard, br)
	f, err := os.OpenFile(link, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ack := []byte{0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00}
	// Wake-up + SAMConfiguration; then InListPassiveTarget 106 A under the
	// reset default MxRtyPassiveActivation FF: it answers once tapped.
	exchange(t, f, []byte{0x55, 0x55, 0x00, 0x00, 0x00, 0xFF, 0x03, 0xFD, 0xD4, 0x14, 0x01, 0x17, 0x00},
		append(append([]byte(nil), ack...), 0x00, 0x00, 0xFF, 0x02, 0xFE, 0xD5, 0x15, 0x16, 0x00))
	if _, err := f.Write([]byte{0x00, 0x00, 0xFF, 0x04, 0xFC, 0xD4, 0x4A, 0x01, 0x00, 0xE1, 0x00}); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 6+10)
	rd := make(chan error, 1)
	go func() { _, err := io.ReadFull(f, got); rd <- err }()
	select {
	case err := <-rd:
		// ACK, then 00 00 FF LEN LCS D5 4B 01 (one target).
		if err != nil || string(got[:6]) != string(ack) || got[11] != 0xD5 || got[12] != 0x4B || got[13] != 0x01 {
			t.Fatalf("InListPassiveTarget: % X, %v", got, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the scenario never tapped its card")
	}
	cancel()
	<-done
}
