package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"kazasu/daemon/api"
	"kazasu/daemon/config"
	"kazasu/daemon/issuance"
	"kazasu/daemon/terminal"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kazasud-test-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "kazasud")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// service is the reference issuance service on loopback, gated so tests
// can hold a submission in flight.
type service struct {
	svc  *issuance.Service
	srv  *httptest.Server
	mu   sync.Mutex
	hold chan struct{} // non-nil: submissions wait for it to close
	seen chan struct{} // signalled when a submission arrives
	subs int
	// down: receipts and audit uploads answer 503, as a service that is
	// down for them would.
	down      bool
	refusedRx int
}

func newService(t *testing.T, dataDir string) *service {
	t.Helper()
	tlsDir := filepath.Join(dataDir, "tls")
	if err := issuance.EnsureTLS(tlsDir, "kz-test-0001", nil); err != nil {
		t.Fatal(err)
	}
	// The service validates with the same code, trusting the test
	// hierarchy (a terminal in test mode builds that trust).
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Relay.URL = "https://127.0.0.1:1"
	term, err := terminal.New(context.Background(), cfg, terminal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { term.Close() })
	svc, err := issuance.New(issuance.Options{Validator: terminal.IssuanceValidator(term.Validator)})
	if err != nil {
		t.Fatal(err)
	}
	s := &service{svc: svc, seen: make(chan struct{}, 16)}
	h := svc.Handler()
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/receipts" || r.URL.Path == "/v1/audit" {
			s.mu.Lock()
			down := s.down
			if down && r.URL.Path == "/v1/receipts" {
				s.refusedRx++
			}
			s.mu.Unlock()
			if down {
				http.Error(w, `{"error":{"code":"unavailable","message":"down for maintenance","retryable":true}}`, http.StatusServiceUnavailable)
				return
			}
		}
		if r.URL.Path == "/v1/submissions" {
			s.mu.Lock()
			s.subs++
			hold := s.hold
			s.mu.Unlock()
			select {
			case s.seen <- struct{}{}:
			default:
			}
			if hold != nil {
				<-hold
			}
		}
		h.ServeHTTP(w, r)
	}))
	tlsCfg, err := issuance.ServerTLSConfig(tlsDir)
	if err != nil {
		t.Fatal(err)
	}
	s.srv.TLS = tlsCfg
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	return s
}

// daemon is a running kazasud process.
type daemon struct {
	cmd    *exec.Cmd
	sock   string
	client *http.Client
	stderr *bytes.Buffer
	exited chan error
}

func writeConfig(t *testing.T, dataDir, relayURL, uri string) string {
	t.Helper()
	return writeConfigMetrics(t, dataDir, relayURL, uri, "")
}

// freePort returns a loopback address nobody listens on (now).
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func writeConfigMetrics(t *testing.T, dataDir, relayURL, uri, metrics string) string {
	t.Helper()
	cfg := strings.ReplaceAll(string(config.DefaultTOML()), `data_dir = "kazasu-data"`, `data_dir = "`+dataDir+`"`)
	cfg = strings.ReplaceAll(cfg, `url = "https://127.0.0.1:8443"`, `url = "`+relayURL+`"`)
	cfg = strings.ReplaceAll(cfg, `uri = "sim:mynumber"`, `uri = "`+uri+`"`)
	cfg = strings.ReplaceAll(cfg, `metrics_listen = "127.0.0.1:9310"`, `metrics_listen = "`+metrics+`"`)
	cfg = strings.ReplaceAll(cfg, `remove = "30s"`, `remove = "1s"`)
	p := filepath.Join(dataDir, "kazasud.toml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func startDaemon(t *testing.T, cfgPath, dataDir string) *daemon {
	t.Helper()
	d := &daemon{sock: filepath.Join(dataDir, "kazasud.sock"), stderr: &bytes.Buffer{}, exited: make(chan error, 1)}
	d.cmd = exec.Command(binary, "-config", cfgPath)
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.exited <- d.cmd.Wait() }()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		<-d.exited
		if t.Failed() {
			t.Logf("kazasud stderr:\n%s", d.stderr.String())
		}
	})
	d.client = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.sock)
	}}}
	return d
}

