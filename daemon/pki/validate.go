package pki

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"kazasu/daemon/revocation"
)

// JPKI certificate policy OIDs (docs/jpki.md §7.2).
var (
	PolicyAuth = mustOID(1, 2, 392, 200149, 8, 5, 1, 3, 30) // auth class 30
	PolicySign = mustOID(1, 2, 392, 200149, 8, 5, 1, 1, 20) // sign class 20
)

func mustOID(ints ...uint64) x509.OID {
	o, err := x509.OIDFromInts(ints)
	if err != nil {
		panic(err)
	}
	return o
}

// RevocationChecker gives a certificate's revocation status
// (*revocation.Checker).
type RevocationChecker interface {
	Check(ctx context.Context, cert, issuer *x509.Certificate, now time.Time) (revocation.Result, error)
}

var _ RevocationChecker = (*revocation.Checker)(nil)

// Validator validates one transaction's certificate and challenge
// signature. Its fields are read-only after set-up; Validate is safe for
// concurrent use.
type Validator struct {
	Roots *TrustStore
	Clock Clock
	// MaxUncertainty is the largest clock uncertainty accepted; a worse
	// clock gives ReasonClockUnsynchronised. Zero means 2 minutes.
	MaxUncertainty time.Duration
	// Revocation, if nil, skips revocation (the verdict says so in
	// RevocationChecked); production wiring always sets it.
	Revocation RevocationChecker
	// AuthPolicies / SignPolicies: one of them must be present. Nil
	// means PolicyAuth / PolicySign.
	AuthPolicies, SignPolicies []x509.OID
}

// Request is one transaction to validate.
type Request struct {
	Cert   []byte // end-entity certificate, DER, as read from the card
	Expect Kind   // the certificate type required (0 means KindAuth)
	// Challenge is the data the kiosk had the card sign, and Signature
	// the card's answer. A nil Challenge skips the check (certificate-only
	// validation, e.g. `kazasu cert verify`).
	Challenge, Signature []byte
}

// Verdict is the outcome of a validation.
type Verdict struct {
	Valid    bool
	Findings []Finding // empty iff Valid

	Cert   *x509.Certificate // nil when malformed
	Kind   Kind              // type of the issuing CA, if found
	Root   *Root             // the anchor, if found
	At     ClockReading      // the time used
	Policy []x509.OID        // the certificate's policies (data)

	RevocationChecked bool
	Revocation        revocation.Result
}

// Has reports whether the verdict carries reason r.
func (v *Verdict) Has(r Reason) bool {
	for _, f := range v.Findings {
		if f.Reason == r {
			return true
		}
	}
	return false
}

// Reasons lists the verdict's reasons in order.
func (v *Verdict) Reasons() []Reason {
	out := make([]Reason, len(v.Findings))
	for i, f := range v.Findings {
		out[i] = f.Reason
	}
	return out
}

// Err returns nil for a valid verdict and a *ValidationError otherwise.
func (v *Verdict) Err() error {
	if v.Valid {
		return nil
	}
	return &ValidationError{Findings: v.Findings}
}

func (v *Verdict) add(r Reason, format string, args ...any) {
	v.Findings = append(v.Findings, Finding{Reason: r, Detail: fmt.Sprintf(format, args...)})
}

