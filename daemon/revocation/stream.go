package revocation

import (
	"errors"
	"hash"
	"io"
)

// pipeHasher hashes one byte range [lo, hi) of an input on its own
// goroutine. It is fed copies of everything the stream reads, in order,
// before the range is known (the hash algorithm comes from inside the
// signed data); blocks that arrive before start are held, then hashed.
type pipeHasher struct {
	ch   chan hashMsg
	free chan []byte
	out  chan []byte
}

type hashMsg struct {
	off    int64
	b      []byte
	start  bool
	h      hash.Hash
	lo, hi int64
}

func newPipeHasher() *pipeHasher {
	p := &pipeHasher{ch: make(chan hashMsg, 8), free: make(chan []byte, 10), out: make(chan []byte, 1)}
	go p.run()
	return p
}

func (p *pipeHasher) run() {
	var pending []hashMsg
	var h hash.Hash
	var lo, hi int64
	consume := func(m hashMsg) {
		a, b := max(m.off, lo), min(m.off+int64(len(m.b)), hi)
		if a < b {
			h.Write(m.b[a-m.off : b-m.off])
		}
		select {
		case p.free <- m.b[:cap(m.b)]:
		default:
		}
	}
	for m := range p.ch {
		switch {
		case m.start:
			h, lo, hi = m.h, m.lo, m.hi
			for _, q := range pending {
				consume(q)
			}
			pending = nil
		case h == nil:
			pending = append(pending, m)
		default:
			consume(m)
		}
	}
	if h == nil {
		p.out <- nil
		return
	}
	p.out <- h.Sum(nil)
}

// feed hands a copy of b, read at input offset off, to the hasher.
func (p *pipeHasher) feed(off int64, b []byte) {
	var blk []byte
	select {
	case blk = <-p.free:
	default:
		blk = make([]byte, streamBuf)
	}
	blk = blk[:copy(blk[:cap(blk)], b)]
	p.ch <- hashMsg{off: off, b: blk}
}

// start sets the range and algorithm.
func (p *pipeHasher) start(h hash.Hash, lo, hi int64) {
	p.ch <- hashMsg{start: true, h: h, lo: lo, hi: hi}
}

// sum ends the input and returns the digest (nil if never started). It
// must be called exactly once; it also releases the goroutine on error
// paths.
func (p *pipeHasher) sum() []byte {
	close(p.ch)
	return <-p.out
}

// stream is a bounds-checked incremental DER reader over an io.Reader. It
// keeps a window of at most len(buf) bytes; every read asks for an exact
// number of bytes and fails cleanly at end of input. Everything read from
// r is also handed to tee (if set) with its input offset, which is how the
// signed part of a CRL is hashed as it passes, on another core, without
// being kept.
type stream struct {
	r      io.Reader
	buf    []byte
	lo, hi int   // unread window is buf[lo:hi]
	base   int64 // input offset of buf[0]
	eof    bool
	tee    *pipeHasher
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

// fill makes at least n bytes available (n ≤ len(buf)).
func (s *stream) fill(n int) error {
	if n > len(s.buf) {
		return s.malformed("element larger than the read window")
	}
	if s.lo > 0 {
		copy(s.buf, s.buf[s.lo:s.hi])
		s.base += int64(s.lo)
		s.hi -= s.lo
		s.lo = 0
	}
	for s.hi-s.lo < n {
		if s.eof {
			return s.malformed("truncated")
		}
		m, err := s.r.Read(s.buf[s.hi:])
		if s.tee != nil && m > 0 {
			s.tee.feed(s.base+int64(s.hi), s.buf[s.hi:s.hi+m])
		}
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
