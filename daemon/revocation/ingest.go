package revocation

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// CRLInfo describes an ingested CRL.
type CRLInfo struct {
	Issuer     IssuerID
	IssuerCert *x509.Certificate // the candidate whose key verified the CRL
	Number     *big.Int          // cRLNumber (RFC 5280 §5.2.3), required
	BaseNumber *big.Int          // deltaCRLIndicator's BaseCRLNumber; nil for a complete CRL
	ThisUpdate time.Time
	NextUpdate time.Time // zero when absent
	Entries    int       // revokedCertificates entries read
	Removed    int       // entries with reason removeFromCRL (delta CRLs)
}

// IsDelta reports whether the CRL is a delta CRL.
func (c *CRLInfo) IsDelta() bool { return c.BaseNumber != nil }

// Ingested is a verified CRL held as a compact set, not yet committed to
// a store.
type Ingested struct {
	Info    CRLInfo
	set     group
	removed map[string]bool // delta removeFromCRL serials
	n       int
}

// Revoked reports whether serial is listed (and not as removeFromCRL).
func (in *Ingested) Revoked(serial []byte) bool {
	return in.set.contains(serial)
}

// Len is the number of distinct revoked serials.
func (in *Ingested) Len() int { return in.n }

// Limits of the streaming parser. Only revokedCertificates may be large;
// everything else is small in any CRL.
const (
	maxSmallElement = 64 << 10 // issuer name, extensions, algorithm identifiers
	maxEntry        = 4 << 10  // one revokedCertificates entry
	maxSignature    = 2048     // BIT STRING contents (RSA up to 16 kbit)
)

var (
	oidCRLNumber        = asn1.ObjectIdentifier{2, 5, 29, 20}
	oidDeltaCRL         = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidAKI              = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidIDP              = asn1.ObjectIdentifier{2, 5, 29, 28}
	oidReasonCode       = asn1.ObjectIdentifier{2, 5, 29, 21}
	oidInvalidityDate   = asn1.ObjectIdentifier{2, 5, 29, 24}
	oidCertIssuer       = asn1.ObjectIdentifier{2, 5, 29, 29}
	oidSHA256WithRSA    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512WithRSA    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	reasonRemoveFromCRL = 8
)

// Ingest reads one DER CRL from r as a stream, checks its signature
// against the candidate issuers and returns it as a compact set. Memory use
// is the compact set plus a fixed read window, whatever the CRL's size.
//
// The issuer is the candidate whose subject equals the CRL issuer name and
// whose SKI equals the CRL's authorityKeyIdentifier; if the CRL has no AKI
// every same-name candidate's key is tried. Errors are kinds of
// ErrMalformed, ErrUnsupported, ErrUnknownIssuer or ErrBadSignature, or the
// reader's error.
func Ingest(r io.Reader, candidates []*x509.Certificate) (*Ingested, error) {
	s := newStream(r)
	s.tee = newPipeHasher()
	defer func() {
		if s.tee != nil { // error paths: release the hasher goroutine
			s.tee.sum()
		}
	}()
	b := newBuilder()
	removed := map[string]bool{}
	info, tbsHash, alg, err := parseCRL(s, func(serial []byte, reason int) {
		if reason == reasonRemoveFromCRL {
			removed[string(serial)] = true
			return
		}
		b.add(serial)
	})
	if err != nil {
		return nil, err
	}
	issuer, err := verifyIssuer(info, candidates, tbsHash, alg)
	if err != nil {
		return nil, err
	}
	info.IssuerCert = issuer
	info.Issuer = IssuerIDOf(issuer)
	info.Removed = len(removed)
	if info.BaseNumber == nil && len(removed) > 0 {
		return nil, fmt.Errorf("%w: removeFromCRL entries in a complete CRL", ErrMalformed)
	}
	in := &Ingested{Info: *info, removed: removed}
	// A serial both listed and removed in one delta: the removal wins only
	// if it is the sole listing; RFC 5280 forbids listing it twice, so
	// treat it as malformed rather than guess.
	in.set, in.n = b.group(nil)
	for k := range removed {
		if in.Revoked([]byte(k)) {
			return nil, fmt.Errorf("%w: serial %x both revoked and removeFromCRL", ErrMalformed, []byte(k))
		}
	}
	return in, nil
}

// crlSig is what verifyIssuer needs from the parse.
type crlSig struct {
	hash      crypto.Hash
	signature []byte
	issuerDN  []byte
	aki       []byte
}

