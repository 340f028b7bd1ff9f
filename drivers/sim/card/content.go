package card

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Credentials are the keys and certificates a token carries in its JPKI AP.
type Credentials struct {
	AuthCert []byte          // DER, EF 000A (利用者証明用電子証明書)
	AuthKey  *rsa.PrivateKey // key 0017
	AuthCA   []byte          // DER, EF 000B
	SignCert []byte          // DER, EF 0001 (署名用電子証明書)
	SignKey  *rsa.PrivateKey // key 001A
	SignCA   []byte          // DER, EF 0002
}

// Check verifies that every part is present, that the certificates parse and
// that each end-entity certificate holds the public half of its key.
func (c *Credentials) Check() error {
	if c == nil {
		return errors.New("card: no credentials")
	}
	for _, p := range []struct {
		name string
		cert []byte
		key  *rsa.PrivateKey
	}{
		{"auth", c.AuthCert, c.AuthKey},
		{"sign", c.SignCert, c.SignKey},
		{"auth CA", c.AuthCA, nil},
		{"sign CA", c.SignCA, nil},
	} {
		cert, err := x509.ParseCertificate(p.cert)
		if err != nil {
			return fmt.Errorf("card: %s certificate: %w", p.name, err)
		}
		if p.name == "auth" || p.name == "sign" {
			if p.key == nil {
				return fmt.Errorf("card: %s key missing", p.name)
			}
			pub, ok := cert.PublicKey.(*rsa.PublicKey)
			if !ok || !pub.Equal(&p.key.PublicKey) {
				return fmt.Errorf("card: %s certificate does not match its key", p.name)
			}
		}
	}
	return nil
}

// Holder is what the text AP (券面事項入力補助AP) says about the card holder.
type Holder struct {
	MyNumber string // 12 ASCII digits, the last one a valid check digit
	Name     string // UTF-8, family and given name separated by U+3000
	Address  string // UTF-8 (full-width digits on real cards)
	Birth    string // YYYYMMDD, Gregorian
	Sex      string // one digit: 1 male, 2 female, 9 not applicable
}

// DefaultHolder is a synthetic holder (not a real person, not J-LIS test
// data). New replaces MyNumber with one derived from the seed.
var DefaultHolder = Holder{
	MyNumber: "123456789018",
	Name:     "試験　花子",
	Address:  "東京都千代田区霞が関２丁目１番２号",
	Birth:    "19850401",
	Sex:      "2",
}

