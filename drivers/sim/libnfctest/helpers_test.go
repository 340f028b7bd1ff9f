package libnfctest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"kazasu/drivers/sim/pn532emu"
	"kazasu/drivers/sim/rf"
)

// needTool returns the path of a tool, skipping the test when it is
// missing (failing under KAZASU_REQUIRE_TOOLS=1).
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("KAZASU_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s not found and KAZASU_REQUIRE_TOOLS=1: %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// rig is an emulator serving a pty linked at Link.
type rig struct {
	Emu   *pn532emu.Emulator
	Field *rf.Field
	Link  string
	mu    sync.Mutex
	log   bytes.Buffer
}

// start runs an emulator with the given field on a fresh pty until the
// test ends.
func start(t *testing.T, field *rf.Field, opts pn532emu.Options) *rig {
	t.Helper()
	r := &rig{Field: field, Link: filepath.Join(t.TempDir(), "ttyUSB0")}
	opts.Field = field
	opts.Logf = func(format string, args ...any) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.log.WriteString(time.Now().Format("15:04:05.000000 "))
		r.log.WriteString(sprintf(format, args...))
		r.log.WriteByte('\n')
	}
	r.Emu = pn532emu.New(opts)
	p, err := pn532emu.OpenPTY(r.Link)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Emu.ServePTY(ctx, p) }()
	t.Cleanup(func() {
		cancel()
		p.Close()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("ServePTY: %v", err)
		}
		if t.Failed() {
			r.mu.Lock()
			t.Logf("emulator log:\n%s", r.log.String())
			r.mu.Unlock()
		}
	})
	return r
}

// runTool runs a libnfc tool against the rig with a deadline and returns
// its combined output and exit code.
func (r *rig) runTool(t *testing.T, timeout time.Duration, name string, args ...string) (string, int) {
	t.Helper()
	path := needTool(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), "LIBNFC_DEVICE=pn532_uart:"+r.Link, "LIBNFC_LOG_LEVEL=0")
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %v; output:\n%s", name, timeout, out)
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return string(out), code
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
