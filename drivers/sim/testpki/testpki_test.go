package testpki

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The hierarchy used by every test in this package (keys are cached per
// seed, so the cost of key generation is paid once per test binary).
var th = New("kazasu-testpki-unit")

func TestDRBGDeterministic(t *testing.T) {
	a, b := make([]byte, 100), make([]byte, 100)
	newDRBG("s", "l").Read(a)
	d := newDRBG("s", "l")
	d.Read(b[:7]) // reads split across blocks give the same stream
	d.Read(b[7:])
	if !bytes.Equal(a, b) {
		t.Fatal("DRBG stream depends on read sizes")
	}
	newDRBG("s", "m").Read(b)
	if bytes.Equal(a, b) {
		t.Fatal("different labels give the same stream")
	}
}

func TestGenerateKeyDeterministic(t *testing.T) {
	// Fresh generator state (no cache): the same stream gives the same key.
	k1, err := generateKey(newDRBG("det", "k"), 1024)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := generateKey(newDRBG("det", "k"), 1024)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Fatal("same seed, different keys")
	}
	if k1.N.BitLen() != 1024 || k1.E != 65537 {
		t.Fatalf("key size %d, e %d", k1.N.BitLen(), k1.E)
	}
	msg := sha256.Sum256([]byte("x"))
	sig, err := rsa.SignPKCS1v15(nil, k1, crypto.SHA256, msg[:])
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPKCS1v15(&k1.PublicKey, crypto.SHA256, msg[:], sig); err != nil {
		t.Fatal(err)
	}
}

func TestRootsProfile(t *testing.T) {
	for _, kind := range []Kind{Auth, Sign} {
		var keys []*rsa.PublicKey
		for gen := 1; gen <= Generations; gen++ {
			c, k := th.Root(kind, gen)
			if !bytes.Equal(c.RawSubject, c.RawIssuer) || !bytes.Equal(c.RawSubject, CAName(kind)) {
				t.Errorf("%s gen %d: subject/issuer not the fixed CA name", kind, gen)
			}
			if err := c.CheckSignatureFrom(c); err != nil {
				t.Errorf("%s gen %d: self-signature: %v", kind, gen, err)
			}
			if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != -1 || c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
				t.Errorf("%s gen %d: CA extensions wrong: ca=%v pathlen=%d ku=%v", kind, gen, c.IsCA, c.MaxPathLen, c.KeyUsage)
			}
			if len(c.SubjectKeyId) != 20 || len(c.AuthorityKeyId) != 0 {
				t.Errorf("%s gen %d: SKI %x AKI %x", kind, gen, c.SubjectKeyId, c.AuthorityKeyId)
			}
			if c.SignatureAlgorithm != x509.SHA256WithRSA || k.N.BitLen() != 2048 {
				t.Errorf("%s gen %d: alg %v bits %d", kind, gen, c.SignatureAlgorithm, k.N.BitLen())
			}
			if !strings.Contains(c.Subject.String(), "TEST") || strings.Contains(c.Subject.String(), "Japan Agency") {
				t.Errorf("%s gen %d: subject %q must say TEST and not copy J-LIS", kind, gen, c.Subject)
			}
			nb, na, _ := GenerationValidity(gen)
			if !c.NotBefore.Equal(nb) || !c.NotAfter.Equal(na) || na.UTC().Hour() != 14 || na.UTC().Minute() != 59 {
				t.Errorf("%s gen %d: validity %v → %v", kind, gen, c.NotBefore, c.NotAfter)
			}
			for _, o := range keys {
				if o.Equal(c.PublicKey) {
					t.Errorf("%s gen %d shares a key with an earlier generation", kind, gen)
				}
			}
			keys = append(keys, c.PublicKey.(*rsa.PublicKey))
		}
	}
	a, _ := th.Root(Auth, 3)
	s, _ := th.Root(Sign, 3)
	if a.PublicKey.(*rsa.PublicKey).Equal(s.PublicKey) || bytes.Equal(a.RawSubject, s.RawSubject) {
		t.Fatal("auth and sign CAs must differ in name and key")
	}
}

