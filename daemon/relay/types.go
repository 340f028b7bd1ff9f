// Package relay is the terminal's side of the issuance relay API: the wire
// types (shared with the reference service in daemon/issuance), the signed
// challenge message, strict decoding, and a mutual-TLS [Client] with a
// pinned CA, timeouts and retries for idempotent calls.
//
// The API is described in openapi.yaml next to this file. In short:
//
//	POST /v1/challenges              → nonce bound to terminal + transaction
//	POST /v1/submissions             → ticket + document (Idempotency-Key)
//	POST /v1/receipts                → completion receipt (Idempotency-Key)
//	POST /v1/audit-records           → audit log upload (Idempotency-Key)
//	GET  /v1/status/{issuer}/{serial} → online revocation status (optional)
//
// # What the card signs
//
// The terminal never signs the nonce alone: it signs [Message], which binds
// the nonce to the challenge id, terminal, transaction and service, as a
// PKCS#1 v1.5 signature over DigestInfo(SHA-256(Message)) made with the JPKI
// user-authentication key (drivers/jpki DigestInfoSHA256 + SignAuth).
//
// Real コンビニ交付 traffic goes to J-LIS's 証明書交付センター over a
// dedicated line with an NDA-only protocol (docs/jpki.md §7.3); this API is
// kazasu's own, for the reference service and for operators who build their
// gateway to that centre behind it.
package relay

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"
)

// Limits on request and response bodies.
const (
	MaxRequestBody  = 64 << 10 // the largest request: a submission with a cert
	MaxResponseBody = 16 << 20 // a document, base64
	MaxDocument     = 8 << 20  // decoded document bytes
	MaxCert         = 8 << 10
	MaxSignature    = 1024
	NonceSize       = 32
)

// Header carrying idempotency keys.
const IdempotencyHeader = "Idempotency-Key"

var (
	reTerminal = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	reTx       = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	reService  = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)
	reID       = regexp.MustCompile(`^[A-Za-z0-9_-]{16,64}$`)
	reKey      = regexp.MustCompile(`^[\x21-\x7e]{1,200}$`)
	reCode     = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
	reHex      = regexp.MustCompile(`^[0-9a-f]{2,128}$`)
)

// ChallengeRequest asks for a challenge. Asking again for the same terminal
// and transaction while the challenge is valid and unused returns it again,
// which makes the call idempotent.
type ChallengeRequest struct {
	TerminalID    string `json:"terminal_id"`
	TransactionID string `json:"transaction_id"`
	Service       string `json:"service"`
}

// Challenge is the service's answer.
type Challenge struct {
	ChallengeID string    `json:"challenge_id"`
	Nonce       []byte    `json:"nonce"` // NonceSize random bytes, base64
	ExpiresAt   time.Time `json:"expires_at"`
}

// Message returns the bytes the card signs for challenge ch requested by r.
func Message(r *ChallengeRequest, ch *Challenge) []byte {
	var b bytes.Buffer
	b.WriteString("kazasu-relay-challenge-v1\n")
	fmt.Fprintf(&b, "challenge_id=%s\nterminal_id=%s\ntransaction_id=%s\nservice=%s\nnonce=%s\n",
		ch.ChallengeID, r.TerminalID, r.TransactionID, r.Service, base64.RawURLEncoding.EncodeToString(ch.Nonce))
	return b.Bytes()
}

// Token types of a submission.
const (
	TokenCard    = "card"
	TokenAndroid = "android"
	TokenIPhone  = "iphone"
)

// ServiceRequest is what the person asked for.
type ServiceRequest struct {
	Copies int `json:"copies"` // 1..10
}

// Submission is the signed request for a document.
type Submission struct {
	ChallengeID   string         `json:"challenge_id"`
	TerminalID    string         `json:"terminal_id"`
	TransactionID string         `json:"transaction_id"`
	Service       string         `json:"service"`
	TokenType     string         `json:"token_type"`
	AuthCert      []byte         `json:"auth_cert"` // DER, base64
	Signature     []byte         `json:"signature"` // base64
	Request       ServiceRequest `json:"request"`
}