// Check validates the holder's fields' formats.
func (h Holder) Check() error {
	if !ValidMyNumber(h.MyNumber) {
		return fmt.Errorf("card: holder: %q is not a valid 12-digit My Number", h.MyNumber)
	}
	if !utf8.ValidString(h.Name) || !utf8.ValidString(h.Address) || h.Name == "" || h.Address == "" {
		return errors.New("card: holder: name and address must be non-empty UTF-8")
	}
	if len(h.Birth) != 8 || !allDigits(h.Birth) {
		return fmt.Errorf("card: holder: birth date %q is not YYYYMMDD", h.Birth)
	}
	if len(h.Sex) != 1 || !allDigits(h.Sex) {
		return fmt.Errorf("card: holder: sex %q is not one digit", h.Sex)
	}
	if len(h.Name)+len(h.Address) > 2000 {
		return errors.New("card: holder: name and address too long for EF 0002")
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// MyNumberCheckDigit computes the check digit of the first 11 digits of an
// individual number (the formula of the My Number Act's enforcement order,
// 番号法施行令; not in jpki.md): with P(n) the n-th digit counted
// from the right and Q(n) = n+1 for n ≤ 6, n−5 for n ≥ 7, r = Σ P(n)Q(n) mod
// 11, the check digit is 0 when r ≤ 1, else 11 − r.
func MyNumberCheckDigit(first11 string) (byte, bool) {
	if len(first11) != 11 || !allDigits(first11) {
		return 0, false
	}
	sum := 0
	for n := 1; n <= 11; n++ {
		p := int(first11[11-n] - '0')
		q := n + 1
		if n >= 7 {
			q = n - 5
		}
		sum += p * q
	}
	r := sum % 11
	if r <= 1 {
		return '0', true
	}
	return byte('0' + 11 - r), true
}

// ValidMyNumber reports whether s is 12 digits with a correct check digit.
func ValidMyNumber(s string) bool {
	if len(s) != 12 {
		return false
	}
	d, ok := MyNumberCheckDigit(s[:11])
	return ok && d == s[11]
}

// myNumberEF is text AP EF 0001: FF 10 0C, 12 digits, FF FF (jpki.md §4.2).
func myNumberEF(number string) []byte {
	out := []byte{0xFF, 0x10, 0x0C}
	out = append(out, number...)
	return append(out, 0xFF, 0xFF)
}

// berLength encodes a BER definite length.
func berLength(n int) []byte {
	switch {
	case n < 0x80:
		return []byte{byte(n)}
	case n <= 0xFF:
		return []byte{0x81, byte(n)}
	}
	return []byte{0x82, byte(n >> 8), byte(n)}
}

func tlv(tag uint16, value []byte) []byte {
	out := []byte{byte(tag >> 8), byte(tag)}
	out = append(out, berLength(len(value))...)
	return append(out, value...)
}

// basic4EF is text AP EF 0002 (jpki.md §4.2): FF20 { DF21 offset table,
// DF22 name, DF23 address, DF24 YYYYMMDD, DF25 sex }. The offset table holds
// the file offsets of the DF22..DF25 tags as 16-bit big-endian values.
func basic4EF(h Holder) []byte {
	fields := [][]byte{
		tlv(0xDF22, []byte(h.Name)),
		tlv(0xDF23, []byte(h.Address)),
		tlv(0xDF24, []byte(h.Birth)),
		tlv(0xDF25, []byte(h.Sex)),
	}
	innerLen := 3 + 8 // DF21 08 + four offsets
	for _, f := range fields {
		innerLen += len(f)
	}
	header := append([]byte{0xFF, 0x20}, berLength(innerLen)...)
	offsets := make([]byte, 0, 8)
	pos := len(header) + 3 + 8
	for _, f := range fields {
		offsets = binary.BigEndian.AppendUint16(offsets, uint16(pos))
		pos += len(f)
	}
	out := append(header, tlv(0xDF21, offsets)...)
	for _, f := range fields {
		out = append(out, f...)
	}
	return out
}

// tokenInfoEF is JPKI EF 0006: 160 bytes shaped as PKCS#11 CK_TOKEN_INFO
// with 32-bit big-endian integers (jpki.md §3, layout MED, values LOW: one
// card): label[32] (space padded), manufacturerID[32], model[16],
// serialNumber[16], flags, 10 counters, hardware and firmware versions,
// utcTime[16].
func tokenInfoEF(label, model, serial string) []byte {
	pad := func(s string, n int) []byte {
		b := []byte(s)
		if len(b) > n {
			b = b[:n]
		}
		return append(b, bytes.Repeat([]byte{' '}, n-len(b))...)
	}
	out := make([]byte, 0, 160)
	out = append(out, pad(label, 32)...)
	out = append(out, pad(strings.Repeat("0", 30)+"01", 32)...)
	out = append(out, pad(model, 16)...)
	out = append(out, pad(serial, 16)...)
	const unavailable = 0xFFFFFFFF // CK_UNAVAILABLE_INFORMATION
	for _, v := range []uint32{
		0x040D,     // flags: RNG, LOGIN_REQUIRED, USER_PIN_INITIALIZED, TOKEN_INITIALIZED
		0, 0, 0, 0, // max/current (rw) session counts: CK_EFFECTIVELY_INFINITE / 0
		16, 6, // max / min PIN length
		unavailable, unavailable, unavailable, unavailable, // memory
	} {
		out = binary.BigEndian.AppendUint32(out, v)
	}
	out = append(out, "03"...) // hardwareVersion slot, ASCII as on the card
	out = append(out, "01"...) // firmwareVersion slot
	return append(out, pad("", 16)...)
}

// Token labels of EF 0006 (jpki.md §3).
const (
	LabelCard    = "JPKIAPICCTOKEN2" // My Number Card
	LabelJuki    = "JPKIAPICCTOKEN"  // old 住基カード
	LabelAndroid = "JPKIAPGPSETOKEN" // Android GP-SE
	LabelIPhone  = "JPKIAPIOSTOKEN"  // iPhone (Apple Wallet)
)

// certEFSize is the size of a certificate EF: the DER padded with filler to
// at least 2 KiB (whole 256-byte pages), or exactly the DER when exact.
func certEFSize(der []byte, exact bool) int {
	if exact {
		return len(der)
	}
	return max(2048, (len(der)+255)&^255)
}

// pinInit is the initial value and counter of one PIN.
type pinInit struct {
	value []byte
	tries int // remaining tries at power-up of the simulation
}

// appletConfig is everything newApplet needs.
type appletConfig struct {
	fl        flavour
	creds     *Credentials // nil: no JPKI content (non-JPKI cards)
	holder    Holder
	pins      map[PIN]pinInit
	timing    Timing
	shortOnly bool
	chunk     int
	exactLe   bool
	exactEF   bool
	serial    string
	rng       randSource
}

// newApplet builds the file system of a token.
func newApplet(cfg appletConfig) *Applet {
	a := &Applet{
		fl:        cfg.fl,
		timing:    cfg.timing,
		shortOnly: cfg.shortOnly,
		chunk:     cfg.chunk,
		exactLe:   cfg.exactLe,
		rng:       cfg.rng.chacha(),
		pins:      map[PIN]*pinState{},
	}
	a.isd = &dfApp{name: "ISD", aid: AIDISD}
	a.apps = []*dfApp{a.isd}
	newPIN := func(id PIN, ref uint16, f pinFormat, max int) *pinState {
		in := cfg.pins[id]
		p := &pinState{id: id, ref: ref, format: f, value: in.value, max: max, tries: in.tries}
		a.pins[id] = p
		return p
	}
	if cfg.fl.label != "" && cfg.creds != nil {
		c := cfg.creds
		auth := newPIN(AuthPIN, PINAuthRef, fourDigits, 3)
		sign := newPIN(SignPassword, PINSignRef, password, 5)
		var authCertPIN, authCAPIN, signCAPIN *pinState
		if cfg.fl.authCertNeedsPIN || cfg.fl.iphone {
			authCertPIN = auth
		}
		if cfg.fl.iphone {
			authCAPIN, signCAPIN = auth, sign
		}
		jp := &dfApp{name: "JPKI", aid: AIDJPKI, efs: []*ef{
			{fid: EFSignCert, data: withFiller(c.SignCert, certEFSize(c.SignCert, cfg.exactEF)), readPIN: sign},
			{fid: EFSignCACert, data: withFiller(c.SignCA, certEFSize(c.SignCA, cfg.exactEF)), readPIN: signCAPIN},
			{fid: EFTokenInfo, data: tokenInfoEF(cfg.fl.label, cfg.fl.model, cfg.serial)},
			{fid: EFCertPresence, data: []byte{0x8F, 0x8F, 0x00}},
			{fid: EFAuthCert, data: withFiller(c.AuthCert, certEFSize(c.AuthCert, cfg.exactEF)), readPIN: authCertPIN},
			{fid: EFAuthCACert, data: withFiller(c.AuthCA, certEFSize(c.AuthCA, cfg.exactEF)), readPIN: authCAPIN},
			{fid: KeyAuth, key: c.AuthKey, keyPIN: auth},
			{fid: PINAuthRef, pin: auth},
			{fid: KeySign, key: c.SignKey, keyPIN: sign},
			{fid: PINSignRef, pin: sign},
		}}
		a.apps = append(a.apps, jp)
	}
	if cfg.fl.textAP {
		text := newPIN(TextPIN, PINTextRef, fourDigits, 3)
		b4 := basic4EF(cfg.holder)
		ta := &dfApp{name: "text", aid: AIDText, efs: []*ef{
			{fid: EFMyNumber, data: myNumberEF(cfg.holder.MyNumber), readPIN: text},
			{fid: EFBasic4, data: withFiller(b4, (len(b4)+255)&^255), readPIN: text},
			{fid: PINTextRef, pin: text},
		}}
		a.apps = append(a.apps, ta)
	}
	a.cur = a.isd
	return a
}
