// Package issuance is kazasu's reference issuance service: the other end of
// the relay API (daemon/relay, openapi.yaml there), used by tests, by
// `kazasu demo` and by `kazasu issuance serve`.
//
// It is real, not a stub: challenges are random nonces bound to a terminal
// and a transaction, expire (60 s by default) and are single use; a
// submission is validated by a [Validator] (the same certificate validation
// code as the terminal's, adapted by the integrator from daemon/pki, or
// [X509Validator]) against the exact signed message of the challenge;
// replayed, expired and mismatched challenges are refused with typed codes;
// an accepted submission yields a ticket and a document (a small PDF).
// Submissions, receipts and audit uploads are deduplicated by idempotency
// key: the same key with the same body gets the same answer, the same key
// with another body is refused.
//
// Transport is mutual TLS (see [EnsureTLS], [ServerTLSConfig]); with
// Options.BindTerminal the terminal_id of every request must equal the
// client certificate's common name.
//
// State lives in memory; with Options.StatePath the answers, tickets,
// receipts and audit records are also written (atomically, fsync'd) to a
// JSON file before the answer is sent, so dedup survives a restart.
// Challenges are not persisted: a restart invalidates them and terminals
// ask again.
package issuance

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"kazasu/daemon/relay"
)

// Verdict is a Validator's decision about a certificate and signature.
type Verdict struct {
	Valid bool
	// Code says why not, when !Valid: a [a-z0-9_] code such as "revoked",
	// "expired", "untrusted", "wrong_key_usage" or "signature_invalid".
	Code string
}

// Validator validates a JPKI user-authentication certificate and the
// signature made with its key over message (PKCS#1 v1.5, SHA-256 of
// message, i.e. the card signed DigestInfo(SHA-256(message))). An error
// means "cannot decide now" (e.g. revocation data unavailable) and makes
// the service answer 503 without consuming the challenge.
type Validator interface {
	ValidateAuth(ctx context.Context, certDER, message, signature []byte) (Verdict, error)
}

// DefaultServices returns the service codes the reference service issues,
// with their document titles (a fresh map each call).
func DefaultServices() map[string]string {
	return map[string]string{
		"juminhyo": "Juminhyo no utsushi (certificate of residence, copy)",
		"inkan":    "Inkan toroku shomeisho (seal registration certificate)",
		"kazei":    "Kazei shomeisho (tax certificate)",
	}
}

// Options configures New.
type Options struct {
	Validator    Validator         // required
	ChallengeTTL time.Duration     // default 60s
	Now          func() time.Time  // default time.Now
	Rand         io.Reader         // default crypto/rand
	StatePath    string            // optional persistence file
	BindTerminal bool              // terminal_id must equal the client cert CN
	Status       StatusSource      // optional online status hook
	Log          *slog.Logger      // default: discard
	Services     map[string]string // service code → title; default DefaultServices()
}

// StatusSource answers the online revocation status hook. issuerHash is
// the SHA-256 of the issuer name DER, serial the big-endian serial bytes.
type StatusSource interface {
	Status(ctx context.Context, issuerHash, serial []byte) (relay.CertStatus, error)
}

// MaxOutstandingChallenges bounds memory held by unused challenges.
const MaxOutstandingChallenges = 10000

type challenge struct {
	req     relay.ChallengeRequest
	ch      relay.Challenge
	used    bool
	expires time.Time
}

// answer is a stored response replayed for a repeated idempotency key.
type answer struct {
	ReqHash string          `json:"req_hash"`
	Status  int             `json:"status"`
	Body    json.RawMessage `json:"body"`
}

type ticket struct {
	TerminalID    string `json:"terminal_id"`
	TransactionID string `json:"transaction_id"`
}

// state is what StatePath persists.
type state struct {
	Submissions map[string]*answer           `json:"submissions"` // by idempotency key
	Receipts    map[string]*answer           `json:"receipts"`
	Tickets     map[string]ticket            `json:"tickets"`
	Audit       map[string]map[uint64]string `json:"audit"` // terminal → seq → line
}

// Service is the reference issuance service.
type Service struct {
	opts Options

	mu         sync.Mutex
	challenges map[string]*challenge // by challenge id
	byTx       map[string]string     // terminal/transaction → challenge id
	st         state
}

