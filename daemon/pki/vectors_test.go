package pki

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"math/big"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"kazasu/daemon/revocation"
	"kazasu/drivers/sim/testpki"
)

// The test hierarchy (keys are generated once per test binary).
var th = testpki.New("kazasu-pki-vectors")

type crlMode int

const (
	crlFresh   crlMode = iota // a fresh CRL from the issuing generation, not listing the leaf
	crlRevoked                // a fresh CRL listing the leaf
	crlStale                  // a CRL past its nextUpdate
	crlNone                   // no CRL at all for the issuer
)

// opensslWant is what `openssl verify` should say: "ok", an X509_V_ERR
// number, "load" (cannot parse the certificate) or "" (not comparable:
// a JPKI rule openssl knows nothing of, or no certificate to give it).
type opensslWant string

// vector is one validation case with a fixed clock.
type vector struct {
	name       string
	leaf       func(t testing.TB) (der []byte, id *testpki.Identity)
	expect     Kind
	at         time.Time
	crl        crlMode
	production bool                                        // trust store without test mode
	clock      Clock                                       // overrides the fixed clock at `at`
	challenge  func(id *testpki.Identity, c []byte) []byte // signs the challenge; nil: no challenge check
	want       []Reason
	openssl    opensslWant
	// opensslDiffers documents a known, explained divergence: what
	// openssl says instead (the test checks it still does).
	opensslDiffers opensslWant
}

var (
	idCache  = map[string]*testpki.Identity{}
	idCacheM sync.Mutex
)

// issue returns (and caches) an identity.
func issue(t testing.TB, id string, o testpki.IssueOptions) *testpki.Identity {
	t.Helper()
	idCacheM.Lock()
	defer idCacheM.Unlock()
	if v, ok := idCache[id]; ok {
		return v
	}
	// One holder key pair for all vectors: key generation dominates the
	// test time otherwise, and no vector depends on distinct holder keys.
	if o.KeyLabel == "" {
		o.KeyLabel = "vector-holder"
	}
	v, err := th.Issue(testpki.SamplePerson(id), o)
	if err != nil {
		t.Fatal(err)
	}
	idCache[id] = v
	return v
}

func authOf(id string, o testpki.IssueOptions) func(testing.TB) ([]byte, *testpki.Identity) {
	return func(t testing.TB) ([]byte, *testpki.Identity) {
		i := issue(t, id, o)
		return i.AuthDER, i
	}
}

func signOf(id string, o testpki.IssueOptions) func(testing.TB) ([]byte, *testpki.Identity) {
	return func(t testing.TB) ([]byte, *testpki.Identity) {
		i := issue(t, id, o)
		return i.SignDER, i
	}
}

// during returns an instant one year after the generation's default issuance.
func during(gen int) time.Time { return testpki.DefaultIssuedAt(gen).AddDate(1, 0, 0) }

func signChallenge(key func(*testpki.Identity) *rsa.PrivateKey) func(*testpki.Identity, []byte) []byte {
	return func(id *testpki.Identity, c []byte) []byte {
		// What the card returns for 80 2A 00 80 with DigestInfo(SHA-256(c)).
		d := sha256.Sum256(c)
		sig, err := rsa.SignPKCS1v15(nil, key(id), crypto.SHA256, d[:])
		if err != nil {
			panic(err)
		}
		return sig
	}
}

var (
	authKey = func(i *testpki.Identity) *rsa.PrivateKey { return i.AuthKey }
	signKey = func(i *testpki.Identity) *rsa.PrivateKey { return i.SignKey }
)

