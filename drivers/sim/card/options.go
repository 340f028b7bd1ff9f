package card

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"kazasu/drivers/nfc"
)

// Secret is a PIN or password value. It formats as "[secret]" with every
// fmt verb, so an Options printed into a log shows no PIN.
type Secret string

func (Secret) String() string   { return "[secret]" }
func (Secret) GoString() string { return `"[secret]"` }

// TriesBlocked as a tries option starts the PIN with an exhausted counter.
const TriesBlocked = -1

// Options configure New. The zero value gives the kind's standard token.
type Options struct {
	// Seed makes everything reproducible: PUPI/UID sequence, serial
	// number, My Number, GET CHALLENGE bytes and the person the default
	// credentials are issued to. "" means "kazasu".
	Seed string
	// PKISeed selects the testpki hierarchy the default credentials come
	// from; the terminal under test must trust this hierarchy's roots. ""
	// means DefaultPKISeed.
	PKISeed string

	// Profile names a profile from the table (Profiles); "" means the
	// kind's own. Custom, when set, is used instead of any named profile.
	// The profile gives the radio side and quirks; the kind given to New
	// gives the content.
	Profile string
	Custom  *Profile

	// PIN values; "" means the default: card auth PIN "1234", sign
	// password "ABC123", text PIN "1234"; phones auth PIN "5678", sign
	// password "XYZ789" (the Default… constants).
	AuthPIN, SignPassword, TextPIN Secret
	// Tries remaining at start; 0 means a full counter (3, 5, 3),
	// TriesBlocked an exhausted one.
	AuthPINTries, SignPasswordTries, TextPINTries int

	// Credentials override the default testpki-issued ones.
	Credentials *Credentials
	// Holder overrides the text AP data (and the person the default
	// credentials are issued to).
	Holder *Holder

	sets []setting
}

type setting struct{ key, value string }

// Set sets an option by name, as a scenario file does. Keys:
//
//	seed, pki-seed, profile             strings
//	auth-pin, sign-password, text-pin    PIN values (format-checked at New)
//	auth-pin-tries, sign-password-tries, text-pin-tries
//	                                     tries left: 0…max ("0" = blocked)
//	tech                                 a, b, ab
//	fsci, fwi, sfgi                      0…12, 0…14, 0…14
//	cid, random-id, short-only, exact-ef, exact-le, extended-atqb,
//	wtx-disabled                         booleans (strconv.ParseBool)
//	response-chunk                       0…256: answer 61xx, serve GET RESPONSE
//	id                                   fixed PUPI/UID in hex (4, 7 or 10 bytes)
//	wtx-fraction                         0 < f ≤ 1
//	wtx-storm                            S(WTX) forced before each answer
//	apdu-time, verify-time, sign-time    durations ("300ms")
//	drop-at-apdu, drop-taps              integers ≥ 0
//
// Profile keys are applied on top of the chosen profile, in call order.
func (o *Options) Set(key, value string) error {
	if err := o.apply(key, value, nil); err != nil {
		return err
	}
	if profileKey(key) {
		// Kept to be applied on the profile at New. Options fields (PIN
		// values among them) are set at once and never kept here.
		o.sets = append(o.sets, setting{key, value})
	}
	return nil
}

// profileKey reports whether key sets a Profile field.
func profileKey(key string) bool {
	switch key {
	case "seed", "pki-seed", "profile", "auth-pin", "sign-password", "text-pin",
		"auth-pin-tries", "sign-password-tries", "text-pin-tries":
		return false
	}
	return true
}

