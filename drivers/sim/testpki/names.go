package testpki

import (
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Kind is a CA type of the JPKI: the user-authentication CA (利用者証明用)
// or the digital-signature CA (署名用).
type Kind int

const (
	Auth Kind = iota + 1 // user authentication (利用者証明用)
	Sign                 // digital signature (署名用)
)

func (k Kind) String() string {
	switch k {
	case Auth:
		return "auth"
	case Sign:
		return "sign"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Object identifiers of the JPKI profile (docs/jpki.md §7.2).
var (
	// OIDPolicyAuth is the user-authentication certificate policy ("auth class 30").
	OIDPolicyAuth = asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 1, 3, 30}
	// OIDPolicySign is the digital-signature certificate policy ("sign class 20").
	OIDPolicySign = asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 1, 1, 20}

	// Sign certificate subjectAltName otherName types.
	OIDName          = asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 1} // 氏名
	OIDNameSubst     = asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 2} // 氏名代替文字位置
	OIDGender        = asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 3} // 性別
	OIDDateOfBirth   = asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 4} // 生年月日
	OIDAddress       = asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 5} // 住所
	OIDAddressSubst  = asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 6} // 住所代替文字位置
	oidSAN           = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidIssuerAltName = asn1.ObjectIdentifier{2, 5, 29, 18}
	oidCRLDP         = asn1.ObjectIdentifier{2, 5, 29, 31}
	oidDeltaCRL      = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidCountry       = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidOrg           = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU            = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidCN            = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidLocality      = asn1.ObjectIdentifier{2, 5, 4, 7}
)

// Organisation and unit names of the test hierarchy.
const (
	TestOrganization = "JPKI-TEST"
	HierarchyUnit    = "kazasu test hierarchy"
	AuthUnit         = "JPKI TEST for user authentication"
	SignUnit         = "JPKI TEST for digital signature"
	// AltNameOrg is the organisation in the CAs' directory-name
	// subjectAltName / issuerAltName (production: 公的個人認証サービス).
	AltNameOrg = "公的個人認証サービス TEST"
)

// attr is one attribute of a one-attribute RDN.
type attr struct {
	oid asn1.ObjectIdentifier
	val string
}

// rawName encodes an RDNSequence with one attribute per RDN, in order (the
// shape J-LIS uses; pkix.Name would fold the two OUs into one RDN). Strings
// are PrintableString when possible, UTF8String otherwise.
func rawName(attrs ...attr) []byte {
	var seq pkix.RDNSequence
	for _, a := range attrs {
		seq = append(seq, pkix.RelativeDistinguishedNameSET{{Type: a.oid, Value: a.val}})
	}
	der, err := asn1.Marshal(seq)
	if err != nil {
		panic("testpki: encoding a fixed name: " + err.Error()) // constant input
	}
	return der
}

// CAName returns the DER subject of every generation of the kind's CA.
func CAName(k Kind) []byte {
	unit := AuthUnit
	if k == Sign {
		unit = SignUnit
	}
	return rawName(attr{oidCountry, "JP"}, attr{oidOrg, TestOrganization}, attr{oidOU, unit}, attr{oidOU, HierarchyUnit})
}

// altDirName is the directory-name GeneralNames used in the CAs'
// subjectAltName and the end entities' issuerAltName.
func altDirName() []byte {
	name := rawName(attr{oidCountry, "JP"}, attr{oidOrg, AltNameOrg})
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // GeneralNames
		b.AddASN1(cbasn1.Tag(4).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { // directoryName [4] EXPLICIT
			b.AddBytes(name)
		})
	})
	return b.BytesOrPanic()
}

// crlDPDirName encodes cRLDistributionPoints with one distribution point
// whose fullName is the CA's own DN (JPKI uses a directory entry, no URL).
func crlDPDirName(caName []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // CRLDistributionPoints
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // DistributionPoint
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { // distributionPoint [0]
				b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { // fullName [0] GeneralNames
					b.AddASN1(cbasn1.Tag(4).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
						b.AddBytes(caName)
					})
				})
			})
		})
	})
	return b.BytesOrPanic()
}

// otherNameSAN encodes a subjectAltName of otherName entries with
// UTF8String values, in the given order.
func otherNameSAN(entries []otherName) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, e := range entries {
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { // otherName [0] IMPLICIT
				b.AddASN1ObjectIdentifier(e.oid)
				b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { // value [0] EXPLICIT
					b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(e.val)) })
				})
			})
		}
	})
	return b.Bytes()
}

type otherName struct {
	oid asn1.ObjectIdentifier
	val string
}

// subjectKeyID is RFC 5280 §4.2.1.2 method (1): SHA-1 of the
// subjectPublicKey BIT STRING contents.
func subjectKeyID(pub any) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var info struct {
		Alg pkix.AlgorithmIdentifier
		Key asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		return nil, err
	}
	h := sha1.Sum(info.Key.Bytes)
	return h[:], nil
}
