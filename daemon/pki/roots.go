package pki

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"crypto/x509"
	"embed"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Kind is a JPKI certificate type, named after its CA.
type Kind int

const (
	KindAuth Kind = iota + 1 // 利用者証明用 (user authentication)
	KindSign                 // 署名用 (digital signature)
)

func (k Kind) String() string {
	switch k {
	case KindAuth:
		return "auth"
	case KindSign:
		return "sign"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Root is one trusted (or recognised) root CA.
type Root struct {
	Cert       *x509.Certificate
	Kind       Kind
	Generation int
	Test       bool     // a JPKI-TEST root: usable only in test mode
	SHA256     [32]byte // fingerprint of the DER certificate
	Source     string   // "embedded", "pinned:<file>", "test"
}

// Fingerprint returns the SHA-256 fingerprint as upper-case hex.
func (r *Root) Fingerprint() string { return strings.ToUpper(hex.EncodeToString(r.SHA256[:])) }

func (r *Root) String() string {
	t := ""
	if r.Test {
		t = " TEST"
	}
	return fmt.Sprintf("%s%s generation %d, %s → %s, SHA-256 %s (%s)", r.Kind, t, r.Generation,
		r.Cert.NotBefore.UTC().Format(time.RFC3339), r.Cert.NotAfter.UTC().Format(time.RFC3339), r.Fingerprint(), r.Source)
}

//go:embed roots/*.pem
var embeddedRoots embed.FS

// Published J-LIS root fingerprints (docs/jpki.md §7.1, roots README): the
// embedded files must match, and pinned additions are checked by the
// operator's own fingerprint.
var knownRoots = map[string]struct {
	kind Kind
	gen  int
}{
	"4DCFC4CA0AAF9FB2A3081B3F0C991C320B3ACC008667A341EEAEC5AF1D58CA7D": {KindAuth, 1},
	"64114F29620C24ED2631D46476A040E7EE740D956089C00B036A6A8118C322B5": {KindAuth, 3},
	"19645405A1FE14377434BD55957628AC4038557C542403A2243F21C706FC9355": {KindSign, 1},
	"79679C33E4CC9319440F1AD120A597FF1844E2EF217063ADB176966FD5E6FBEB": {KindSign, 2},
	"D227F6CDE11D35C5252178F106F843D24651944975413B539FA2FB68DBFA365F": {KindSign, 3},
}

// Errors of trust store management.
var (
	ErrFingerprintMismatch = errors.New("pki: root fingerprint mismatch")
	ErrNotJPKIRoot         = errors.New("pki: not a JPKI root CA certificate")
	ErrDuplicateRoot       = errors.New("pki: root already in the trust store")
)

// TrustStore holds the roots. It is safe for concurrent use; additions are
// start-up operations.
type TrustStore struct {
	mu       sync.RWMutex
	roots    []*Root
	testMode bool
}

// NewTrustStore returns a production trust store holding the embedded
// J-LIS roots.
func NewTrustStore() (*TrustStore, error) {
	s := &TrustStore{}
	ents, err := embeddedRoots.ReadDir("roots")
	if err != nil {
		return nil, fmt.Errorf("pki: embedded roots: %w", err)
	}
	for _, e := range ents {
		b, err := embeddedRoots.ReadFile("roots/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("pki: embedded roots: %w", err)
		}
		der, err := decodeOne(b)
		if err != nil {
			return nil, fmt.Errorf("pki: embedded root %s: %w", e.Name(), err)
		}
		fp := sha256.Sum256(der)
		if _, ok := knownRoots[strings.ToUpper(hex.EncodeToString(fp[:]))]; !ok {
			return nil, fmt.Errorf("pki: embedded root %s: %w: not a published J-LIS fingerprint", e.Name(), ErrFingerprintMismatch)
		}
		if _, err := s.add(der, "embedded", 0, false); err != nil {
			return nil, fmt.Errorf("pki: embedded root %s: %w", e.Name(), err)
		}
	}
	return s, nil
}

// EnableTestMode makes JPKI-TEST roots usable as trust anchors. It is an
// explicit, one-way switch for development and tests.
func (s *TrustStore) EnableTestMode() {
	s.mu.Lock()
	s.testMode = true
	s.mu.Unlock()
}

// TestMode reports whether test roots are usable.
func (s *TrustStore) TestMode() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.testMode
}

// AddPinned adds a production root (PEM or DER) after checking that its
// SHA-256 fingerprint equals sha256Hex (hex, colons and case ignored).
// gen 0 infers the generation from the published table or the validity
// start year (2015 → 1, 2019 → 2, 2023 → 3).
func (s *TrustStore) AddPinned(cert []byte, sha256Hex string, gen int, source string) (*Root, error) {
	der, err := decodeOne(cert)
	if err != nil {
		return nil, err
	}
	want, err := parseFingerprint(sha256Hex)
	if err != nil {
		return nil, err
	}
	got := sha256.Sum256(der)
	if got != want {
		return nil, fmt.Errorf("%w: file has %X, pinned %X", ErrFingerprintMismatch, got, want)
	}
	if source == "" {
		source = "pinned"
	}
	return s.add(der, source, gen, false)
}

// AddPinnedFile is AddPinned reading the certificate from path.
func (s *TrustStore) AddPinnedFile(path, sha256Hex string, gen int) (*Root, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return s.AddPinned(b, sha256Hex, gen, "pinned:"+path)
}

// AddTestRoot registers a JPKI-TEST root. It is accepted in any mode, so
// that a production store can recognise (and refuse, with
// ReasonTestRootInProduction) chains ending in it; it anchors chains only
// in test mode.
func (s *TrustStore) AddTestRoot(cert *x509.Certificate, gen int) (*Root, error) {
	return s.add(cert.Raw, "test", gen, true)
}

func (s *TrustStore) add(der []byte, source string, gen int, test bool) (*Root, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotJPKIRoot, err)
	}
	kind, isTest, err := classify(c)
	if err != nil {
		return nil, err
	}
	if isTest != test {
		if test {
			return nil, fmt.Errorf("%w: %s is not a JPKI-TEST root", ErrNotJPKIRoot, c.Subject)
		}
		return nil, fmt.Errorf("%w: %s is a test root; add it with AddTestRoot", ErrNotJPKIRoot, c.Subject)
	}
	if !bytes.Equal(c.RawSubject, c.RawIssuer) || c.CheckSignatureFrom(c) != nil {
		return nil, fmt.Errorf("%w: %s is not self-signed", ErrNotJPKIRoot, c.Subject)
	}
	if !c.IsCA || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%w: %s is not a CA with keyCertSign", ErrNotJPKIRoot, c.Subject)
	}
	r := &Root{Cert: c, Kind: kind, Test: test, SHA256: sha256.Sum256(der), Source: source}
	if gen == 0 {
		gen = inferGeneration(r)
	}
	if gen <= 0 {
		return nil, fmt.Errorf("%w: cannot infer the generation of %s (valid from %s); give it explicitly", ErrNotJPKIRoot, c.Subject, c.NotBefore.Format(time.DateOnly))
	}
	r.Generation = gen
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.roots {
		if o.SHA256 == r.SHA256 {
			return nil, fmt.Errorf("%w: %s", ErrDuplicateRoot, r.Fingerprint())
		}
	}
	s.roots = append(s.roots, r)
	slices.SortFunc(s.roots, func(a, b *Root) int {
		return cmp.Or(cmp.Compare(boolInt(a.Test), boolInt(b.Test)), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Generation, b.Generation))
	})
	return r, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// classify tells the CA type from the subject: O=JPKI (production) or
