package issuance

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"time"
)

// X509Validator is a self-contained [Validator] on crypto/x509: chain to
// Roots at Now, digitalSignature key usage, RSA key, and the PKCS#1 v1.5
// SHA-256 signature over the message. It does not check revocation; the
// terminal's daemon/pki validator (adapted by the integrator) does, and a
// production service must too.
type X509Validator struct {
	Roots *x509.CertPool
	Now   func() time.Time // time.Now if nil
}

var _ Validator = (*X509Validator)(nil)

// ValidateAuth implements Validator.
func (v *X509Validator) ValidateAuth(ctx context.Context, certDER, message, signature []byte) (Verdict, error) {
	if v.Roots == nil {
		return Verdict{}, errors.New("issuance: validator has no roots")
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return Verdict{Code: "malformed"}, nil
	}
	switch {
	case now.Before(cert.NotBefore):
		return Verdict{Code: "not_yet_valid"}, nil
	case now.After(cert.NotAfter):
		return Verdict{Code: "expired"}, nil
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: v.Roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return Verdict{Code: "untrusted"}, nil
	}
	if cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return Verdict{Code: "wrong_key_usage"}, nil
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return Verdict{Code: "unsupported_key"}, nil
	}
	h := sha256.Sum256(message)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], signature); err != nil {
		return Verdict{Code: "signature_invalid"}, nil
	}
	return Verdict{Valid: true}, nil
}
