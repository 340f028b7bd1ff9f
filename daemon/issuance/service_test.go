package issuance

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"kazasu/daemon/queue"
	"kazasu/daemon/relay"
	"kazasu/drivers/sim/testpki"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var (
	pkiOnce sync.Once
	pki     *testpki.Hierarchy
	alice   *testpki.Identity
	// mallory is an auth certificate from an untrusted CA (ECDSA, quick to
	// make: testpki's deterministic RSA keys take a while to derive).
	malloryDER []byte
)

func identities(t testing.TB) {
	if t != nil {
		t.Helper()
	}
	pkiOnce.Do(func() {
		pki = testpki.New("kazasu-issuance-test")
		var err error
		if alice, err = pki.Issue(testpki.SamplePerson("ALICE000001"), testpki.IssueOptions{}); err != nil {
			panic(err)
		}
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "MALLORY0001"},
			NotBefore: alice.AuthCert.NotBefore, NotAfter: alice.AuthCert.NotAfter,
			KeyUsage: x509.KeyUsageDigitalSignature,
		}
		if malloryDER, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k); err != nil {
			panic(err)
		}
	})
}

func testRoots() *x509.CertPool {
	pool := x509.NewCertPool()
	for gen := 1; gen <= testpki.Generations; gen++ {
		c, _ := pki.Root(testpki.Auth, gen)
		pool.AddCert(c)
	}
	return pool
}

// flakyValidator fails with an error (cannot decide) while down is set.
type flakyValidator struct {
	Validator
	mu   sync.Mutex
	down bool
}

func (f *flakyValidator) ValidateAuth(ctx context.Context, c, m, s []byte) (Verdict, error) {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		return Verdict{}, errors.New("revocation store unavailable")
	}
	return f.Validator.ValidateAuth(ctx, c, m, s)
}

type env struct {
	svc    *Service
	clk    *clock
	val    *flakyValidator
	client *relay.Client
	url    string
	tlsDir string
	stop   func()
}

const terminal = "kz-test-0001"

func start(t *testing.T, statePath string) *env {
	t.Helper()
	identities(t)
	dir := filepath.Join(t.TempDir(), "tls")
	if err := EnsureTLS(dir, terminal, nil); err != nil {
		t.Fatal(err)
	}
	return startWith(t, dir, statePath)
}