// apply validates (p == nil) or applies a setting. Options fields are set
// at once; profile fields when p is given.
func (o *Options) apply(key, value string, p *Profile) error {
	bad := func(err error) error {
		return fmt.Errorf("card: option %s: %w", key, err)
	}
	intIn := func(lo, hi int) (int, error) {
		n, err := strconv.Atoi(value)
		if err != nil {
			return 0, bad(err)
		}
		if n < lo || n > hi {
			return 0, bad(fmt.Errorf("%d outside %d…%d", n, lo, hi))
		}
		return n, nil
	}
	tries := func(dst *int, maxTries int) error {
		n, err := intIn(0, maxTries)
		if err != nil {
			return err
		}
		if n == 0 {
			n = TriesBlocked
		}
		*dst = n
		return nil
	}
	var prof Profile // scratch target when only validating
	if p == nil {
		p = &prof
	}
	boolean := func(dst *bool) error {
		b, err := strconv.ParseBool(value)
		if err != nil {
			return bad(err)
		}
		*dst = b
		return nil
	}
	duration := func(dst *time.Duration) error {
		d, err := time.ParseDuration(value)
		if err != nil {
			return bad(err)
		}
		if d < 0 {
			return bad(fmt.Errorf("negative duration"))
		}
		*dst = d
		return nil
	}
	switch key {
	case "seed":
		o.Seed = value
	case "pki-seed":
		o.PKISeed = value
	case "profile":
		if _, ok := LookupProfile(value); !ok {
			return bad(fmt.Errorf("no profile %q", value))
		}
		o.Profile = value
	case "auth-pin":
		o.AuthPIN = Secret(value)
	case "sign-password":
		o.SignPassword = Secret(value)
	case "text-pin":
		o.TextPIN = Secret(value)
	case "auth-pin-tries":
		return tries(&o.AuthPINTries, AuthPIN.MaxTries())
	case "sign-password-tries":
		return tries(&o.SignPasswordTries, SignPassword.MaxTries())
	case "text-pin-tries":
		return tries(&o.TextPINTries, TextPIN.MaxTries())
	case "tech":
		switch strings.ToLower(value) {
		case "a":
			p.Techs = []nfc.Tech{nfc.TechA}
		case "b":
			p.Techs = []nfc.Tech{nfc.TechB}
		case "ab", "ba":
			p.Techs = []nfc.Tech{nfc.TechA, nfc.TechB}
		default:
			return bad(fmt.Errorf("want a, b or ab, not %q", value))
		}
	case "fsci":
		n, err := intIn(0, 12)
		p.FSCI = byte(n)
		return err
	case "fwi":
		n, err := intIn(0, 14)
		p.FWI = byte(n)
		return err
	case "sfgi":
		n, err := intIn(0, 14)
		p.SFGI = byte(n)
		return err
	case "cid":
		return boolean(&p.CID)
	case "random-id":
		return boolean(&p.RandomID)
	case "short-only":
		return boolean(&p.ShortOnly)
	case "exact-ef":
		return boolean(&p.ExactEF)
	case "exact-le":
		return boolean(&p.ExactLe)
	case "response-chunk":
		n, err := intIn(0, 256)
		p.ResponseChunk = n
		return err
	case "extended-atqb":
		return boolean(&p.ExtendedATQB)
	case "wtx-disabled":
		return boolean(&p.WTX.Disabled)
	case "id":
		b, err := hex.DecodeString(value)
		if err != nil {
			return bad(err)
		}
		if len(b) != 4 && len(b) != 7 && len(b) != 10 {
			return bad(fmt.Errorf("%d bytes, want 4, 7 or 10", len(b)))
		}
		p.ID, p.RandomID = b, false
	case "wtx-fraction":
		f, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return bad(err)
		}
		if !(f > 0 && f <= 1) {
			return bad(fmt.Errorf("%v outside (0, 1]", f))
		}
		p.WTX.Fraction = f
	case "wtx-storm":
		n, err := intIn(0, 100)
		p.WTX.Storm = n
		return err
	case "apdu-time":
		return duration(&p.Timing.APDU)
	case "verify-time":
		return duration(&p.Timing.Verify)
	case "sign-time":
		return duration(&p.Timing.Sign)
	case "drop-at-apdu":
		n, err := intIn(0, 1<<20)
		p.DropAtAPDU = n
		return err
	case "drop-taps":
		n, err := intIn(0, 1<<20)
		p.DropTaps = n
		return err
	default:
		return fmt.Errorf("card: unknown option %q", key)
	}
	return nil
}

// String describes the options without any PIN value.
func (o Options) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed=%q", o.Seed)
	if o.Profile != "" {
		fmt.Fprintf(&b, " profile=%s", o.Profile)
	}
	for _, s := range o.sets {
		fmt.Fprintf(&b, " %s=%s", s.key, s.value)
	}
	return b.String()
}
