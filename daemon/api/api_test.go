package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeEngine is a scripted engine on a Broker: the test moves transactions
// through states; the PIN logic is the real shape (tries, last try).
type fakeEngine struct {
	*Broker
	mu        sync.Mutex
	n         int
	active    map[string]string // reader → tx
	tries     map[string]int
	confirmed map[string]bool
	pins      []string // PINs received (the test checks exact bytes)
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{Broker: NewBroker(16, 8), active: map[string]string{}, tries: map[string]int{}, confirmed: map[string]bool{}}
}

func (e *fakeEngine) Readers(ctx context.Context) []ReaderStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	r0 := ReaderStatus{Name: "sim0", State: ReaderReady}
	if tx := e.active["sim0"]; tx != "" {
		r0.State, r0.TransactionID = ReaderBusy, tx
	}
	return []ReaderStatus{r0, {Name: "sim1", State: ReaderOffline, Error: "reader_gone"}}
}

func (e *fakeEngine) Start(ctx context.Context, reader, service string) (TxStatus, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case reader == "sim1":
		return TxStatus{}, ErrReaderOffline
	case reader != "sim0":
		return TxStatus{}, fmt.Errorf("engine: %q: %w", reader, ErrUnknownReader)
	case service != "juminhyo":
		return TxStatus{}, ErrUnknownService
	case e.active[reader] != "":
		return TxStatus{}, ErrReaderBusy
	}
	e.n++
	id := fmt.Sprintf("tx-%d", e.n)
	e.active[reader] = id
	e.tries[id] = 3
	st := TxStatus{ID: id, Reader: reader, Service: service, State: StateWaitingForTap, Updated: time.Unix(int64(e.n), 0).UTC()}
	e.Publish(st)
	return st, nil
}

// set publishes a new state for tx (test driver).
func (e *fakeEngine) set(tx string, f func(st *TxStatus)) {
	st, err := e.Broker.Status(tx)
	if err != nil {
		panic(err)
	}
	f(&st)
	if st.Final {
		e.mu.Lock()
		delete(e.active, st.Reader)
		e.mu.Unlock()
	}
	e.Publish(st)
}

func (e *fakeEngine) SubmitPIN(ctx context.Context, tx string, pin []byte) error {
	st, err := e.Broker.Status(tx)
	if err != nil {
		return err
	}
	if st.State != StatePINRequired {
		return ErrWrongState
	}
	e.mu.Lock()
	e.pins = append(e.pins, string(pin))
	if e.tries[tx] == 1 && !e.confirmed[tx] {
		e.mu.Unlock()
		return ErrLastTryUnconfirm
	}
	correct := string(pin) == "7391"
	if !correct {
		e.tries[tx]--
	}
	left := e.tries[tx]
	e.mu.Unlock()
	if correct {
		e.set(tx, func(s *TxStatus) { s.State, s.TriesLeft, s.LastTry = StateVerifying, nil, false })
		return nil
	}
	e.set(tx, func(s *TxStatus) { s.TriesLeft, s.LastTry = &left, left == 1 })
	return nil
}

func (e *fakeEngine) ConfirmLastTry(ctx context.Context, tx string) error {
	st, err := e.Broker.Status(tx)
	if err != nil {
		return err
	}
	if !st.LastTry {
		return ErrWrongState
	}
	e.mu.Lock()
	e.confirmed[tx] = true
	e.mu.Unlock()
	return nil
}

func (e *fakeEngine) Cancel(ctx context.Context, tx string) error {
	st, err := e.Broker.Status(tx)
	if err != nil {
		return err
	}
	if st.Final {
		return ErrTxEnded
	}
	e.set(tx, func(s *TxStatus) { s.State, s.Reason, s.Final = StateFailed, "cancelled", true })
	return nil
}

func (e *fakeEngine) Status(ctx context.Context, tx string) (TxStatus, error) {
	return e.Broker.Status(tx)
}

