// Package api is kazasud's local kiosk API: the screen application (the
// kiosk UI) lists readers, starts a transaction for a service on a reader,
// submits the PIN the person typed, confirms a last try, cancels, and
// follows each transaction through a Server-Sent Events stream.
//
// It is served over HTTP on a unix socket (access by file mode, 0660 by
// default) and optionally on a loopback TCP address with a bearer token.
// The endpoints are described in openapi.yaml next to this file; the shape
// follows AusweisApp's SDK (docs/peers.md §8.1): commands in, state
// messages out, personal data never on this channel.
//
// The server talks to the transaction engine through [Engine], which the
// integrator implements; [Broker] is a ready pub/sub for its events.
//
// # The PIN
//
// The PIN endpoint accepts exactly {"pin":"dddd"}: four ASCII digits, no
// escapes, nothing else (JPKI user-authentication PIN, docs/jpki.md §6). It
// is parsed by hand from a fixed buffer that is zeroed after the engine has
// taken it; it is never logged, traced, stored or echoed, and error
// messages never quote the body. (What this package cannot zero: the copy
// in net/http's connection read buffer, reused by the next request, and
// the kernel's socket buffers; the unix socket keeps both on the machine.)
package api

import (
	"context"
	"errors"
	"time"
)

// State is a transaction's state as the kiosk screen shows it.
type State string

// States, in their usual order. done and failed are followed by
// remove-card when a card or phone is still in the field; the transaction
// ends (Final) with the last of them.
const (
	StateWaitingForTap State = "waiting-for-tap" // hold the card or phone to the reader
	StateArmYourPhone  State = "arm-your-phone"  // iPhone: confirm in Wallet (Face ID) first
	StateReading       State = "reading"         // do not move the card
	StatePINRequired   State = "pin-required"    // TriesLeft and LastTry say more
	StateVerifying     State = "verifying"       // PIN verify, signature, certificate validation
	StateRelaying      State = "relaying"        // talking to the issuance service
	StateDone          State = "done"            // Ticket is set
	StateFailed        State = "failed"          // Reason is set
	StateRemoveCard    State = "remove-card"     // take the card or phone away
)

// Valid reports whether s is one of the states above.
func (s State) Valid() bool {
	switch s {
	case StateWaitingForTap, StateArmYourPhone, StateReading, StatePINRequired, StateVerifying,
		StateRelaying, StateDone, StateFailed, StateRemoveCard:
		return true
	}
	return false
}

// ReaderStatus is one reader as the kiosk sees it.
type ReaderStatus struct {
	Name          string `json:"name"`
	State         string `json:"state"`                    // ready, busy or offline
	Error         string `json:"error,omitempty"`          // offline: a code such as reader_gone
	TransactionID string `json:"transaction_id,omitempty"` // busy: the transaction on it
}

// Reader states.
const (
	ReaderReady   = "ready"
	ReaderBusy    = "busy"
	ReaderOffline = "offline"
)

// TxStatus is a snapshot of a transaction. It carries no personal data: the
// ticket is the service's opaque id, reasons are codes.
type TxStatus struct {
	ID        string    `json:"id"`
	Reader    string    `json:"reader"`
	Service   string    `json:"service"`
	State     State     `json:"state"`
	TokenType string    `json:"token_type,omitempty"` // card, android, iphone once known
	TriesLeft *int      `json:"tries_left,omitempty"` // pin-required: PIN tries left on the token
	LastTry   bool      `json:"last_try,omitempty"`   // pin-required: ConfirmLastTry is needed before the PIN
	Ticket    string    `json:"ticket,omitempty"`     // done
	Reason    string    `json:"reason,omitempty"`     // failed: a [a-z0-9_] code
	Final     bool      `json:"final"`                // no further events will follow
	Updated   time.Time `json:"updated_at"`
}

// Event is a change of one transaction: the snapshot after it. Seq grows by
// one per event across all transactions of the engine.
type Event struct {
	Seq uint64   `json:"seq"`
	Tx  TxStatus `json:"transaction"`
}

// Engine is what the API needs from the transaction engine. Every method
// must return promptly (no waiting for a card); errors should wrap the Err
// values below so the API can answer with the right status.
type Engine interface {
	// Readers lists the configured readers in polling order.
	Readers(ctx context.Context) []ReaderStatus
	// Start begins a transaction for service on reader and returns its
	// first snapshot (normally waiting-for-tap).
	Start(ctx context.Context, reader, service string) (TxStatus, error)
	// SubmitPIN hands over the PIN (4 ASCII digits). The engine must use it
	// for one VERIFY and must not keep, log or copy it beyond that; the
	// caller zeroes pin after SubmitPIN returns.
	SubmitPIN(ctx context.Context, tx string, pin []byte) error
	// ConfirmLastTry records the person's confirmation that the next PIN
	// attempt is the last one before the PIN is blocked.
	ConfirmLastTry(ctx context.Context, tx string) error
	// Cancel ends a transaction (ErrTxEnded if it already ended).
	Cancel(ctx context.Context, tx string) error
	// Status returns the current snapshot of a transaction (kept for a
	// while after it ended).
	Status(ctx context.Context, tx string) (TxStatus, error)
	// Subscribe streams events of one transaction, or of all when tx is "".
	// The first events are the current snapshots (of tx, or of every
	// transaction that has not ended). A per-transaction channel is closed
	// after its Final event; any channel is closed after cancel() or when
	// the subscriber falls behind (the engine never blocks on a
	// subscriber). [Broker] implements these semantics.
	Subscribe(tx string) (events <-chan Event, cancel func(), err error)
}

// Errors an Engine returns (wrapped); each maps to an HTTP status and code.
var (
	ErrUnknownReader    = errors.New("unknown reader")                     // 404 unknown_reader
	ErrReaderBusy       = errors.New("reader busy")                        // 409 reader_busy
	ErrReaderOffline    = errors.New("reader offline")                     // 503 reader_offline
	ErrUnknownService   = errors.New("unknown service")                    // 400 unknown_service
	ErrUnknownTx        = errors.New("unknown transaction")                // 404 unknown_transaction
	ErrWrongState       = errors.New("not possible in this state")         // 409 wrong_state
	ErrLastTryUnconfirm = errors.New("last PIN try must be confirmed")     // 409 last_try_unconfirmed
	ErrTxEnded          = errors.New("transaction ended")                  // 409 transaction_ended
	ErrBusy             = errors.New("engine busy, too many transactions") // 503 busy
)