// New returns a service, loading StatePath if it exists.
func New(opts Options) (*Service, error) {
	if opts.Validator == nil {
		return nil, errors.New("issuance: no validator")
	}
	if opts.ChallengeTTL <= 0 {
		opts.ChallengeTTL = 60 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Services == nil {
		opts.Services = DefaultServices()
	}
	s := &Service{
		opts:       opts,
		challenges: map[string]*challenge{},
		byTx:       map[string]string{},
		st: state{
			Submissions: map[string]*answer{}, Receipts: map[string]*answer{},
			Tickets: map[string]ticket{}, Audit: map[string]map[uint64]string{},
		},
	}
	if opts.StatePath != "" {
		b, err := os.ReadFile(opts.StatePath)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("issuance: state: %w", err)
		default:
			if err := json.Unmarshal(b, &s.st); err != nil {
				return nil, fmt.Errorf("issuance: state %s: %w", opts.StatePath, err)
			}
			for _, m := range []*map[string]*answer{&s.st.Submissions, &s.st.Receipts} {
				if *m == nil {
					*m = map[string]*answer{}
				}
			}
			if s.st.Tickets == nil {
				s.st.Tickets = map[string]ticket{}
			}
			if s.st.Audit == nil {
				s.st.Audit = map[string]map[uint64]string{}
			}
		}
	}
	return s, nil
}

// Handler returns the HTTP handler of the relay API. It expects to be
// served over mutual TLS when BindTerminal is set.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/challenges", s.post(s.handleChallenge))
	mux.HandleFunc("/v1/submissions", s.post(s.handleSubmission))
	mux.HandleFunc("/v1/receipts", s.post(s.handleReceipt))
	mux.HandleFunc("/v1/audit-records", s.post(s.handleAudit))
	mux.HandleFunc("/v1/status/{issuer}/{serial}", s.handleStatus)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, relay.CodeNotFound, "no such endpoint", false)
	})
	return mux
}

// Stats are counters for tests and operators.
type Stats struct {
	Challenges, Tickets, Receipts, AuditRecords int
}

// Stats returns current counts.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.st.Audit {
		n += len(m)
	}
	return Stats{Challenges: len(s.challenges), Tickets: len(s.st.Tickets), Receipts: len(s.st.Receipts), AuditRecords: n}
}

