package pki

import (
	"fmt"
	"strings"
)

// Reason is a machine-readable cause of a negative verdict. Its String is
// a stable snake_case code for logs, metrics and the kiosk API.
type Reason int

const (
	ReasonMalformed             Reason = iota + 1 // certificate does not parse (truncated, garbage, trailing data)
	ReasonUnknownIssuer                           // no trusted root has the issuer's name and key identifier
	ReasonTestRootInProduction                    // chain ends in a JPKI-TEST root while not in test mode
	ReasonBadSignature                            // the issuer's key does not verify the certificate
	ReasonExpired                                 // certificate or root past notAfter
	ReasonNotYetValid                             // certificate or root before notBefore
	ReasonClockUnsynchronised                     // no trustworthy time
	ReasonWrongKeyUsage                           // keyUsage not as profiled
	ReasonWrongPolicy                             // required certificate policy missing
	ReasonWrongCertType                           // sign certificate where auth expected (or vice versa), or a CA certificate
	ReasonRevoked                                 // listed in the CRL / online status says revoked
	ReasonCRLStale                                // revocation data past nextUpdate, no fresh answer (fail closed)
	ReasonRevocationUnknown                       // no revocation data for the issuer
	ReasonBadChallengeSignature                   // challenge signature missing or wrong
	ReasonWeakKey                                 // not RSA, or RSA below 2048 bits
	reasonEnd
)

var reasonCodes = [...]string{
	ReasonMalformed:             "malformed",
	ReasonUnknownIssuer:         "unknown_issuer",
	ReasonTestRootInProduction:  "test_root_in_production",
	ReasonBadSignature:          "bad_signature",
	ReasonExpired:               "expired",
	ReasonNotYetValid:           "not_yet_valid",
	ReasonClockUnsynchronised:   "clock_unsynchronised",
	ReasonWrongKeyUsage:         "wrong_key_usage",
	ReasonWrongPolicy:           "wrong_policy",
	ReasonWrongCertType:         "wrong_cert_type",
	ReasonRevoked:               "revoked",
	ReasonCRLStale:              "crl_stale",
	ReasonRevocationUnknown:     "revocation_unknown",
	ReasonBadChallengeSignature: "bad_challenge_signature",
	ReasonWeakKey:               "weak_key",
}

// String returns the stable code.
func (r Reason) String() string {
	if r > 0 && r < reasonEnd {
		return reasonCodes[r]
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// ReasonError is the error form of one reason: a comparable value, so
// errors.Is(verdict.Err(), pki.ReasonError{pki.ReasonRevoked}) tests for
// a reason, as does errors.As with *ValidationError and Has.
type ReasonError struct{ Reason Reason }

func (e ReasonError) Error() string { return "pki: " + e.Reason.String() }

// ParseReason maps a code back to its Reason.
func ParseReason(code string) (Reason, bool) {
	for r := ReasonMalformed; r < reasonEnd; r++ {
		if reasonCodes[r] == code {
			return r, true
		}
	}
	return 0, false
}

// Finding is one reason with human detail.
type Finding struct {
	Reason Reason
	Detail string
}

func (f Finding) String() string {
	if f.Detail == "" {
		return f.Reason.String()
	}
	return f.Reason.String() + ": " + f.Detail
}

// ValidationError is the error form of a negative verdict. Unwrap exposes
// each reason as a ReasonError.
type ValidationError struct {
	Findings []Finding
}

func (e *ValidationError) Error() string {
	var parts []string
	for _, f := range e.Findings {
		parts = append(parts, f.String())
	}
	return "pki: certificate invalid: " + strings.Join(parts, "; ")
}

func (e *ValidationError) Unwrap() []error {
	out := make([]error, len(e.Findings))
	for i, f := range e.Findings {
		out[i] = ReasonError{f.Reason}
	}
	return out
}

// Has reports whether r is among the findings.
func (e *ValidationError) Has(r Reason) bool {
	for _, f := range e.Findings {
		if f.Reason == r {
			return true
		}
	}
	return false
}
