package main

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"kazasu/drivers/sim/testpki"
)

// certFixture is a directory with the built-in test hierarchy's roots
// (seed "kazasu", the --test-roots default), one identity and CRLs.
type certFixture struct {
	dir      string
	id       *testpki.Identity
	at       time.Time
	auth     string // auth certificate, PEM
	sign     string // sign certificate, DER
	crlGood  string // fresh CRL not listing the identity
	crlRevok string // fresh CRL listing the auth certificate (newer number)
	crlStale string
}

var (
	fixOnce sync.Once
	fix     certFixture
	fixErr  error
)

func fixture(t *testing.T) certFixture {
	t.Helper()
	fixOnce.Do(func() { fix, fixErr = makeFixture() })
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

func makeFixture() (certFixture, error) {
	dir, err := os.MkdirTemp("", "kazasu-cert-test-")
	if err != nil {
		return certFixture{}, err
	}
	h := testpki.New("kazasu")
	f := certFixture{dir: dir, at: testpki.DefaultIssuedAt(3).AddDate(1, 0, 0)}
	if err := h.WriteDir(filepath.Join(dir, "roots")); err != nil {
		return f, err
	}
	if f.id, err = h.Issue(testpki.SamplePerson("CLI0001"), testpki.IssueOptions{}); err != nil {
		return f, err
	}
	f.auth = filepath.Join(dir, "auth.pem")
	os.WriteFile(f.auth, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.id.AuthDER}), 0o644)
	f.sign = filepath.Join(dir, "sign.der")
	os.WriteFile(f.sign, f.id.SignDER, 0o644)
	mk := func(name string, n int64, entries []testpki.Revoked, this, next time.Time) (string, error) {
		der, err := h.CRL(testpki.Auth, 3, entries, this, next, testpki.CRLOptions{Number: big.NewInt(n)})
		if err != nil {
			return "", err
		}
		p := filepath.Join(dir, name)
		return p, os.WriteFile(p, der, 0o644)
	}
	other := testpki.Revoked{Serial: big.NewInt(0x1234), Time: f.at.Add(-2 * time.Hour)}
	if f.crlGood, err = mk("good.crl", 1, []testpki.Revoked{other}, f.at.Add(-time.Hour), f.at.Add(time.Hour)); err != nil {
		return f, err
	}
	if f.crlRevok, err = mk("revoked.crl", 2, []testpki.Revoked{other, {Serial: f.id.AuthCert.SerialNumber, Time: f.at.Add(-time.Hour)}}, f.at.Add(-time.Hour), f.at.Add(time.Hour)); err != nil {
		return f, err
	}
	if f.crlStale, err = mk("stale.crl", 3, []testpki.Revoked{other}, f.at.Add(-48*time.Hour), f.at.Add(-24*time.Hour)); err != nil {
		return f, err
	}
	return f, nil
}

func TestCertVerify(t *testing.T) {
	f := fixture(t)
	at := f.at.Format(time.RFC3339)
	roots := filepath.Join(f.dir, "roots")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"valid, test mode", []string{"cert", "verify", "--test-roots", "--at", at, f.auth}, 0, "verdict:     VALID"},
		{"valid, roots dir", []string{"cert", "verify", "--roots", roots, "--test-roots", "--at", at, "--crl", f.crlGood, f.auth}, 0, "revocation:  good"},
		{"production refuses the test root", []string{"cert", "verify", "--roots", roots, "--at", at, f.auth}, 1, "test_root_in_production"},
		{"revoked", []string{"cert", "verify", "--test-roots", "--at", at, "--crl", f.crlRevok, f.auth}, 1, "revoked: serial"},
		{"reason codes line", []string{"cert", "verify", "--test-roots", "--at", "2031-01-01T00:00:00Z", "--crl", f.crlRevok, f.auth}, 1, "reasons:     expired,revoked"},
		{"stale CRL fails closed", []string{"cert", "verify", "--test-roots", "--at", at, "--crl", f.crlStale, f.auth}, 1, "crl_stale"},
		{"expired", []string{"cert", "verify", "--test-roots", "--at", "2031-01-01T00:00:00Z", f.auth}, 1, "expired"},
		{"sign where auth expected", []string{"cert", "verify", "--test-roots", "--at", at, f.sign}, 1, "wrong_cert_type"},
		{"sign expected", []string{"cert", "verify", "--test-roots", "--type", "sign", "--at", at, f.sign}, 0, "VALID"},
		{"garbage", []string{"cert", "verify", "--test-roots", "--at", at, f.crlGood}, 1, "malformed"},
		{"bad --at", []string{"cert", "verify", "--at", "yesterday", f.auth}, 2, ""},
		{"no certificate", []string{"cert", "verify"}, 2, ""},
		{"bad type", []string{"cert", "verify", "--type", "x", f.auth}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := run(t, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Fatalf("code %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errs)
			}
		})
	}
}

