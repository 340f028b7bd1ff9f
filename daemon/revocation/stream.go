package revocation

import (
	"errors"
	"hash"
	"io"
)

// stream is a bounds-checked incremental DER reader over an io.Reader. It
// keeps a window of at most len(buf) bytes; every read asks for an exact
// number of bytes and fails cleanly at end of input. While hashing is on,
// every consumed byte is fed to h, in large blocks (at refill time), so
// the signed part of a CRL is hashed as it passes without being kept.
type stream struct {
	r      io.Reader
	buf    []byte
	lo, hi int   // unread window is buf[lo:hi]
	base   int64 // input offset of buf[0]
	eof    bool

	h       hash.Hash
	hashing bool
	hashLo  int // buf index from which consumed bytes are not yet hashed
}

const streamBuf = 256 << 10

func newStream(r io.Reader) *stream {
	return &stream{r: r, buf: make([]byte, streamBuf)}
}

// pos is the input offset of the next unread byte.
func (s *stream) pos() int64 { return s.base + int64(s.lo) }

func (s *stream) malformed(what string) error {
	return &MalformedError{Offset: s.pos(), What: what}
}

// flushHash hashes the consumed, not yet hashed bytes.
func (s *stream) flushHash() {
	if s.hashing && s.lo > s.hashLo {
		s.h.Write(s.buf[s.hashLo:s.lo])
	}
	s.hashLo = s.lo
}

func (s *stream) startHash(h hash.Hash) {
	s.h, s.hashing, s.hashLo = h, true, s.lo
}

func (s *stream) stopHash() {
	s.flushHash()
	s.hashing = false
}

// fill makes at least n bytes available (n ≤ len(buf)).
func (s *stream) fill(n int) error {
	if n > len(s.buf) {
		return s.malformed("element larger than the read window")
	}
	s.flushHash()
	if s.lo > 0 {
		copy(s.buf, s.buf[s.lo:s.hi])
		s.base += int64(s.lo)
		s.hi -= s.lo
		s.lo, s.hashLo = 0, 0
	}
	for s.hi-s.lo < n {
		if s.eof {
			return s.malformed("truncated")
		}
		m, err := s.r.Read(s.buf[s.hi:])
		s.hi += m
		if errors.Is(err, io.EOF) {
			s.eof = true
		} else if err != nil {
			return err
		}
	}
	return nil
}

// next consumes exactly n bytes and returns them. The slice is valid until
// the next call.
func (s *stream) next(n int) ([]byte, error) {
	if s.hi-s.lo < n {
		if err := s.fill(n); err != nil {
			return nil, err
		}
	}
	b := s.buf[s.lo : s.lo+n]
	s.lo += n
	return b, nil
}

// atEOF reports whether the input is exhausted.
func (s *stream) atEOF() (bool, error) {
	if s.hi > s.lo {
		return false, nil
	}
	if err := s.fill(1); err != nil {
		var me *MalformedError
		if errors.As(err, &me) {
			return true, nil
		}
		return false, err
	}
	return false, nil
}

// peekTag returns the next tag byte without consuming it.
func (s *stream) peekTag() (byte, error) {
	if s.hi-s.lo < 1 {
		if err := s.fill(1); err != nil {
			return 0, err
		}
	}
	return s.buf[s.lo], nil
}

// header reads a DER tag (low-tag-number form only) and definite length,
// checks the tag and the minimal length encoding, and returns the length
// and the header size.
func (s *stream) header(want byte) (int64, int, error) {
	b, err := s.next(2)
	if err != nil {
		return 0, 0, err
	}
	if b[0] != want {
		return 0, 0, &MalformedError{Offset: s.pos() - 2, What: "unexpected tag"}
	}
	l := b[1]
	if l < 0x80 {
		return int64(l), 2, nil
	}
	n := int(l & 0x7f)
	if n == 0 {
		return 0, 0, s.malformed("indefinite length (BER, not DER)")
	}
	if n > 7 {
		return 0, 0, s.malformed("length too large")
	}
	lb, err := s.next(n)
	if err != nil {
		return 0, 0, err
	}
	if lb[0] == 0 {
		return 0, 0, s.malformed("non-minimal length")
	}
	var v int64
	for _, c := range lb {
		v = v<<8 | int64(c)
	}
	if v < 0x80 {
		return 0, 0, s.malformed("non-minimal length")
	}
	return v, 2 + n, nil
}

// element reads a whole TLV of at most limit content bytes and returns its
// full encoding (header included). tag 0 accepts any low-number tag.
func (s *stream) element(tag byte, limit int) ([]byte, error) {
	t, err := s.peekTag()
	if err != nil {
		return nil, err
	}
	if tag != 0 && t != tag {
		return nil, s.malformed("unexpected tag")
	}
	if t&0x1f == 0x1f {
		return nil, s.malformed("high tag number form")
	}
	n, _, err := s.header(t)
	if err != nil {
		return nil, err
	}
	if n > int64(limit) {
		return nil, s.malformed("element too long")
	}
	body, err := s.next(int(n))
	if err != nil {
		return nil, err
	}
	// The length was checked to be minimal, so re-encoding the header
	// gives back the input bytes.
	hdr := appendHeader(make([]byte, 0, 8+len(body)), t, n)
	return append(hdr, body...), nil
}

// appendHeader appends a DER tag and minimal definite length.
func appendHeader(b []byte, tag byte, n int64) []byte {
	if n < 0x80 {
		return append(b, tag, byte(n))
	}
	k := 0
	for v := n; v > 0; v >>= 8 {
		k++
	}
	b = append(b, tag, 0x80|byte(k))
	for i := k - 1; i >= 0; i-- {
		b = append(b, byte(n>>(8*i)))
	}
	return b
}
