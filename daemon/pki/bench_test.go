package pki

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"math/big"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"kazasu/daemon/revocation"
	"kazasu/drivers/sim/testpki"
)

// BenchmarkTransaction is the whole validation of one kiosk transaction:
// parse the card's certificate, build the chain among same-DN generations,
// time, type, usage, policy, revocation lookup in a 100k-entry set and the
// challenge signature. It reports CPU time per transaction (user+system,
// from getrusage), which the design bounds at 1 ms.
func BenchmarkTransaction(b *testing.B) {
	id := issue(b, "VALID-G3", testpki.IssueOptions{Generation: 3})
	store := testStore(b, false)
	rs, err := revocation.Open(filepath.Join(b.TempDir(), "r"))
	if err != nil {
		b.Fatal(err)
	}
	at := during(3)
	var entries []testpki.Revoked
	for i := range 100_000 {
		entries = append(entries, testpki.Revoked{Serial: big.NewInt(int64(i)*7 + 1<<40), Time: at.Add(-time.Hour)})
	}
	crl, err := th.CRL(testpki.Auth, 3, entries, at.Add(-time.Hour), at.Add(time.Hour), testpki.CRLOptions{Number: big.NewInt(1)})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := rs.Import(bytes.NewReader(crl), store.Certificates()); err != nil {
		b.Fatal(err)
	}
	val := &Validator{Roots: store, Clock: FixedClock(at), Revocation: &revocation.Checker{Sets: rs}}
	challenge := []byte("kazasu transaction nonce 0123456789abcdef")
	d := sha256.Sum256(challenge)
	sig, _ := rsa.SignPKCS1v15(nil, id.AuthKey, crypto.SHA256, d[:])
	req := Request{Cert: id.AuthDER, Challenge: challenge, Signature: sig}
	ctx := context.Background()
	if v := val.Validate(ctx, req); !v.Valid {
		b.Fatalf("setup: %v", v.Findings)
	}
	var r0, r1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	b.ResetTimer()
	for b.Loop() {
		if v := val.Validate(ctx, req); !v.Valid {
			b.Fatal(v.Findings)
		}
	}
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	cpu := time.Duration(r1.Utime.Nano()+r1.Stime.Nano()-r0.Utime.Nano()-r0.Stime.Nano()) * time.Nanosecond
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/tx")
}
