package card

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"kazasu/drivers/sim/testpki"
)

// DefaultPKISeed is the testpki hierarchy the default credentials come from.
const DefaultPKISeed = "kazasu"

// credKey identifies one cached set of default credentials.
type credKey struct {
	pkiSeed, seed string
	kind          Kind
	holder        Holder
}

type credEntry struct {
	once  sync.Once
	creds *Credentials
	err   error
}

var (
	credMu    sync.Mutex
	credCache = map[credKey]*credEntry{}
)

// personID is the opaque identifier in the auth certificate's CN, derived
// from the seed (20 upper-case hex characters, like the ~20-character CN of
// real cards, jpki.md §7.2).
func personID(seed string) string {
	h := sha256.Sum256([]byte("kazasu/sim/card/person\x00" + seed))
	return strings.ToUpper(hex.EncodeToString(h[:10]))
}

// defaultCredentials issues (once per process and key) the token's
// credentials from testpki: generation 3 for current cards and phones, an
// expired generation-1 pair for the Juki card. Phones get their own keys
// and certificates (jpki.md §8: スマホ用電子証明書 are separate).
func defaultCredentials(pkiSeed, seed string, kind Kind, h Holder) (*Credentials, error) {
	k := credKey{pkiSeed, seed, kind, h}
	credMu.Lock()
	e, ok := credCache[k]
	if !ok {
		e = &credEntry{}
		credCache[k] = e
	}
	credMu.Unlock()
	e.once.Do(func() { e.creds, e.err = issue(pkiSeed, seed, kind, h) })
	return e.creds, e.err
}

func issue(pkiSeed, seed string, kind Kind, h Holder) (*Credentials, error) {
	birth, err := time.ParseInLocation("20060102", h.Birth, testpki.JST)
	if err != nil {
		return nil, fmt.Errorf("card: holder birth date: %w", err)
	}
	p := testpki.Person{
		ID:           personID(seed),
		Name:         h.Name,
		Address:      h.Address,
		BirthDate:    birth,
		Gender:       h.Sex,
		Municipality: "Chiyoda-ku",
	}
	// Each kind is its own certificate holder (distinct CN, serial and
	// key): a phone's certificates are not the card's.
	var o testpki.IssueOptions
	switch kind {
	case KindAndroid:
		p.ID = personID(seed + "/android")
	case KindIPhone, KindIPhoneArmed:
		p.ID = personID(seed + "/iphone")
	case KindJuki:
		// Issued in 2015 under generation 1; expired on the 5th birthday
		// after issuance (2020 for the default holder).
		o.Generation = 1
		o.IssuedAt = time.Date(2015, 12, 1, 10, 0, 0, 0, testpki.JST)
		p.ID = personID(seed + "/juki")
	}
	id, err := testpki.New(pkiSeed).Issue(p, o)
	if err != nil {
		return nil, fmt.Errorf("card: issuing default credentials: %w", err)
	}
	return &Credentials{
		AuthCert: id.AuthDER, AuthKey: id.AuthKey, AuthCA: id.AuthCADER,
		SignCert: id.SignDER, SignKey: id.SignKey, SignCA: id.SignCADER,
	}, nil
}

// defaultHolder derives the holder's My Number from the seed (11 digits
// and the check digit).
func defaultHolder(seed string) Holder {
	h := DefaultHolder
	rng := seedFor(seed, "mynumber").chacha()
	var d [11]byte
	for i := range d {
		d[i] = '0' + byte(rng.Uint64()%10)
	}
	c, _ := MyNumberCheckDigit(string(d[:]))
	h.MyNumber = string(d[:]) + string(c)
	return h
}
