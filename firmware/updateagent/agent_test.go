package updateagent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kazasu/firmware/bundle"
	"kazasu/firmware/slot"
	"kazasu/firmware/updateagent/agenttest"
)

var (
	key      = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	keys     = bundle.Keys{Current: key.Public().(ed25519.PublicKey)}
	epoch    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	kernel   = "github.com/gokrazy/kernel.arm64@v0"
	rootData = bytes.Repeat([]byte("squashfs root "), 200000) // 2.8 MB, 3 chunks
)

func makeBundle(t *testing.T, build uint64, edit func(*bundle.Manifest), sign ed25519.PrivateKey) []byte {
	t.Helper()
	m := bundle.Manifest{Kind: bundle.KindUpdate, Boards: []string{"qemu"}, Version: fmt.Sprintf("1.0.%d", build), Build: build,
		Created: epoch, Expires: epoch.Add(365 * 24 * time.Hour), Kernel: kernel}
	if edit != nil {
		edit(&m)
	}
	var buf bytes.Buffer
	if _, err := bundle.Write(&buf, m, []bundle.Source{{Role: bundle.RoleRoot, R: bytes.NewReader(rootData), Size: int64(len(rootData))}}); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if sign != nil {
		if _, err := bundle.Sign(memFile(b), sign); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

type memFile []byte

func (m memFile) ReadAt(p []byte, off int64) (int, error)  { return bytes.NewReader(m).ReadAt(p, off) }
func (m memFile) WriteAt(p []byte, off int64) (int, error) { return copy(m[off:], p), nil }

type env struct {
	t       *testing.T
	pi      *agenttest.Pi
	reboots chan string
	state   string
	health  error
	a       *Agent
	client  *Client
	srv     *httptest.Server
	settled string
}

func newEnv(t *testing.T) *env {
	dir := t.TempDir()
	e := &env{t: t, pi: agenttest.New(8 << 20), reboots: make(chan string, 4), state: filepath.Join(dir, "state.json"), settled: filepath.Join(dir, "run", "trial-settled")}
	e.pi.OnReboot = func(reason string) { e.reboots <- reason }
	e.start(1)
	return e
}

// start is one boot of the agent, running build.
func (e *env) start(build uint64) {
	e.t.Helper()
	if e.srv != nil {
		e.srv.Close()
	}
	e.a = New(Config{Platform: e.pi, Keys: keys, StatePath: e.state, RebootDelay: time.Millisecond,
		Release: Release{Version: fmt.Sprintf("1.0.%d", build), Build: build, Board: "qemu", Kernel: kernel, Created: epoch},
		Now:     func() time.Time { return epoch.Add(time.Hour) },
		Checks:  []Check{{Name: "fake", Run: func(context.Context) error { return e.health }}},
		Logf:    e.t.Logf, CheckDeadline: 50 * time.Millisecond, SettledPath: e.settled})
	if err := e.a.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.a.Handler())
	e.t.Cleanup(e.srv.Close)
	e.client = &Client{Base: e.srv.URL}
}

func (e *env) push(b []byte) (*Status, error) {
	return e.client.Push(context.Background(), bytes.NewReader(b), int64(len(b)))
}

func (e *env) waitReboot() string {
	e.t.Helper()
	select {
	case r := <-e.reboots:
		return r
	case <-time.After(10 * time.Second):
		e.t.Fatal("no reboot")
	}
	return ""
}

// waitPhase polls the status until the phase is reached (the health
// checks run in the background).
func (e *env) waitPhase(phase string) *Status {
	e.t.Helper()
	for range 1000 {
		st := e.a.Status()
		if st.Phase == phase {
			return &st
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.t.Fatalf("phase %s never reached: %+v", phase, e.a.Status())
	return nil
}

func TestGoodUpdateCommits(t *testing.T) {
	e := newEnv(t)
	st, err := e.push(makeBundle(t, 2, nil, key))
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != "rebooting" || st.Trial == nil || st.Trial.Slot != slot.B {
		t.Fatalf("%+v", st)
	}
	e.waitReboot()
	if !bytes.Equal(e.pi.SlotData(slot.B)[:len(rootData)], rootData) || !e.pi.State().Flag || e.pi.State().Try != slot.B || e.pi.State().Cmdline != slot.A {
		t.Fatal("slot B not written and armed")
	}
	e.pi.Boot()
	if _, err := os.Stat(e.settled); err == nil {
		t.Fatal("settled before the trial")
	}
	e.start(2)
	st2 := e.waitPhase("idle")
	for range 1000 { // the marker follows the commit
		if _, err := os.Stat(e.settled); err == nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := os.Stat(e.settled); err != nil {
		t.Fatal("trial guard marker not written after the commit")
	}
	if e.pi.State().Cmdline != slot.B || st2.Last == nil || st2.Last.Outcome != slot.Committed || st2.CommittedBuild != 2 {
		t.Fatalf("not committed: %+v", st2)
	}
	// Replaying the same bundle is refused now.
	if _, err := e.push(makeBundle(t, 2, nil, key)); !isKind(err, "downgrade", 409) {
		t.Fatalf("replay: %v", err)
	}
	// Wait reports the settled result.
	got, err := e.client.Wait(context.Background(), 2, time.Millisecond, nil)
	if err != nil || got.Last.Outcome != slot.Committed {
		t.Fatal(got, err)
	}
}

func TestFailedHealthRollsBack(t *testing.T) {
	e := newEnv(t)
	if _, err := e.push(makeBundle(t, 2, nil, key)); err != nil {
		t.Fatal(err)
	}
	e.waitReboot()
	e.pi.Boot()
	e.health = errors.New("no PN532 on /dev/ttyAMA0")
	e.start(2)
	r := e.waitReboot()
	if !strings.Contains(r, "health check failed") || e.pi.State().Cmdline != slot.A {
		t.Fatalf("%q, cmdline %s", r, e.pi.State().Cmdline)
	}
	e.pi.Boot()
	if e.pi.State().Running != slot.A {
		t.Fatal("did not fall back")
	}
	e.start(1)
	st := e.a.Status()
	if st.Last == nil || st.Last.Outcome != slot.RolledBack || !strings.Contains(st.Last.Reason, "no PN532") || st.CommittedBuild != 1 {
		t.Fatalf("%+v", st.Last)
	}
}

func TestCrashDuringTrialRollsBack(t *testing.T) {
	e := newEnv(t)
	if _, err := e.push(makeBundle(t, 2, nil, key)); err != nil {
		t.Fatal(err)
	}
	e.waitReboot()
	e.pi.Boot() // trial boot, then the new init panics before the agent runs
	e.pi.Boot() // panic=10: the firmware boots config.txt
	e.start(1)
	st := e.a.Status()
	if e.pi.State().Running != slot.A || st.Last == nil || st.Last.Outcome != slot.RolledBack {
		t.Fatalf("%+v", st)
	}
}

func isKind(err error, kind string, code int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Kind == kind && ae.Status == code
}

func TestRefusals(t *testing.T) {
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	good := makeBundle(t, 2, nil, key)
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)-10] ^= 1
	for _, c := range []struct {
		name string
		b    []byte
		kind string
		code int
		msg  string
	}{
		{"unsigned", makeBundle(t, 2, nil, nil), "unsigned", 403, "no signature"},
		{"foreign key", makeBundle(t, 2, nil, other), "unknown-key", 403, "does not trust"},
		{"wrong board", makeBundle(t, 2, func(m *bundle.Manifest) { m.Boards = []string{"pi4"} }, key), "wrong-board", 422, `this board is "qemu"`},
		{"expired", makeBundle(t, 2, func(m *bundle.Manifest) { m.Expires = epoch.Add(time.Minute) }, key), "expired", 422, "expired at"},
		{"downgrade", makeBundle(t, 1, nil, key), "downgrade", 409, "not newer than installed build 1"},
		{"other kernel", makeBundle(t, 2, func(m *bundle.Manifest) { m.Kernel = "kernel.rpi@v1" }, key), "wrong-board", 422, "reflash"},
		{"truncated", good[:len(good)/2], "malformed", 422, "truncated"},
		{"corrupt", corrupt, "corrupt", 422, "chunk 2"},
		{"garbage", []byte("hello"), "malformed", 422, "reading header"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			_, err := e.push(c.b)
			if !isKind(err, c.kind, c.code) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v; want %d %s containing %q", err, c.code, c.kind, c.msg)
			}
			if e.pi.State().Flag || len(e.reboots) > 0 || e.pi.State().Cmdline != slot.A {
				t.Fatal("refused bundle armed or rebooted")
			}
			if st := e.a.Status(); st.Phase != "idle" {
				t.Fatalf("phase %s", st.Phase)
			}
		})
	}
}