var _ Engine = (*fakeEngine)(nil)

type harness struct {
	eng    *fakeEngine
	client *http.Client
	sock   string
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func newHarness(t testing.TB) *harness {
	t.Helper()
	eng := newFakeEngine()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := New(Options{Engine: eng, Log: log, Heartbeat: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "kzapi") // short path: sun_path is 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "kazasud.sock")
	ln, err := ListenUnix(sock, 0o660)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, srv.Handler(), log) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	t.Cleanup(client.CloseIdleConnections)
	return &harness{eng: eng, client: client, sock: sock, logs: logs}
}

func (h *harness) do(t testing.TB, method, path, ctype, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://kazasud"+path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func errCode(b []byte) string {
	var e ErrorBody
	json.Unmarshal(b, &e)
	return e.Error.Code
}

const jsonType = "application/json"

func TestTransactionFlow(t *testing.T) {
	h := newHarness(t)
	code, b := h.do(t, "GET", "/v1/readers", "", "")
	if code != 200 || !strings.Contains(string(b), `"name":"sim0","state":"ready"`) || !strings.Contains(string(b), `"error":"reader_gone"`) {
		t.Fatalf("readers: %d %s", code, b)
	}
	code, b = h.do(t, "POST", "/v1/transactions", jsonType, `{"reader":"sim0","service":"juminhyo"}`)
	if code != 201 {
		t.Fatalf("start: %d %s", code, b)
	}
	var st TxStatus
	if err := json.Unmarshal(b, &st); err != nil || st.ID != "tx-1" || st.State != StateWaitingForTap {
		t.Fatalf("start: %s %v", b, err)
	}
	if code, b := h.do(t, "POST", "/v1/transactions", jsonType, `{"reader":"sim0","service":"juminhyo"}`); code != 409 || errCode(b) != "reader_busy" {
		t.Fatalf("second start: %d %s", code, b)
	}

	// Follow the transaction's event stream while driving it.
	req, _ := http.NewRequest("GET", "http://kazasud/v1/transactions/tx-1/events", nil)
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	events := readSSE(resp.Body)
	next := func() TxStatus {
		t.Helper()
		ev, ok := <-events
		if !ok {
			t.Fatal("stream ended early")
		}
		return ev.Tx
	}
	if s := next(); s.State != StateWaitingForTap {
		t.Fatalf("first event %+v", s)
	}
	if code, b := h.do(t, "POST", "/v1/transactions/tx-1/pin", jsonType, `{"pin":"7391"}`); code != 409 || errCode(b) != "wrong_state" {
		t.Fatalf("PIN before pin-required: %d %s", code, b)
	}
	three := 3
	h.eng.set("tx-1", func(s *TxStatus) { s.State = StateReading; s.TokenType = "card" })
	h.eng.set("tx-1", func(s *TxStatus) { s.State, s.TriesLeft = StatePINRequired, &three })
	for _, want := range []State{StateReading, StatePINRequired} {
		if s := next(); s.State != want {
			t.Fatalf("event %+v, want %s", s, want)
		}
	}
	// Two wrong PINs bring the token to its last try.
	for i, pin := range []string{"0000", "1111"} {
		code, b := h.do(t, "POST", "/v1/transactions/tx-1/pin", jsonType, `{"pin":"`+pin+`"}`)
		if code != 202 {
			t.Fatalf("PIN %d: %d %s", i, code, b)
		}
		s := next()
		if s.TriesLeft == nil || *s.TriesLeft != 2-i || s.LastTry != (i == 1) {
			t.Fatalf("after wrong PIN %d: %+v", i, s)
		}
	}
	if code, b := h.do(t, "POST", "/v1/transactions/tx-1/pin", jsonType, `{"pin":"7391"}`); code != 409 || errCode(b) != "last_try_unconfirmed" {
		t.Fatalf("last try unconfirmed: %d %s", code, b)
	}
	if code, b := h.do(t, "POST", "/v1/transactions/tx-1/confirm-last-try", "", ""); code != 202 {
		t.Fatalf("confirm: %d %s", code, b)
	}
	if code, b := h.do(t, "POST", "/v1/transactions/tx-1/pin", jsonType, " {\n \"pin\" : \"7391\" }\n"); code != 202 {
		t.Fatalf("right PIN: %d %s", code, b)
	}
	if s := next(); s.State != StateVerifying {
		t.Fatalf("%+v", s)
	}
	h.eng.set("tx-1", func(s *TxStatus) { s.State = StateRelaying })
	h.eng.set("tx-1", func(s *TxStatus) { s.State, s.Ticket = StateDone, "TICKET0123456789" })
	h.eng.set("tx-1", func(s *TxStatus) { s.State, s.Final = StateRemoveCard, true })
	for _, want := range []State{StateRelaying, StateDone, StateRemoveCard} {
		if s := next(); s.State != want {
			t.Fatalf("event %+v, want %s", s, want)
		}
	}
	if _, ok := <-events; ok {
		t.Fatal("stream did not end after the final event")
	}
	code, b = h.do(t, "GET", "/v1/transactions/tx-1", "", "")
	if code != 200 || !strings.Contains(string(b), `"ticket":"TICKET0123456789"`) || !strings.Contains(string(b), `"final":true`) {
		t.Fatalf("status: %d %s", code, b)
	}
	if code, b := h.do(t, "POST", "/v1/transactions/tx-1/cancel", "", "{}"); code != 409 || errCode(b) != "transaction_ended" {
		t.Fatalf("cancel after end: %d %s", code, b)
	}

	// The engine saw exactly the PINs typed; the logs saw none of them.
	if got := strings.Join(h.eng.pins, ","); got != "0000,1111,7391,7391" {
		t.Fatalf("engine PINs %q", got)
	}
	logs := h.logs.String()
	for _, pin := range []string{"7391", "0000", "1111"} {
		if strings.Contains(logs, `"`+pin+`"`) || strings.Contains(logs, ":"+pin) {
			t.Fatalf("PIN %s in the logs:\n%s", pin, logs)
		}
	}
	if !strings.Contains(logs, `"path":"/v1/transactions/tx-1/pin"`) {
		t.Fatalf("request log missing:\n%s", logs)
	}
}

// readSSE parses a text/event-stream into events.
func readSSE(r io.Reader) <-chan Event {
	ch := make(chan Event, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		var data, name string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case line == "" && data != "":
				var ev Event
				if name == "transaction" && json.Unmarshal([]byte(data), &ev) == nil {
					ch <- ev
				}
				data, name = "", ""
			}
		}
	}()
	return ch
}

