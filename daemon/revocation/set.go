package revocation

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/big"
	"math/bits"
	"slices"
	"time"
)

// IssuerID identifies a CA by its key: the SHA-256 of its
// SubjectPublicKeyInfo. JPKI root generations share a DN, so names cannot
// tell them apart.
type IssuerID [32]byte

// IssuerIDOf returns the IssuerID of a CA certificate.
func IssuerIDOf(c *x509.Certificate) IssuerID { return sha256.Sum256(c.RawSubjectPublicKeyInfo) }

func (id IssuerID) String() string { return hex.EncodeToString(id[:]) }

// SerialBytes returns the DER INTEGER contents of a serial number (minimal
// two's complement), the form revocation sets are keyed by.
func SerialBytes(n *big.Int) []byte {
	switch n.Sign() {
	case 0:
		return []byte{0}
	case 1:
		b := n.Bytes()
		if b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// Negative: two's complement of |n| over enough bytes.
	nMinusOne := new(big.Int).Neg(n)
	nMinusOne.Sub(nMinusOne, big.NewInt(1))
	b := nMinusOne.Bytes()
	for i := range b {
		b[i] ^= 0xff
	}
	if len(b) == 0 || b[0]&0x80 == 0 {
		b = append([]byte{0xff}, b...)
	}
	return b
}

// maxSerialLen bounds stored serials. RFC 5280 §4.1.2.2 allows 20 octets;
// non-conforming CAs exceed that slightly, so accept some slack.
const maxSerialLen = 32

// IssuerInfo is what the set knows about one issuer's CRLs.
type IssuerInfo struct {
	Issuer      IssuerID
	Number      *big.Int // cRLNumber of the complete CRL applied
	DeltaNumber *big.Int // cRLNumber of the last delta applied over it, or nil
	ThisUpdate  time.Time
	NextUpdate  time.Time // zero if the CRL had none
	Entries     int       // revoked serials held
}

// segment holds the serials of one issuer that share length and leading
// bytes (all but the last eight): their last eight bytes v, as
// d = v - min, bucketed by d >> shift, with the low shift bits stored in
// width bytes, big-endian, sorted within each bucket.
type segment struct {
	serialLen  int
	prefix     []byte
	n          int
	min, span  uint64
	shift      uint // bits in the low part
	width      int  // bytes per low part: ceil(shift/8)
	bucketBits uint
	offsets    []byte // (1<<bucketBits)+1 little-endian uint32
	packed     []byte // n*width bytes + 8 zero bytes of padding
}

func (g *segment) off(b uint64) int {
	return int(binary.LittleEndian.Uint32(g.offsets[4*b:]))
}

// at returns the low part of entry i (padding makes the 8-byte load safe).
func (g *segment) at(i int) uint64 {
	return binary.BigEndian.Uint64(g.packed[i*g.width:]) >> (64 - 8*uint(g.width))
}

func (g *segment) contains(v uint64) bool {
	if v < g.min {
		return false
	}
	d := v - g.min
	if d > g.span {
		return false
	}
	b := d >> g.shift
	lo, hi := g.off(b), g.off(b+1)
	low := d & (1<<g.shift - 1)
	if g.width == 0 {
		return hi > lo
	}
	if hi-lo <= 8 {
		for i := lo; i < hi; i++ {
			if x := g.at(i); x >= low {
				return x == low
			}
		}
		return false
	}
	// Interpolation: values in a bucket are spread over [0, 2^shift), so
	// the expected index is lo + low*(hi-lo)/2^shift; step from there
	// towards the value. For random serials this touches one or two cache
	// lines instead of a binary search's three or four.
	ph, pl := bits.Mul64(low, uint64(hi-lo))
	var est uint64
	if g.shift == 0 {
		est = pl
	} else if g.shift >= 64 {
		est = ph >> (g.shift - 64)
	} else {
		est = ph<<(64-g.shift) | pl>>g.shift
	}
	i := lo + int(min(est, uint64(hi-lo-1)))
	x := g.at(i)
	switch {
	case x == low:
		return true
	case x < low:
		lo = i + 1
	default:
		hi = i
	}
	// A few steps towards the value cover random data; skewed buckets
	// (a dense cluster among sparse serials) fall back to binary search,
	// so no lookup scans more than a handful of entries.
	const steps = 8
	if x < low {
		for k := 0; k < steps && lo < hi; k++ {
			if x = g.at(lo); x >= low {
				return x == low
			}
			lo++
		}
	} else {
		for k := 0; k < steps && lo < hi; k++ {
			if x = g.at(hi - 1); x <= low {
				return x == low
			}
			hi--
		}
	}
	end := hi
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if g.at(m) < low {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < end && g.at(lo) == low
}

// values appends the segment's values in ascending order.
func (g *segment) values(out []uint64) []uint64 {
	nb := uint64(1) << g.bucketBits
	for b := uint64(0); b < nb; b++ {
		for i := g.off(b); i < g.off(b+1); i++ {
			out = append(out, g.min+(b<<g.shift|g.at(i)))
		}
	}
	return out
}

// group is a set of serials of one issuer: segments by serial length and
// leading bytes.
type group struct {
	short [9]*segment // by serial length 1…8
	long  []*segment  // serials longer than 8 bytes, sorted by (len, prefix)
}

// issuerSet is one issuer's part of a Set: the complete CRL, and the
// latest delta CRL over it as two small groups. Delta CRLs are cumulative
// from their base (RFC 5280 §5.2.4), so a newer delta replaces the older
// one instead of being applied on top of it: a certificate put on hold and
// released between two deltas simply stops being listed.
type issuerSet struct {
	info     IssuerInfo
	base     group // the complete CRL
	add, rem group // the delta: revoked since the base / removeFromCRL
}

func (is *issuerSet) contains(serial []byte) bool {
	if is.base.contains(serial) {
		return !is.rem.contains(serial) || is.add.contains(serial)
	}
	return is.add.contains(serial)
}

// Set is an immutable, exact revocation set. Lookups are safe for
// concurrent use.
type Set struct {
	issuers []*issuerSet
	size    int // bytes of the encoded form backing the set
}

// Issuers lists what the set holds per issuer.
func (s *Set) Issuers() []IssuerInfo {
	if s == nil {
		return nil
	}
	out := make([]IssuerInfo, len(s.issuers))
	for i, is := range s.issuers {
		out[i] = is.info
	}
	return out
}

// Info returns the issuer's information, if the set holds a CRL for it.
func (s *Set) Info(issuer IssuerID) (IssuerInfo, bool) {
	if is := s.issuer(issuer); is != nil {
		return is.info, true
	}
	return IssuerInfo{}, false
}

// Len returns the number of revoked serials over all issuers.
func (s *Set) Len() int {
	n := 0
	if s != nil {
		for _, is := range s.issuers {
			n += is.info.Entries
		}
	}
	return n
}

// Size returns the bytes of the encoded set, which is also what it holds
// in memory (the segments are views into it).
func (s *Set) Size() int {
	if s == nil {
		return 0
	}
	return s.size
}

func (s *Set) issuer(id IssuerID) *issuerSet {
	if s == nil {
		return nil
	}
	for _, is := range s.issuers { // a handful of CA generations: a scan beats a map
		if is.info.Issuer == id {
			return is
		}
	}
	return nil
}

// Revoked reports whether serial (DER INTEGER contents, as from
// SerialBytes) of the issuer is in the set.
func (s *Set) Revoked(issuer IssuerID, serial []byte) bool {
	is := s.issuer(issuer)
	if is == nil {
		return false
	}
	return is.contains(serial)
}

func (gr *group) contains(serial []byte) bool {
	l := len(serial)
	if l == 0 {
		return false
	}
	if l <= 8 {
		g := gr.short[l]
		return g != nil && g.contains(beUint(serial))
	}
	if len(gr.long) == 0 {
		return false
	}
	i, ok := slices.BinarySearchFunc(gr.long, serial, func(g *segment, s []byte) int {
		if g.serialLen != len(s) {
			return g.serialLen - len(s)
		}
		return bytes.Compare(g.prefix, s[:len(s)-8])
	})
	return ok && gr.long[i].contains(beUint(serial[l-8:]))
}

func beUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// segKey names a segment: serial length and leading bytes.
type segKey struct {
	serialLen int
	prefix    string
}

func keyOf(serial []byte) (segKey, uint64) {
	l := len(serial)
	if l <= 8 {
		return segKey{serialLen: l}, beUint(serial)
	}
	return segKey{l, string(serial[:l-8])}, beUint(serial[l-8:])
}

func putBE(dst []byte, v uint64, w int) {
	for i := w - 1; i >= 0; i-- {
		dst[i] = byte(v)
		v >>= 8
	}
}

func (g *segment) String() string {
	return fmt.Sprintf("segment(len=%d prefix=%x n=%d width=%d buckets=2^%d)", g.serialLen, g.prefix, g.n, g.width, g.bucketBits)
}
