package card

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
)

// Kind is a standard simulated token.
type Kind string

// The standard kinds. An empty field is simply an rf.Field without a Token.
const (
	KindMyNumber    Kind = "mynumber"     // My Number Card: Type B, JPKIAPICCTOKEN2, JPKI AP + text AP
	KindAndroid     Kind = "android"      // Android phone (GP-SE): Type A, JPKIAPGPSETOKEN, auth cert behind the PIN
	KindIPhone      Kind = "iphone"       // iPhone (Wallet), not armed: Type A, JPKIAPIOSTOKEN
	KindIPhoneArmed Kind = "iphone-armed" // iPhone armed with Face ID before the tap
	KindJuki        Kind = "juki"         // old 住基カード: Type B, JPKIAPICCTOKEN, expired certificates
	KindNonJPKI     Kind = "nonjpki"      // ISO 14443-4 Type B card without JPKI (SELECT → 6A82)
	KindTypeA       Kind = "typea"        // ISO 14443-4 Type A only card without JPKI
)

// Kinds lists the standard kinds.
func Kinds() []Kind {
	return []Kind{KindMyNumber, KindAndroid, KindIPhone, KindIPhoneArmed, KindJuki, KindNonJPKI, KindTypeA}
}

// ParseKind checks s against the standard kinds.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds() {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("card: unknown kind %q", s)
}

func (k Kind) String() string { return string(k) }

// flavour returns the APDU-level behaviour of the kind.
func (k Kind) flavour() (flavour, bool) {
	switch k {
	case KindMyNumber:
		return flavour{label: LabelCard, model: "E16R01NJ", textAP: true}, true
	case KindJuki:
		return flavour{label: LabelJuki, model: "JUKI-SIM"}, true
	case KindAndroid:
		return flavour{label: LabelAndroid, model: "GPSE-SIM", authCertNeedsPIN: true}, true
	case KindIPhone, KindIPhoneArmed:
		return flavour{label: LabelIPhone, model: "IOS-SIM", iphone: true}, true
	case KindNonJPKI, KindTypeA:
		return flavour{}, true
	}
	return flavour{}, false
}

// phone reports whether the kind is a phone (own PIN defaults).
func (k Kind) phone() bool {
	return k == KindAndroid || k == KindIPhone || k == KindIPhoneArmed
}

// randSource is a 32-byte ChaCha8 seed derived from the token seed and a
// purpose, so each use of randomness is reproducible and independent.
type randSource [32]byte

func seedFor(seed, purpose string) randSource {
	return sha256.Sum256([]byte("kazasu/sim/card\x00" + seed + "\x00" + purpose))
}

func (r randSource) chacha() *rand.ChaCha8 { return rand.NewChaCha8(r) }