func TestGlobalStreamAndCancel(t *testing.T) {
	h := newHarness(t)
	req, _ := http.NewRequest("GET", "http://kazasud/v1/events", nil)
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := readSSE(resp.Body)
	if code, b := h.do(t, "POST", "/v1/transactions", jsonType, `{"reader":"sim0","service":"juminhyo"}`); code != 201 {
		t.Fatalf("%d %s", code, b)
	}
	if code, b := h.do(t, "POST", "/v1/transactions/tx-1/cancel", "", ""); code != 202 || !strings.Contains(string(b), `"reason":"cancelled"`) {
		t.Fatalf("cancel: %d %s", code, b)
	}
	if code, _ := h.do(t, "POST", "/v1/transactions", jsonType, `{"reader":"sim0","service":"juminhyo"}`); code != 201 {
		t.Fatal("reader not free after cancel")
	}
	want := []string{"tx-1 waiting-for-tap", "tx-1 failed", "tx-2 waiting-for-tap"}
	var prev uint64
	for _, w := range want {
		ev := <-events
		if got := ev.Tx.ID + " " + string(ev.Tx.State); got != w || ev.Seq <= prev {
			t.Fatalf("event %q seq %d, want %q after %d", got, ev.Seq, w, prev)
		}
		prev = ev.Seq
	}
}

