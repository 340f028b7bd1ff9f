// Package audit is kazasud's tamper-evident audit log: append-only,
// hash-chained, fsync'd JSON lines that record verification decisions and
// relays — and nothing personal.
//
// # What may be written
//
// Callers pass an [Entry] of typed, validated fields: an [Event] from a fixed
// set, a transaction id, a reader name, a [TokenType], a service code, a
// short reason code ([a-z0-9_]) and at most the first 8 bytes of a
// certificate's SHA-256 fingerprint ([CertPrefix]). There is no free-text
// field: no PIN, name, address, birth date or certificate can be logged, by
// construction, and [Verify] rejects files that hold anything else.
//
// # Format
//
// One record per line, UTF-8 JSON in a fixed canonical form (the field order
// of [Record], no insignificant whitespace, "\n" terminated):
//
//	{"v":1,"seq":0,"ts":"2026-11-21T17:00:00.123Z","ev":"genesis","term":"kz-1","prev":"000…000"}
//	{"v":1,"seq":1,"ts":"…","ev":"tx_start","tx":"t-…","rdr":"sim0","svc":"juminhyo","prev":"<sha256 of line 0>"}
//
// prev is the lower-case hex SHA-256 of the previous line's bytes (without
// its newline). The first line of a file is a genesis record; the first file
// ever has seq 0 and an all-zero prev; a file started by rotation continues
// the sequence and chains to the last record of the file before it.
//
// # Durability and anchoring
//
// [Log.Append] writes the line and fsyncs before returning, then replaces
// the head file (audit.head: {"seq":N,"hash":"…"}) atomically. The chain
// alone cannot show that records were cut off the end, so the tail is
// anchored twice: a rotated file is sealed by a final "rotate" record, and
// the live file must reach the record named by the head (the head may lag
// by one record after a crash, never lead). Records are also meant to be
// uploaded through the store-and-forward queue (idempotency key
// "audit/<terminal>/<seq>"), which anchors them off the terminal.
//
// # Rotation
//
// [Log.Rotate] (or MaxBytes) seals audit.log, renames it to
// audit-<firstseq>-<lastseq>.log and starts a new audit.log whose genesis
// chains to the sealed file. Each step is crash-safe: [Open] finishes a
// rotation that a crash interrupted, and truncates a torn final line (an
// append that never returned), recording that it did so.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// FormatVersion is the "v" of every record.
const FormatVersion = 1

// MaxLine bounds one record line.
const MaxLine = 1024

// Event is what happened.
type Event string

// Events. The set is closed: [Verify] rejects others.
const (
	EventGenesis      Event = "genesis"       // first record of a file
	EventRotate       Event = "rotate"        // last record of a rotated file
	EventRecovered    Event = "recovered"     // Open repaired a torn tail (Reason says what)
	EventDaemonStart  Event = "daemon_start"  // kazasud started
	EventDaemonStop   Event = "daemon_stop"   // kazasud stopped cleanly
	EventTxStart      Event = "tx_start"      // a transaction was started on a reader
	EventTap          Event = "tap"           // a card or phone was detected
	EventCertRead     Event = "cert_read"     // the auth certificate was read
	EventPINVerified  Event = "pin_verified"  // the card accepted the PIN
	EventPINRejected  Event = "pin_rejected"  // the card refused the PIN (Reason: tries_N)
	EventCertValid    Event = "cert_valid"    // chain, revocation and signature checks passed
	EventCertRejected Event = "cert_rejected" // validation failed (Reason: verdict code)
	EventRelayed      Event = "relayed"       // the submission was accepted by the service
	EventRefused      Event = "refused"       // the service refused (Reason: its code)
	EventIssued       Event = "issued"        // the document was handed to the printer
	EventCancelled    Event = "cancelled"     // cancelled by the user or the kiosk
	EventFailed       Event = "failed"        // ended with an error (Reason: code)
	EventReceiptSent  Event = "receipt_sent"  // the completion receipt was delivered
)

var knownEvents = map[Event]bool{
	EventGenesis: true, EventRotate: true, EventRecovered: true, EventDaemonStart: true, EventDaemonStop: true,
	EventTxStart: true, EventTap: true, EventCertRead: true, EventPINVerified: true, EventPINRejected: true,
	EventCertValid: true, EventCertRejected: true, EventRelayed: true, EventRefused: true, EventIssued: true,
	EventCancelled: true, EventFailed: true, EventReceiptSent: true,
}

// TokenType is the kind of JPKI token used.
type TokenType string

// Token types (from the JPKI token label: JPKIAPICCTOKEN2, JPKIAPGPSETOKEN,
// JPKIAPIOSTOKEN).
const (
	TokenNone    TokenType = ""
	TokenCard    TokenType = "card"
	TokenAndroid TokenType = "android"
	TokenIPhone  TokenType = "iphone"
)