func TestReadBackMismatch(t *testing.T) {
	e := newEnv(t)
	e.pi.SetCorrupt(true)
	_, err := e.push(makeBundle(t, 2, nil, key))
	if !isKind(err, "device", 500) || !strings.Contains(err.Error(), "read-back of slot B") {
		t.Fatalf("%v", err)
	}
	st := e.a.Status()
	if e.pi.State().Flag || st.Last == nil || st.Last.Outcome != slot.Failed || st.Phase != "idle" {
		t.Fatalf("%+v", st)
	}
	// The device can take the next attempt.
	e.pi.SetCorrupt(false)
	if _, err := e.push(makeBundle(t, 2, nil, key)); err != nil {
		t.Fatal(err)
	}
}

func TestBusyAndInTrial(t *testing.T) {
	e := newEnv(t)
	if _, err := e.push(makeBundle(t, 2, nil, key)); err != nil {
		t.Fatal(err)
	}
	e.waitReboot()
	e.pi.Boot()
	block := make(chan struct{})
	e.health = nil
	e.a = nil
	// A trial whose check blocks until released: pushes are refused meanwhile.
	e.a = New(Config{Platform: e.pi, Keys: keys, StatePath: e.state, RebootDelay: time.Millisecond,
		Release: Release{Version: "1.0.2", Build: 2, Board: "qemu", Kernel: kernel, Created: epoch},
		Now:     func() time.Time { return epoch.Add(time.Hour) },
		Checks: []Check{{Name: "slow", Run: func(ctx context.Context) error {
			select {
			case <-block:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}}}, Logf: t.Logf})
	if err := e.a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.a.Handler())
	defer srv.Close()
	c := &Client{Base: srv.URL}
	b := makeBundle(t, 3, nil, key)
	if _, err := c.Push(context.Background(), bytes.NewReader(b), int64(len(b))); !isKind(err, "in-trial", 409) {
		t.Fatalf("%v", err)
	}
	close(block)
	e.waitPhase("idle")
	if e.pi.State().Cmdline != slot.B {
		t.Fatal("not committed")
	}
}

func TestStateFileCorruptIsRebuilt(t *testing.T) {
	e := newEnv(t)
	if err := os.WriteFile(e.state, []byte("{torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.start(1)
	if st := e.a.Status(); st.CommittedSlot != "A" || st.CommittedBuild != 1 {
		t.Fatalf("%+v", st)
	}
	b, _ := os.ReadFile(e.state)
	if s, err := loadState(e.state); err != nil || s.Build != 1 {
		t.Fatalf("%s %v", b, err)
	}
}

func TestPrivateOnly(t *testing.T) {
	e := newEnv(t)
	r := httptest.NewRequest("GET", "/v1/status", nil)
	r.RemoteAddr = "203.0.113.5:1234"
	w := httptest.NewRecorder()
	e.a.Handler().ServeHTTP(w, r)
	if w.Code != 403 {
		t.Fatalf("public client got %d", w.Code)
	}
	_ = io.Discard
}
