package revocation

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/big"
	"math/bits"
	"time"
)

// Store file format, version 2 (version 1, without the delta groups, is
// still read). All integers little-endian.
//
//	header   magic "KZRV" | version u16 = 2 | flags u16 = 0 | issuers u32 | reserved u32 = 0
//	issuer   id [32] | thisUpdate i64 | nextUpdate i64 (unix s; 0 = none)
//	         | numberLen u8 | number [20] | deltaLen u8 | delta [20]
//	         | entries u64 | group base | group delta-add | group delta-remove
//	group    segments u32 | segment...
//	segment  serialLen u8 | width u8 | shift u8 | bucketBits u8 | n u32
//	         | min u64 | span u64 | prefix [serialLen-8 if > 8]
//	         | offsets [(2^bucketBits+1) u32] | packed [n*width + 8 zero bytes]
//	trailer  CRC-32C (Castagnoli) of everything before, u32
//
// Segments of a group are ordered: short serials by length, then long
// ones by (length, prefix). The loader checks every field, the offsets'
// monotonicity and the strict order of values, so a loaded set is exact.
const (
	fileMagic   = "KZRV"
	fileVersion = 2
	maxIssuers  = 1024
	maxNumLen   = 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func marshalSet(s *Set) []byte {
	size := 16 + 4
	for _, is := range s.issuers {
		size += 32 + 16 + 42 + 8
		for _, gr := range is.groups() {
			size += 4
			for _, g := range gr.segs() {
				size += 24 + len(g.prefix) + len(g.offsets) + len(g.packed)
			}
		}
	}
	b := make([]byte, 0, size)
	b = append(b, fileMagic...)
	b = binary.LittleEndian.AppendUint16(b, fileVersion)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s.issuers)))
	b = binary.LittleEndian.AppendUint32(b, 0)
	for _, is := range s.issuers {
		in := is.info
		b = append(b, in.Issuer[:]...)
		b = binary.LittleEndian.AppendUint64(b, uint64(unixOrZero(in.ThisUpdate)))
		b = binary.LittleEndian.AppendUint64(b, uint64(unixOrZero(in.NextUpdate)))
		b = appendNum(b, in.Number)
		b = appendNum(b, in.DeltaNumber)
		b = binary.LittleEndian.AppendUint64(b, uint64(in.Entries))
		for _, gr := range is.groups() {
			segs := gr.segs()
			b = binary.LittleEndian.AppendUint32(b, uint32(len(segs)))
			for _, g := range segs {
				b = append(b, byte(g.serialLen), byte(g.width), byte(g.shift), byte(g.bucketBits))
				b = binary.LittleEndian.AppendUint32(b, uint32(g.n))
				b = binary.LittleEndian.AppendUint64(b, g.min)
				b = binary.LittleEndian.AppendUint64(b, g.span)
				b = append(b, g.prefix...)
				b = append(b, g.offsets...)
				b = append(b, g.packed...)
			}
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func (is *issuerSet) groups() []*group { return []*group{&is.base, &is.add, &is.rem} }

func (gr *group) segs() []*segment {
	var out []*segment
	for _, g := range gr.short {
		if g != nil {
			out = append(out, g)
		}
	}
	return append(out, gr.long...)
}

// count returns the number of serials in the group.
func (gr *group) count() int {
	n := 0
	for _, g := range gr.segs() {
		n += g.n
	}
	return n
}

// each calls f with every serial of the group (for the small delta groups).
func (gr *group) each(f func(serial []byte)) {
	var buf [maxSerialLen]byte
	for _, g := range gr.segs() {
		k := segKey{g.serialLen, string(g.prefix)}
		for _, v := range g.values(nil) {
			f(serialOf(buf[:0], k, v))
		}
	}
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func timeOrZero(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(v, 0).UTC()
}

func appendNum(b []byte, n *big.Int) []byte {
	var fixed [maxNumLen]byte
	if n == nil {
		b = append(b, 0)
		return append(b, fixed[:]...)
	}
	raw := n.Bytes()
	if len(raw) == 0 {
		raw = []byte{0} // zero: length 1 distinguishes it from "absent"
	}
	b = append(b, byte(len(raw)))
	copy(fixed[:], raw)
	return append(b, fixed[:]...)
}

// reader is a bounds-checked cursor over the store file.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = &MalformedError{Offset: int64(r.off), What: "store: " + what}
	}
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.fail("truncated")
		return nil
	}
	v := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return v
}