// Document is an issued document.
type Document struct {
	ContentType string `json:"content_type"` // application/pdf or text/plain; charset=utf-8
	Filename    string `json:"filename"`
	Data        []byte `json:"data"` // base64
}

// Issued is the answer to an accepted submission.
type Issued struct {
	Ticket   string    `json:"ticket"`
	IssuedAt time.Time `json:"issued_at"`
	Document Document  `json:"document"`
}

// Receipt outcomes.
const (
	OutcomePrinted     = "printed"
	OutcomePrintFailed = "print_failed"
	OutcomeAbandoned   = "abandoned"
)

// Receipt reports what became of an issued document.
type Receipt struct {
	Ticket        string    `json:"ticket"`
	TerminalID    string    `json:"terminal_id"`
	TransactionID string    `json:"transaction_id"`
	Outcome       string    `json:"outcome"`
	Pages         int       `json:"pages"`
	CompletedAt   time.Time `json:"completed_at"`
}

// ReceiptAck acknowledges a receipt.
type ReceiptAck struct {
	Ticket    string `json:"ticket"`
	Duplicate bool   `json:"duplicate"` // the key was seen before
}

// AuditUpload carries one audit log line (daemon/audit) off the terminal.
type AuditUpload struct {
	TerminalID string `json:"terminal_id"`
	Seq        uint64 `json:"seq"`
	Line       string `json:"line"`
}

// AuditAck acknowledges an audit upload.
type AuditAck struct {
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
}

// Status values of the online status hook.
const (
	StatusGood    = "good"
	StatusRevoked = "revoked"
	StatusUnknown = "unknown"
)

// CertStatus is the answer of GET /v1/status/{issuer}/{serial}.
type CertStatus struct {
	Status    string    `json:"status"`
	Reason    string    `json:"reason,omitempty"` // for revoked: a code
	CheckedAt time.Time `json:"checked_at"`
}

// ErrorBody is every error response: {"error": {...}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is a machine-readable refusal.
type ErrorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable"`
}

// Refusal codes.
const (
	CodeInvalidRequest        = "invalid_request"
	CodeTerminalMismatch      = "terminal_mismatch"
	CodeUnknownService        = "unknown_service"
	CodeChallengeUnknown      = "challenge_unknown"
	CodeChallengeExpired      = "challenge_expired"
	CodeChallengeUsed         = "challenge_used"
	CodeChallengeMismatch     = "challenge_mismatch"
	CodeIdempotencyConflict   = "idempotency_conflict"
	CodeUnknownTicket         = "unknown_ticket"
	CodeNotFound              = "not_found"
	CodeMethodNotAllowed      = "method_not_allowed"
	CodeValidationUnavailable = "validation_unavailable"
	CodeStatusUnavailable     = "status_unavailable"
	CodeInternal              = "internal"
	// Certificate and signature refusals are "cert_<verdict>" (e.g.
	// cert_revoked, cert_expired) and "signature_invalid".
	CodeSignatureInvalid = "signature_invalid"
)

// Validate checks a challenge request.
func (r *ChallengeRequest) Validate() error {
	switch {
	case !reTerminal.MatchString(r.TerminalID):
		return fieldErr("terminal_id")
	case !reTx.MatchString(r.TransactionID):
		return fieldErr("transaction_id")
	case !reService.MatchString(r.Service):
		return fieldErr("service")
	}
	return nil
}

// Validate checks a challenge.
func (c *Challenge) Validate() error {
	switch {
	case !reID.MatchString(c.ChallengeID):
		return fieldErr("challenge_id")
	case len(c.Nonce) != NonceSize:
		return fieldErr("nonce")
	case c.ExpiresAt.IsZero():
		return fieldErr("expires_at")
	}
	return nil
}