// O=JPKI-TEST (test), and an OU naming user authentication or digital
// signature.
func classify(c *x509.Certificate) (Kind, bool, error) {
	var test, prod bool
	for _, o := range c.Subject.Organization {
		test = test || o == "JPKI-TEST"
		prod = prod || o == "JPKI"
	}
	if test == prod {
		return 0, false, fmt.Errorf("%w: subject %s has neither O=JPKI nor O=JPKI-TEST", ErrNotJPKIRoot, c.Subject)
	}
	var kind Kind
	for _, ou := range c.Subject.OrganizationalUnit {
		switch {
		case strings.HasSuffix(ou, "for user authentication"):
			kind = KindAuth
		case strings.HasSuffix(ou, "for digital signature"):
			kind = KindSign
		}
	}
	if kind == 0 {
		return 0, false, fmt.Errorf("%w: subject %s names no JPKI CA type", ErrNotJPKIRoot, c.Subject)
	}
	return kind, test, nil
}

// isTestName reports whether a DER name is a JPKI-TEST name.
func isTestName(raw []byte) bool {
	return bytes.Contains(raw, []byte("JPKI-TEST"))
}

func inferGeneration(r *Root) int {
	if k, ok := knownRoots[r.Fingerprint()]; ok {
		return k.gen
	}
	switch r.Cert.NotBefore.In(time.FixedZone("JST", 9*3600)).Year() {
	case 2015:
		return 1
	case 2019:
		return 2
	case 2023:
		return 3
	}
	return 0
}

