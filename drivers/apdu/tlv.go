package apdu

import (
	"fmt"
	"io"
)

// TLV is one BER-TLV data object (ISO/IEC 7816-4 §5.2).
type TLV struct {
	// Tag holds the tag bytes big-endian: 0x5A, 0xDF21, 0xFF20, 0x7F21.
	Tag uint32
	// Constructed is b6 of the first tag byte: Value holds data objects.
	Constructed bool
	// Value aliases the parsed buffer.
	Value []byte
}

// Children parses the value of a constructed object.
func (t TLV) Children() ([]TLV, error) {
	if !t.Constructed {
		return nil, fmt.Errorf("%w: tag %X is primitive", ErrMalformed, t.Tag)
	}
	return ParseTLVs(t.Value)
}

func (t TLV) String() string { return fmt.Sprintf("%X[%d]", t.Tag, len(t.Value)) }

// MaxTagBytes bounds the tag length; kazasu's cards use at most 2 (DF21,
// FF20, 7F21), ISO/IEC 7816-4 allows 3.
const MaxTagBytes = 3

// TLVReader reads consecutive BER-TLV objects from a buffer.
//
// Leniency (jpki.md §4.2): the JPKI text AP pads its EFs with 00 and FF
// after the last object, so a remainder made only of 00/FF bytes ends the
// sequence. 00 bytes before a tag are skipped as ISO/IEC 7816-4 §5.2
// permits; FF is not, because FF starts private constructed tags (FF20).
type TLVReader struct {
	b   []byte
	off int
}

// NewTLVReader returns a reader over b.
func NewTLVReader(b []byte) *TLVReader { return &TLVReader{b: b} }

// Offset returns the number of bytes consumed.
func (r *TLVReader) Offset() int { return r.off }

// Next returns the next object, io.EOF at the end (or at filler), or an
// error wrapping ErrMalformed. After an error the reader stays at the bad
// object.
func (r *TLVReader) Next() (TLV, error) {
	rest := r.b[r.off:]
	if onlyFiller(rest) {
		r.off = len(r.b)
		return TLV{}, io.EOF
	}
	i := 0
	for i < len(rest) && rest[i] == 0x00 {
		i++
	}
	start := i
	bad := func(why string) (TLV, error) {
		return TLV{}, fmt.Errorf("%w: BER-TLV at offset %d: %s", ErrMalformed, r.off+start, why)
	}
	// Tag: first byte, then continuation bytes while b8 is set.
	first := rest[i]
	tag := uint32(first)
	i++
	if first&0x1F == 0x1F {
		for n := 1; ; n++ {
			if i >= len(rest) {
				return bad("truncated tag")
			}
			if n >= MaxTagBytes {
				return bad("tag longer than 3 bytes")
			}
			tag = tag<<8 | uint32(rest[i])
			i++
			if rest[i-1]&0x80 == 0 {
				break
			}
		}
	}
	// Length: short form, or 81…83 followed by 1–3 bytes.
	if i >= len(rest) {
		return bad("missing length")
	}
	l := int(rest[i])
	i++
	if l > 0x7F {
		n := l & 0x7F
		switch {
		case n == 0:
			return bad("indefinite length")
		case n > 3:
			return bad(fmt.Sprintf("%d length bytes", n))
		case len(rest)-i < n:
			return bad("truncated length")
		}
		l = 0
		for _, b := range rest[i : i+n] {
			l = l<<8 | int(b)
		}
		i += n
	}
	if l > len(rest)-i {
		return bad(fmt.Sprintf("length %d beyond the %d bytes left", l, len(rest)-i))
	}
	t := TLV{Tag: tag, Constructed: first&0x20 != 0, Value: rest[i : i+l : i+l]}
	r.off += i + l
	return t, nil
}

func onlyFiller(b []byte) bool {
	for _, c := range b {
		if c != 0x00 && c != 0xFF {
			return false
		}
	}
	return true
}

// ParseTLVs parses every object in b (filler allowed at the end).
func ParseTLVs(b []byte) ([]TLV, error) {
	var out []TLV
	r := NewTLVReader(b)
	for {
		t, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
}

// FindTLV returns the value of the first object with tag at the top level
// of b, and whether there was one.
func FindTLV(b []byte, tag uint32) ([]byte, bool, error) {
	r := NewTLVReader(b)
	for {
		t, err := r.Next()
		if err == io.EOF {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		if t.Tag == tag {
			return t.Value, true, nil
		}
	}
}
