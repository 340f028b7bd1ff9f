package pki

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"kazasu/drivers/sim/testpki"
)

func TestEmbeddedRoots(t *testing.T) {
	s, err := NewTrustStore()
	if err != nil {
		t.Fatal(err)
	}
	if s.TestMode() {
		t.Fatal("a new trust store must be in production mode")
	}
	type kg struct {
		k Kind
		g int
	}
	got := map[kg]string{}
	for _, r := range s.Roots() {
		if r.Test || r.Source != "embedded" {
			t.Errorf("unexpected root %v", r)
		}
		got[kg{r.Kind, r.Generation}] = r.Fingerprint()
	}
	want := map[kg]string{
		{KindAuth, 1}: "4DCFC4CA0AAF9FB2A3081B3F0C991C320B3ACC008667A341EEAEC5AF1D58CA7D",
		{KindAuth, 3}: "64114F29620C24ED2631D46476A040E7EE740D956089C00B036A6A8118C322B5",
		{KindSign, 1}: "19645405A1FE14377434BD55957628AC4038557C542403A2243F21C706FC9355",
		{KindSign, 2}: "79679C33E4CC9319440F1AD120A597FF1844E2EF217063ADB176966FD5E6FBEB",
		{KindSign, 3}: "D227F6CDE11D35C5252178F106F843D24651944975413B539FA2FB68DBFA365F",
	}
	if len(got) != len(want) {
		t.Fatalf("roots %v", got)
	}
	for k, fp := range want {
		if got[k] != fp {
			t.Errorf("%v generation %d: %s, want %s", k.k, k.g, got[k], fp)
		}
	}
	var b bytes.Buffer
	s.Describe(&b)
	for _, line := range []string{"production mode", "auth generations trusted: 1, 3", "sign generations trusted: 1, 2, 3", "64114F29620C24ED"} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("Describe output lacks %q:\n%s", line, b.String())
		}
	}
}

func TestAddPinned(t *testing.T) {
	pemBytes, err := embeddedRoots.ReadFile("roots/auth-ca-gen3-2023.pem")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "authca03.pem")
	os.WriteFile(path, pemBytes, 0o644)
	const fp = "64:11:4F:29:62:0C:24:ED:26:31:D4:64:76:A0:40:E7:EE:74:0D:95:60:89:C0:0B:03:6A:6A:81:18:C3:22:B5"

	empty := &TrustStore{}
	r, err := empty.AddPinnedFile(path, fp, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != KindAuth || r.Generation != 3 || r.Test || !strings.HasPrefix(r.Source, "pinned:") {
		t.Fatalf("root %v", r)
	}
	if _, err := empty.AddPinnedFile(path, fp, 0); !errors.Is(err, ErrDuplicateRoot) {
		t.Fatalf("second add: %v", err)
	}
	wrong := strings.Repeat("00", 32)
	if _, err := (&TrustStore{}).AddPinnedFile(path, wrong, 0); !errors.Is(err, ErrFingerprintMismatch) {
		t.Fatalf("wrong pin: %v", err)
	}
	if _, err := (&TrustStore{}).AddPinnedFile(path, "12ab", 0); err == nil {
		t.Fatal("short fingerprint accepted")
	}
	// A test root cannot be pinned as production, nor an end entity.
	tc, _ := th.Root(testpki.Auth, 2)
	tfp := sha256.Sum256(tc.Raw)
	if _, err := (&TrustStore{}).AddPinned(tc.Raw, hex.EncodeToString(tfp[:]), 0, ""); !errors.Is(err, ErrNotJPKIRoot) {
		t.Fatalf("test root pinned as production: %v", err)
	}
	id := issue(t, "VALID-G3", testpki.IssueOptions{Generation: 3})
	efp := sha256.Sum256(id.AuthDER)
	if _, err := (&TrustStore{}).AddPinned(id.AuthDER, hex.EncodeToString(efp[:]), 0, ""); !errors.Is(err, ErrNotJPKIRoot) {
		t.Fatalf("end entity pinned as root: %v", err)
	}
}

// In production, a chain naming a JPKI-TEST issuer is refused with its own
// reason even when the test roots were never registered.
func TestTestIssuerUnregisteredInProduction(t *testing.T) {
	s, err := NewTrustStore()
	if err != nil {
		t.Fatal(err)
	}
	id := issue(t, "VALID-G3", testpki.IssueOptions{Generation: 3})
	v := (&Validator{Roots: s, Clock: FixedClock(during(3))}).Validate(context.Background(), Request{Cert: id.AuthDER})
	if !v.Has(ReasonTestRootInProduction) || len(v.Findings) != 1 {
		t.Fatalf("findings %v", v.Findings)
	}
}

func TestReasonCodes(t *testing.T) {
	code := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	seen := map[string]bool{}
	for r := ReasonMalformed; r < reasonEnd; r++ {
		s := r.String()
		if !code.MatchString(s) || seen[s] {
			t.Errorf("reason %d code %q not unique snake_case", int(r), s)
		}
		seen[s] = true
		if back, ok := ParseReason(s); !ok || back != r {
			t.Errorf("ParseReason(%q) = %v, %v", s, back, ok)
		}
		if e := (ReasonError{r}); e.Error() != "pki: "+s {
			t.Errorf("Error() = %q", e.Error())
		}
	}
	if Reason(0).String() != "Reason(0)" || reasonEnd.String() != "Reason(16)" {
		t.Error("out-of-range reasons")
	}
	if _, ok := ParseReason("nope"); ok {
		t.Error("ParseReason accepted an unknown code")
	}
	if KindAuth.String() != "auth" || KindSign.String() != "sign" || Kind(7).String() != "Kind(7)" {
		t.Error("Kind.String")
	}
}

// A validator wired without a clock or trust store fails closed.
func TestValidatorZeroValue(t *testing.T) {
	id := issue(t, "VALID-G3", testpki.IssueOptions{Generation: 3})
	if v := (&Validator{}).Validate(context.Background(), Request{Cert: id.AuthDER}); v.Valid || !v.Has(ReasonUnknownIssuer) {
		t.Fatalf("no trust store: %v", v.Findings)
	}
	v := (&Validator{Roots: testStore(t, false)}).Validate(context.Background(), Request{Cert: id.AuthDER})
	if v.Valid || !v.Has(ReasonClockUnsynchronised) {
		t.Fatalf("no clock: %v", v.Findings)
	}
}
