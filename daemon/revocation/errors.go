package revocation

import (
	"errors"
	"fmt"
	"time"
)

// Error kinds, for errors.Is.
var (
	// ErrMalformed: the CRL or store file is not well-formed DER / format.
	ErrMalformed = errors.New("revocation: malformed")
	// ErrUnsupported: a well-formed CRL uses a feature this package does
	// not implement (indirect CRL, unknown critical extension, algorithm).
	ErrUnsupported = errors.New("revocation: unsupported")
	// ErrUnknownIssuer: no candidate issuer matches the CRL's name and key.
	ErrUnknownIssuer = errors.New("revocation: unknown CRL issuer")
	// ErrBadSignature: the CRL signature does not verify.
	ErrBadSignature = errors.New("revocation: bad CRL signature")
	// ErrNotNewer: the CRL is not newer than what the store holds (replay
	// or rollback), or a delta CRL does not fit the stored base.
	ErrNotNewer = errors.New("revocation: CRL not newer than the stored one")
	// ErrNoBase: a delta CRL arrived for an issuer without a stored base.
	ErrNoBase = errors.New("revocation: no base CRL for delta")
	// ErrNoCRL: the store has no CRL for the certificate's issuer.
	ErrNoCRL = errors.New("revocation: no CRL for issuer")
	// ErrStale: the CRL for the issuer is past its nextUpdate.
	ErrStale = errors.New("revocation: CRL stale")
	// ErrOnline: the online status service failed or answered unusably.
	ErrOnline = errors.New("revocation: online status check failed")
)

// MalformedError locates a parse failure.
type MalformedError struct {
	Offset int64  // byte offset in the input where the problem was seen
	What   string // what was being read
}

func (e *MalformedError) Error() string {
	return fmt.Sprintf("revocation: malformed CRL at byte %d: %s", e.Offset, e.What)
}

func (e *MalformedError) Unwrap() error { return ErrMalformed }

// StaleError reports a CRL past its nextUpdate with no usable online answer.
type StaleError struct {
	Issuer     IssuerID
	NextUpdate time.Time
	Now        time.Time
	Online     error // why the online check did not help (nil: none configured)
}

func (e *StaleError) Error() string {
	s := fmt.Sprintf("revocation: CRL of issuer %x stale: nextUpdate %s, now %s", e.Issuer[:8], e.NextUpdate.UTC().Format(time.RFC3339), e.Now.UTC().Format(time.RFC3339))
	if e.Online != nil {
		s += " (online check: " + e.Online.Error() + ")"
	}
	return s
}

func (e *StaleError) Unwrap() []error {
	if e.Online != nil {
		return []error{ErrStale, e.Online}
	}
	return []error{ErrStale}
}