func vectors() []vector {
	g3 := testpki.IssueOptions{Generation: 3}
	vs := []vector{}
	for gen := 1; gen <= 3; gen++ {
		o := testpki.IssueOptions{Generation: gen}
		vs = append(vs,
			vector{name: "valid auth gen" + itoa(gen), leaf: authOf("VALID-G"+itoa(gen), o), at: during(gen), want: nil, openssl: "ok"},
			vector{name: "valid sign gen" + itoa(gen), leaf: signOf("VALID-G"+itoa(gen), o), expect: KindSign, at: during(gen), want: nil, openssl: "ok"},
		)
	}
	vs = append(vs,
		vector{name: "valid auth without AKI (issuer found by signature)", leaf: authOf("NOAKI", testpki.IssueOptions{Generation: 2, OmitAKI: true}), at: during(2), openssl: "ok",
			// Without an AKI, OpenSSL takes the first same-name root valid
			// at -attime (generation 1 here) and does not try the other
			// generations' keys: "certificate signature failure". JPKI
			// generations share a DN, so we try every same-name key.
			opensslDiffers: "7"},
		vector{name: "valid auth with challenge", leaf: authOf("VALID-G3", g3), at: during(3), challenge: signChallenge(authKey), openssl: "ok"},
		vector{name: "expired", leaf: authOf("VALID-G3", g3), at: time.Date(2030, 2, 18, 0, 0, 0, 0, testpki.JST), want: []Reason{ReasonExpired}, openssl: "10"},
		vector{name: "expired root (gen 1 after 2025-10-19)", leaf: authOf("ROOTEXP", testpki.IssueOptions{Generation: 1, NotAfter: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}), at: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), want: []Reason{ReasonExpired}, openssl: "10"},
		vector{name: "not yet valid", leaf: authOf("VALID-G3", g3), at: testpki.DefaultIssuedAt(3).Add(-time.Hour), want: []Reason{ReasonNotYetValid}, openssl: "9"},
		vector{name: "not yet valid within clock uncertainty", leaf: authOf("VALID-G3", g3),
			clock: ClockFunc(func() ClockReading {
				return ClockReading{Time: testpki.DefaultIssuedAt(3).Add(30 * time.Second), Uncertainty: time.Minute, Synchronised: true}
			}), want: []Reason{ReasonNotYetValid}},
		vector{name: "wrong key usage", leaf: authOf("BADKU", testpki.IssueOptions{AuthKeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}), at: during(3), want: []Reason{ReasonWrongKeyUsage}, openssl: "ok"},
		vector{name: "wrong policy (sign class on an auth certificate)", leaf: authOf("BADPOL", testpki.IssueOptions{AuthPolicies: []asn1.ObjectIdentifier{testpki.OIDPolicySign}}), at: during(3), want: []Reason{ReasonWrongPolicy}, openssl: "ok"},
		vector{name: "no policy", leaf: authOf("NOPOL", testpki.IssueOptions{AuthPolicies: []asn1.ObjectIdentifier{}}), at: during(3), want: []Reason{ReasonWrongPolicy}, openssl: "ok"},
		vector{name: "unknown JPKI policy kept as data", leaf: authOf("EXTRAPOL", testpki.IssueOptions{AuthPolicies: []asn1.ObjectIdentifier{testpki.OIDPolicyAuth, {1, 2, 392, 200149, 8, 5, 1, 3, 99}}}), at: during(3), openssl: "ok"},
		vector{name: "signed by another generation's key", leaf: authOf("OTHERGEN", testpki.IssueOptions{Generation: 3, SignerGeneration: 2}), at: during(3), want: []Reason{ReasonBadSignature}, openssl: "7"},
		vector{name: "bad signature", leaf: func(t testing.TB) ([]byte, *testpki.Identity) {
			i := issue(t, "VALID-G3", g3)
			return testpki.CorruptSignature(i.AuthDER), i
		}, at: during(3), want: []Reason{ReasonBadSignature}, openssl: "7"},
		vector{name: "revoked", leaf: authOf("VALID-G3", g3), at: during(3), crl: crlRevoked, want: []Reason{ReasonRevoked}, openssl: "23"},
		vector{name: "stale CRL (fail closed)", leaf: authOf("VALID-G3", g3), at: during(3), crl: crlStale, want: []Reason{ReasonCRLStale}, openssl: "12"},
		vector{name: "no CRL for the issuer", leaf: authOf("VALID-G3", g3), at: during(3), crl: crlNone, want: []Reason{ReasonRevocationUnknown}, openssl: "3"},
		vector{name: "sign certificate where auth expected", leaf: signOf("VALID-G3", g3), expect: KindAuth, at: during(3), want: []Reason{ReasonWrongCertType}, openssl: "ok"},
		vector{name: "auth certificate where sign expected", leaf: authOf("VALID-G3", g3), expect: KindSign, at: during(3), want: []Reason{ReasonWrongCertType}, openssl: "ok"},
		vector{name: "CA certificate as end entity", leaf: func(t testing.TB) ([]byte, *testpki.Identity) {
			c, _ := th.Root(testpki.Auth, 3)
			return c.Raw, issue(t, "VALID-G3", g3)
		}, at: during(3), want: []Reason{ReasonWrongCertType}, openssl: "ok",
			// Both refuse, with different words: OpenSSL reports 18
			// (self-signed certificate) for a root given as the leaf.
			opensslDiffers: "18"},
		vector{name: "test root in production (root registered)", leaf: authOf("VALID-G3", g3), at: during(3), production: true, want: []Reason{ReasonTestRootInProduction}, openssl: "20"},
		vector{name: "unknown issuer (same DN, other keys)", leaf: func(t testing.TB) ([]byte, *testpki.Identity) {
			i, err := testpki.New("an unrelated hierarchy").Issue(testpki.SamplePerson("STRANGER"), g3)
			if err != nil {
				t.Fatal(err)
			}
			return i.AuthDER, i
		}, at: during(3), want: []Reason{ReasonUnknownIssuer}, openssl: "20"},
		vector{name: "bad challenge signature (signed with the sign key)", leaf: authOf("VALID-G3", g3), at: during(3), challenge: signChallenge(signKey), want: []Reason{ReasonBadChallengeSignature}, openssl: "ok"},
		vector{name: "missing challenge signature", leaf: authOf("VALID-G3", g3), at: during(3), challenge: func(*testpki.Identity, []byte) []byte { return nil }, want: []Reason{ReasonBadChallengeSignature}, openssl: "ok"},
		vector{name: "clock not synchronised", leaf: authOf("VALID-G3", g3), clock: ClockFunc(func() ClockReading { return ClockReading{Time: during(3)} }), want: []Reason{ReasonClockUnsynchronised}},
		vector{name: "clock uncertainty too large", leaf: authOf("VALID-G3", g3), clock: ClockFunc(func() ClockReading {
			return ClockReading{Time: during(3), Uncertainty: time.Hour, Synchronised: true}
		}), want: []Reason{ReasonClockUnsynchronised}},
		vector{name: "truncated DER", leaf: func(t testing.TB) ([]byte, *testpki.Identity) {
			i := issue(t, "VALID-G3", g3)
			return i.AuthDER[:len(i.AuthDER)/2], i
		}, at: during(3), want: []Reason{ReasonMalformed}, openssl: "load"},
		vector{name: "garbage DER", leaf: func(t testing.TB) ([]byte, *testpki.Identity) {
			return []byte{0x30, 0x82, 0x01, 0x00, 0xde, 0xad, 0xbe, 0xef}, issue(t, "VALID-G3", g3)
		}, at: during(3), want: []Reason{ReasonMalformed}, openssl: "load"},
		vector{name: "trailing data after the certificate", leaf: func(t testing.TB) ([]byte, *testpki.Identity) {
			i := issue(t, "VALID-G3", g3)
			return append(slices.Clone(i.AuthDER), 0), i
		}, at: during(3), want: []Reason{ReasonMalformed}, openssl: "load",
			// OpenSSL decodes the certificate and ignores the byte after
			// it; crypto/x509 (and so we) refuse trailing data.
			opensslDiffers: "ok"},
		vector{name: "empty input", leaf: func(t testing.TB) ([]byte, *testpki.Identity) { return nil, issue(t, "VALID-G3", g3) }, at: during(3), want: []Reason{ReasonMalformed}, openssl: "load"},
	)
	return vs
}

