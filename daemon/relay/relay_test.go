package relay_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"kazasu/daemon/config"
	"kazasu/daemon/issuance"
	"kazasu/daemon/relay"
)

func TestMessage(t *testing.T) {
	r := &relay.ChallengeRequest{TerminalID: "kz-1", TransactionID: "tx-9", Service: "juminhyo"}
	ch := &relay.Challenge{ChallengeID: "CHALLENGE-0000001", Nonce: []byte{0xfb, 0xff, 0x00}}
	want := "kazasu-relay-challenge-v1\nchallenge_id=CHALLENGE-0000001\nterminal_id=kz-1\ntransaction_id=tx-9\nservice=juminhyo\nnonce=-_8A\n"
	if got := string(relay.Message(r, ch)); got != want {
		t.Fatalf("Message:\n%q\nwant\n%q", got, want)
	}
}

func TestDecodeStrict(t *testing.T) {
	tests := []struct {
		in  string
		ok  bool
		err string
	}{
		{`{"terminal_id":"a","transaction_id":"b","service":"c"}`, true, ""},
		{`{"terminal_id":"a","transaction_id":"b","service":"c","x":1}`, false, "unknown field"},
		{`{"terminal_id":"a"}{"terminal_id":"b"}`, false, "trailing data"},
		{`{"terminal_id":"a"} x`, false, "trailing data"},
		{`{"terminal_id":1}`, false, "cannot unmarshal"},
		{`{"terminal_id":"` + strings.Repeat("a", 200) + `"}`, false, "too large"},
		{``, false, "EOF"},
	}
	for _, tt := range tests {
		var r relay.ChallengeRequest
		err := relay.Decode(strings.NewReader(tt.in), 128, &r)
		if (err == nil) != tt.ok || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("Decode(%.30q) = %v, want ok=%v containing %q", tt.in, err, tt.ok, tt.err)
		}
	}
}

func FuzzDecodeSubmission(f *testing.F) {
	f.Add([]byte(`{"challenge_id":"AAAAAAAAAAAAAAAAAAAA","terminal_id":"kz","transaction_id":"t","service":"juminhyo","token_type":"card","auth_cert":"MAA=","signature":"AA==","request":{"copies":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s relay.Submission
		if err := relay.Decode(strings.NewReader(string(b)), relay.MaxRequestBody, &s); err != nil {
			return
		}
		if s.Validate() == nil && (len(s.AuthCert) == 0 || s.Request.Copies < 1) {
			t.Fatalf("validated an invalid submission: %+v", s)
		}
	})
}

// server runs handler over mutual TLS and returns a client for it.
func server(t *testing.T, h http.HandlerFunc, attempts int) *relay.Client {
	t.Helper()
	dir := t.TempDir()
	if err := issuance.EnsureTLS(dir, "kz-1", nil); err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := issuance.ServerTLSConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- issuance.Serve(ctx, ln, h, tlsCfg, nil) }()
	t.Cleanup(func() { cancel(); <-done })
	cc, err := relay.LoadClientConfig("https://"+ln.Addr().String(), filepath.Join(dir, issuance.CAFile),
		filepath.Join(dir, issuance.ClientCertFile), filepath.Join(dir, issuance.ClientKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	cc.Retry = relay.Retry{MaxAttempts: attempts, Initial: time.Millisecond, Max: 2 * time.Millisecond}
	c, err := relay.NewClient(cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestClientRetries(t *testing.T) {
	req := relay.ChallengeRequest{TerminalID: "kz-1", TransactionID: "t", Service: "juminhyo"}
	good := `{"challenge_id":"AAAAAAAAAAAAAAAAAAAAAAAA","nonce":"` + strings.Repeat("A", 43) + `=","expires_at":"2026-11-21T10:00:00Z"}`
	tests := []struct {
		name     string
		statuses []int // answers in order; the last repeats
		bodies   []string
		attempts int
		wantN    int32
		check    func(error) bool
	}{
		{"503 then ok", []int{503, 200}, []string{`{"error":{"code":"internal","message":"x","retryable":true}}`, good}, 3, 2, func(err error) bool { return err == nil }},
		{"always 503", []int{503}, []string{`oops`}, 3, 3, func(err error) bool { return errors.Is(err, relay.ErrUnavailable) }},
		{"400 is not retried", []int{400}, []string{`{"error":{"code":"invalid_request","message":"no","retryable":false}}`}, 3, 1, func(err error) bool {
			var re *relay.RefusedError
			return errors.As(err, &re) && re.Code == "invalid_request" && re.Status == 400 && !errors.Is(err, relay.ErrUnavailable)
		}},
		{"retryable 409", []int{409, 200}, []string{`{"error":{"code":"busy","message":"x","retryable":true}}`, good}, 3, 2, func(err error) bool { return err == nil }},
		{"garbage success body", []int{200}, []string{`{"challenge_id":1}`}, 2, 2, func(err error) bool { return errors.Is(err, relay.ErrUnavailable) }},
		{"invalid challenge", []int{200}, []string{`{"challenge_id":"short","nonce":"AA==","expires_at":"2026-11-21T10:00:00Z"}`}, 1, 1, func(err error) bool { return errors.Is(err, relay.ErrUnavailable) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			c := server(t, func(w http.ResponseWriter, r *http.Request) {
				i := int(n.Add(1)) - 1
				i = min(i, len(tt.statuses)-1)
				w.WriteHeader(tt.statuses[i])
				w.Write([]byte(tt.bodies[i]))
			}, tt.attempts)
			_, err := c.Challenge(context.Background(), req)
			if !tt.check(err) || n.Load() != tt.wantN {
				t.Fatalf("err %v after %d requests, want %d", err, n.Load(), tt.wantN)
			}
		})
	}
}

func TestClientRejectsBadInput(t *testing.T) {
	c := server(t, func(w http.ResponseWriter, r *http.Request) { t.Error("no request expected") }, 1)
	ctx := context.Background()
	var fe *relay.FieldError
	if _, err := c.Challenge(ctx, relay.ChallengeRequest{TerminalID: "a b"}); !errors.As(err, &fe) || fe.Field != "terminal_id" {
		t.Fatalf("bad request: %v", err)
	}
	if _, err := c.Submit(ctx, "key with space", relay.Submission{}); err == nil {
		t.Fatal("empty submission accepted")
	}
	if _, err := c.Status(ctx, "XYZ", "01"); err == nil {
		t.Fatal("bad issuer accepted")
	}
	if _, err := relay.NewClient(relay.ClientConfig{URL: "http://x"}); err == nil {
		t.Fatal("http URL accepted")
	}
}

func TestClientConfigFrom(t *testing.T) {
	c := config.Default()
	c.DataDir = t.TempDir()
	if err := issuance.EnsureTLS(filepath.Join(c.DataDir, "tls"), c.TerminalID, nil); err != nil {
		t.Fatal(err)
	}
	cc, err := relay.ClientConfigFrom(c)
	if err != nil {
		t.Fatal(err)
	}
	if cc.URL != "https://127.0.0.1:8443" || cc.Retry.MaxAttempts != 5 || cc.RequestTimeout != 20*time.Second || len(cc.Certificate.Certificate) == 0 {
		t.Fatalf("%+v", cc)
	}
	c.DataDir = t.TempDir() // no TLS files there
	if _, err := relay.ClientConfigFrom(c); err == nil {
		t.Fatal("missing CA accepted")
	}
}