// Validate checks a submission's shape (not its signature).
func (s *Submission) Validate() error {
	switch {
	case !reID.MatchString(s.ChallengeID):
		return fieldErr("challenge_id")
	case !reTerminal.MatchString(s.TerminalID):
		return fieldErr("terminal_id")
	case !reTx.MatchString(s.TransactionID):
		return fieldErr("transaction_id")
	case !reService.MatchString(s.Service):
		return fieldErr("service")
	case s.TokenType != TokenCard && s.TokenType != TokenAndroid && s.TokenType != TokenIPhone:
		return fieldErr("token_type")
	case len(s.AuthCert) == 0 || len(s.AuthCert) > MaxCert:
		return fieldErr("auth_cert")
	case len(s.Signature) == 0 || len(s.Signature) > MaxSignature:
		return fieldErr("signature")
	case s.Request.Copies < 1 || s.Request.Copies > 10:
		return fieldErr("request.copies")
	}
	return nil
}

// Validate checks an issued answer.
func (i *Issued) Validate() error {
	switch {
	case !reID.MatchString(i.Ticket):
		return fieldErr("ticket")
	case i.Document.ContentType == "" || len(i.Document.ContentType) > 100:
		return fieldErr("document.content_type")
	case len(i.Document.Data) == 0 || len(i.Document.Data) > MaxDocument:
		return fieldErr("document.data")
	case len(i.Document.Filename) > 100:
		return fieldErr("document.filename")
	}
	return nil
}

// Validate checks a receipt.
func (r *Receipt) Validate() error {
	switch {
	case !reID.MatchString(r.Ticket):
		return fieldErr("ticket")
	case !reTerminal.MatchString(r.TerminalID):
		return fieldErr("terminal_id")
	case !reTx.MatchString(r.TransactionID):
		return fieldErr("transaction_id")
	case r.Outcome != OutcomePrinted && r.Outcome != OutcomePrintFailed && r.Outcome != OutcomeAbandoned:
		return fieldErr("outcome")
	case r.Pages < 0 || r.Pages > 1000:
		return fieldErr("pages")
	case r.CompletedAt.IsZero():
		return fieldErr("completed_at")
	}
	return nil
}

// Validate checks an audit upload.
func (a *AuditUpload) Validate() error {
	switch {
	case !reTerminal.MatchString(a.TerminalID):
		return fieldErr("terminal_id")
	case a.Line == "" || len(a.Line) > 1024:
		return fieldErr("line")
	}
	return nil
}

// Validate checks a status answer.
func (s *CertStatus) Validate() error {
	switch s.Status {
	case StatusGood, StatusRevoked, StatusUnknown:
	default:
		return fieldErr("status")
	}
	if s.Reason != "" && !reCode.MatchString(s.Reason) {
		return fieldErr("reason")
	}
	return nil
}

// ValidKey reports whether k is a well-formed idempotency key.
func ValidKey(k string) bool { return reKey.MatchString(k) }

// ValidHex reports whether s is a lower-case hex path segment (issuer
// hash, serial) of 1..64 bytes.
func ValidHex(s string) bool { return reHex.MatchString(s) && len(s)%2 == 0 }

// ValidCode reports whether s is a well-formed refusal code.
func ValidCode(s string) bool { return reCode.MatchString(s) }

// FieldError names an invalid or missing field.
type FieldError struct{ Field string }

func (e *FieldError) Error() string { return "relay: invalid or missing field " + e.Field }

func fieldErr(f string) error { return &FieldError{Field: f} }

// ErrTooLarge is returned by Decode for an oversized body.
var ErrTooLarge = errors.New("relay: body too large")

// Decode strictly decodes one JSON value from r into v: at most limit
// bytes, no unknown fields, no trailing data.
func Decode(r io.Reader, limit int64, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return fmt.Errorf("relay: read body: %w", err)
	}
	if int64(len(data)) > limit {
		return ErrTooLarge
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("relay: decode: %w", err)
	}
	if dec.More() {
		return errors.New("relay: decode: trailing data after the JSON value")
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return errors.New("relay: decode: trailing data after the JSON value")
	}
	return nil
}