func TestCertRoots(t *testing.T) {
	f := fixture(t)
	code, out, errs := run(t, "cert", "roots")
	if code != 0 || !strings.Contains(out, "production mode") || !strings.Contains(out, "auth generations trusted: 1, 3") {
		t.Fatalf("code %d\n%s%s", code, out, errs)
	}
	code, out, errs = run(t, "cert", "roots", "--roots", filepath.Join(f.dir, "roots"), "--test-roots")
	if code != 0 || !strings.Contains(out, "TEST (JPKI-TEST roots accepted) mode") || !strings.Contains(out, "auth TEST generations trusted: 1, 2, 3") {
		t.Fatalf("code %d\n%s%s", code, out, errs)
	}
	// A tampered SHA256SUMS is refused.
	bad := t.TempDir()
	for _, n := range []string{"auth-gen3.pem"} {
		b, _ := os.ReadFile(filepath.Join(f.dir, "roots", n))
		os.WriteFile(filepath.Join(bad, n), b, 0o644)
	}
	os.WriteFile(filepath.Join(bad, "SHA256SUMS"), []byte(strings.Repeat("ab", 32)+"  auth-gen3.pem\n"), 0o644)
	if code, _, errs := run(t, "cert", "roots", "--roots", bad); code != 1 || !strings.Contains(errs, "fingerprint mismatch") {
		t.Fatalf("tampered pin: code %d %s", code, errs)
	}
}

func TestCRLImportCheck(t *testing.T) {
	f := fixture(t)
	store := filepath.Join(t.TempDir(), "rev.kzr")
	at := f.at.Format(time.RFC3339)
	serial := fmt.Sprintf("%X", f.id.AuthCert.SerialNumber)
	if code, out, errs := run(t, "crl", "import", "--store", store, "--test-roots", f.crlGood); code != 0 || !strings.Contains(out, "imported complete CRL #1 from auth TEST generation 3") {
		t.Fatalf("import: %d\n%s%s", code, out, errs)
	}
	if code, out, errs := run(t, "crl", "check", "--store", store, "--at", at, serial); code != 0 || !strings.Contains(out, "not revoked") {
		t.Fatalf("check good: %d\n%s%s", code, out, errs)
	}
	if code, _, errs := run(t, "crl", "import", "--store", store, "--test-roots", f.crlGood); code != 1 || !strings.Contains(errs, "not newer") {
		t.Fatalf("replay: %d %s", code, errs)
	}
	if code, _, errs := run(t, "crl", "import", "--store", store, f.crlRevok); code != 1 || !strings.Contains(errs, "unknown CRL issuer") {
		t.Fatalf("production store accepted a test CRL: %d %s", code, errs)
	}
	pemCRL := filepath.Join(t.TempDir(), "revoked.pem")
	der, _ := os.ReadFile(f.crlRevok)
	os.WriteFile(pemCRL, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o644)
	if code, out, errs := run(t, "crl", "import", "--store", store, "--test-roots", pemCRL); code != 0 {
		t.Fatalf("import PEM: %d\n%s%s", code, out, errs)
	}
	if code, out, _ := run(t, "crl", "check", "--store", store, "--at", at, "0x"+serial); code != 1 || !strings.Contains(out, "REVOKED") {
		t.Fatalf("check revoked: %d\n%s", code, out)
	}
	if code, out, _ := run(t, "crl", "check", "--store", store, "--at", f.at.Add(48*time.Hour).Format(time.RFC3339), "01"); code != 3 || !strings.Contains(out, "STALE") {
		t.Fatalf("check stale: %d\n%s", code, out)
	}
	if code, _, _ := run(t, "crl", "check", "--store", store, "--issuer", "ffff", serial); code != 3 {
		t.Fatalf("unknown issuer: %d", code)
	}
	if code, _, _ := run(t, "crl", "check", "--store", store, "xyz"); code != 2 {
		t.Fatalf("bad serial: %d", code)
	}
}

func TestCRLBenchSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns five child processes")
	}
	code, out, errs := run(t, "crl", "bench", "--n", "3000", "--dir", t.TempDir())
	if code != 0 {
		t.Fatalf("code %d\n%s%s", code, out, errs)
	}
	for _, s := range []string{"baseline", "ingest", "lookup", "bytes/entry", "less CPU"} {
		if !strings.Contains(out, s) {
			t.Errorf("bench output lacks %q:\n%s", s, out)
		}
	}
	if !bytes.Contains([]byte(out), []byte("3000")) {
		t.Error("entry count missing")
	}
}