func startWith(t *testing.T, dir, statePath string) *env {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}
	val := &flakyValidator{Validator: &X509Validator{Roots: testRoots(), Now: clk.Now}}
	svc, err := New(Options{Validator: val, Now: clk.Now, BindTerminal: true, StatePath: statePath, Status: fakeStatus{}})
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := ServerTLSConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, svc.Handler(), tlsCfg, nil) }()
	url := "https://" + ln.Addr().String()
	cc, err := relay.LoadClientConfig(url, filepath.Join(dir, CAFile), filepath.Join(dir, ClientCertFile), filepath.Join(dir, ClientKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	cc.Retry = relay.Retry{MaxAttempts: 2, Initial: time.Millisecond, Max: 2 * time.Millisecond}
	client, err := relay.NewClient(cc)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{svc: svc, clk: clk, val: val, client: client, url: url, tlsDir: dir}
	e.stop = func() {
		client.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
	t.Cleanup(func() {
		if e.stop != nil {
			e.stop()
		}
	})
	return e
}

type fakeStatus struct{}

func (fakeStatus) Status(ctx context.Context, issuer, serial []byte) (relay.CertStatus, error) {
	if bytes.Equal(serial, []byte{0xde, 0xad}) {
		return relay.CertStatus{Status: relay.StatusRevoked, Reason: "key_compromise", CheckedAt: time.Unix(0, 0).UTC()}, nil
	}
	return relay.CertStatus{Status: relay.StatusGood, CheckedAt: time.Unix(0, 0).UTC()}, nil
}

func sign(t *testing.T, id *testpki.Identity, msg []byte) []byte {
	t.Helper()
	h := sha256.Sum256(msg)
	sig, err := rsa.SignPKCS1v15(nil, id.AuthKey, crypto.SHA256, h[:])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// submission runs the terminal side: challenge, sign, build the submission.
func (e *env) submission(t *testing.T, tx string, id *testpki.Identity) (relay.Submission, *relay.Challenge) {
	t.Helper()
	req := relay.ChallengeRequest{TerminalID: terminal, TransactionID: tx, Service: "juminhyo"}
	ch, err := e.client.Challenge(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return relay.Submission{
		ChallengeID: ch.ChallengeID, TerminalID: terminal, TransactionID: tx, Service: "juminhyo",
		TokenType: relay.TokenCard, AuthCert: id.AuthDER, Signature: sign(t, id, relay.Message(&req, ch)),
		Request: relay.ServiceRequest{Copies: 1},
	}, ch
}

func refusedCode(err error) string {
	var re *relay.RefusedError
	if errors.As(err, &re) {
		return re.Code
	}
	return ""
}

func TestHappyPathAndIdempotency(t *testing.T) {
	e := start(t, "")
	ctx := context.Background()
	sub, ch := e.submission(t, "tx-1", alice)

	// Asking again for the same transaction returns the same challenge.
	ch2, err := e.client.Challenge(ctx, relay.ChallengeRequest{TerminalID: terminal, TransactionID: "tx-1", Service: "juminhyo"})
	if err != nil || ch2.ChallengeID != ch.ChallengeID || !bytes.Equal(ch2.Nonce, ch.Nonce) {
		t.Fatalf("repeated challenge: %+v %v", ch2, err)
	}
	iss, err := e.client.Submit(ctx, "sub/tx-1", sub)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(iss.Document.Data, []byte("%PDF-1.4")) || !bytes.Contains(iss.Document.Data, []byte(iss.Ticket)) || iss.Document.ContentType != "application/pdf" {
		t.Fatalf("document: %q", iss.Document.Data[:min(80, len(iss.Document.Data))])
	}
	// Same key, same body: the same answer (a resend after a lost reply).
	again, err := e.client.Submit(ctx, "sub/tx-1", sub)
	if err != nil || again.Ticket != iss.Ticket {
		t.Fatalf("resend: %+v %v", again, err)
	}
	// Same key, other body: refused.
	other := sub
	other.Request.Copies = 2
	if _, err := e.client.Submit(ctx, "sub/tx-1", other); refusedCode(err) != relay.CodeIdempotencyConflict {
		t.Fatalf("key reuse: %v", err)
	}
	// Another key replaying the used challenge: refused.
	if _, err := e.client.Submit(ctx, "sub/tx-1-replay", sub); refusedCode(err) != relay.CodeChallengeUsed {
		t.Fatalf("replay: %v", err)
	}
	// After use, a new challenge for the same transaction is a new one.
	ch3, err := e.client.Challenge(ctx, relay.ChallengeRequest{TerminalID: terminal, TransactionID: "tx-1", Service: "juminhyo"})
	if err != nil || ch3.ChallengeID == ch.ChallengeID {
		t.Fatalf("challenge after use: %+v %v", ch3, err)
	}
	if st := e.svc.Stats(); st.Tickets != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRefusals(t *testing.T) {
	e := start(t, "")
	ctx := context.Background()
	tests := []struct {
		name string
		edit func(s *relay.Submission)
		pre  func()
		code string
	}{
		{"bad signature", func(s *relay.Submission) { s.Signature[10] ^= 1 }, nil, relay.CodeSignatureInvalid},
		{"signature by another key (the sign key)", func(s *relay.Submission) {
			h := sha256.Sum256([]byte("whatever"))
			s.Signature, _ = rsa.SignPKCS1v15(nil, alice.SignKey, crypto.SHA256, h[:])
		}, nil, relay.CodeSignatureInvalid},
		{"untrusted certificate", func(s *relay.Submission) { s.AuthCert = malloryDER }, nil, "cert_untrusted"},
		{"garbage certificate", func(s *relay.Submission) { s.AuthCert = []byte{0x30, 0x03, 1, 2, 3} }, nil, "cert_malformed"},
		{"other transaction", func(s *relay.Submission) { s.TransactionID = "tx-other" }, nil, relay.CodeChallengeMismatch},
		{"other service", func(s *relay.Submission) { s.Service = "inkan" }, nil, relay.CodeChallengeMismatch},
		{"unknown challenge", func(s *relay.Submission) { s.ChallengeID = "AAAAAAAAAAAAAAAAAAAAAAAA" }, nil, relay.CodeChallengeUnknown},
		{"expired challenge", nil, func() { e.clk.Add(61 * time.Second) }, relay.CodeChallengeExpired},
		{"terminal not the client certificate", func(s *relay.Submission) { s.TerminalID = "kz-someone-else" }, nil, relay.CodeTerminalMismatch},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, _ := e.submission(t, "tx-r"+string(rune('a'+i)), alice)
			if tt.edit != nil {
				tt.edit(&sub)
			}
			if tt.pre != nil {
				tt.pre()
			}
			_, err := e.client.Submit(ctx, "key-"+tt.name[:3]+string(rune('a'+i)), sub)
			if got := refusedCode(err); got != tt.code {
				t.Fatalf("got %v (code %q), want code %q", err, got, tt.code)
			}
			if errors.Is(err, relay.ErrUnavailable) {
				t.Fatal("a refusal must not look retryable")
			}
		})
	}
	if _, err := e.client.Challenge(ctx, relay.ChallengeRequest{TerminalID: terminal, TransactionID: "t", Service: "passport"}); refusedCode(err) != relay.CodeUnknownService {
		t.Fatalf("unknown service: %v", err)
	}
}

func TestValidatorUnavailableKeepsChallenge(t *testing.T) {
	e := start(t, "")
	sub, _ := e.submission(t, "tx-u", alice)
	e.val.mu.Lock()
	e.val.down = true
	e.val.mu.Unlock()
	_, err := e.client.Submit(context.Background(), "k-u", sub)
	if !errors.Is(err, relay.ErrUnavailable) || !strings.Contains(err.Error(), relay.CodeValidationUnavailable) {
		t.Fatalf("down: %v", err)
	}
	e.val.mu.Lock()
	e.val.down = false
	e.val.mu.Unlock()
	if _, err := e.client.Submit(context.Background(), "k-u", sub); err != nil {
		t.Fatalf("after recovery the same challenge must still work: %v", err)
	}
}

func TestPersistenceDedupAcrossRestart(t *testing.T) {
	identities(t)
	state := filepath.Join(t.TempDir(), "state.json")
	e := start(t, state)
	sub, _ := e.submission(t, "tx-p", alice)
	iss, err := e.client.Submit(context.Background(), "k-p", sub)
	if err != nil {
		t.Fatal(err)
	}
	e.stop()
	e.stop = nil
	e2 := startWith(t, e.tlsDir, state)
	again, err := e2.client.Submit(context.Background(), "k-p", sub)
	if err != nil || again.Ticket != iss.Ticket || !bytes.Equal(again.Document.Data, iss.Document.Data) {
		t.Fatalf("after restart: %v %v", again, err)
	}
	// The ticket survived too: its receipt is accepted.
	rc := relay.Receipt{Ticket: iss.Ticket, TerminalID: terminal, TransactionID: "tx-p", Outcome: relay.OutcomePrinted, Pages: 1, CompletedAt: time.Now()}
	if _, err := e2.client.SendReceipt(context.Background(), "receipt/x", rc); err != nil {
		t.Fatal(err)
	}
}

func TestReceiptsAndAuditThroughQueue(t *testing.T) {
	e := start(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, _ := e.submission(t, "tx-q", alice)
	iss, err := e.client.Submit(ctx, "k-q", sub)
	if err != nil {
		t.Fatal(err)
	}
	q, err := queue.Open(filepath.Join(t.TempDir(), "q.db"), queue.Options{Backoff: queue.Backoff{Initial: time.Millisecond, Max: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	rc := relay.Receipt{Ticket: iss.Ticket, TerminalID: terminal, TransactionID: "tx-q", Outcome: relay.OutcomePrinted, Pages: 1, CompletedAt: time.Now().UTC()}
	item, err := relay.ReceiptItem(rc)
	if err != nil {
		t.Fatal(err)
	}
	bogus := rc
	bogus.Ticket = "NOSUCHTICKET0000000000"
	bogusItem, _ := relay.ReceiptItem(bogus)
	a1, _ := relay.AuditItem(terminal, 1, []byte(`{"v":1,"seq":1}`))
	a2, _ := relay.AuditItem(terminal, 2, []byte(`{"v":1,"seq":2}`))
	for _, it := range []queue.Item{item, bogusItem, a1, a2} {
		if err := q.Enqueue(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	send := e.client.QueueSender()
	errc := make(chan error, 1)
	go func() {
		errc <- q.Run(ctx, func(ctx context.Context, it queue.Item) error {
			err := send(ctx, it)
			if it.Key == a2.Key && err == nil {
				defer cancel() // the last item: Run acks it, then stops
			}
			return err
		})
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if q.Len() != 0 || q.DeadLen() != 1 {
		t.Fatalf("Len %d DeadLen %d (the unknown ticket must be dead-lettered, not lost)", q.Len(), q.DeadLen())
	}
	st := e.svc.Stats()
	if st.Receipts != 1 || st.AuditRecords != 2 {
		t.Fatalf("stats %+v", st)
	}
	// Redelivery (a crash after the service answered) is deduplicated.
	ack, err := e.client.SendReceipt(context.Background(), item.Key, rc)
	if err != nil || !ack.Duplicate {
		t.Fatalf("redelivered receipt: %+v %v", ack, err)
	}
	aa, err := e.client.UploadAudit(context.Background(), a1.Key, relay.AuditUpload{TerminalID: terminal, Seq: 1, Line: `{"v":1,"seq":1}`})
	if err != nil || !aa.Duplicate {
		t.Fatalf("redelivered audit: %+v %v", aa, err)
	}
	// A different record under a known sequence number: refused.
	if _, err := e.client.UploadAudit(context.Background(), a1.Key, relay.AuditUpload{TerminalID: terminal, Seq: 1, Line: `{"v":1,"seq":1,"x":1}`}); refusedCode(err) != relay.CodeIdempotencyConflict {
		t.Fatalf("rewritten audit record: %v", err)
	}
}

func TestStatusHook(t *testing.T) {
	e := start(t, "")
	issuer := strings.Repeat("ab", 32)
	st, err := e.client.Status(context.Background(), issuer, "dead")
	if err != nil || st.Status != relay.StatusRevoked || st.Reason != "key_compromise" {
		t.Fatalf("revoked: %+v %v", st, err)
	}
	st, err = e.client.Status(context.Background(), issuer, "01")
	if err != nil || st.Status != relay.StatusGood {
		t.Fatalf("good: %+v %v", st, err)
	}
}

func TestTransportSecurity(t *testing.T) {
	e := start(t, "")
	ctx := context.Background()
	req := relay.ChallengeRequest{TerminalID: terminal, TransactionID: "tx-t", Service: "juminhyo"}

	// A client pinned to another CA refuses the server.
	other := filepath.Join(t.TempDir(), "other")
	if err := EnsureTLS(other, terminal, nil); err != nil {
		t.Fatal(err)
	}
	cc, err := relay.LoadClientConfig(e.url, filepath.Join(other, CAFile), filepath.Join(e.tlsDir, ClientCertFile), filepath.Join(e.tlsDir, ClientKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	cc.Retry.MaxAttempts = 1
	c, _ := relay.NewClient(cc)
	if _, err := c.Challenge(ctx, req); !errors.Is(err, relay.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("wrong pinned CA: %v", err)
	}
	// A client certificate from another CA is refused by the server.
	cc, _ = relay.LoadClientConfig(e.url, filepath.Join(e.tlsDir, CAFile), filepath.Join(other, ClientCertFile), filepath.Join(other, ClientKeyFile))
	cc.Retry.MaxAttempts = 1
	c, _ = relay.NewClient(cc)
	if _, err := c.Challenge(ctx, req); !errors.Is(err, relay.ErrUnavailable) {
		t.Fatalf("foreign client certificate: %v", err)
	}
	// Plain HTTP client without a certificate: the handshake fails.
	pool := x509.NewCertPool()
	caPEM, _ := tlsFile(e.tlsDir, CAFile)
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if resp, err := hc.Post(e.url+"/v1/challenges", "application/json", strings.NewReader("{}")); err == nil {
		resp.Body.Close()
		t.Fatal("request without a client certificate succeeded")
	}
	// Service down: typed as unavailable.
	cc, _ = relay.LoadClientConfig("https://127.0.0.1:1", filepath.Join(e.tlsDir, CAFile), filepath.Join(e.tlsDir, ClientCertFile), filepath.Join(e.tlsDir, ClientKeyFile))
	cc.Retry = relay.Retry{MaxAttempts: 3, Initial: time.Millisecond, Max: time.Millisecond}
	c, _ = relay.NewClient(cc)
	if _, err := c.Challenge(ctx, req); !errors.Is(err, relay.ErrUnavailable) {
		t.Fatalf("service down: %v", err)
	}
}

func TestMalformedRequests(t *testing.T) {
	identities(t)
	svc, err := New(Options{Validator: &X509Validator{Roots: testRoots()}})
	if err != nil {
		t.Fatal(err)
	}
	h := svc.Handler()
	tests := []struct {
		method, path, key, body string
		status                  int
		code                    string
	}{
		{"GET", "/v1/challenges", "", "", 405, relay.CodeMethodNotAllowed},
		{"POST", "/v1/challenges", "", `{"terminal_id":"a","transaction_id":"b","service":"juminhyo","extra":1}`, 400, relay.CodeInvalidRequest},
		{"POST", "/v1/challenges", "", `{"terminal_id":"a","transaction_id":"b","service":"juminhyo"} {}`, 400, relay.CodeInvalidRequest},
		{"POST", "/v1/challenges", "", `{"terminal_id":"a b","transaction_id":"b","service":"juminhyo"}`, 400, relay.CodeInvalidRequest},
		{"POST", "/v1/challenges", "", `[`, 400, relay.CodeInvalidRequest},
		{"POST", "/v1/challenges", "", `{"terminal_id":"` + strings.Repeat("a", relay.MaxRequestBody) + `"}`, 413, relay.CodeInvalidRequest},
		{"POST", "/v1/submissions", "", `{}`, 400, relay.CodeInvalidRequest},
		{"POST", "/v1/submissions", "k", `{"challenge_id":"x"}`, 400, relay.CodeInvalidRequest},
		{"POST", "/v1/receipts", "k", `{"ticket":"x"}`, 400, relay.CodeInvalidRequest},
		{"GET", "/v1/status/zz/01", "", "", 400, relay.CodeInvalidRequest},
		{"GET", "/v1/status/" + strings.Repeat("ab", 32) + "/01", "", "", 404, relay.CodeStatusUnavailable},
		{"GET", "/v2/anything", "", "", 404, relay.CodeNotFound},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
		if tt.key != "" {
			req.Header.Set(relay.IdempotencyHeader, tt.key)
		}
		rec := &recorder{h: http.Header{}}
		h.ServeHTTP(rec, req)
		var eb relay.ErrorBody
		if err := relay.Decode(bytes.NewReader(rec.body.Bytes()), 1<<20, &eb); err != nil || rec.status != tt.status || eb.Error.Code != tt.code {
			t.Errorf("%s %s %.40q: %d %s (%v), want %d %s", tt.method, tt.path, tt.body, rec.status, rec.body.String(), err, tt.status, tt.code)
		}
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

func TestEnsureTLSKeepsAndRefusesPartial(t *testing.T) {
	dir := t.TempDir()
	if err := EnsureTLS(dir, terminal, []string{"issuance.example", "10.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	ca1, _ := tlsFile(dir, CAFile)
	if err := EnsureTLS(dir, terminal, nil); err != nil {
		t.Fatal(err)
	}
	ca2, _ := tlsFile(dir, CAFile)
	if !bytes.Equal(ca1, ca2) {
		t.Fatal("EnsureTLS replaced an existing CA")
	}
	if err := removeFile(dir, ClientKeyFile); err != nil {
		t.Fatal(err)
	}
	if err := EnsureTLS(dir, terminal, nil); err == nil {
		t.Fatal("partial TLS dir accepted")
	}
}

func TestDocumentIsPDF(t *testing.T) {
	d := Document("T (x)", "TICKET", "kz-1", 2, time.Unix(0, 0))
	for _, want := range []string{"%PDF-1.4", "(T \\(x\\)) Tj", "startxref", "%%EOF"} {
		if !bytes.Contains(d, []byte(want)) {
			t.Errorf("document lacks %q", want)
		}
	}
	// The xref offsets point at the objects.
	i := bytes.Index(d, []byte("xref\n0 6\n"))
	if i < 0 {
		t.Fatal("no xref")
	}
	entries := strings.Split(string(d[i:]), "\n")[3:8]
	for n, e := range entries {
		var off int
		if _, err := fmtSscanf(e, &off); err != nil || !bytes.HasPrefix(d[off:], []byte(itoa(n+1)+" 0 obj")) {
			t.Errorf("xref entry %d (%q) does not point at object %d", n+1, e, n+1)
		}
	}
}

// BenchmarkChallengeSubmit is one terminal round trip over mutual TLS on
// loopback: challenge, (pre-computed-key) signature, submission, document.
func BenchmarkChallengeSubmit(b *testing.B) {
	identities(b)
	dir := filepath.Join(b.TempDir(), "tls")
	if err := EnsureTLS(dir, terminal, nil); err != nil {
		b.Fatal(err)
	}
	svc, err := New(Options{Validator: &X509Validator{Roots: testRoots(), Now: func() time.Time { return time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC) }}, BindTerminal: true})
	if err != nil {
		b.Fatal(err)
	}
	tlsCfg, _ := ServerTLSConfig(dir)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, svc.Handler(), tlsCfg, nil) }()
	defer func() { cancel(); <-done }()
	cc, _ := relay.LoadClientConfig("https://"+ln.Addr().String(), filepath.Join(dir, CAFile), filepath.Join(dir, ClientCertFile), filepath.Join(dir, ClientKeyFile))
	client, _ := relay.NewClient(cc)
	defer client.Close()
	i := 0
	for b.Loop() {
		i++
		tx := "tx-" + itoa(i)
		req := relay.ChallengeRequest{TerminalID: terminal, TransactionID: tx, Service: "juminhyo"}
		ch, err := client.Challenge(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		h := sha256.Sum256(relay.Message(&req, ch))
		sig, _ := rsa.SignPKCS1v15(nil, alice.AuthKey, crypto.SHA256, h[:])
		if _, err := client.Submit(ctx, "k-"+tx, relay.Submission{ChallengeID: ch.ChallengeID, TerminalID: terminal, TransactionID: tx, Service: "juminhyo",
			TokenType: relay.TokenCard, AuthCert: alice.AuthDER, Signature: sig, Request: relay.ServiceRequest{Copies: 1}}); err != nil {
			b.Fatal(err)
		}
	}
}