func (s *Service) post(h func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, relay.CodeMethodNotAllowed, "use POST", false)
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"encoding","retryable":true}}`)
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}

func writeError(w http.ResponseWriter, status int, code, msg string, retryable bool) {
	writeJSON(w, status, relay.ErrorBody{Error: relay.ErrorDetail{Code: code, Message: msg, Retryable: retryable}})
}

// decode reads a strict JSON body; on failure it answers and returns false.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := relay.Decode(r.Body, relay.MaxRequestBody, v); err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, relay.ErrTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		writeError(w, status, relay.CodeInvalidRequest, err.Error(), false)
		return false
	}
	return true
}

// peerTerminal checks the terminal id against the client certificate.
func (s *Service) peerTerminal(w http.ResponseWriter, r *http.Request, terminalID string) bool {
	if !s.opts.BindTerminal {
		return true
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != terminalID {
		writeError(w, http.StatusForbidden, relay.CodeTerminalMismatch, "terminal_id does not match the client certificate", false)
		return false
	}
	return true
}

func (s *Service) randID(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.opts.Rand, b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// sweep drops expired challenges; s.mu held.
func (s *Service) sweep(now time.Time) {
	for id, c := range s.challenges {
		if now.After(c.expires.Add(s.opts.ChallengeTTL)) { // keep a while to say "expired", not "unknown"
			delete(s.challenges, id)
			if s.byTx[txKey(&c.req)] == id {
				delete(s.byTx, txKey(&c.req))
			}
		}
	}
}

func txKey(r *relay.ChallengeRequest) string { return r.TerminalID + "/" + r.TransactionID }

func (s *Service) handleChallenge(w http.ResponseWriter, r *http.Request) {
	var req relay.ChallengeRequest
	if !decode(w, r, &req) {
		return
	}
	if err := req.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, relay.CodeInvalidRequest, err.Error(), false)
		return
	}
	if !s.peerTerminal(w, r, req.TerminalID) {
		return
	}
	if _, ok := s.opts.Services[req.Service]; !ok {
		writeError(w, http.StatusBadRequest, relay.CodeUnknownService, "unknown service "+req.Service, false)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	s.sweep(now)
	if id, ok := s.byTx[txKey(&req)]; ok {
		if c := s.challenges[id]; c != nil && !c.used && now.Before(c.expires) && c.req == req {
			writeJSON(w, http.StatusOK, &c.ch)
			return
		}
	}
	if len(s.challenges) >= MaxOutstandingChallenges {
		writeError(w, http.StatusServiceUnavailable, relay.CodeInternal, "too many outstanding challenges", true)
		return
	}
	id, err := s.randID(18)
	nonce := make([]byte, relay.NonceSize)
	if err == nil {
		_, err = io.ReadFull(s.opts.Rand, nonce)
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, relay.CodeInternal, "randomness unavailable", true)
		return
	}
	exp := now.Add(s.opts.ChallengeTTL)
	c := &challenge{req: req, expires: exp, ch: relay.Challenge{ChallengeID: id, Nonce: nonce, ExpiresAt: exp.UTC().Truncate(time.Millisecond)}}
	s.challenges[id] = c
	s.byTx[txKey(&req)] = id
	s.opts.Log.Info("challenge issued", "terminal", req.TerminalID, "tx", req.TransactionID, "service", req.Service)
	writeJSON(w, http.StatusOK, &c.ch)
}

func hashBody(v any) string {
	b, _ := json.Marshal(v)
	h := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func (s *Service) handleSubmission(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get(relay.IdempotencyHeader)
	if !relay.ValidKey(key) {
		writeError(w, http.StatusBadRequest, relay.CodeInvalidRequest, "missing or malformed Idempotency-Key header", false)
		return
	}
	var sub relay.Submission
	if !decode(w, r, &sub) {
		return
	}
	if err := sub.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, relay.CodeInvalidRequest, err.Error(), false)
		return
	}
	if !s.peerTerminal(w, r, sub.TerminalID) {
		return
	}
	reqHash := hashBody(&sub)

	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.st.Submissions[key]; ok {
		if a.ReqHash != reqHash {
			writeError(w, http.StatusConflict, relay.CodeIdempotencyConflict, "idempotency key reused with a different submission", false)
			return
		}
		writeRaw(w, a.Status, a.Body)
		return
	}
	now := s.opts.Now()
	c := s.challenges[sub.ChallengeID]
	switch {
	case c == nil:
		writeError(w, http.StatusNotFound, relay.CodeChallengeUnknown, "unknown challenge", false)
		return
	case c.used:
		writeError(w, http.StatusConflict, relay.CodeChallengeUsed, "challenge already used", false)
		return
	case !now.Before(c.expires):
		writeError(w, http.StatusGone, relay.CodeChallengeExpired, "challenge expired", false)
		return
	case c.req.TerminalID != sub.TerminalID || c.req.TransactionID != sub.TransactionID || c.req.Service != sub.Service:
		writeError(w, http.StatusUnprocessableEntity, relay.CodeChallengeMismatch, "challenge was issued for another terminal, transaction or service", false)
		return
	}
	msg := relay.Message(&c.req, &c.ch)
	v, err := s.opts.Validator.ValidateAuth(r.Context(), sub.AuthCert, msg, sub.Signature)
	if err != nil {
		s.opts.Log.Warn("validation unavailable", "err", err)
		writeError(w, http.StatusServiceUnavailable, relay.CodeValidationUnavailable, "certificate validation is unavailable, retry later", true)
		return
	}
	c.used = true // definite verdict: the challenge is consumed either way

	var a answer
	a.ReqHash = reqHash
	if !v.Valid {
		code := v.Code
		if !relay.ValidCode(code) {
			code = "invalid"
		}
		if code != relay.CodeSignatureInvalid {
			code = "cert_" + code
		}
		b, _ := json.Marshal(relay.ErrorBody{Error: relay.ErrorDetail{Code: code, Message: "submission refused"}})
		a.Status, a.Body = http.StatusUnprocessableEntity, b
	} else {
		t, err := s.randID(18)
		if err != nil {
			writeError(w, http.StatusInternalServerError, relay.CodeInternal, "randomness unavailable", true)
			return
		}
		title := s.opts.Services[sub.Service]
		iss := relay.Issued{
			Ticket:   t,
			IssuedAt: now.UTC().Truncate(time.Millisecond),
			Document: relay.Document{
				ContentType: "application/pdf",
				Filename:    sub.Service + "-" + t[:8] + ".pdf",
				Data:        Document(title, t, sub.TerminalID, sub.Request.Copies, now),
			},
		}
		b, _ := json.Marshal(&iss)
		a.Status, a.Body = http.StatusOK, b
		s.st.Tickets[t] = ticket{TerminalID: sub.TerminalID, TransactionID: sub.TransactionID}
	}
	s.st.Submissions[key] = &a
	if err := s.persist(); err != nil {
		// Not durable: forget it, so a retry is decided again, not replayed
		// from an answer that would not survive a restart.
		delete(s.st.Submissions, key)
		c.used = false
		if a.Status == http.StatusOK {
			var iss relay.Issued
			json.Unmarshal(a.Body, &iss)
			delete(s.st.Tickets, iss.Ticket)
		}
		s.opts.Log.Error("persist", "err", err)
		writeError(w, http.StatusInternalServerError, relay.CodeInternal, "state not durable", true)
		return
	}
	s.opts.Log.Info("submission", "terminal", sub.TerminalID, "tx", sub.TransactionID, "status", a.Status)
	writeRaw(w, a.Status, a.Body)
}

func (s *Service) handleReceipt(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get(relay.IdempotencyHeader)
	if !relay.ValidKey(key) {
		writeError(w, http.StatusBadRequest, relay.CodeInvalidRequest, "missing or malformed Idempotency-Key header", false)
		return
	}
	var rc relay.Receipt
	if !decode(w, r, &rc) {
		return
	}
	if err := rc.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, relay.CodeInvalidRequest, err.Error(), false)
		return
	}
	if !s.peerTerminal(w, r, rc.TerminalID) {
		return
	}
	h := hashBody(&rc)
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.st.Receipts[key]; ok {
		if a.ReqHash != h {
			writeError(w, http.StatusConflict, relay.CodeIdempotencyConflict, "idempotency key reused with a different receipt", false)
			return
		}
		writeJSON(w, http.StatusOK, relay.ReceiptAck{Ticket: rc.Ticket, Duplicate: true})
		return
	}
	t, ok := s.st.Tickets[rc.Ticket]
	if !ok || t.TerminalID != rc.TerminalID || t.TransactionID != rc.TransactionID {
		writeError(w, http.StatusNotFound, relay.CodeUnknownTicket, "no such ticket for this terminal and transaction", false)
		return
	}
	s.st.Receipts[key] = &answer{ReqHash: h, Status: http.StatusOK}
	if err := s.persist(); err != nil {
		delete(s.st.Receipts, key)
		writeError(w, http.StatusInternalServerError, relay.CodeInternal, "state not durable", true)
		return
	}
	writeJSON(w, http.StatusOK, relay.ReceiptAck{Ticket: rc.Ticket})
}

func (s *Service) handleAudit(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get(relay.IdempotencyHeader)
	if !relay.ValidKey(key) {
		writeError(w, http.StatusBadRequest, relay.CodeInvalidRequest, "missing or malformed Idempotency-Key header", false)
		return
	}
	var a relay.AuditUpload
	if !decode(w, r, &a) {
		return
	}
	if err := a.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, relay.CodeInvalidRequest, err.Error(), false)
		return
	}
	if !s.peerTerminal(w, r, a.TerminalID) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.st.Audit[a.TerminalID]
	if m == nil {
		m = map[uint64]string{}
		s.st.Audit[a.TerminalID] = m
	}
	if old, ok := m[a.Seq]; ok {
		if old != a.Line {
			// Two different records with one sequence number: a rewritten log.
			writeError(w, http.StatusConflict, relay.CodeIdempotencyConflict, "a different record with this sequence number was uploaded before", false)
			return
		}
		writeJSON(w, http.StatusOK, relay.AuditAck{Seq: a.Seq, Duplicate: true})
		return
	}
	m[a.Seq] = a.Line
	if err := s.persist(); err != nil {
		delete(m, a.Seq)
		writeError(w, http.StatusInternalServerError, relay.CodeInternal, "state not durable", true)
		return
	}
	writeJSON(w, http.StatusOK, relay.AuditAck{Seq: a.Seq})
}

func (s *Service) handleStatus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, relay.CodeMethodNotAllowed, "use GET", false)
		return
	}
	issuer, serial := r.PathValue("issuer"), r.PathValue("serial")
	if !relay.ValidHex(issuer) || len(issuer) != 64 || !relay.ValidHex(serial) || len(serial) > 42 {
		writeError(w, http.StatusBadRequest, relay.CodeInvalidRequest, "issuer must be 64 lower-case hex digits, serial up to 42", false)
		return
	}
	if s.opts.Status == nil {
		writeError(w, http.StatusNotFound, relay.CodeStatusUnavailable, "this service offers no online status", false)
		return
	}
	ib, sb := mustHex(issuer), mustHex(serial)
	st, err := s.opts.Status.Status(r.Context(), ib, sb)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, relay.CodeStatusUnavailable, "status source unavailable", true)
		return
	}
	writeJSON(w, http.StatusOK, &st)
}

func mustHex(s string) []byte {
	b := make([]byte, len(s)/2)
	for i := range b {
		b[i] = unhex(s[2*i])<<4 | unhex(s[2*i+1])
	}
	return b
}

func unhex(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}

// persist writes the state file atomically; s.mu held.
func (s *Service) persist() error {
	if s.opts.StatePath == "" {
		return nil
	}
	b, err := json.Marshal(&s.st)
	if err != nil {
		return err
	}
	tmp := s.opts.StatePath + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.opts.StatePath); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(s.opts.StatePath))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