func TestMalformedRequests(t *testing.T) {
	h := newHarness(t)
	h.do(t, "POST", "/v1/transactions", jsonType, `{"reader":"sim0","service":"juminhyo"}`)
	tests := []struct {
		method, path, ctype, body string
		status                    int
		code                      string
	}{
		{"POST", "/v1/readers", "", "", 405, "method_not_allowed"},
		{"GET", "/v1/transactions", "", "", 405, "method_not_allowed"},
		{"GET", "/v1/transactions/tx-1/pin", "", "", 405, "method_not_allowed"},
		{"DELETE", "/v1/transactions/tx-1", "", "", 405, "method_not_allowed"},
		{"GET", "/v1/nothing", "", "", 404, "not_found"},
		{"GET", "/v1/transactions/tx-1/bogus", "", "", 404, "not_found"},
		{"GET", "/v1/transactions/bad%20id", "", "", 404, "not_found"},
		{"GET", "/v1/transactions/tx-99", "", "", 404, "unknown_transaction"},
		{"POST", "/v1/transactions", "text/plain", `{"reader":"sim0","service":"juminhyo"}`, 415, "unsupported_media_type"},
		{"POST", "/v1/transactions", jsonType, `{"reader":"sim0","service":"juminhyo","x":1}`, 400, "bad_request"},
		{"POST", "/v1/transactions", jsonType, `{"reader":"sim0","service":"juminhyo"} {}`, 400, "bad_request"},
		{"POST", "/v1/transactions", jsonType, `{"reader":"SIM 0","service":"juminhyo"}`, 400, "bad_request"},
		{"POST", "/v1/transactions", jsonType, `{"reader":"sim0","service":"` + strings.Repeat("x", MaxBody) + `"}`, 413, "too_large"},
		{"POST", "/v1/transactions", jsonType, `{"reader":"nope","service":"juminhyo"}`, 404, "unknown_reader"},
		{"POST", "/v1/transactions", jsonType, `{"reader":"sim1","service":"juminhyo"}`, 503, "reader_offline"},
		{"POST", "/v1/transactions", jsonType, `{"reader":"sim0","service":"passport"}`, 400, "unknown_service"},
		{"POST", "/v1/transactions/tx-1/pin", jsonType, `{"pin":"123"}`, 400, "bad_pin_format"},
		{"POST", "/v1/transactions/tx-1/pin", jsonType, `{"pin":"12345"}`, 400, "bad_pin_format"},
		{"POST", "/v1/transactions/tx-1/pin", jsonType, `{"pin":1234}`, 400, "bad_pin_format"},
		{"POST", "/v1/transactions/tx-1/pin", jsonType, `{"pin":"12a4"}`, 400, "bad_pin_format"},
		{"POST", "/v1/transactions/tx-1/pin", jsonType, `{"pin":"١٢٣٤"}`, 400, "bad_pin_format"},
		{"POST", "/v1/transactions/tx-1/pin", jsonType, `{"pin":"\u0031234"}`, 400, "bad_pin_format"},
		{"POST", "/v1/transactions/tx-1/pin", jsonType, `{"pin":"1234","confirm":true}`, 400, "bad_pin_format"},
		{"POST", "/v1/transactions/tx-1/pin", jsonType, `{"pin":"1234"}{}`, 400, "bad_pin_format"},
		{"POST", "/v1/transactions/tx-1/pin", jsonType, `{"pin":"1234"` + strings.Repeat(" ", MaxPINBody) + `}`, 413, "too_large"},
		{"POST", "/v1/transactions/tx-1/pin", "", `{"pin":"1234"}`, 415, "unsupported_media_type"},
		{"POST", "/v1/transactions/tx-1/cancel", "", `{"force":true}`, 400, "bad_request"},
	}
	for _, tt := range tests {
		code, b := h.do(t, tt.method, tt.path, tt.ctype, tt.body)
		if code != tt.status || errCode(b) != tt.code {
			t.Errorf("%s %s %.40q: %d %s, want %d %s", tt.method, tt.path, tt.body, code, b, tt.status, tt.code)
		}
		if strings.Contains(string(b), "1234") {
			t.Errorf("%s %s: the answer echoes the PIN: %s", tt.method, tt.path, b)
		}
	}
	if len(h.eng.pins) != 0 {
		t.Fatalf("malformed PINs reached the engine: %q", h.eng.pins)
	}
	// The server is unaffected.
	if code, _ := h.do(t, "GET", "/v1/transactions/tx-1", "", ""); code != 200 {
		t.Fatal("server broken after malformed requests")
	}
	if strings.Contains(h.logs.String(), `1234"`) {
		t.Fatal("PIN in logs")
	}
}

