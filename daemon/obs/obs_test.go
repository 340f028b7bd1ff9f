package obs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMetrics(t *testing.T) {
	m := NewMetrics()
	m.Tap("sim0", "card")
	m.Tap("sim0", "card")
	m.Transaction("done", "card")
	m.Transaction("Yamada Taro 1234", "card") // free text never becomes a label
	m.ObserveStep(StepRelay, 250*time.Millisecond)
	m.ReaderError("sim0", "timeout")
	m.Relay("submit", "ok")
	depth := 3
	m.RegisterQueue(func() int { return depth }, func() int { return 1 })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, Handler(m, NewHealth(0)), nil) }()
	defer func() { cancel(); <-done }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`kazasu_taps_total{reader="sim0",token_type="card"} 2`,
		`kazasu_transactions_total{outcome="done",token_type="card"} 1`,
		`kazasu_transactions_total{outcome="other",token_type="card"} 1`,
		`kazasu_step_duration_seconds_bucket{step="relay",le="0.25"} 1`,
		`kazasu_reader_errors_total{kind="timeout",reader="sim0"} 1`,
		`kazasu_relay_requests_total{call="submit",result="ok"} 1`,
		`kazasu_queue_depth 3`, `kazasu_queue_dead 1`, `kazasu_build_info{`, `go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(string(body), "Yamada") {
		t.Error("free text in a label")
	}
}

func TestHealthAndReadiness(t *testing.T) {
	h := NewHealth(50 * time.Millisecond)
	block := make(chan struct{})
	defer close(block)
	h.Register("relay", func(ctx context.Context) error { return nil })
	h.Register("reader_sim0", func(ctx context.Context) error { return errors.New("reader gone") })
	h.Register("stuck", func(ctx context.Context) error { <-block; return nil }) // ignores its context
	h.Register("panics", func(ctx context.Context) error { panic("boom") })
	srv := Handler(nil, h)

	get := func(path string) (int, string) {
		rec := &recorder{h: http.Header{}, status: 200}
		req, _ := http.NewRequest("GET", path, nil)
		srv.ServeHTTP(rec, req)
		return rec.status, rec.body.String()
	}
	if code, body := get("/healthz"); code != 200 || body != "OK\n" {
		t.Fatalf("healthz %d %q", code, body)
	}
	code, body := get("/readyz")
	var r Readiness
	if err := json.Unmarshal([]byte(body), &r); err != nil || code != 503 || r.Ready {
		t.Fatalf("readyz %d %s", code, body)
	}
	want := map[string]string{"relay": "ok", "reader_sim0": "reader gone", "stuck": "check timed out: context deadline exceeded", "panics": "check panicked: boom"}
	for k, v := range want {
		if r.Checks[k] != v {
			t.Errorf("check %s = %q, want %q", k, r.Checks[k], v)
		}
	}
	h2 := NewHealth(0)
	h2.Register("relay", func(ctx context.Context) error { return nil })
	srv = Handler(nil, h2)
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, `"ready":true`) {
		t.Fatalf("ready: %d %s", code, body)
	}
	h2.Drain()
	if code, _ := get("/healthz"); code != 503 {
		t.Fatal("draining daemon still healthy")
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "draining") {
		t.Fatalf("draining readyz %d %s", code, body)
	}
	if got := h.ReadyNames(); strings.Join(got, ",") != "panics,reader_sim0,relay,stuck" {
		t.Fatalf("names %v", got)
	}
}

type recorder struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(s int)           { r.status = s }

func TestLoggerRedacts(t *testing.T) {
	var b bytes.Buffer
	log, lv, err := NewLogger(&b, "info")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("x", "pin", "7391", "PINCode", 7391, "api_token", "abc", "reader", "sim0")
	log.Debug("hidden")
	lv.Set(-4)
	log.Debug("shown")
	out := b.String()
	if strings.Contains(out, "7391") || strings.Contains(out, "abc") || !strings.Contains(out, `"reader":"sim0"`) || strings.Contains(out, "hidden") || !strings.Contains(out, "shown") {
		t.Fatalf("log output:\n%s", out)
	}
	if _, _, err := NewLogger(&b, "loud"); err == nil {
		t.Fatal("bad level accepted")
	}
}

// notifySocket makes a fake systemd notification socket.
func notifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	dir, err := os.MkdirTemp("", "kzobs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a hang guard, not a timed assertion
	buf := make([]byte, 256)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotify(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := Notify("READY=1"); sent || err != nil {
		t.Fatalf("without systemd: %v %v", sent, err)
	}
	if err := Watchdog(context.Background(), nil); err != nil {
		t.Fatalf("watchdog without systemd: %v", err)
	}
	c := notifySocket(t)
	if err := Ready("serving 1 reader"); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, c); got != "READY=1\nSTATUS=serving 1 reader" {
		t.Fatalf("got %q", got)
	}
	if err := Stopping(); err != nil || recv(t, c) != "STOPPING=1" {
		t.Fatal("stopping")
	}
}

func TestWatchdogPetsOnlyWhenAlive(t *testing.T) {
	c := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "2000") // 2 ms: petting every 1 ms
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	done := make(chan error, 1)
	go func() {
		done <- Watchdog(ctx, func(ctx context.Context) error {
			calls++
			if calls <= 3 {
				return errors.New("wedged")
			}
			return nil
		})
	}()
	// The first datagram comes only after the daemon became alive again.
	if got := recv(t, c); got != "WATCHDOG=1" {
		t.Fatalf("got %q", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if calls < 4 {
		t.Fatalf("petted after %d checks, want >= 4 (three failed)", calls)
	}
	if err := WatchdogEvery(context.Background(), 0, nil); err == nil {
		t.Fatal("zero period accepted")
	}
}