func (r *reader) u8() byte {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.bytes(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.bytes(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *reader) num() *big.Int {
	l := int(r.u8())
	raw := r.bytes(maxNumLen)
	if r.err != nil {
		return nil
	}
	if l > maxNumLen {
		r.fail("CRL number too long")
		return nil
	}
	for _, c := range raw[l:] {
		if c != 0 {
			r.fail("CRL number padding not zero")
			return nil
		}
	}
	if l == 0 {
		return nil
	}
	return new(big.Int).SetBytes(raw[:l])
}

// loadSet parses and checks a store file image. The returned set keeps
// views into b; b must not be modified afterwards.
func loadSet(b []byte) (*Set, error) {
	if len(b) < 24 {
		return nil, &MalformedError{What: "store: file too short"}
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, &MalformedError{Offset: int64(len(b) - 4), What: "store: checksum mismatch"}
	}
	r := &reader{b: body}
	if string(r.bytes(4)) != fileMagic {
		return nil, &MalformedError{What: "store: not a kazasu revocation store"}
	}
	version := binary.LittleEndian.Uint16(r.bytes(2))
	if version != 1 && version != fileVersion {
		return nil, fmt.Errorf("%w: store format version %d", ErrUnsupported, version)
	}
	if f := binary.LittleEndian.Uint16(r.bytes(2)); f != 0 {
		return nil, fmt.Errorf("%w: store flags %#x", ErrUnsupported, f)
	}
	ni := r.u32()
	if r.u32() != 0 {
		r.fail("reserved field not zero")
	}
	if ni > maxIssuers {
		r.fail("too many issuers")
	}
	s := &Set{size: len(b)}
	for i := 0; i < int(ni) && r.err == nil; i++ {
		is := &issuerSet{}
		copy(is.info.Issuer[:], r.bytes(32))
		is.info.ThisUpdate = timeOrZero(int64(r.u64()))
		is.info.NextUpdate = timeOrZero(int64(r.u64()))
		is.info.Number = r.num()
		is.info.DeltaNumber = r.num()
		entries := r.u64()
		if r.err != nil {
			break
		}
		if is.info.Number == nil {
			r.fail("issuer without CRL number")
			break
		}
		for _, o := range s.issuers {
			if o.info.Issuer == is.info.Issuer {
				r.fail("duplicate issuer")
			}
		}
		groups := is.groups()
		if version == 1 {
			groups = groups[:1]
		}
		for _, gr := range groups {
			readGroup(r, gr)
		}
		if r.err == nil && is.info.DeltaNumber == nil && (is.add.count() > 0 || is.rem.count() > 0) {
			r.fail("delta entries without a delta CRL number")
		}
		if r.err == nil && uint64(effectiveCount(is)) != entries {
			r.fail("entry count mismatch")
		}
		is.info.Entries = int(entries)
		s.issuers = append(s.issuers, is)
	}
	if r.err == nil && r.off != len(body) {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, r.err
	}
	return s, nil
}

// readGroup reads one group's segments.
func readGroup(r *reader, gr *group) {
	nseg := r.u32()
	var prev *segment
	for j := 0; j < int(nseg) && r.err == nil; j++ {
		g := readSegment(r)
		if r.err != nil {
			return
		}
		if prev != nil && !segLess(prev, g) {
			r.fail("segments out of order")
			return
		}
		prev = g
		if g.serialLen <= 8 {
			gr.short[g.serialLen] = g
		} else {
			gr.long = append(gr.long, g)
		}
	}
}

// effectiveCount is the number of serials the issuer's set reports
// revoked: the base, minus removals, plus the delta's additions.
func effectiveCount(is *issuerSet) int {
	n := is.base.count()
	is.add.each(func(s []byte) {
		if !is.base.contains(s) || is.rem.contains(s) {
			n++
		}
	})
	is.rem.each(func(s []byte) {
		if is.base.contains(s) && !is.add.contains(s) {
			n--
		}
	})
	return n
}

func segLess(a, b *segment) bool {
	if a.serialLen != b.serialLen {
		return a.serialLen < b.serialLen
	}
	return bytes.Compare(a.prefix, b.prefix) < 0
}

func readSegment(r *reader) *segment {
	g := &segment{}
	g.serialLen = int(r.u8())
	g.width = int(r.u8())
	g.shift = uint(r.u8())
	g.bucketBits = uint(r.u8())
	g.n = int(r.u32())
	g.min = r.u64()
	g.span = r.u64()
	if r.err != nil {
		return nil
	}
	switch {
	case g.serialLen < 1 || g.serialLen > maxSerialLen:
		r.fail("serial length out of range")
	case g.n < 1:
		r.fail("empty segment")
	case g.bucketBits > 26:
		r.fail("too many buckets")
	case g.bucketBits+g.shift != uint(bits.Len64(g.span)):
		r.fail("bucket split does not match span")
	case g.width != int((g.shift+7)/8):
		r.fail("width does not match shift")
	case g.serialLen < 8 && (g.min+g.span < g.min || bits.Len64(g.min+g.span) > 8*g.serialLen):
		r.fail("values exceed serial length")
	case g.min+g.span < g.min:
		r.fail("span overflows")
	}
	if r.err != nil {
		return nil
	}
	if g.serialLen > 8 {
		g.prefix = r.bytes(g.serialLen - 8)
	}
	nb := 1 << g.bucketBits
	if g.width == 0 && g.n > nb {
		// Zero-width values: at most one per bucket. Without this bound a
		// tiny file could claim billions of entries.
		r.fail("more entries than buckets")
		return nil
	}
	g.offsets = r.bytes(4 * (nb + 1))
	if r.err != nil {
		return nil
	}
	if uint64(g.n)*uint64(g.width)+8 > uint64(len(r.b)) {
		r.fail("segment larger than file")
		return nil
	}
	g.packed = r.bytes(g.n*g.width + 8)
	if r.err != nil {
		return nil
	}
	for _, c := range g.packed[g.n*g.width:] {
		if c != 0 {
			r.fail("padding not zero")
			return nil
		}
	}
	// Offsets start at 0, never decrease and end at n; values within a
	// bucket strictly increase and fit the low part and the span.
	if g.off(0) != 0 || g.off(uint64(nb)) != g.n {
		r.fail("bucket offsets do not cover the segment")
		return nil
	}
	mask := uint64(1)<<g.shift - 1
	for b := 0; b < nb; b++ {
		lo, hi := g.off(uint64(b)), g.off(uint64(b+1))
		if hi < lo || hi > g.n {
			r.fail("bucket offsets decrease")
			return nil
		}
		for i := lo; i < hi; i++ {
			v := g.at(i)
			if v&^mask != 0 || (i > lo && v <= g.at(i-1)) || uint64(b)<<g.shift|v > g.span {
				r.fail("values out of order or range")
				return nil
			}
			if g.width == 0 && hi-lo > 1 {
				r.fail("duplicate values")
				return nil
			}
		}
	}
	return g
}