func itoa(i int) string { return string(rune('0' + i)) }

// testStore returns a trust store with the J-LIS roots and the test
// hierarchy's roots, in test mode unless production.
func testStore(t testing.TB, production bool) *TrustStore {
	t.Helper()
	s, err := NewTrustStore()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []testpki.Kind{testpki.Auth, testpki.Sign} {
		for g := 1; g <= testpki.Generations; g++ {
			c, _ := th.Root(k, g)
			if _, err := s.AddTestRoot(c, g); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !production {
		s.EnableTestMode()
	}
	return s
}

// issuingRoot finds the test root that names the leaf's issuer (by AKI, or
// by trying keys), for CRL generation.
func issuingRoot(t testing.TB, id *testpki.Identity, der []byte) (testpki.Kind, int) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		c = id.AuthCert
	}
	for _, k := range []testpki.Kind{testpki.Auth, testpki.Sign} {
		for g := 1; g <= testpki.Generations; g++ {
			r, _ := th.Root(k, g)
			if !bytes.Equal(r.RawSubject, c.RawIssuer) {
				continue
			}
			if len(c.AuthorityKeyId) > 0 && bytes.Equal(r.SubjectKeyId, c.AuthorityKeyId) || len(c.AuthorityKeyId) == 0 && c.CheckSignatureFrom(r) == nil {
				return k, g
			}
		}
	}
	return testpki.Auth, 3
}

