package revocation_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"kazasu/daemon/revocation"
	"kazasu/drivers/sim/testpki"
)

func Example() {
	h := testpki.New("kazasu-revocation-test")
	id, err := h.Issue(testpki.SamplePerson("EXAMPLE0001"), testpki.IssueOptions{})
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	crl, err := h.CRL(testpki.Auth, 3, []testpki.Revoked{{Serial: id.AuthCert.SerialNumber, Time: now.Add(-time.Hour)}},
		now.Add(-time.Hour), now.Add(24*time.Hour), testpki.CRLOptions{Number: big.NewInt(1)})
	if err != nil {
		panic(err)
	}
	dir, _ := os.MkdirTemp("", "revocation-example-")
	defer os.RemoveAll(dir)

	store, err := revocation.Open(filepath.Join(dir, "revocation.kzr"))
	if err != nil {
		panic(err)
	}
	// The CRL's issuer is found among the candidates by name and key.
	var roots []*x509.Certificate
	for gen := 1; gen <= testpki.Generations; gen++ {
		c, _ := h.Root(testpki.Auth, gen)
		roots = append(roots, c)
	}
	info, err := store.Import(bytes.NewReader(crl), roots)
	if err != nil {
		panic(err)
	}
	fmt.Println("CRL", info.Number, "entries", info.Entries)

	checker := &revocation.Checker{Sets: store} // fail-closed when stale
	res, err := checker.Check(context.Background(), id.AuthCert, id.AuthCA, now)
	fmt.Println(res.Status, res.Source, err)
	_, err = checker.Check(context.Background(), id.SignCert, id.SignCA, now)
	fmt.Println(err != nil)
	// Output:
	// CRL 1 entries 1
	// revoked crl <nil>
	// true
}