func parseFingerprint(s string) ([32]byte, error) {
	var fp [32]byte
	clean := strings.NewReplacer(":", "", " ", "").Replace(strings.TrimSpace(s))
	b, err := hex.DecodeString(clean)
	if err != nil || len(b) != 32 {
		return fp, fmt.Errorf("pki: fingerprint %q is not 64 hex digits", s)
	}
	copy(fp[:], b)
	return fp, nil
}

// decodeOne accepts one DER certificate or one PEM CERTIFICATE block.
func decodeOne(b []byte) ([]byte, error) {
	if blk, rest := pem.Decode(b); blk != nil {
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("pki: PEM block %q, want CERTIFICATE", blk.Type)
		}
		if len(bytes.TrimSpace(rest)) != 0 {
			return nil, errors.New("pki: more than one PEM block")
		}
		return blk.Bytes, nil
	}
	return b, nil
}

// Roots returns the roots, production first, by kind and generation.
func (s *TrustStore) Roots() []*Root {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.roots)
}

// Describe writes one line per root and the mode: what the daemon logs at
// start-up, and what `kazasu cert roots` prints.
func (s *TrustStore) Describe(w io.Writer) {
	mode := "production"
	if s.TestMode() {
		mode = "TEST (JPKI-TEST roots accepted)"
	}
	fmt.Fprintf(w, "trust store: %s mode\n", mode)
	for _, r := range s.Roots() {
		fmt.Fprintf(w, "  %s\n", r)
	}
	for _, test := range []bool{false, true} {
		if test && !s.TestMode() {
			break
		}
		for _, k := range []Kind{KindAuth, KindSign} {
			var gens []string
			for _, r := range s.Roots() {
				if r.Kind == k && r.Test == test {
					gens = append(gens, fmt.Sprint(r.Generation))
				}
			}
			label := k.String()
			if test {
				label += " TEST"
			}
			fmt.Fprintf(w, "  %s generations trusted: %s\n", label, strings.Join(gens, ", "))
		}
	}
}

// candidates returns roots with the given subject (DER).
func (s *TrustStore) candidates(rawIssuer []byte) []*Root {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*Root
	for _, r := range s.roots {
		if bytes.Equal(r.Cert.RawSubject, rawIssuer) {
			out = append(out, r)
		}
	}
	return out
}

// Certificates returns the root certificates (for CRL issuer candidates).
func (s *TrustStore) Certificates() []*x509.Certificate {
	var out []*x509.Certificate
	for _, r := range s.Roots() {
		out = append(out, r.Cert)
	}
	return out
}