// CertPrefix is the first 8 bytes of a certificate's SHA-256 fingerprint:
// enough to tell certificates apart in an audit, not enough to be a
// directory of card holders.
type CertPrefix [8]byte

// CertPrefixOf returns the CertPrefix of a DER certificate.
func CertPrefixOf(der []byte) *CertPrefix {
	sum := sha256.Sum256(der)
	var p CertPrefix
	copy(p[:], sum[:8])
	return &p
}

// Entry is what a caller records. Every field is optional except Event.
type Entry struct {
	Event   Event
	TxID    string      // [A-Za-z0-9_-]{1,64}
	Reader  string      // [a-z0-9_-]{1,32}
	Token   TokenType   // card, android, iphone
	Service string      // [a-z0-9_]{1,32}, e.g. juminhyo
	Reason  string      // [a-z0-9_]{1,48}, e.g. pin_blocked
	Cert    *CertPrefix // certificate fingerprint prefix
}

// Record is one line of the log, in canonical field order.
type Record struct {
	V        int    `json:"v"`
	Seq      uint64 `json:"seq"`
	Time     string `json:"ts"`
	Event    Event  `json:"ev"`
	Terminal string `json:"term,omitempty"` // genesis only
	TxID     string `json:"tx,omitempty"`
	Reader   string `json:"rdr,omitempty"`
	Token    string `json:"tok,omitempty"`
	Service  string `json:"svc,omitempty"`
	Reason   string `json:"rc,omitempty"`
	Cert     string `json:"cert,omitempty"` // 16 hex digits
	Prev     string `json:"prev"`
}

var (
	reTx      = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	reReader  = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)
	reService = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)
	reReason  = regexp.MustCompile(`^[a-z0-9_]{1,48}$`)
	reTerm    = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	reCert    = regexp.MustCompile(`^[0-9a-f]{16}$`)
	reHash    = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ErrInvalidEntry is wrapped by Append for an entry with a bad field.
var ErrInvalidEntry = errors.New("audit: invalid entry")

func (e *Entry) validate() error {
	bad := func(field, v string) error { return fmt.Errorf("%w: %s %q", ErrInvalidEntry, field, v) }
	switch {
	case !knownEvents[e.Event] || e.Event == EventGenesis || e.Event == EventRotate:
		return bad("event", string(e.Event))
	case e.TxID != "" && !reTx.MatchString(e.TxID):
		return bad("tx id", e.TxID)
	case e.Reader != "" && !reReader.MatchString(e.Reader):
		return bad("reader", e.Reader)
	case e.Service != "" && !reService.MatchString(e.Service):
		return bad("service", e.Service)
	case e.Reason != "" && !reReason.MatchString(e.Reason):
		return bad("reason", e.Reason)
	}
	switch e.Token {
	case TokenNone, TokenCard, TokenAndroid, TokenIPhone:
	default:
		return bad("token", string(e.Token))
	}
	return nil
}

// check validates a decoded record's fields (not its chain).
func (r *Record) check() error {
	switch {
	case r.V != FormatVersion:
		return fmt.Errorf("unsupported version %d", r.V)
	case !knownEvents[r.Event]:
		return fmt.Errorf("unknown event %q", r.Event)
	case (r.Event == EventGenesis) != (r.Terminal != ""):
		return errors.New("term is required on genesis records and only there")
	case r.Terminal != "" && !reTerm.MatchString(r.Terminal):
		return errors.New("bad term")
	case r.TxID != "" && !reTx.MatchString(r.TxID):
		return errors.New("bad tx")
	case r.Reader != "" && !reReader.MatchString(r.Reader):
		return errors.New("bad rdr")
	case r.Service != "" && !reService.MatchString(r.Service):
		return errors.New("bad svc")
	case r.Reason != "" && !reReason.MatchString(r.Reason):
		return errors.New("bad rc")
	case r.Cert != "" && !reCert.MatchString(r.Cert):
		return errors.New("bad cert")
	case !reHash.MatchString(r.Prev):
		return errors.New("bad prev")
	}
	switch TokenType(r.Token) {
	case TokenNone, TokenCard, TokenAndroid, TokenIPhone:
	default:
		return errors.New("bad tok")
	}
	if t, err := time.Parse(time.RFC3339Nano, r.Time); err != nil || t.Location() != time.UTC || t.UTC().Format(timeFormat) != r.Time {
		return errors.New("bad ts")
	}
	return nil
}

const timeFormat = "2006-01-02T15:04:05.000Z"

// encode returns the canonical line (without newline).
func (r *Record) encode() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Hash is the SHA-256 of a record line without its newline.
type Hash [32]byte

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// HashLine returns the hash of a record line (trailing newline ignored).
func HashLine(line []byte) Hash { return sha256.Sum256(bytes.TrimSuffix(line, []byte("\n"))) }
