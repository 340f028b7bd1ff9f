package pki

import (
	"context"
	"testing"
	"time"
)

// FuzzValidate feeds arbitrary bytes as the card's certificate (and as the
// challenge signature): Validate must never panic, and only a certificate
// that parses can be valid.
func FuzzValidate(f *testing.F) {
	for _, v := range vectors() {
		der, _ := v.leaf(f)
		f.Add(der, []byte{})
	}
	store := testStore(f, false)
	val := &Validator{Roots: store, Clock: FixedClock(time.Date(2026, 10, 27, 0, 0, 0, 0, time.UTC))}
	f.Fuzz(func(t *testing.T, der, sig []byte) {
		v := val.Validate(context.Background(), Request{Cert: der, Challenge: []byte("c"), Signature: sig})
		if v.Valid {
			t.Fatal("a certificate validated with a fuzzed challenge signature")
		}
		if v.Cert == nil && !v.Has(ReasonMalformed) {
			t.Fatalf("unparsed certificate without malformed: %v", v.Findings)
		}
	})
}