func TestBearerTokenOnLoopback(t *testing.T) {
	token := []byte(strings.Repeat("k", 40))
	if _, err := New(Options{Engine: newFakeEngine(), Token: []byte("short")}); err == nil {
		t.Fatal("short token accepted")
	}
	srv, err := New(Options{Engine: newFakeEngine(), Token: token})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckLoopback(ln); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, srv.TokenHandler(), nil) }()
	defer func() { cancel(); <-done }()
	for _, tt := range []struct {
		auth string
		want int
	}{
		{"", 401}, {"Bearer ", 401}, {"Bearer " + string(token[:39]), 401}, {"Bearer " + string(token) + "x", 401},
		{"Basic " + string(token), 401}, {"Bearer " + string(token), 200},
	} {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/v1/readers", nil)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("Authorization %.12q…: %d, want %d", tt.auth, resp.StatusCode, tt.want)
		}
	}
	// No token configured: the TCP handler refuses everything.
	srv2, _ := New(Options{Engine: newFakeEngine()})
	rec := &recorder{h: http.Header{}}
	req, _ := http.NewRequest("GET", "/v1/readers", nil)
	req.Header.Set("Authorization", "Bearer ")
	srv2.TokenHandler().ServeHTTP(rec, req)
	if rec.status != 401 {
		t.Fatalf("tokenless TCP handler: %d", rec.status)
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

func TestUnixSocket(t *testing.T) {
	h := newHarness(t)
	fi, err := os.Stat(h.sock)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket %v %v", fi.Mode(), err)
	}
	// A live socket is not taken over.
	if _, err := ListenUnix(h.sock, 0o660); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("live socket: %v", err)
	}
	// A stale one is replaced; a regular file is not touched.
	dir, _ := os.MkdirTemp("", "kzapi")
	defer os.RemoveAll(dir)
	stale := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	ln, err = ListenUnix(stale, 0o600)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	ln.Close()
	reg := filepath.Join(dir, "file")
	os.WriteFile(reg, []byte("x"), 0o600)
	if _, err := ListenUnix(reg, 0o600); err == nil {
		t.Fatal("regular file replaced")
	}
	tcp, _ := net.Listen("tcp", "127.0.0.1:0")
	defer tcp.Close()
	if err := CheckLoopback(tcp); err != nil {
		t.Fatal(err)
	}
}

