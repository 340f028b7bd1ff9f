package card

import (
	"bytes"
	"crypto/rsa"
	"fmt"
)

// EF identifiers of the JPKI AP (jpki.md §3) and of the text AP (§4.1).
const (
	EFSignCert     uint16 = 0x0001 // 署名用電子証明書, needs the sign password
	EFSignCACert   uint16 = 0x0002 // 署名用CA証明書
	EFTokenInfo    uint16 = 0x0006 // CK_TOKEN_INFO, label first
	EFCertPresence uint16 = 0x0008 // "8F 8F 00": certificate availability
	EFAuthCert     uint16 = 0x000A // 利用者証明用電子証明書
	EFAuthCACert   uint16 = 0x000B // 利用者証明用CA証明書
	KeyAuth        uint16 = 0x0017 // 利用者証明用秘密鍵
	PINAuthRef     uint16 = 0x0018 // 利用者証明用 PIN
	KeySign        uint16 = 0x001A // 署名用秘密鍵
	PINSignRef     uint16 = 0x001B // 署名用パスワード

	EFMyNumber uint16 = 0x0001 // text AP: 個人番号
	EFBasic4   uint16 = 0x0002 // text AP: 基本4情報
	PINTextRef uint16 = 0x0011 // text AP: 券面事項入力補助用 PIN
	filler     byte   = 0xFF   // what an EF holds after its content
)

// AIDs (DF names) of jpki.md §2.
var (
	AIDISD  = []byte{0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00}
	AIDJPKI = []byte{0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01}
	AIDText = []byte{0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x08}
)

// PIN names one of the secrets a simulated token holds.
type PIN uint8

const (
	AuthPIN      PIN = iota + 1 // JPKI 利用者証明用 PIN, key ref 0018, 4 digits, 3 tries
	SignPassword                // JPKI 署名用パスワード, key ref 001B, 6–16 A–Z/0–9, 5 tries
	TextPIN                     // text AP 券面事項入力補助用 PIN, key ref 0011, 4 digits, 3 tries
)

func (p PIN) String() string {
	switch p {
	case AuthPIN:
		return "auth-pin"
	case SignPassword:
		return "sign-password"
	case TextPIN:
		return "text-pin"
	}
	return fmt.Sprintf("PIN(%d)", uint8(p))
}

// pinFormat is the value rule of a PIN (jpki.md §6).
type pinFormat uint8

const (
	fourDigits pinFormat = iota // exactly 4 ASCII digits
	password                    // 6..16 of A–Z, 0–9
)

func (f pinFormat) lengthOK(n int) bool {
	if f == fourDigits {
		return n == 4
	}
	return n >= 6 && n <= 16
}

// valid reports whether v is a value the holder could have set.
func (f pinFormat) valid(v []byte) bool {
	if !f.lengthOK(len(v)) {
		return false
	}
	for _, c := range v {
		switch {
		case c >= '0' && c <= '9':
		case f == password && c >= 'A' && c <= 'Z':
		default:
			return false
		}
	}
	return true
}

// pinState is a key reference holding a PIN: its value, retry counter and
// whether it is verified in the current security state.
type pinState struct {
	id       PIN
	ref      uint16
	format   pinFormat
	value    []byte
	max      int
	tries    int
	verified bool
}

func (p *pinState) matches(v []byte) bool { return bytes.Equal(p.value, v) }

// ef is an elementary file (or, for key and PIN references, the file that
// names the key: SELECT works on it, READ BINARY does not).
type ef struct {
	fid  uint16
	data []byte // transparent content, including any filler
	// readPIN, when non-nil, must be verified before READ BINARY.
	readPIN *pinState
	// kind of object behind the FID.
	pin *pinState
	key *rsa.PrivateKey
	// keyPIN must be verified before the key signs.
	keyPIN *pinState
}

func (e *ef) transparent() bool { return e.pin == nil && e.key == nil }

// dfApp is an application (DF) selectable by name.
type dfApp struct {
	name string
	aid  []byte
	efs  []*ef
}

func (d *dfApp) lookup(fid uint16) *ef {
	for _, e := range d.efs {
		if e.fid == fid {
			return e
		}
	}
	return nil
}

// withFiller returns content followed by filler up to size bytes (or content
// alone when it is already that long).
func withFiller(content []byte, size int) []byte {
	out := make([]byte, max(size, len(content)))
	copy(out, content)
	for i := len(content); i < len(out); i++ {
		out[i] = filler
	}
	return out
}

// MaxTries is the retry counter's full value (jpki.md §6).
func (p PIN) MaxTries() int {
	if p == SignPassword {
		return 5
	}
	return 3
}

func (p PIN) format() pinFormat {
	if p == SignPassword {
		return password
	}
	return fourDigits
}