// waitReady polls the API until the reader is ready; it returns the time
// from process start.
func (d *daemon) waitReady(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	for i := 0; ; i++ {
		var body struct{ Readers []api.ReaderStatus }
		if err := d.getJSON("/v1/readers", &body); err == nil && len(body.Readers) > 0 && body.Readers[0].State == "ready" {
			return time.Since(start)
		}
		select {
		case err := <-d.exited:
			t.Fatalf("kazasud exited: %v\n%s", err, d.stderr)
		default:
		}
		if i > 3000 {
			t.Fatalf("kazasud not ready after 30s\n%s", d.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (d *daemon) getJSON(path string, v any) error {
	resp, err := d.client.Get("http://kazasud" + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func (d *daemon) post(path, body string) (*http.Response, []byte) {
	resp, err := d.client.Post("http://kazasud"+path, "application/json", strings.NewReader(body))
	if err != nil {
		return nil, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// events follows a transaction's SSE stream.
func (d *daemon) events(t *testing.T, id string) <-chan api.Event {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://kazasud/v1/transactions/"+id+"/events", nil)
	resp, err := d.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan api.Event, 64)
	go func() {
		defer resp.Body.Close()
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var ev api.Event
			if json.Unmarshal([]byte(line), &ev) == nil {
				ch <- ev
			}
		}
	}()
	return ch
}

func until(t *testing.T, ch <-chan api.Event, s api.State) api.TxStatus {
	t.Helper()
	to := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("event stream ended before %s", s)
			}
			if ev.Tx.State == s {
				return ev.Tx
			}
			if ev.Tx.State == api.StateFailed && s != api.StateFailed {
				t.Fatalf("failed: %s", ev.Tx.Reason)
			}
		case <-to:
			t.Fatalf("no %s within 30s", s)
		}
	}
}

func (d *daemon) transaction(t *testing.T, pin string) api.TxStatus {
	t.Helper()
	resp, body := d.post("/v1/transactions", `{"reader":"sim0","service":"juminhyo"}`)
	if resp == nil || resp.StatusCode != 201 {
		t.Fatalf("start: %v %s", resp, body)
	}
	var st api.TxStatus
	json.Unmarshal(body, &st)
	ch := d.events(t, st.ID)
	until(t, ch, api.StatePINRequired)
	if resp, body := d.post("/v1/transactions/"+st.ID+"/pin", `{"pin":"`+pin+`"}`); resp == nil || resp.StatusCode >= 300 {
		t.Fatalf("pin: %v %s", resp, body)
	}
	done := until(t, ch, api.StateDone)
	// The card stays in the simulated field: the transaction ends after
	// the remove-card wait (1s in these tests).
	for ev := range ch {
		if ev.Tx.Final {
			break
		}
	}
	return done
}

func TestDaemonEndToEnd(t *testing.T) {
	dataDir := t.TempDir()
	svc := newService(t, dataDir)
	metrics, kioskAddr := freePort(t), freePort(t)
	cfgPath := writeConfigMetrics(t, dataDir, "https://"+svc.srv.Listener.Addr().String(), "sim:mynumber", metrics)
	b, _ := os.ReadFile(cfgPath)
	os.WriteFile(cfgPath, []byte(strings.Replace(string(b), `kiosk_listen = ""`, `kiosk_listen = "`+kioskAddr+`"`, 1)), 0o600)
	d := startDaemon(t, cfgPath, dataDir)
	ready := d.waitReady(t)
	t.Logf("start to ready (reader up, API answering): %v", ready)

	done := d.transaction(t, "1234")
	if done.Ticket == "" || done.TokenType != "card" {
		t.Fatalf("done: %+v", done)
	}
	// The document reached the spool.
	if ents, _ := os.ReadDir(filepath.Join(dataDir, "spool")); len(ents) != 1 {
		t.Fatalf("spool: %v", ents)
	}

	// The kiosk page on its loopback listener, and the API behind it.
	if resp, err := http.Get("http://" + kioskAddr + "/"); err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("kiosk page: %v %v", resp, err)
	}
	if resp, err := http.Get("http://" + kioskAddr + "/v1/readers"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("kiosk API: %v %v", resp, err)
	}

	// Metrics and health.
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`kazasu_transactions_total{outcome="done",token_type="card"} 1`, "kazasu_queue_depth", "kazasu_step_duration_seconds"} {
		if !strings.Contains(string(mb), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if resp, err := http.Get("http://" + metrics + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/readyz: %v %v", resp, err)
	}

	// Malformed and oversized requests: clear 4xx, daemon unaffected.
	bad := []struct{ path, body string }{
		{"/v1/transactions", `{"reader":`},
		{"/v1/transactions", `{"reader":"sim0","service":"juminhyo","extra":1}`},
		{"/v1/transactions", `{"reader":"sim0","service":"` + strings.Repeat("x", 1<<20) + `"}`},
		{"/v1/transactions/tx-0000/pin", `{"pin":"12345"}`},
		{"/v1/nothing", `{}`},
	}
	for _, b := range bad {
		resp, body := d.post(b.path, b.body)
		if resp == nil || resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("%s %.40q: %v %s", b.path, b.body, resp, body)
		}
	}
	// Still serving: a second transaction succeeds.
	if st := d.transaction(t, "1234"); st.Ticket == "" || st.Ticket == done.Ticket {
		t.Fatalf("second transaction: %+v", st)
	}
	// SIGTERM: clean exit 0.
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, d.stderr)
		}
		d.exited <- nil
	case <-time.After(15 * time.Second):
		t.Fatal("kazasud did not stop within 15s of SIGTERM")
	}
	if strings.Contains(d.stderr.String(), "1234") {
		t.Fatal("the PIN appears in the daemon's log")
	}
}

