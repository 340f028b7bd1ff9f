package vmtest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"kazasu/firmware/bundle"
	"kazasu/firmware/image"
	"kazasu/firmware/slot"
	"kazasu/firmware/updateagent"
)

var (
	signKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x4b}, 32))
	epoch   = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func tool(t *testing.T, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("KAZASU_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s missing (Debian: see tools/scripts/packages.sh)", name)
		}
		t.Skipf("%s missing", name)
	}
	return p
}

// release builds build n for the qemu target and signs its bundles.
func release(t *testing.T, out string, n uint64, rootOnly bool, edit func(*image.Config)) *image.Result {
	t.Helper()
	tg, _ := image.NewTarget(image.VMTarget, "")
	c := image.Config{Target: tg, Version: "1.0." + string(rune('0'+n)), Build: n, Epoch: epoch,
		Keys: bundle.Keys{Current: signKey.Public().(ed25519.PublicKey)}, ModuleRoot: moduleRoot(), Out: out, RootOnly: rootOnly,
		Services: image.DefaultServices()}
	if edit != nil {
		edit(&c)
	}
	// A trial that cannot pass gives up after 45 s here (3 minutes on a
	// board), and kazasud must stay up 10 s.
	c.Services[1].Args = []string{"-check-deadline", "45s", "-stable", "10s"}
	if c.TrialGuard != 0 {
		c.Services[1].Args = []string{"-check-deadline", "1000h", "-stable", "10s"}
	}
	start := time.Now()
	res, err := image.Build(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{res.Update, res.Flash} {
		if p == "" {
			continue
		}
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bundle.Sign(f, signKey); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	t.Logf("build %d ready in %s", n, time.Since(start).Round(time.Second))
	return res
}

func push(t *testing.T, v *vm, path string, throttle int) (*updateagent.Status, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r io.Reader = bytes.NewReader(b)
	if throttle > 0 {
		r = &slowReader{r: r, perSec: throttle}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	return v.client.Push(ctx, r, int64(len(b)))
}

// slowReader paces an upload, so the test can cut power mid-write.
type slowReader struct {
	r      io.Reader
	perSec int
}

func (s *slowReader) Read(p []byte) (int, error) {
	if len(p) > s.perSec/10 {
		p = p[:s.perSec/10]
	}
	time.Sleep(100 * time.Millisecond)
	return s.r.Read(p)
}

func refused(t *testing.T, err error, kind string) {
	t.Helper()
	var ae *updateagent.APIError
	if !errors.As(err, &ae) || ae.Kind != kind {
		t.Fatalf("want refusal %q, got %v", kind, err)
	}
	t.Logf("refused as expected: %v", err)
}

func idle(st *updateagent.Status) bool { return st.Phase == "idle" }

func TestUpdateScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("boots qemu")
	}
	qemu := tool(t, "qemu-system-aarch64")
	tool(t, "mksquashfs")
	tool(t, "mke2fs")
	out := t.TempDir()
	start := time.Now()

	v1 := release(t, out, 1, false, nil)
	badHealth := release(t, out, 2, true, func(c *image.Config) {
		// kazasud with an unreadable configuration exits 125 and is not
		// restarted: the trial's "kazasud up" check cannot pass.
		c.Services[0].Args = []string{"-config", "/proc/version"}
	})
	crashInit := release(t, out, 3, true, func(c *image.Config) { c.Init = "kazasu/firmware/vmtest/crashinit" })
	hungAgent := release(t, out, 4, true, func(c *image.Config) {
		// kazasud cannot start and the agent would wait 1000 hours for it:
		// only kazasu-init's trial guard (45 s here) ends the trial.
		c.Services[0].Args = []string{"-config", "/proc/version"}
		c.TrialGuard = 45 * time.Second
	})
	good := release(t, out, 5, true, nil)
	t.Logf("releases built in %s", time.Since(start).Round(time.Second))

	v := newVM(t, qemu, v1.Image)
	v.boot()
	st := v.status("first boot", 4*time.Minute, idle)
	if st.Build != 1 || st.RunningSlot != "A" || st.CommittedSlot != "A" {
		t.Fatalf("first boot: %+v", st)
	}
	t.Logf("booted to the agent (kazasud supervised) in %s", time.Since(start).Round(time.Second))

	t.Run("replayed bundle refused", func(t *testing.T) {
		_, err := push(t, v, v1.Update, 0)
		refused(t, err, "downgrade")
	})

	t.Run("failed health check rolls back", func(t *testing.T) {
		if _, err := push(t, v, badHealth.Update, 0); err != nil {
			t.Fatal(err)
		}
		v.waitExit(time.Minute) // reboot into the trial
		if !v.boot() {
			t.Fatal("flag not armed")
		}
		v.waitExit(5 * time.Minute) // checks fail, the agent reboots
		if v.boot() {
			t.Fatal("flag still set after the trial")
		}
		st := v.status("after rollback", 4*time.Minute, idle)
		if st.RunningSlot != "A" || st.Build != 1 || st.Last == nil || st.Last.Outcome != slot.RolledBack || st.Last.Build != 2 ||
			!strings.Contains(st.Last.Reason, "kazasud") {
			t.Fatalf("%+v %+v", st, st.Last)
		}
		t.Logf("rolled back: %s", st.Last.Reason)
	})

	t.Run("crashing init rolls back", func(t *testing.T) {
		if _, err := push(t, v, crashInit.Update, 0); err != nil {
			t.Fatal(err)
		}
		v.waitExit(time.Minute)
		if !v.boot() {
			t.Fatal("flag not armed")
		}
		v.waitExit(3 * time.Minute) // kernel panic, panic=10
		v.boot()
		st := v.status("after panic", 4*time.Minute, idle)
		if st.RunningSlot != "A" || st.Last == nil || st.Last.Outcome != slot.RolledBack || st.Last.Build != 3 {
			t.Fatalf("%+v %+v", st, st.Last)
		}
		t.Logf("rolled back: %s", st.Last.Reason)
	})

	t.Run("hung agent: the trial guard rolls back", func(t *testing.T) {
		if _, err := push(t, v, hungAgent.Update, 0); err != nil {
			t.Fatal(err)
		}
		v.waitExit(time.Minute)
		if !v.boot() {
			t.Fatal("flag not armed")
		}
		v.waitExit(4 * time.Minute) // the guard resets the board
		v.boot()
		st := v.status("after the guard", 4*time.Minute, idle)
		if st.RunningSlot != "A" || st.Last == nil || st.Last.Outcome != slot.RolledBack || st.Last.Build != 4 ||
			!strings.Contains(st.Last.Reason, "did not finish its health checks") {
			t.Fatalf("%+v %+v", st, st.Last)
		}
		t.Logf("rolled back: %s", st.Last.Reason)
	})

	t.Run("power cut during the slot write", func(t *testing.T) {
		errc := make(chan error, 1)
		go func() { _, err := push(t, v, good.Update, 1<<20); errc <- err }()
		v.status("writing", 2*time.Minute, func(s *updateagent.Status) bool {
			return s.Phase == "writing" && strings.Contains(s.Progress, "writing slot B")
		})
		v.kill()
		<-errc
		v.boot()
		st := v.status("after power cut", 4*time.Minute, idle)
		if st.RunningSlot != "A" || st.Build != 1 || st.Last == nil || st.Last.Outcome != slot.Failed || !strings.Contains(st.Last.Reason, "interrupted") {
			t.Fatalf("%+v %+v", st, st.Last)
		}
	})

	t.Run("good update commits", func(t *testing.T) {
		if _, err := push(t, v, good.Update, 0); err != nil {
			t.Fatal(err)
		}
		v.waitExit(time.Minute)
		if !v.boot() {
			t.Fatal("flag not armed")
		}
		st := v.status("commit", 5*time.Minute, func(s *updateagent.Status) bool {
			return idle(s) && s.Last != nil && s.Last.Build == 5
		})
		if st.Last.Outcome != slot.Committed || st.RunningSlot != "B" || st.CommittedSlot != "B" || st.CommittedBuild != 5 {
			t.Fatalf("%+v %+v", st, st.Last)
		}
		// A power cycle now boots the committed slot through config.txt.
		v.kill()
		if v.boot() {
			t.Fatal("flag set after commit")
		}
		st = v.status("reboot after commit", 4*time.Minute, idle)
		if st.RunningSlot != "B" || st.Build != 5 {
			t.Fatalf("%+v", st)
		}
	})

	t.Run("old bundle replayed after commit refused", func(t *testing.T) {
		_, err := push(t, v, badHealth.Update, 0)
		refused(t, err, "downgrade")
	})
	t.Logf("scenarios done in %s, %d boots", time.Since(start).Round(time.Second), v.boots)
}
