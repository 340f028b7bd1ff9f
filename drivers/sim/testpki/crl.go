package testpki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"time"
)

// Revoked is one revokedCertificates entry.
type Revoked struct {
	Serial *big.Int
	Time   time.Time
	Reason int // CRLReason (RFC 5280 §5.3.1); 0 (unspecified) is omitted
}

// CRL reason codes used by JPKI tests (RFC 5280 §5.3.1).
const (
	ReasonUnspecified     = 0
	ReasonKeyCompromise   = 1
	ReasonAffiliationChg  = 3
	ReasonSuperseded      = 4
	ReasonCessation       = 5
	ReasonCertificateHold = 6
	ReasonRemoveFromCRL   = 8
)

// CRLOptions adjust a CRL.
type CRLOptions struct {
	Number *big.Int // cRLNumber; nil means 1
	// DeltaBase, if set, makes this a delta CRL (RFC 5280 §5.2.4) over the
	// complete CRL with that number: a critical deltaCRLIndicator is added.
	DeltaBase *big.Int
	// SignerGeneration, if set, signs with that generation's key while the
	// issuer name and AKI stay those of the named generation.
	SignerGeneration int
}

// CRL returns a DER CRL issued by the kind's root of generation gen.
func (h *Hierarchy) CRL(kind Kind, gen int, entries []Revoked, thisUpdate, nextUpdate time.Time, o CRLOptions) ([]byte, error) {
	ca, _, err := h.RootE(kind, gen)
	if err != nil {
		return nil, err
	}
	signer := gen
	if o.SignerGeneration != 0 {
		signer = o.SignerGeneration
	}
	_, key, err := h.RootE(kind, signer)
	if err != nil {
		return nil, err
	}
	num := o.Number
	if num == nil {
		num = big.NewInt(1)
	}
	tmpl := &x509.RevocationList{
		SignatureAlgorithm: x509.SHA256WithRSA,
		Number:             num,
		ThisUpdate:         thisUpdate,
		NextUpdate:         nextUpdate,
	}
	for _, e := range entries {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber:   e.Serial,
			RevocationTime: e.Time,
			ReasonCode:     e.Reason,
		})
	}
	if o.DeltaBase != nil {
		v, err := asn1.Marshal(o.DeltaBase)
		if err != nil {
			return nil, fmt.Errorf("testpki: delta CRL base number: %w", err)
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidDeltaCRL, Critical: true, Value: v})
	}
	issuer := *ca
	issuer.PublicKey = &key.PublicKey
	der, err := x509.CreateRevocationList(nil, tmpl, &issuer, key)
	if err != nil {
		return nil, fmt.Errorf("testpki: creating %s generation %d CRL: %w", kind, gen, err)
	}
	return der, nil
}

// CorruptSignature returns a copy of a DER certificate or CRL whose last
// signature byte is flipped: it still parses, and the signature fails.
func CorruptSignature(der []byte) []byte {
	out := append([]byte(nil), der...)
	if len(out) > 0 {
		out[len(out)-1] ^= 0x5a
	}
	return out
}
