package testpki

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// JST is Japan Standard Time (UTC+9, no daylight saving).
var JST = time.FixedZone("JST", 9*60*60)

// Generations is the number of root generations per CA type.
const Generations = 3

// generation describes one root generation (modelled on J-LIS's).
type generation struct {
	notBefore, notAfter time.Time
	serial              int64
}

var generations = [Generations + 1]generation{
	1: {time.Date(2015, 10, 20, 12, 8, 13, 0, JST), time.Date(2025, 10, 19, 23, 59, 59, 0, JST), 0x01},
	2: {time.Date(2019, 9, 15, 8, 41, 56, 0, JST), time.Date(2029, 9, 14, 23, 59, 59, 0, JST), 0x0132C4AB},
	3: {time.Date(2023, 7, 16, 10, 1, 4, 0, JST), time.Date(2033, 7, 15, 23, 59, 59, 0, JST), 0x06D18006},
}

// GenerationValidity returns the validity period of root generation gen
// (1…3) of the test hierarchy, identical for both kinds.
func GenerationValidity(gen int) (notBefore, notAfter time.Time, ok bool) {
	if gen < 1 || gen > Generations {
		return time.Time{}, time.Time{}, false
	}
	g := generations[gen]
	return g.notBefore, g.notAfter, true
}

// Hierarchy is one deterministic test PKI. It is safe for concurrent use;
// keys and certificates are created lazily and cached.
type Hierarchy struct {
	seed string

	mu    sync.Mutex
	roots map[rootID]*rootCA
}

type rootID struct {
	kind Kind
	gen  int
}

type rootCA struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
}

// New returns the hierarchy for seed. The same seed always yields
// byte-identical certificates and keys.
func New(seed string) *Hierarchy {
	return &Hierarchy{seed: seed, roots: map[rootID]*rootCA{}}
}

// Seed returns the hierarchy's seed.
func (h *Hierarchy) Seed() string { return h.seed }

// Key returns the deterministic RSA-2048 key of the hierarchy for label.
// Labels starting with "root/" and "person/" are used by the hierarchy
// itself; any other label gives an independent key for callers.
func (h *Hierarchy) Key(label string) (*rsa.PrivateKey, error) {
	return deriveKey(h.seed, label)
}

// Root returns the self-signed root of the kind and generation (1…3). It
// panics on an invalid kind or generation, or if key derivation fails (which
// only happens on an internal error): it is a test helper with constant
// arguments. RootE is the error-returning form.
func (h *Hierarchy) Root(kind Kind, gen int) (*x509.Certificate, *rsa.PrivateKey) {
	c, k, err := h.RootE(kind, gen)
	if err != nil {
		panic(err)
	}
	return c, k
}