// parseCRL walks the CRL. It calls entry for each revoked serial (the
// slice is only valid during the call).
func parseCRL(s *stream, entry func(serial []byte, reason int)) (*CRLInfo, []byte, *crlSig, error) {
	info := &CRLInfo{}
	sig := &crlSig{}
	outerLen, _, err := s.header(0x30)
	if err != nil {
		return nil, nil, nil, err
	}
	outerEnd := s.pos() + outerLen
	tag, err := s.peekTag()
	if err != nil {
		return nil, nil, nil, err
	}
	if tag != 0x30 {
		return nil, nil, nil, s.malformed("tbsCertList is not a SEQUENCE")
	}
	// The signed bytes are tbsCertList from its tag to its end; the hash
	// algorithm is named inside it, so the hasher learns the range and
	// algorithm once the signature field is read (it holds what it was fed
	// until then).
	tbsStart := s.pos()
	tbsLen, _, err := s.header(0x30)
	if err != nil {
		return nil, nil, nil, err
	}
	tbsEnd := s.pos() + tbsLen
	if tbsEnd > outerEnd {
		return nil, nil, nil, s.malformed("tbsCertList overruns the CRL")
	}
	// version (optional INTEGER, must be v2 = 1 when present)
	if t, err := s.peekTag(); err != nil {
		return nil, nil, nil, err
	} else if t == 0x02 {
		v, err := s.element(0x02, 8)
		if err != nil {
			return nil, nil, nil, err
		}
		if !bytes.Equal(v, []byte{0x02, 0x01, 0x01}) {
			return nil, nil, nil, s.malformed("CRL version is not v2")
		}
	}
	algTBS, err := s.element(0x30, maxSmallElement)
	if err != nil {
		return nil, nil, nil, err
	}
	h, err := hashFor(algTBS)
	if err != nil {
		return nil, nil, nil, err
	}
	sig.hash = h
	s.tee.start(h.New(), tbsStart, tbsEnd)
	if sig.issuerDN, err = s.element(0x30, maxSmallElement); err != nil {
		return nil, nil, nil, err
	}
	if info.ThisUpdate, err = readTime(s); err != nil {
		return nil, nil, nil, err
	}
	if s.pos() < tbsEnd {
		if t, err := s.peekTag(); err != nil {
			return nil, nil, nil, err
		} else if t == 0x17 || t == 0x18 {
			if info.NextUpdate, err = readTime(s); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	if s.pos() < tbsEnd {
		if t, err := s.peekTag(); err != nil {
			return nil, nil, nil, err
		} else if t == 0x30 {
			if err := readEntries(s, info, entry); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	if s.pos() < tbsEnd {
		ext, err := s.element(0xa0, maxSmallElement)
		if err != nil {
			return nil, nil, nil, err
		}
		if err := parseCRLExtensions(ext, info, sig); err != nil {
			return nil, nil, nil, err
		}
	}
	if s.pos() != tbsEnd {
		return nil, nil, nil, s.malformed("tbsCertList length does not match its contents")
	}
	algOuter, err := s.element(0x30, maxSmallElement)
	if err != nil {
		return nil, nil, nil, err
	}
	if !bytes.Equal(algOuter, algTBS) {
		return nil, nil, nil, s.malformed("signatureAlgorithm differs from tbsCertList.signature")
	}
	bitString, err := s.element(0x03, maxSignature)
	if err != nil {
		return nil, nil, nil, err
	}
	bs := cryptobyte.String(bitString)
	var sigBits asn1.BitString
	if !bs.ReadASN1BitString(&sigBits) || sigBits.BitLength%8 != 0 {
		return nil, nil, nil, s.malformed("signature BIT STRING")
	}
	sig.signature = sigBits.Bytes
	if s.pos() != outerEnd {
		return nil, nil, nil, s.malformed("CRL length does not match its contents")
	}
	if eof, err := s.atEOF(); err != nil {
		return nil, nil, nil, err
	} else if !eof {
		return nil, nil, nil, s.malformed("trailing data after the CRL")
	}
	if info.Number == nil {
		return nil, nil, nil, fmt.Errorf("%w: CRL without cRLNumber (RFC 5280 §5.2.3 requires it)", ErrMalformed)
	}
	digest := s.tee.sum()
	s.tee = nil
	return info, digest, sig, nil
}

// hashFor maps the signature AlgorithmIdentifier to its hash. JPKI CAs
// sign with sha256WithRSAEncryption; SHA-384/512 with RSA are accepted.
func hashFor(alg []byte) (crypto.Hash, error) {
	in := cryptobyte.String(alg)
	var seq cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() || !seq.ReadASN1ObjectIdentifier(&oid) {
		return 0, fmt.Errorf("%w: signature AlgorithmIdentifier", ErrMalformed)
	}
	// RFC 4055 §5: parameters NULL (absent tolerated, as crypto/x509 does).
	if !seq.Empty() {
		var null cryptobyte.String
		if !seq.ReadASN1(&null, cbasn1.NULL) || !null.Empty() || !seq.Empty() {
			return 0, fmt.Errorf("%w: RSA signature parameters are not NULL", ErrMalformed)
		}
	}
	switch {
	case oid.Equal(oidSHA256WithRSA):
		return crypto.SHA256, nil
	case oid.Equal(oidSHA384WithRSA):
		return crypto.SHA384, nil
	case oid.Equal(oidSHA512WithRSA):
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("%w: signature algorithm %v", ErrUnsupported, oid)
}

// readTime reads a UTCTime or GeneralizedTime (RFC 5280 §5.1.2.4: UTC,
// seconds, "Z").
func readTime(s *stream) (time.Time, error) {
	el, err := s.element(0, 32)
	if err != nil {
		return time.Time{}, err
	}
	in := cryptobyte.String(el)
	var t time.Time
	switch el[0] {
	case 0x17:
		if !in.ReadASN1UTCTime(&t) {
			return t, s.malformed("UTCTime")
		}
	case 0x18:
		if !in.ReadASN1GeneralizedTime(&t) {
			return t, s.malformed("GeneralizedTime")
		}
	default:
		return t, s.malformed("expected a time")
	}
	return t, nil
}

// readEntries walks revokedCertificates entry by entry.
func readEntries(s *stream, info *CRLInfo, entry func([]byte, int)) error {
	n, _, err := s.header(0x30)
	if err != nil {
		return err
	}
	end := s.pos() + n
	for s.pos() < end {
		// Fast path: whole short-form entries already in the window are
		// parsed in place, without the per-read bookkeeping.
		if w := s.buf[s.lo:s.hi]; len(w) >= 2 && w[0] == 0x30 && w[1] < 0x80 && int(w[1])+2 <= len(w) {
			l := int(w[1])
			if s.pos()+int64(2+l) > end {
				return s.malformed("entry overruns revokedCertificates")
			}
			serial, reason, err := parseEntry(w[2 : 2+l])
			if err != nil {
				return &MalformedError{Offset: s.pos() + 2, What: err.Error()}
			}
			s.lo += 2 + l
			info.Entries++
			entry(serial, reason)
			continue
		}
		hdr, err := s.next(2)
		if err != nil {
			return err
		}
		if hdr[0] != 0x30 {
			return s.malformed("revokedCertificates entry is not a SEQUENCE")
		}
		l := int(hdr[1])
		if l >= 0x80 {
			k := l & 0x7f
			if k == 0 || k > 2 {
				return s.malformed("revokedCertificates entry length")
			}
			lb, err := s.next(k)
			if err != nil {
				return err
			}
			l = 0
			for _, c := range lb {
				l = l<<8 | int(c)
			}
			if lb[0] == 0 || l < 0x80 {
				return s.malformed("non-minimal length")
			}
			if l > maxEntry {
				return s.malformed("revokedCertificates entry too long")
			}
		}
		body, err := s.next(l)
		if err != nil {
			return err
		}
		if s.pos() > end {
			return s.malformed("entry overruns revokedCertificates")
		}
		serial, reason, err := parseEntry(body)
		if err != nil {
			return &MalformedError{Offset: s.pos() - int64(l), What: err.Error()}
		}
		info.Entries++
		entry(serial, reason)
	}
	if s.pos() != end {
		return s.malformed("revokedCertificates length")
	}
	return nil
}

type entryError string

func (e entryError) Error() string { return string(e) }

// parseEntry parses the contents of one revokedCertificates entry.
func parseEntry(body cryptobyte.String) (serial []byte, reason int, err error) {
	// Fast path: the common entry without extensions, short-form lengths.
	if len(body) > 2 && body[0] == 0x02 && body[1] < 0x80 && int(body[1])+2 < len(body) {
		ser, rest := body[2:2+int(body[1])], body[2+int(body[1]):]
		if len(rest) >= 2 && len(rest) == 2+int(rest[1]) && (rest[0] == 0x17 || rest[0] == 0x18) {
			if err := checkSerial(ser); err != nil {
				return nil, 0, err
			}
			if !plausibleTime(cbasn1.Tag(rest[0]), rest[2:]) {
				return nil, 0, entryError("entry revocationDate")
			}
			return ser, 0, nil
		}
	}
	var ser, tm cryptobyte.String
	var tag cbasn1.Tag
	if !body.ReadASN1(&ser, cbasn1.INTEGER) {
		return nil, 0, entryError("entry serial")
	}
	if err := checkSerial(ser); err != nil {
		return nil, 0, err
	}
	if !body.ReadAnyASN1(&tm, &tag) || !plausibleTime(tag, tm) {
		return nil, 0, entryError("entry revocationDate")
	}
	if !body.Empty() {
		var exts cryptobyte.String
		if !body.ReadASN1(&exts, cbasn1.SEQUENCE) || !body.Empty() || exts.Empty() {
			return nil, 0, entryError("entry extensions")
		}
		for !exts.Empty() {
			oid, critical, val, ok := readExtension(&exts)
			if !ok {
				return nil, 0, entryError("entry extension")
			}
			switch {
			case oid.Equal(oidReasonCode):
				var e cryptobyte.String
				if !val.ReadASN1(&e, cbasn1.ENUM) || !val.Empty() || len(e) != 1 || e[0] > 10 || e[0] == 7 {
					return nil, 0, entryError("entry reasonCode")
				}
				reason = int(e[0])
			case oid.Equal(oidCertIssuer):
				return nil, 0, entryError("certificateIssuer entry extension: indirect CRLs are not supported")
			case oid.Equal(oidInvalidityDate):
			default:
				if critical {
					return nil, 0, entryError("unknown critical entry extension " + oid.String())
				}
			}
		}
	}
	return ser, reason, nil
}

// checkSerial enforces DER INTEGER rules on a serial: non-empty, minimal
// two's complement (as crypto/x509 does), at most maxSerialLen bytes.
func checkSerial(ser []byte) error {
	if len(ser) == 0 || len(ser) > 1 && (ser[0] == 0 && ser[1]&0x80 == 0 || ser[0] == 0xff && ser[1]&0x80 != 0) {
		return entryError("entry serial is not minimally encoded")
	}
	if len(ser) > maxSerialLen {
		return entryError("entry serial longer than 32 bytes")
	}
	return nil
}

// plausibleTime checks a revocationDate's shape without converting it
// (the date is not stored): UTCTime YYMMDDHHMMSSZ or GeneralizedTime
// YYYYMMDDHHMMSSZ, digits then "Z", as RFC 5280 §5.1.2.6 requires.
func plausibleTime(tag cbasn1.Tag, v []byte) bool {
	if !(tag == cbasn1.UTCTime && len(v) == 13 || tag == cbasn1.GeneralizedTime && len(v) == 15) || v[len(v)-1] != 'Z' {
		return false
	}
	// Eight bytes at a time (SWAR): with every byte ASCII, b-0x30 sets a
	// byte's high bit iff b < '0', and b+0x46 sets it iff b > '9'; neither
	// carries between bytes unless some byte is already out of range.
	digits := v[:len(v)-1]
	for len(digits) >= 8 {
		x := binary.LittleEndian.Uint64(digits)
		if x&0x8080808080808080 != 0 || ((x-0x3030303030303030)|(x+0x4646464646464646))&0x8080808080808080 != 0 {
			return false
		}
		digits = digits[8:]
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// readExtension reads one Extension (RFC 5280 §4.1).
func readExtension(in *cryptobyte.String) (oid asn1.ObjectIdentifier, critical bool, val cryptobyte.String, ok bool) {
	var ext cryptobyte.String
	if !in.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&oid) {
		return nil, false, nil, false
	}
	if ext.PeekASN1Tag(cbasn1.BOOLEAN) {
		if !ext.ReadASN1Boolean(&critical) || !critical { // DER: DEFAULT FALSE is omitted
			return nil, false, nil, false
		}
	}
	if !ext.ReadASN1(&val, cbasn1.OCTET_STRING) || !ext.Empty() {
		return nil, false, nil, false
	}
	return oid, critical, val, true
}

// parseCRLExtensions reads crlExtensions ([0] EXPLICIT Extensions).
func parseCRLExtensions(el []byte, info *CRLInfo, sig *crlSig) error {
	in := cryptobyte.String(el)
	var outer, exts cryptobyte.String
	if !in.ReadASN1(&outer, cbasn1.Tag(0).Constructed().ContextSpecific()) || !in.Empty() ||
		!outer.ReadASN1(&exts, cbasn1.SEQUENCE) || !outer.Empty() {
		return fmt.Errorf("%w: crlExtensions", ErrMalformed)
	}
	seen := map[string]bool{}
	for !exts.Empty() {
		oid, critical, val, ok := readExtension(&exts)
		if !ok {
			return fmt.Errorf("%w: CRL extension", ErrMalformed)
		}
		if seen[oid.String()] {
			return fmt.Errorf("%w: duplicate CRL extension %v", ErrMalformed, oid)
		}
		seen[oid.String()] = true
		switch {
		case oid.Equal(oidCRLNumber), oid.Equal(oidDeltaCRL):
			n := new(big.Int)
			if !val.ReadASN1Integer(n) || !val.Empty() || n.Sign() < 0 || len(n.Bytes()) > maxNumLen {
				return fmt.Errorf("%w: CRL number extension %v", ErrMalformed, oid)
			}
			if oid.Equal(oidCRLNumber) {
				info.Number = n
			} else {
				info.BaseNumber = n
			}
		case oid.Equal(oidAKI):
			var seq, kid cryptobyte.String
			if !val.ReadASN1(&seq, cbasn1.SEQUENCE) || !val.Empty() {
				return fmt.Errorf("%w: authorityKeyIdentifier", ErrMalformed)
			}
			if seq.PeekASN1Tag(cbasn1.Tag(0).ContextSpecific()) {
				if !seq.ReadASN1(&kid, cbasn1.Tag(0).ContextSpecific()) {
					return fmt.Errorf("%w: authorityKeyIdentifier keyIdentifier", ErrMalformed)
				}
				sig.aki = append([]byte(nil), kid...)
			}
		case oid.Equal(oidIDP):
			if err := checkIDP(val); err != nil {
				return err
			}
		default:
			if critical {
				return fmt.Errorf("%w: unknown critical CRL extension %v", ErrUnsupported, oid)
			}
		}
	}
	return nil
}

// checkIDP accepts an issuingDistributionPoint that only names the
// distribution point and/or limits the scope to user certificates (which
// JPKI end entities are); partitioned, indirect or attribute CRLs are
// refused rather than half-understood.
func checkIDP(val cryptobyte.String) error {
	var seq cryptobyte.String
	if !val.ReadASN1(&seq, cbasn1.SEQUENCE) || !val.Empty() {
		return fmt.Errorf("%w: issuingDistributionPoint", ErrMalformed)
	}
	for !seq.Empty() {
		var tag cbasn1.Tag
		var v cryptobyte.String
		if !seq.ReadAnyASN1(&v, &tag) {
			return fmt.Errorf("%w: issuingDistributionPoint", ErrMalformed)
		}
		switch tag {
		case cbasn1.Tag(0).Constructed().ContextSpecific(), cbasn1.Tag(1).ContextSpecific():
		default:
			return fmt.Errorf("%w: issuingDistributionPoint field %#x (partitioned or indirect CRL)", ErrUnsupported, uint8(tag))
		}
	}
	return nil
}

// verifyIssuer finds the candidate that signed the CRL.
func verifyIssuer(info *CRLInfo, candidates []*x509.Certificate, digest []byte, sig *crlSig) (*x509.Certificate, error) {
	var named []*x509.Certificate
	for _, c := range candidates {
		if c != nil && bytes.Equal(c.RawSubject, sig.issuerDN) {
			named = append(named, c)
		}
	}
	if len(sig.aki) > 0 {
		var byKey []*x509.Certificate
		for _, c := range named {
			if bytes.Equal(c.SubjectKeyId, sig.aki) {
				byKey = append(byKey, c)
			}
		}
		named = byKey
	}
	if len(named) == 0 {
		return nil, fmt.Errorf("%w: no candidate with the CRL's issuer name and key identifier %x", ErrUnknownIssuer, sig.aki)
	}
	var lastErr error = ErrBadSignature
	for _, c := range named {
		if c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCRLSign == 0 {
			lastErr = fmt.Errorf("%w: candidate issuer lacks cRLSign", ErrBadSignature)
			continue
		}
		pub, ok := c.PublicKey.(*rsa.PublicKey)
		if !ok {
			lastErr = fmt.Errorf("%w: candidate issuer key is not RSA", ErrBadSignature)
			continue
		}
		if err := rsa.VerifyPKCS1v15(pub, sig.hash, digest, sig.signature); err == nil {
			return c, nil
		}
	}
	if lastErr == ErrBadSignature {
		return nil, fmt.Errorf("%w: no candidate key verifies the CRL", ErrBadSignature)
	}
	return nil, lastErr
}
