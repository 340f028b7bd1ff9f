package pki_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"

	"kazasu/daemon/pki"
	"kazasu/drivers/sim/testpki"
)

func Example() {
	h := testpki.New("kazasu-pki-vectors")
	id, err := h.Issue(testpki.SamplePerson("EXAMPLE0001"), testpki.IssueOptions{Generation: 3, KeyLabel: "vector-holder"})
	if err != nil {
		panic(err)
	}
	store, err := pki.NewTrustStore() // embedded J-LIS roots
	if err != nil {
		panic(err)
	}
	for gen := 1; gen <= testpki.Generations; gen++ {
		c, _ := h.Root(testpki.Auth, gen)
		store.AddTestRoot(c, gen)
	}
	at := testpki.DefaultIssuedAt(3).AddDate(0, 1, 0)
	v := &pki.Validator{Roots: store, Clock: pki.FixedClock(at)}

	challenge := []byte("nonce from the issuance service")
	d := sha256.Sum256(challenge)
	sig, _ := rsa.SignPKCS1v15(nil, id.AuthKey, crypto.SHA256, d[:]) // the card's 80 2A 00 80 answer

	verdict := v.Validate(context.Background(), pki.Request{Cert: id.AuthDER, Challenge: challenge, Signature: sig})
	fmt.Println(verdict.Valid, verdict.Reasons())

	store.EnableTestMode()
	verdict = v.Validate(context.Background(), pki.Request{Cert: id.AuthDER, Challenge: challenge, Signature: sig})
	fmt.Println(verdict.Valid, verdict.Kind, verdict.Root.Generation)
	// Output:
	// false [test_root_in_production]
	// true auth 3
}
