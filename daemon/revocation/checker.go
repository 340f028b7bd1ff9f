package revocation

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"
)

// Status is a certificate's revocation status.
type Status int

const (
	Unknown Status = iota // no usable information
	Good                  // not revoked according to a fresh source
	Revoked               // revoked (or on hold)
)

func (s Status) String() string {
	switch s {
	case Unknown:
		return "unknown"
	case Good:
		return "good"
	case Revoked:
		return "revoked"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Source says where a Result came from.
type Source int

const (
	SourceCRL    Source = iota + 1 // the local revocation set
	SourceOnline                   // the online status hook
)

func (s Source) String() string {
	switch s {
	case SourceCRL:
		return "crl"
	case SourceOnline:
		return "online"
	}
	return fmt.Sprintf("Source(%d)", int(s))
}

// Result is the outcome of a revocation check.
type Result struct {
	Status     Status
	Source     Source
	ThisUpdate time.Time // of the CRL or online response used
	NextUpdate time.Time
	// Stale is set when a stale CRL was used because the Checker is
	// configured to fail open.
	Stale bool
}

// Online asks a live service for a certificate's status: OCSP
// (OCSPClient) or the issuance service's status endpoint.
type Online interface {
	Status(ctx context.Context, cert, issuer *x509.Certificate, now time.Time) (Result, error)
}

// SetSource gives the current set (a *Store).
type SetSource interface{ Set() *Set }

// Checker decides a certificate's status from the local set, falling back
// to Online when the issuer's CRL is stale or missing.
type Checker struct {
	Sets   SetSource
	Online Online // optional
	// FailOpen, if true, uses a stale CRL when the online check is absent
	// or fails (Result.Stale set). The default is fail-closed: a
	// *StaleError.
	FailOpen bool
	// Grace is how long past nextUpdate a CRL still counts as fresh (the
	// publication delay of the next one). Zero means none.
	Grace time.Duration
}

// Check returns the status of cert, issued by issuer, at now.
func (c *Checker) Check(ctx context.Context, cert, issuer *x509.Certificate, now time.Time) (Result, error) {
	id := IssuerIDOf(issuer)
	set := c.Sets.Set()
	info, ok := set.Info(id)
	if !ok {
		if c.Online != nil {
			r, err := c.Online.Status(ctx, cert, issuer, now)
			if err == nil {
				return r, nil
			}
			return Result{}, fmt.Errorf("%w for %s, online check failed: %w", ErrNoCRL, id, err)
		}
		return Result{}, fmt.Errorf("%w %s", ErrNoCRL, id)
	}
	res := Result{Source: SourceCRL, ThisUpdate: info.ThisUpdate, NextUpdate: info.NextUpdate, Status: Good}
	if set.Revoked(id, SerialBytes(cert.SerialNumber)) {
		// A revocation in a stale CRL is still a revocation (JPKI has
		// certificate_hold, but a hold is released by a newer CRL).
		res.Status = Revoked
		return res, nil
	}
	fresh := !info.NextUpdate.IsZero() && !now.After(info.NextUpdate.Add(c.Grace))
	if fresh {
		return res, nil
	}
	stale := &StaleError{Issuer: id, NextUpdate: info.NextUpdate, Now: now}
	if c.Online != nil {
		r, err := c.Online.Status(ctx, cert, issuer, now)
		if err == nil {
			return r, nil
		}
		stale.Online = err
	}
	if c.FailOpen {
		res.Stale = true
		return res, nil
	}
	return Result{}, stale
}
