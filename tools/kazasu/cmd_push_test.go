package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"kazasu/firmware/bundle"
	"kazasu/firmware/slot"
	"kazasu/firmware/updateagent"
	"kazasu/firmware/updateagent/agenttest"
)

// board is an in-process Pi running the firmware issue's update agent: an
// HTTP address that stays the same across reboots, slots in memory, and
// the Pi firmware's one-shot tryboot flag. Reboot takes the agent down,
// boots the slot the firmware would pick and starts a new agent on it.
type pushBoard struct {
	*agenttest.Pi // the slots, cmdline files and tryboot flag
	t             *testing.T
	mu            sync.Mutex // guards the fields below
	builds        map[slot.Slot]uint64
	health        func(build uint64) error
	state         string
	keys          bundle.Keys
	agent         *updateagent.Agent // nil while rebooting
	srv           *httptest.Server
	reboots       int
}

var pushEpoch = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

const pushKernel = "github.com/gokrazy/kernel.rpi@v0"

func newPushBoard(t *testing.T, keys bundle.Keys) *pushBoard {
	b := &pushBoard{Pi: agenttest.New(8 << 20), t: t, builds: map[slot.Slot]uint64{slot.A: 1},
		state: filepath.Join(t.TempDir(), "state.json"), keys: keys, health: func(uint64) error { return nil }}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		a := b.agent
		b.mu.Unlock()
		if a == nil {
			// Rebooting: nobody listens; drop the connection.
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			http.Error(w, "rebooting", http.StatusServiceUnavailable)
			return
		}
		a.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(b.srv.Close)
	b.boot()
	return b
}

// boot plays the Pi firmware and starts the agent of the booted slot.
func (b *pushBoard) boot() {
	b.Boot()
	running, _, _, _ := b.Observe()
	b.mu.Lock()
	build := b.builds[running]
	b.mu.Unlock()
	a := updateagent.New(updateagent.Config{Platform: b, Keys: b.keys, StatePath: b.state, RebootDelay: time.Millisecond,
		Release: updateagent.Release{Version: fmt.Sprintf("1.0.%d", build), Build: build, Board: "pi4", Kernel: pushKernel, Created: pushEpoch},
		Now:     func() time.Time { return pushEpoch.Add(time.Hour) },
		Checks:  []updateagent.Check{{Name: "reader uart /dev/ttyAMA0", Interval: time.Millisecond, Run: func(context.Context) error { return b.health(build) }}},
		Logf:    func(string, ...any) {}, CheckDeadline: 200 * time.Millisecond})
	if err := a.Start(context.Background()); err != nil {
		b.t.Errorf("agent start: %v", err)
		return
	}
	b.mu.Lock()
	b.agent = a
	b.mu.Unlock()
}

func (b *pushBoard) Reboot(string) error {
	b.mu.Lock()
	b.agent = nil
	b.reboots++
	// The build a slot runs is what was pushed into it (the test's
	// bundles carry the build number in their root).
	b.Pi.Lock()
	slots := maps.Clone(b.Slots)
	b.Pi.Unlock()
	for s, data := range slots {
		var build uint64
		fmt.Sscanf(string(bytes.TrimRight(data[:32], "\x00")), "root of build %d", &build)
		if build != 0 {
			b.builds[s] = build
		}
	}
	b.mu.Unlock()
	go b.boot()
	return nil
}

type pushRWFile []byte

func (m pushRWFile) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(m).ReadAt(p, off)
}
func (m pushRWFile) WriteAt(p []byte, off int64) (int, error) { return copy(m[off:], p), nil }