func TestSameSeedSameBytes(t *testing.T) {
	other := New(th.Seed()) // separate Hierarchy: certificates are rebuilt
	for _, kind := range []Kind{Auth, Sign} {
		c1, _ := th.Root(kind, 2)
		c2, _ := other.Root(kind, 2)
		if !bytes.Equal(c1.Raw, c2.Raw) {
			t.Fatalf("%s root differs between two hierarchies with one seed", kind)
		}
	}
	p := SamplePerson("DETERMINISM01")
	i1, err := th.Issue(p, IssueOptions{KeyLabel: "unit-holder"})
	if err != nil {
		t.Fatal(err)
	}
	i2, err := other.Issue(p, IssueOptions{KeyLabel: "unit-holder"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(i1.AuthDER, i2.AuthDER) || !bytes.Equal(i1.SignDER, i2.SignDER) {
		t.Fatal("end-entity certificates differ for one seed")
	}
	c3, _ := New("another seed").Root(Auth, 2)
	c1, _ := th.Root(Auth, 2)
	if bytes.Equal(c1.Raw, c3.Raw) {
		t.Fatal("different seeds give the same root")
	}
}

// TestKnownAnswer pins the output for one seed, so that a change of the
// derivation (which would silently change every simulated card) is seen.
func TestKnownAnswer(t *testing.T) {
	c, _ := New("kazasu").Root(Auth, 3)
	got := sha256.Sum256(c.Raw)
	const want = "65baabd2114f5f5d81f7ae8dc0ef4d28e0157ab5a216e1d2f0ad5f907f05b78a"
	if hex.EncodeToString(got[:]) != want {
		t.Fatalf("seed \"kazasu\" auth gen 3 root SHA-256 = %x, pinned %s", got, want)
	}
}

func TestIssueProfile(t *testing.T) {
	p := SamplePerson("997794E9AGCIEG13221003A")
	id, err := th.Issue(p, IssueOptions{Generation: 2, IssuedAt: time.Date(2021, 10, 27, 10, 0, 0, 0, JST), KeyLabel: "unit-holder"})
	if err != nil {
		t.Fatal(err)
	}
	a, s := id.AuthCert, id.SignCert
	if err := a.CheckSignatureFrom(id.AuthCA); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckSignatureFrom(id.SignCA); err != nil {
		t.Fatal(err)
	}
	if got := a.Subject.String(); got != "CN=997794E9AGCIEG13221003A,C=JP" {
		t.Errorf("auth subject %q", got)
	}
	if a.KeyUsage != x509.KeyUsageDigitalSignature || s.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment {
		t.Errorf("key usage auth %v sign %v", a.KeyUsage, s.KeyUsage)
	}
	if len(a.Policies) != 1 || a.Policies[0].String() != "1.2.392.200149.8.5.1.3.30" ||
		len(s.Policies) != 1 || s.Policies[0].String() != "1.2.392.200149.8.5.1.1.20" {
		t.Errorf("policies auth %v sign %v", a.Policies, s.Policies)
	}
	if !bytes.Equal(a.AuthorityKeyId, id.AuthCA.SubjectKeyId) {
		t.Error("auth AKI does not name the issuing generation")
	}
	// Validity: to 23:59:59 JST on the 5th birthday after issuance
	// (born 17 Feb; issued 27 Oct 2021 → 17 Feb 2026 is the 5th).
	want := time.Date(2026, 2, 17, 23, 59, 59, 0, JST)
	if !a.NotAfter.Equal(want) || !s.NotAfter.Equal(want) {
		t.Errorf("notAfter %v, want %v", a.NotAfter, want)
	}
	if a.PublicKey.(*rsa.PublicKey).N.BitLen() != 2048 || a.SignatureAlgorithm != x509.SHA256WithRSA {
		t.Error("auth key/alg off profile")
	}
	// Auth carries no personal data: no SAN at all.
	for _, e := range a.Extensions {
		if e.Id.Equal(oidSAN) {
			t.Error("auth certificate has a subjectAltName")
		}
	}
	var sawIAN bool
	for _, e := range a.Extensions {
		sawIAN = sawIAN || e.Id.Equal(oidIssuerAltName)
	}
	if !sawIAN {
		t.Error("auth certificate has no issuerAltName")
	}
	got := parseOtherNames(t, s)
	wantON := map[string]string{
		"1.2.392.200149.8.5.5.1": p.Name,
		"1.2.392.200149.8.5.5.2": "00000",
		"1.2.392.200149.8.5.5.3": "2",
		"1.2.392.200149.8.5.5.4": "319850217",
		"1.2.392.200149.8.5.5.5": p.Address,
		"1.2.392.200149.8.5.5.6": strings.Repeat("0", len([]rune(p.Address))),
	}
	for k, v := range wantON {
		if got[k] != v {
			t.Errorf("otherName %s = %q, want %q", k, got[k], v)
		}
	}
}

func parseOtherNames(t *testing.T, c *x509.Certificate) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, e := range c.Extensions {
		if !e.Id.Equal(oidSAN) {
			continue
		}
		in := cryptobyte.String(e.Value)
		var names cryptobyte.String
		if !in.ReadASN1(&names, cbasn1.SEQUENCE) || !in.Empty() {
			t.Fatal("SAN: bad GeneralNames")
		}
		for !names.Empty() {
			var on, val, utf cryptobyte.String
			var oid asn1.ObjectIdentifier
			if !names.ReadASN1(&on, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
				!on.ReadASN1ObjectIdentifier(&oid) ||
				!on.ReadASN1(&val, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
				!val.ReadASN1(&utf, cbasn1.UTF8String) || !val.Empty() || !on.Empty() {
				t.Fatal("SAN: bad otherName")
			}
			out[oid.String()] = string(utf)
		}
	}
	return out
}

func TestValidity(t *testing.T) {
	tests := []struct {
		issued, birth, want time.Time
	}{
		// MCARD test card: 2025-10-27 → 2030-02-17 for a 17 Feb birthday.
		{time.Date(2025, 10, 27, 9, 0, 0, 0, JST), time.Date(1980, 2, 17, 0, 0, 0, 0, JST), time.Date(2030, 2, 17, 23, 59, 59, 0, JST)},
		// Issued on the birthday itself: that day does not count.
		{time.Date(2025, 2, 17, 9, 0, 0, 0, JST), time.Date(1980, 2, 17, 0, 0, 0, 0, JST), time.Date(2030, 2, 17, 23, 59, 59, 0, JST)},
		// Issued the day before the birthday: it is the first.
		{time.Date(2025, 2, 16, 9, 0, 0, 0, JST), time.Date(1980, 2, 17, 0, 0, 0, 0, JST), time.Date(2029, 2, 17, 23, 59, 59, 0, JST)},
		// 29 February birthday in a common year.
		{time.Date(2025, 3, 1, 9, 0, 0, 0, JST), time.Date(2000, 2, 29, 0, 0, 0, 0, JST), time.Date(2030, 2, 28, 23, 59, 59, 0, JST)},
		// Issuance instant given in UTC that is already the next day in JST.
		{time.Date(2025, 2, 16, 16, 0, 0, 0, time.UTC), time.Date(1980, 2, 17, 0, 0, 0, 0, JST), time.Date(2030, 2, 17, 23, 59, 59, 0, JST)},
	}
	for _, tt := range tests {
		_, got := Validity(tt.issued, tt.birth)
		if !got.Equal(tt.want) {
			t.Errorf("Validity(%v, %v) = %v, want %v", tt.issued, tt.birth, got, tt.want)
		}
	}
}

func TestEraDate(t *testing.T) {
	for _, tt := range []struct {
		d    time.Time
		want string
	}{
		{time.Date(1912, 7, 29, 0, 0, 0, 0, JST), "119120729"},
		{time.Date(1912, 7, 30, 0, 0, 0, 0, JST), "219120730"},
		{time.Date(1926, 12, 25, 0, 0, 0, 0, JST), "319261225"},
		{time.Date(1989, 1, 7, 0, 0, 0, 0, JST), "319890107"},
		{time.Date(1989, 1, 8, 0, 0, 0, 0, JST), "419890108"},
		{time.Date(2019, 4, 30, 0, 0, 0, 0, JST), "420190430"},
		{time.Date(2019, 5, 1, 0, 0, 0, 0, JST), "520190501"},
		{time.Time{}, "000000000"},
	} {
		if got := EraDate(tt.d); got != tt.want {
			t.Errorf("EraDate(%v) = %s, want %s", tt.d, got, tt.want)
		}
	}
}

func TestFailureOptions(t *testing.T) {
	p := SamplePerson("FAILOPTS0001")
	other, err := th.Issue(p, IssueOptions{Generation: 3, SignerGeneration: 2, KeyLabel: "unit-holder"})
	if err != nil {
		t.Fatal(err)
	}
	g3, _ := th.Root(Auth, 3)
	g2, _ := th.Root(Auth, 2)
	if !bytes.Equal(other.AuthCert.AuthorityKeyId, g3.SubjectKeyId) {
		t.Error("AKI should still name generation 3")
	}
	if other.AuthCert.CheckSignatureFrom(g3) == nil || other.AuthCert.CheckSignatureFrom(g2) != nil {
		t.Error("signature should verify with generation 2's key only")
	}
	noAKI, err := th.Issue(p, IssueOptions{Generation: 2, OmitAKI: true, KeyLabel: "unit-holder"})
	if err != nil {
		t.Fatal(err)
	}
	if len(noAKI.AuthCert.AuthorityKeyId) != 0 {
		t.Error("OmitAKI left an AKI")
	}
	bad, err := x509.ParseCertificate(CorruptSignature(noAKI.AuthDER))
	if err != nil {
		t.Fatal(err)
	}
	if bad.CheckSignatureFrom(g2) == nil {
		t.Error("corrupted signature verifies")
	}
	np, err := th.Issue(p, IssueOptions{AuthPolicies: []asn1.ObjectIdentifier{}, KeyLabel: "unit-holder"})
	if err != nil {
		t.Fatal(err)
	}
	if len(np.AuthCert.Policies) != 0 {
		t.Error("empty AuthPolicies should remove the extension")
	}
}

func TestCRL(t *testing.T) {
	ca, _ := th.Root(Sign, 2)
	tu := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	entries := []Revoked{{Serial: big.NewInt(7), Time: tu.Add(-time.Hour), Reason: ReasonAffiliationChg}}
	der, err := th.CRL(Sign, 2, entries, tu, tu.Add(24*time.Hour), CRLOptions{Number: big.NewInt(5)})
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(ca); err != nil {
		t.Fatal(err)
	}
	if crl.Number.Int64() != 5 || len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].ReasonCode != ReasonAffiliationChg {
		t.Fatalf("CRL content: %+v", crl)
	}
	delta, err := th.CRL(Sign, 2, nil, tu, tu.Add(time.Hour), CRLOptions{Number: big.NewInt(6), DeltaBase: big.NewInt(5)})
	if err != nil {
		t.Fatal(err)
	}
	d, err := x509.ParseRevocationList(delta)
	if err != nil {
		t.Fatal(err)
	}
	var isDelta bool
	for _, e := range d.Extensions {
		isDelta = isDelta || (e.Id.Equal(oidDeltaCRL) && e.Critical)
	}
	if !isDelta {
		t.Error("delta CRL without a critical deltaCRLIndicator")
	}
	wrong, err := th.CRL(Sign, 2, nil, tu, tu.Add(time.Hour), CRLOptions{SignerGeneration: 3})
	if err != nil {
		t.Fatal(err)
	}
	w, err := x509.ParseRevocationList(wrong)
	if err != nil {
		t.Fatal(err)
	}
	if w.CheckSignatureFrom(ca) == nil {
		t.Error("CRL signed by generation 3 verifies with generation 2")
	}
}

func TestWriteLargeCRL(t *testing.T) {
	tu := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	serial := func(i int, buf []byte) ([]byte, time.Time) {
		v := uint64(i)*7919 + 1
		n := 0
		for x := v; x > 0; x >>= 8 {
			n++
		}
		b := buf[:n]
		for j := n - 1; j >= 0; j-- {
			b[j] = byte(v)
			v >>= 8
		}
		if b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b, tu.Add(-time.Duration(i) * time.Second)
	}
	var buf bytes.Buffer
	n, err := th.WriteLargeCRL(&buf, LargeCRL{Kind: Auth, Generation: 3, ThisUpdate: tu, NextUpdate: tu.Add(48 * time.Hour), Number: big.NewInt(42), Count: 5000, Entry: serial})
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("returned %d, wrote %d", n, buf.Len())
	}
	crl, err := x509.ParseRevocationList(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := th.Root(Auth, 3)
	if err := crl.CheckSignatureFrom(ca); err != nil {
		t.Fatal(err)
	}
	if len(crl.RevokedCertificateEntries) != 5000 || crl.Number.Int64() != 42 || !bytes.Equal(crl.AuthorityKeyId, ca.SubjectKeyId) {
		t.Fatalf("entries %d number %v", len(crl.RevokedCertificateEntries), crl.Number)
	}
	for i, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Uint64() != uint64(i)*7919+1 || !e.RevocationTime.Equal(tu.Add(-time.Duration(i)*time.Second)) {
			t.Fatalf("entry %d: %v %v", i, e.SerialNumber, e.RevocationTime)
		}
	}
}

func TestWriteDir(t *testing.T) {
	dir := t.TempDir()
	if err := th.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(sums)), "\n")
	if len(lines) != 2*Generations {
		t.Fatalf("SHA256SUMS has %d lines", len(lines))
	}
	for _, l := range lines {
		hexsum, name, _ := strings.Cut(l, "  ")
		der, err := os.ReadFile(filepath.Join(dir, strings.TrimSuffix(name, ".pem")+".der"))
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(der)
		if hex.EncodeToString(s[:]) != hexsum {
			t.Errorf("%s: checksum mismatch", name)
		}
	}
	id, err := th.Issue(SamplePerson("WRITEDIR0001"), IssueOptions{KeyLabel: "unit-holder"})
	if err != nil {
		t.Fatal(err)
	}
	if err := id.WriteDir(filepath.Join(dir, "id")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "id", "auth-key.pem")); err != nil {
		t.Fatal(err)
	}
}

func TestKindString(t *testing.T) {
	if Auth.String() != "auth" || Sign.String() != "sign" || Kind(9).String() != "Kind(9)" {
		t.Fatal("Kind.String")
	}
}

func TestBenchCRL(t *testing.T) {
	dir := t.TempDir()
	p, err := th.BenchCRL(dir, 1000)
	if err != nil {
		t.Fatal(err)
	}
	der, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 20)
	long := 0
	for i, e := range crl.RevokedCertificateEntries {
		want := new(big.Int).SetBytes(BenchSerial(i, buf))
		if e.SerialNumber.Cmp(want) != 0 {
			t.Fatalf("entry %d: %v, want %v", i, e.SerialNumber, want)
		}
		if len(e.SerialNumber.Bytes()) == 20 {
			long++
		}
	}
	if long != 10 {
		t.Fatalf("%d long serials in 1000, want 10", long)
	}
	if p2, err := th.BenchCRL(dir, 1000); err != nil || p2 != p {
		t.Fatalf("cached path %q %v", p2, err)
	}
}