func TestConfigErrorExit125(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.toml")
	os.WriteFile(p, []byte("version = 1\nterminal_id = \"x\"\nbogus_key = 3\n"), 0o600)
	cmd := exec.Command(binary, "-config", p)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 125 {
		t.Fatalf("exit %v, want 125\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "bad.toml:3: bogus_key") {
		t.Fatalf("error does not name the key and line:\n%s", stderr.String())
	}
}

// TestKill9DuringRelay: kazasud is killed while its submission is in flight
// at the service. After a restart nothing is lost (the issued ticket gets
// its receipt) and nothing is duplicated (one ticket, one receipt).
func TestKill9DuringRelay(t *testing.T) {
	dataDir := t.TempDir()
	svc := newService(t, dataDir)
	hold := make(chan struct{})
	svc.mu.Lock()
	svc.hold = hold
	svc.mu.Unlock()
	cfgPath := writeConfig(t, dataDir, "https://"+svc.srv.Listener.Addr().String(), "sim:mynumber")
	d := startDaemon(t, cfgPath, dataDir)
	d.waitReady(t)
	resp, body := d.post("/v1/transactions", `{"reader":"sim0","service":"juminhyo"}`)
	if resp == nil || resp.StatusCode != 201 {
		t.Fatalf("start: %v %s", resp, body)
	}
	var st api.TxStatus
	json.Unmarshal(body, &st)
	ch := d.events(t, st.ID)
	until(t, ch, api.StatePINRequired)
	d.post("/v1/transactions/"+st.ID+"/pin", `{"pin":"1234"}`)
	select {
	case <-svc.seen:
	case <-time.After(30 * time.Second):
		t.Fatal("the submission never reached the service")
	}
	// The submission is at the service: kill -9 the daemon now, then let
	// the service finish issuing (its answer goes nowhere).
	d.cmd.Process.Kill()
	<-d.exited
	d.exited <- nil
	svc.mu.Lock()
	svc.hold = nil
	svc.mu.Unlock()
	close(hold)
	waitFor(t, "the ticket issued", func() bool { return svc.svc.Stats().Tickets == 1 })
	if ents, _ := os.ReadDir(filepath.Join(dataDir, "inflight")); len(ents) != 1 {
		t.Fatalf("in-flight journal after the crash: %v", ents)
	}

	// Restart: recovery finishes the interrupted submission.
	d2 := startDaemon(t, cfgPath, dataDir)
	d2.waitReady(t)
	waitFor(t, "the receipt delivered", func() bool { return svc.svc.Stats().Receipts == 1 })
	waitFor(t, "the journal emptied", func() bool {
		ents, _ := os.ReadDir(filepath.Join(dataDir, "inflight"))
		return len(ents) == 0
	})
	// Nothing duplicated: still one ticket, one receipt, after the queue
	// has had time to redeliver anything it would.
	time.Sleep(500 * time.Millisecond)
	if s := svc.svc.Stats(); s.Tickets != 1 || s.Receipts != 1 {
		t.Fatalf("after recovery: %+v, want 1 ticket and 1 receipt", s)
	}
	svc.mu.Lock()
	subs := svc.subs
	svc.mu.Unlock()
	if subs != 2 {
		t.Fatalf("%d submissions reached the service, want 2 (the original and the idempotent retry)", subs)
	}
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	for i := 0; i < 3000; i++ {
		if f() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestReceiptsWhileServiceDown: receipts that cannot be delivered stay in
// the durable queue (across a restart) and are delivered exactly once when
// the service is back.
func TestReceiptsWhileServiceDown(t *testing.T) {
	dataDir := t.TempDir()
	svc := newService(t, dataDir)
	svc.mu.Lock()
	svc.down = true
	svc.mu.Unlock()
	cfgPath := writeConfig(t, dataDir, "https://"+svc.srv.Listener.Addr().String(), "sim:mynumber")
	d := startDaemon(t, cfgPath, dataDir)
	d.waitReady(t)
	done := d.transaction(t, "1234")
	waitFor(t, "a refused delivery", func() bool {
		svc.mu.Lock()
		defer svc.mu.Unlock()
		return svc.refusedRx > 0
	})
	if n := svc.svc.Stats().Receipts; n != 0 {
		t.Fatalf("%d receipts while down", n)
	}
	// Restart while the service is still down: the receipt survives.
	d.cmd.Process.Signal(syscall.SIGTERM)
	<-d.exited
	d.exited <- nil
	svc.mu.Lock()
	svc.down = false
	svc.mu.Unlock()
	d2 := startDaemon(t, cfgPath, dataDir)
	d2.waitReady(t)
	waitFor(t, "the receipt delivered", func() bool { return svc.svc.Stats().Receipts == 1 })
	time.Sleep(500 * time.Millisecond)
	if s := svc.svc.Stats(); s.Receipts != 1 || s.Tickets != 1 {
		t.Fatalf("%+v: want one ticket (%s) and exactly one receipt", s, done.Ticket)
	}
}