// RootE is Root returning an error instead of panicking.
func (h *Hierarchy) RootE(kind Kind, gen int) (*x509.Certificate, *rsa.PrivateKey, error) {
	if kind != Auth && kind != Sign {
		return nil, nil, fmt.Errorf("testpki: invalid CA kind %v", kind)
	}
	if gen < 1 || gen > Generations {
		return nil, nil, fmt.Errorf("testpki: invalid generation %d (want 1…%d)", gen, Generations)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	id := rootID{kind, gen}
	if r, ok := h.roots[id]; ok {
		return r.cert, r.key, nil
	}
	key, err := h.Key(fmt.Sprintf("root/%s/%d", kind, gen))
	if err != nil {
		return nil, nil, err
	}
	ski, err := subjectKeyID(&key.PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("testpki: root key id: %w", err)
	}
	g := generations[gen]
	name := CAName(kind)
	serial := g.serial
	if kind == Sign {
		serial += 0x1000 // distinct serials per kind, as in production
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		RawSubject:            name,
		NotBefore:             g.notBefore,
		NotAfter:              g.notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            -1,
		SubjectKeyId:          ski,
		SignatureAlgorithm:    x509.SHA256WithRSA,
		ExtraExtensions: []pkix.Extension{
			{Id: oidSAN, Value: altDirName()},
			{Id: oidCRLDP, Value: crlDPDirName(name)},
		},
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("testpki: creating %s root generation %d: %w", kind, gen, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("testpki: parsing %s root generation %d: %w", kind, gen, err)
	}
	h.roots[id] = &rootCA{cert: cert, key: key}
	return cert, key, nil
}

// Person is the holder of a test card. Only ID appears in the auth
// certificate; the sign certificate carries the rest as otherNames.
type Person struct {
	ID           string    // opaque identifier: the auth certificate's CN, and the key label
	Name         string    // 氏名 (family and given name separated by U+3000)
	Address      string    // 住所
	BirthDate    time.Time // date of birth (the calendar date in JST is used)
	Gender       string    // one digit: "1" male, "2" female, "9" not applicable
	Municipality string    // romaji, the sign certificate's L= (e.g. "Kiyose-shi")
}

// SamplePerson returns a fixed synthetic holder for tests.
func SamplePerson(id string) Person {
	return Person{
		ID:           id,
		Name:         "試験\u3000花子",
		Address:      "東京都千代田区霞が関２丁目１番２号",
		BirthDate:    time.Date(1985, 2, 17, 0, 0, 0, 0, JST),
		Gender:       "2",
		Municipality: "Chiyoda-ku",
	}
}

// IssueOptions adjust issuance. The zero value issues a profile-conforming
// pair from generation 3 at DefaultIssuedAt(3).
type IssueOptions struct {
	Generation int       // root generation that issues (1…3); 0 means 3
	IssuedAt   time.Time // issuance instant; zero means DefaultIssuedAt(Generation)
	CardExpiry time.Time // if set, caps notAfter (card / residence expiry)

	// Overrides for failure vectors; zero values keep the profile.
	NotBefore, NotAfter time.Time
	AuthPolicies        []asn1.ObjectIdentifier // nil: OIDPolicyAuth; empty non-nil: no certificatePolicies
	SignPolicies        []asn1.ObjectIdentifier // nil: OIDPolicySign; empty non-nil: no certificatePolicies
	AuthKeyUsage        x509.KeyUsage           // 0: digitalSignature
	SignKeyUsage        x509.KeyUsage           // 0: digitalSignature|contentCommitment

	// SignerGeneration, if set and different from Generation, signs the
	// certificates with that generation's key while the AKI still names
	// Generation's key (the "signed by another generation's key" vector).
	SignerGeneration int
	// OmitAKI leaves the authorityKeyIdentifier out, so a chain builder has
	// to find the issuer by trying signatures.
	OmitAKI bool
	// KeyLabel selects the holder key (default: the person's ID); two
	// issuances with one label share a key, as a renewal on one card would.
	KeyLabel string
	// Serial overrides the auth certificate's serial (sign gets Serial+1).
	Serial *big.Int
}

// DefaultIssuedAt is the issuance instant used when IssueOptions.IssuedAt
// is zero: 10:00 JST on a fixed date inside the generation's lifetime.
func DefaultIssuedAt(gen int) time.Time {
	switch gen {
	case 1:
		return time.Date(2020, 4, 1, 10, 0, 0, 0, JST)
	case 2:
		return time.Date(2021, 4, 1, 10, 0, 0, 0, JST)
	default:
		return time.Date(2025, 10, 27, 10, 0, 0, 0, JST)
	}
}

// Identity is what one card holds: two certificates with their keys, and
// the CA certificates (the card's EF 000B / 0002).
type Identity struct {
	Person Person

	AuthCert, SignCert *x509.Certificate
	AuthKey, SignKey   *rsa.PrivateKey
	AuthCA, SignCA     *x509.Certificate // issuing roots (by name and AKI)

	AuthDER, SignDER     []byte
	AuthCADER, SignCADER []byte
}

// Issue creates the auth and sign certificates for p.
func (h *Hierarchy) Issue(p Person, o IssueOptions) (*Identity, error) {
	if p.ID == "" {
		return nil, errors.New("testpki: person has no ID")
	}
	gen := o.Generation
	if gen == 0 {
		gen = 3
	}
	if gen < 1 || gen > Generations {
		return nil, fmt.Errorf("testpki: invalid generation %d", gen)
	}
	signer := o.SignerGeneration
	if signer == 0 {
		signer = gen
	}
	if signer < 1 || signer > Generations {
		return nil, fmt.Errorf("testpki: invalid signer generation %d", signer)
	}
	issuedAt := o.IssuedAt
	if issuedAt.IsZero() {
		issuedAt = DefaultIssuedAt(gen)
	}
	label := o.KeyLabel
	if label == "" {
		label = p.ID
	}
	id := &Identity{Person: p}
	for _, kind := range []Kind{Auth, Sign} {
		ca, _, err := h.RootE(kind, gen)
		if err != nil {
			return nil, err
		}
		_, signKey, err := h.RootE(kind, signer)
		if err != nil {
			return nil, err
		}
		key, err := h.Key("person/" + label + "/" + kind.String())
		if err != nil {
			return nil, err
		}
		der, err := h.issueOne(kind, p, o, gen, issuedAt, ca, signKey, key)
		if err != nil {
			return nil, err
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("testpki: parsing issued %s certificate: %w", kind, err)
		}
		if kind == Auth {
			id.AuthCert, id.AuthKey, id.AuthDER, id.AuthCA, id.AuthCADER = cert, key, der, ca, ca.Raw
		} else {
			id.SignCert, id.SignKey, id.SignDER, id.SignCA, id.SignCADER = cert, key, der, ca, ca.Raw
		}
	}
	return id, nil
}

// Validity returns the profile validity for a certificate issued at
// issuedAt to someone born on birth: from issuance to 23:59:59 JST on the
// 5th birthday after the issuance date. A 29 February birthday falls on
// 28 February in common years.
func Validity(issuedAt, birth time.Time) (notBefore, notAfter time.Time) {
	i := issuedAt.In(JST)
	b := birth.In(JST)
	bday := func(y int) time.Time {
		d := b.Day()
		if b.Month() == time.February && d == 29 && !isLeap(y) {
			d = 28
		}
		return time.Date(y, b.Month(), d, 23, 59, 59, 0, JST)
	}
	first := i.Year()
	if !bday(first).After(time.Date(i.Year(), i.Month(), i.Day(), 23, 59, 59, 0, JST)) {
		first++
	}
	return issuedAt, bday(first + 4)
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// serialFor derives a positive 64-bit serial from the hierarchy seed and
// the certificate's identity, so serials are stable and distinct.
func (h *Hierarchy) serialFor(parts ...string) *big.Int {
	s := sha256.Sum256([]byte("kazasu/testpki/serial\x00" + h.seed + "\x00" + strings.Join(parts, "\x00")))
	s[0] &= 0x7f
	s[0] |= 0x01 // 8 significant bytes, positive
	return new(big.Int).SetBytes(s[:8])
}

func (h *Hierarchy) issueOne(kind Kind, p Person, o IssueOptions, gen int, issuedAt time.Time, ca *x509.Certificate, signKey, key *rsa.PrivateKey) ([]byte, error) {
	nb, na := Validity(issuedAt, p.BirthDate)
	if !o.CardExpiry.IsZero() && o.CardExpiry.Before(na) {
		na = o.CardExpiry
	}
	if ca.NotAfter.Before(na) {
		na = ca.NotAfter
	}
	if !o.NotBefore.IsZero() {
		nb = o.NotBefore
	}
	if !o.NotAfter.IsZero() {
		na = o.NotAfter
	}
	var serial *big.Int
	if o.Serial != nil {
		serial = new(big.Int).Set(o.Serial)
		if kind == Sign {
			serial.Add(serial, bigOne)
		}
	} else {
		serial = h.serialFor(kind.String(), p.ID, fmt.Sprint(gen), issuedAt.UTC().Format(time.RFC3339), fmt.Sprint(o.SignerGeneration), fmt.Sprint(o.OmitAKI))
	}
	ski, err := subjectKeyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:       serial,
		NotBefore:          nb,
		NotAfter:           na,
		SubjectKeyId:       ski,
		SignatureAlgorithm: x509.SHA256WithRSA,
		ExtraExtensions:    []pkix.Extension{{Id: oidIssuerAltName, Value: altDirName()}},
	}
	var policies []asn1.ObjectIdentifier
	switch kind {
	case Auth:
		tmpl.RawSubject = rawName(attr{oidCountry, "JP"}, attr{oidCN, p.ID})
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		if o.AuthKeyUsage != 0 {
			tmpl.KeyUsage = o.AuthKeyUsage
		}
		policies = []asn1.ObjectIdentifier{OIDPolicyAuth}
		if o.AuthPolicies != nil {
			policies = o.AuthPolicies
		}
	case Sign:
		tmpl.RawSubject = rawName(attr{oidCountry, "JP"}, attr{oidLocality, orDefault(p.Municipality, "Unknown")}, attr{oidCN, p.ID + "S"})
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment
		if o.SignKeyUsage != 0 {
			tmpl.KeyUsage = o.SignKeyUsage
		}
		policies = []asn1.ObjectIdentifier{OIDPolicySign}
		if o.SignPolicies != nil {
			policies = o.SignPolicies
		}
		san, err := otherNameSAN(personalOtherNames(p))
		if err != nil {
			return nil, fmt.Errorf("testpki: encoding subjectAltName: %w", err)
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidSAN, Value: san})
	}
	for _, pol := range policies {
		tmpl.Policies = append(tmpl.Policies, mustOID(pol))
	}
	parent := *ca // shallow copy: only the AKI source and verification key change
	parent.PublicKey = &signKey.PublicKey
	if o.OmitAKI {
		parent.SubjectKeyId = nil
	}
	der, err := x509.CreateCertificate(nil, tmpl, &parent, &key.PublicKey, signKey)
	if err != nil {
		return nil, fmt.Errorf("testpki: creating %s certificate: %w", kind, err)
	}
	return der, nil
}

func mustOID(o asn1.ObjectIdentifier) x509.OID {
	ints := make([]uint64, len(o))
	for i, v := range o {
		ints[i] = uint64(v)
	}
	oid, err := x509.OIDFromInts(ints)
	if err != nil {
		panic("testpki: policy OID " + o.String() + ": " + err.Error())
	}
	return oid
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// personalOtherNames lists the sign certificate's otherNames in profile
// order (.5.5.1 … .5.5.6). The substitute-position strings hold one "0" per
// character (no character was substituted).
func personalOtherNames(p Person) []otherName {
	return []otherName{
		{OIDName, p.Name},
		{OIDNameSubst, strings.Repeat("0", utf8.RuneCountInString(p.Name))},
		{OIDGender, orDefault(p.Gender, "9")},
		{OIDDateOfBirth, EraDate(p.BirthDate)},
		{OIDAddress, p.Address},
		{OIDAddressSubst, strings.Repeat("0", utf8.RuneCountInString(p.Address))},
	}
}

// EraDate formats a date of birth as the profile's "EYYYYMMDD": E is the
// era (1 Meiji, 2 Taisho, 3 Showa, 4 Heisei, 5 Reiwa, 0 unknown) and the
// eight digits are the Gregorian date.
func EraDate(t time.Time) string {
	if t.IsZero() {
		return "000000000"
	}
	d := t.In(JST)
	day := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, JST)
	era := 0
	switch {
	case !day.Before(time.Date(2019, 5, 1, 0, 0, 0, 0, JST)):
		era = 5
	case !day.Before(time.Date(1989, 1, 8, 0, 0, 0, 0, JST)):
		era = 4
	case !day.Before(time.Date(1926, 12, 25, 0, 0, 0, 0, JST)):
		era = 3
	case !day.Before(time.Date(1912, 7, 30, 0, 0, 0, 0, JST)):
		era = 2
	case !day.Before(time.Date(1868, 10, 23, 0, 0, 0, 0, JST)):
		era = 1
	}
	return fmt.Sprintf("%d%04d%02d%02d", era, d.Year(), int(d.Month()), d.Day())
}