func TestBroker(t *testing.T) {
	b := NewBroker(2, 1)
	if _, _, err := b.Subscribe("nope"); !errors.Is(err, ErrUnknownTx) {
		t.Fatalf("unknown tx: %v", err)
	}
	b.Publish(TxStatus{ID: "a", State: StateWaitingForTap})
	all, cancelAll, _ := b.Subscribe("")
	slow, _, _ := b.Subscribe("a")
	// The slow subscriber (buffer 1 snapshot + 2) is dropped, never blocks.
	for _, s := range []State{StateReading, StatePINRequired, StateVerifying} {
		b.Publish(TxStatus{ID: "a", State: s})
		<-all
	}
	n := 0
	for range slow {
		n++
	}
	if n != 3 {
		t.Fatalf("slow subscriber got %d events before being dropped, want 3", n)
	}
	cancelAll()
	if _, ok := <-all; !ok {
		// drained: the last event was read above; channel closed now
	}
	b.Publish(TxStatus{ID: "a", State: StateDone, Final: true})
	// Subscribing to an ended transaction gives its last snapshot, closed.
	ch, _, err := b.Subscribe("a")
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Tx.State != StateDone {
		t.Fatalf("%+v", ev)
	}
	if _, ok := <-ch; ok {
		t.Fatal("not closed")
	}
	// Only keep=1 ended transactions are remembered.
	b.Publish(TxStatus{ID: "b", State: StateFailed, Final: true})
	if _, err := b.Status("a"); !errors.Is(err, ErrUnknownTx) {
		t.Fatalf("a still remembered: %v", err)
	}
	b.Close()
	if _, _, err := b.Subscribe(""); err == nil {
		t.Fatal("subscribe after close")
	}
}

func FuzzParsePIN(f *testing.F) {
	for _, s := range []string{`{"pin":"1234"}`, ` { "pin" : "0000" } `, `{"pin":"12345"}`, `{"pin":"12"}`, `{"pin":"1234"`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var pin [4]byte
		err := ParsePIN(b, &pin)
		if err != nil {
			if pin != [4]byte{} {
				t.Fatalf("pin not cleared after error: %q", pin)
			}
			return
		}
		for _, c := range pin {
			if c < '0' || c > '9' {
				t.Fatalf("accepted non-digit PIN %q from %q", pin, b)
			}
		}
		// Anything accepted is valid JSON with exactly that one field.
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&m); err != nil || len(m) != 1 || m["pin"] != string(pin[:]) {
			t.Fatalf("accepted %q as PIN %q, JSON says %v %v", b, pin, m, err)
		}
	})
}

func FuzzDecodeStart(f *testing.F) {
	f.Add([]byte(`{"reader":"sim0","service":"juminhyo"}`))
	f.Add([]byte(`{"reader":"sim0","service":"juminhyo","x":[1,{}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := DecodeStart(b)
		if err == nil && (!reReader.MatchString(req.Reader) || !reService.MatchString(req.Service)) {
			t.Fatalf("accepted %+v", req)
		}
	})
}

// BenchmarkStartCancel is a kiosk round trip pair over the unix socket:
// start a transaction, cancel it.
func BenchmarkStartCancel(b *testing.B) {
	h := newHarness(b)
	i := 0
	for b.Loop() {
		i++
		if code, body := h.do(b, "POST", "/v1/transactions", jsonType, `{"reader":"sim0","service":"juminhyo"}`); code != 201 {
			b.Fatalf("%d %s", code, body)
		}
		if code, body := h.do(b, "POST", fmt.Sprintf("/v1/transactions/tx-%d/cancel", i), "", ""); code != 202 {
			b.Fatalf("%d %s", code, body)
		}
	}
}

func TestStreamLimit(t *testing.T) {
	h := newHarness(t)
	var bodies []io.Closer
	defer func() {
		for _, b := range bodies {
			b.Close()
		}
	}()
	for i := range MaxStreams {
		req, _ := http.NewRequest("GET", "http://kazasud/v1/events", nil)
		resp, err := h.client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("stream %d: %v %v", i, resp, err)
		}
		bodies = append(bodies, resp.Body)
	}
	code, b := h.do(t, "GET", "/v1/events", "", "")
	if code != 503 || errCode(b) != "too_many_streams" {
		t.Fatalf("stream %d: %d %s", MaxStreams+1, code, b)
	}
	// Ordinary requests still work.
	if code, _ := h.do(t, "GET", "/v1/readers", "", ""); code != 200 {
		t.Fatalf("readers with all streams open: %d", code)
	}
}