func updateBundle(t *testing.T, dir string, build uint64, kind bundle.Kind, key ed25519.PrivateKey) string {
	t.Helper()
	root := append([]byte(fmt.Sprintf("root of build %d", build)), bytes.Repeat([]byte("squashfs "), 150000)...)
	root = append(root, make([]byte, 512-len(root)%512)...)
	m := bundle.Manifest{Kind: kind, Boards: []string{"pi4"}, Version: fmt.Sprintf("1.0.%d", build), Build: build,
		Created: pushEpoch, Expires: pushEpoch.Add(365 * 24 * time.Hour), Kernel: pushKernel}
	src := bundle.Source{Role: bundle.RoleRoot, R: bytes.NewReader(root), Size: int64(len(root))}
	if kind == bundle.KindFlash {
		src = bundle.Source{Role: bundle.RoleDisk, R: bytes.NewReader(root), Size: int64(len(root)), Extents: []bundle.Extent{{Target: 0, Length: int64(len(root))}}, DiskSize: 1 << 30}
	}
	var buf bytes.Buffer
	if _, err := bundle.Write(&buf, m, []bundle.Source{src}); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if key != nil {
		if _, err := bundle.Sign(pushRWFile(b), key); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, fmt.Sprintf("%s-%d-%v.kzb", kind, build, key != nil))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPushCommitsRollsBackAndRefuses(t *testing.T) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	b := newPushBoard(t, bundle.Keys{Current: key.Public().(ed25519.PublicKey)})
	dir := t.TempDir()
	host := strings.TrimPrefix(b.srv.URL, "http://")

	// A good update: committed, and status shows it.
	code, out, errs := run(t, "push", updateBundle(t, dir, 2, bundle.KindUpdate, key), "--host", host, "--interval", "5ms", "--timeout", "20s")
	if code != 0 || !strings.Contains(out, "version 1.0.2 build 2 committed: running on slot B") {
		t.Fatalf("push: exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(errs, "accepted (1.3 MiB sent in ") || !strings.Contains(errs, "phase idle, running build 2 on slot B") {
		t.Errorf("progress lines:\n%s", errs)
	}
	t.Logf("push output:\n%s%s", errs, out)
	code, out, _ = run(t, "status", host)
	if code != 0 || !strings.Contains(out, "version    1.0.2 (build 2)") || !strings.Contains(out, "slot       running B, committed B (build 2)") ||
		!strings.Contains(out, "last       build 2 (1.0.2) committed") || !strings.Contains(out, "health     reader uart /dev/ttyAMA0: ok") {
		t.Fatalf("status: exit %d\n%s", code, out)
	}

	// A build whose health check fails: rolled back, exit 5, old version.
	b.mu.Lock()
	b.health = func(build uint64) error {
		if build == 3 {
			return errors.New("no PN532 firmware version answer on /dev/ttyAMA0")
		}
		return nil
	}
	b.mu.Unlock()
	code, out, errs = run(t, "push", updateBundle(t, dir, 3, bundle.KindUpdate, key), "--host", host, "--interval", "5ms", "--timeout", "20s", "--json")
	var rep pushReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("exit %d: %v\n%s\n%s", code, err, out, errs)
	}
	if code != pushRolledBack || rep.Outcome != "rolled back" || !strings.Contains(rep.Reason, "no PN532 firmware version answer") || rep.Status.Build != 2 {
		t.Fatalf("rollback: exit %d, report %+v", code, rep)
	}
	code, out, errs = run(t, "status", host)
	if code != 1 || !strings.Contains(out, "last       build 3 (1.0.3) rolled-back") || !strings.Contains(errs, "last update (build 3) rolled-back") {
		t.Fatalf("status after rollback: exit %d\n%s\n%s", code, out, errs)
	}

	// Refusals: the agent's (unsigned, replayed build), and local ones.
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	for _, c := range []struct {
		name, path, want string
		code             int
	}{
		{"unsigned", updateBundle(t, dir, 4, bundle.KindUpdate, nil), "(unsigned)", pushRefused},
		{"unknown key", updateBundle(t, dir, 5, bundle.KindUpdate, other), "(unknown-key)", pushRefused},
		{"replay", updateBundle(t, dir, 2, bundle.KindUpdate, key), "(downgrade)", pushRefused},
		{"flash bundle", updateBundle(t, dir, 6, bundle.KindFlash, key), "kazasu flash", pushRefused},
	} {
		code, out, errs := run(t, "push", c.path, "--host", host, "--interval", "5ms")
		if code != c.code || !strings.Contains(out+errs, c.want) {
			t.Errorf("%s: exit %d, want %d with %q\n%s\n%s", c.name, code, c.code, c.want, out, errs)
		}
	}
	b.mu.Lock()
	reboots := b.reboots
	b.mu.Unlock()
	if reboots != 3 { // trial of 2, trial of 3, rollback after 3's failed checks
		t.Errorf("%d reboots, want 3", reboots)
	}

	// Unreachable board: exit 4 for both.
	b.srv.Close()
	if code, _, errs := run(t, "status", host, "--timeout", "2s"); code != 4 || !strings.Contains(errs, host) {
		t.Fatalf("status of a dead board: exit %d, %s", code, errs)
	}
	if code, out, _ := run(t, "push", updateBundle(t, dir, 7, bundle.KindUpdate, key), "--host", host, "--timeout", "2s"); code != pushFailed || !strings.Contains(out, "unreachable") {
		t.Fatalf("push to a dead board: exit %d, %s", code, out)
	}
}

func TestAgentBase(t *testing.T) {
	for in, want := range map[string]string{
		"kiosk-17.local":        "http://kiosk-17.local:8074",
		"10.0.0.7:9000":         "http://10.0.0.7:9000",
		"fd00::7":               "http://[fd00::7]:8074",
		"https://kiosk-17:8074": "https://kiosk-17:8074",
	} {
		if got, err := agentBase(in); err != nil || got != want {
			t.Errorf("agentBase(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a b", "host:port"} {
		if _, err := agentBase(bad); err == nil {
			t.Errorf("agentBase(%q) accepted", bad)
		}
	}
}