// vectorCRL returns the DER CRL for the vector, or nil for crlNone.
func vectorCRL(t testing.TB, v vector, id *testpki.Identity, der []byte) []byte {
	if v.crl == crlNone {
		return nil
	}
	k, g := issuingRoot(t, id, der)
	at := v.at
	if at.IsZero() {
		at = during(3)
	}
	this, next := at.Add(-time.Hour), at.Add(23*time.Hour)
	if v.crl == crlStale {
		this, next = at.Add(-48*time.Hour), at.Add(-24*time.Hour)
	}
	var entries []testpki.Revoked
	// Always list an unrelated serial, so "fresh" is a non-empty CRL.
	entries = append(entries, testpki.Revoked{Serial: big.NewInt(0x7777), Time: this})
	if v.crl == crlRevoked {
		c, _ := x509.ParseCertificate(der)
		entries = append(entries, testpki.Revoked{Serial: c.SerialNumber, Time: this, Reason: testpki.ReasonAffiliationChg})
	}
	crl, err := th.CRL(k, g, entries, this, next, testpki.CRLOptions{Number: big.NewInt(1)})
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

// run validates one vector and returns the verdict.
func (v vector) run(t testing.TB) (*Verdict, []byte, []byte) {
	der, id := v.leaf(t)
	store := testStore(t, v.production)
	rs, err := revocation.Open(filepath.Join(t.TempDir(), "revocation.kzr"))
	if err != nil {
		t.Fatal(err)
	}
	crl := vectorCRL(t, v, id, der)
	if crl != nil {
		if _, err := rs.Import(bytes.NewReader(crl), store.Certificates()); err != nil {
			t.Fatalf("importing the vector's CRL: %v", err)
		}
	}
	clock := v.clock
	if clock == nil {
		clock = FixedClock(v.at)
	}
	val := &Validator{Roots: store, Clock: clock, Revocation: &revocation.Checker{Sets: rs}}
	req := Request{Cert: der, Expect: v.expect}
	if v.challenge != nil {
		req.Challenge = []byte("kazasu transaction 0001 nonce 5f1c2a")
		req.Signature = v.challenge(id, req.Challenge)
	}
	return val.Validate(context.Background(), req), der, crl
}

func TestVectors(t *testing.T) {
	for _, v := range vectors() {
		t.Run(v.name, func(t *testing.T) {
			verdict, _, _ := v.run(t)
			got := verdict.Reasons()
			if !slices.Equal(got, v.want) {
				t.Fatalf("reasons %v, want %v (findings: %v)", got, v.want, verdict.Findings)
			}
			if verdict.Valid != (len(v.want) == 0) {
				t.Fatalf("Valid = %v with reasons %v", verdict.Valid, got)
			}
			err := verdict.Err()
			for _, r := range v.want {
				var ve *ValidationError
				if !errors.As(err, &ve) || !ve.Has(r) || !errors.Is(err, ReasonError{r}) {
					t.Fatalf("Err() = %v does not carry %v by kind", err, r)
				}
			}
			if len(v.want) == 0 && err != nil {
				t.Fatalf("valid verdict with error %v", err)
			}
		})
	}
}