// Validate runs every check on req and returns the verdict. It never
// panics on hostile input.
func (val *Validator) Validate(ctx context.Context, req Request) *Verdict {
	v := &Verdict{}
	defer func() { v.Valid = len(v.Findings) == 0 }()
	expect := req.Expect
	if expect == 0 {
		expect = KindAuth
	}
	cert, err := x509.ParseCertificate(req.Cert)
	if err != nil {
		v.add(ReasonMalformed, "%v", err)
		return v
	}
	v.Cert = cert
	v.Policy = cert.Policies

	root, stop := val.chain(v, cert)
	if stop {
		return v
	}
	v.Root, v.Kind = root, root.Kind

	// Time. A validator without a clock has no trusted time: fail closed.
	if val.Clock != nil {
		v.At = val.Clock.Now()
	}
	maxU := val.MaxUncertainty
	if maxU == 0 {
		maxU = 2 * time.Minute
	}
	timeOK := true
	switch {
	case !v.At.Synchronised:
		v.add(ReasonClockUnsynchronised, "clock not synchronised")
		timeOK = false
	case v.At.Uncertainty > maxU || v.At.Uncertainty < 0:
		v.add(ReasonClockUnsynchronised, "clock uncertainty %s exceeds %s", v.At.Uncertainty, maxU)
		timeOK = false
	default:
		early, late := v.At.Time.Add(-v.At.Uncertainty), v.At.Time.Add(v.At.Uncertainty)
		for _, c := range []struct {
			what string
			c    *x509.Certificate
		}{{"certificate", cert}, {"root", root.Cert}} {
			if late.After(c.c.NotAfter) {
				v.add(ReasonExpired, "%s notAfter %s", c.what, c.c.NotAfter.UTC().Format(time.RFC3339))
			}
			if early.Before(c.c.NotBefore) {
				v.add(ReasonNotYetValid, "%s notBefore %s", c.what, c.c.NotBefore.UTC().Format(time.RFC3339))
			}
		}
	}

	// Type, usage, key, policy.
	switch {
	case cert.IsCA:
		v.add(ReasonWrongCertType, "a CA certificate is not an end entity")
	case root.Kind != expect:
		v.add(ReasonWrongCertType, "%s certificate where %s was expected", root.Kind, expect)
	default:
		val.profile(v, cert, expect)
	}

	// Revocation (needs a time; with an untrusted clock, freshness cannot
	// be judged, and the verdict is negative anyway).
	if val.Revocation != nil && timeOK {
		v.RevocationChecked = true
		// Freshness is judged at the latest instant the clock allows.
		res, err := val.Revocation.Check(ctx, cert, root.Cert, v.At.Time.Add(v.At.Uncertainty))
		v.Revocation = res
		switch {
		case errors.Is(err, revocation.ErrStale):
			v.add(ReasonCRLStale, "%v", err)
		case err != nil:
			v.add(ReasonRevocationUnknown, "%v", err)
		case res.Status == revocation.Revoked:
			v.add(ReasonRevoked, "serial %X per %s", cert.SerialNumber, res.Source)
		case res.Status != revocation.Good:
			v.add(ReasonRevocationUnknown, "status %s", res.Status)
		}
	}

	// The challenge signature.
	if req.Challenge != nil {
		pub, ok := cert.PublicKey.(*rsa.PublicKey)
		digest := sha256.Sum256(req.Challenge)
		switch {
		case !ok:
			v.add(ReasonBadChallengeSignature, "certificate key is not RSA")
		case len(req.Signature) == 0:
			v.add(ReasonBadChallengeSignature, "no signature")
		default:
			if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], req.Signature); err != nil {
				v.add(ReasonBadChallengeSignature, "%v", err)
			}
		}
	}
	return v
}

// chain finds the anchor. stop is true when nothing more can be judged.
func (val *Validator) chain(v *Verdict, cert *x509.Certificate) (*Root, bool) {
	if val.Roots == nil {
		v.add(ReasonUnknownIssuer, "validator has no trust store")
		return nil, true
	}
	cands := val.Roots.candidates(cert.RawIssuer)
	if len(cert.AuthorityKeyId) > 0 {
		var byKey []*Root
		for _, r := range cands {
			if bytes.Equal(r.Cert.SubjectKeyId, cert.AuthorityKeyId) {
				byKey = append(byKey, r)
			}
		}
		cands = byKey
	}
	test := val.Roots.TestMode()
	if len(cands) == 0 {
		if isTestName(cert.RawIssuer) && !test {
			v.add(ReasonTestRootInProduction, "issuer %s is a JPKI-TEST CA", cert.Issuer)
		} else {
			v.add(ReasonUnknownIssuer, "no trusted root named %s with key id %X", cert.Issuer, cert.AuthorityKeyId)
		}
		return nil, true
	}
	for _, r := range cands {
		if cert.CheckSignatureFrom(r.Cert) != nil {
			continue
		}
		if r.Test && !test {
			v.add(ReasonTestRootInProduction, "chain ends in JPKI-TEST %s generation %d", r.Kind, r.Generation)
			return r, true
		}
		return r, false
	}
	v.add(ReasonBadSignature, "no root with the issuer's name and key identifier verifies the certificate")
	return nil, true
}

// profile checks key usage, key and policy against the JPKI profile.
func (val *Validator) profile(v *Verdict, cert *x509.Certificate, kind Kind) {
	want := x509.KeyUsageDigitalSignature
	policies := val.AuthPolicies
	if policies == nil {
		policies = []x509.OID{PolicyAuth}
	}
	if kind == KindSign {
		want |= x509.KeyUsageContentCommitment
		policies = val.SignPolicies
		if policies == nil {
			policies = []x509.OID{PolicySign}
		}
	}
	if cert.KeyUsage != want {
		v.add(ReasonWrongKeyUsage, "keyUsage %s, want %s", usageString(cert.KeyUsage), usageString(want))
	} else if !criticalKeyUsage(cert) {
		v.add(ReasonWrongKeyUsage, "keyUsage not critical")
	}
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || pub.N.BitLen() < 2048 {
		v.add(ReasonWeakKey, "%s key", cert.PublicKeyAlgorithm)
	}
	found := false
	for _, p := range cert.Policies {
		for _, w := range policies {
			found = found || p.Equal(w)
		}
	}
	if !found {
		v.add(ReasonWrongPolicy, "no %s class policy among %v", kind, cert.Policies)
	}
}

func criticalKeyUsage(c *x509.Certificate) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal([]int{2, 5, 29, 15}) {
			return e.Critical
		}
	}
	return false
}

func usageString(u x509.KeyUsage) string {
	names := []string{"digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly"}
	var out []byte
	for i, n := range names {
		if u&(1<<i) != 0 {
			if len(out) > 0 {
				out = append(out, '+')
			}
			out = append(out, n...)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return string(out)
}
