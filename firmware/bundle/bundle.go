package bundle

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
)

type header struct {
	manifestLen int
	keyID       KeyID
	sig         [ed25519.SignatureSize]byte
	fixed       [headerFixed]byte
}

func parseHeader(b []byte) (*header, error) {
	if len(b) < headerSize {
		return nil, malformed("truncated header (%d of %d bytes)", len(b), headerSize)
	}
	if string(b[:8]) != magic {
		return nil, malformed("bad magic %q, not a kazasu bundle", b[:8])
	}
	n := binary.BigEndian.Uint32(b[8:12])
	if n == 0 || n > MaxManifest {
		return nil, malformed("manifest length %d, want 1..%d", n, MaxManifest)
	}
	if binary.BigEndian.Uint32(b[12:16]) != 0 {
		return nil, malformed("reserved header field is not zero")
	}
	h := &header{manifestLen: int(n)}
	copy(h.fixed[:], b[:headerFixed])
	copy(h.keyID[:], b[16:24])
	copy(h.sig[:], b[24:headerSize])
	return h, nil
}

// SignedMessage is what the signature covers: a domain string, the first 16
// header bytes (magic, manifest length, reserved) and the manifest.
func SignedMessage(fixed, manifest []byte) []byte {
	msg := make([]byte, 0, len(signedDomain)+len(fixed)+len(manifest))
	msg = append(msg, signedDomain...)
	msg = append(msg, fixed...)
	return append(msg, manifest...)
}

func (h *header) verify(manifest []byte, keys Keys) error {
	if h.keyID == (KeyID{}) && h.sig == [ed25519.SignatureSize]byte{} {
		return fmt.Errorf("bundle: no signature (sign it with fwsign where the key lives): %w", ErrUnsigned)
	}
	pub, ok := keys.lookup(h.keyID)
	if !ok {
		return fmt.Errorf("bundle: signed by key %s; this device trusts %s: %w", h.keyID, keys, ErrUnknownKey)
	}
	if !ed25519.Verify(pub, SignedMessage(h.fixed[:], manifest), h.sig[:]) {
		return fmt.Errorf("bundle: signature by key %s does not match the header and manifest: %w", h.keyID, ErrBadSignature)
	}
	return nil
}

// readHead reads and checks header, manifest and signature from r.
// keys == nil skips the signature (OpenUnsigned).
func readHead(r io.Reader, keys *Keys) (*header, []byte, *Manifest, error) {
	var hb [headerSize]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return nil, nil, nil, malformed("reading header: %v", err)
	}
	h, err := parseHeader(hb[:])
	if err != nil {
		return nil, nil, nil, err
	}
	raw := make([]byte, h.manifestLen)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, nil, nil, malformed("reading %d-byte manifest: %v", h.manifestLen, err)
	}
	// Signature first: nothing in an unauthenticated manifest is parsed
	// beyond the JSON needed to say what is wrong.
	if keys != nil {
		if err := h.verify(raw, *keys); err != nil {
			return nil, nil, nil, err
		}
	}
	m, err := parseManifest(raw)
	if err != nil {
		return nil, nil, nil, err
	}
	return h, raw, m, nil
}

// Reader reads a bundle from a stream (an HTTP upload), verifying as it goes.
type Reader struct {
	r     io.Reader
	m     *Manifest
	id    KeyID
	pos   int64
	next  int
	cur   *chunkReader
	ended bool
}

// Read reads and verifies the header, signature and manifest. Payloads
// follow through Next.
func Read(r io.Reader, keys Keys) (*Reader, error) {
	h, raw, m, err := readHead(r, &keys)
	if err != nil {
		return nil, err
	}
	return &Reader{r: r, m: m, id: h.keyID, pos: headerSize + int64(len(raw))}, nil
}

// Manifest is the verified manifest.
func (r *Reader) Manifest() *Manifest { return r.m }

// KeyID is the key that signed the bundle.
func (r *Reader) KeyID() KeyID { return r.id }

// Next returns the next payload and a reader that yields its bytes, each
// 1 MiB chunk only after its hash matched. Whatever the caller left unread
// of the previous payload is read and verified first. After the last
// payload Next checks that the stream ends and returns io.EOF.
func (r *Reader) Next() (*Payload, io.Reader, error) {
	if r.cur != nil {
		if _, err := io.Copy(io.Discard, r.cur); err != nil {
			return nil, nil, err
		}
		r.pos += r.cur.p.Size
		r.cur = nil
	}
	if r.next == len(r.m.Payloads) {
		if r.ended {
			return nil, nil, io.EOF
		}
		var b [1]byte
		if n, _ := io.ReadFull(r.r, b[:]); n != 0 {
			return nil, nil, malformed("data after the last payload (offset %d)", r.pos)
		}
		r.ended = true
		return nil, nil, io.EOF
	}
	p := &r.m.Payloads[r.next]
	r.next++
	if err := skipZeros(r.r, p.Offset-r.pos, r.pos); err != nil {
		return nil, nil, err
	}
	r.pos = p.Offset
	r.cur = newChunkReader(r.r, p)
	return p, r.cur, nil
}

// skipZeros reads n padding bytes, which must all be zero.
func skipZeros(r io.Reader, n, at int64) error {
	buf := make([]byte, min(n, Align))
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := io.ReadFull(r, buf[:k]); err != nil {
			return malformed("truncated in padding at offset %d: %v", at, err)
		}
		for i, c := range buf[:k] {
			if c != 0 {
				return malformed("non-zero padding byte at offset %d", at+int64(i))
			}
		}
		n -= k
		at += k
	}
	return nil
}

// chunkReader returns a payload's bytes one verified chunk at a time.
type chunkReader struct {
	src   io.Reader
	p     *Payload
	chunk int
	done  int64 // bytes of the payload consumed from src
	buf   []byte
	off   int // unread start in buf
	whole hash.Hash
	err   error
}

func newChunkReader(src io.Reader, p *Payload) *chunkReader {
	return &chunkReader{src: src, p: p, whole: sha256.New()}
}

func (c *chunkReader) Read(b []byte) (int, error) {
	if c.off == len(c.buf) {
		if c.err != nil {
			return 0, c.err
		}
		if c.done == c.p.Size {
			c.err = io.EOF
			return 0, io.EOF
		}
		if err := c.fill(); err != nil {
			c.err = err
			return 0, err
		}
	}
	n := copy(b, c.buf[c.off:])
	c.off += n
	return n, nil
}

func (c *chunkReader) fill() error {
	n := min(int64(ChunkSize), c.p.Size-c.done)
	if cap(c.buf) < int(n) {
		c.buf = make([]byte, n)
	}
	c.buf, c.off = c.buf[:n], 0
	if _, err := io.ReadFull(c.src, c.buf); err != nil {
		c.buf = c.buf[:0]
		return malformed("payload %s truncated in chunk %d (offset %d): %v", c.p.Role, c.chunk, c.p.Offset+c.done, err)
	}
	if got := Digest(sha256.Sum256(c.buf)); got != c.p.Chunks[c.chunk] {
		c.buf = c.buf[:0]
		return fmt.Errorf("bundle: payload %s chunk %d (bytes %d-%d of the payload): sha256 %s, signed %s: %w",
			c.p.Role, c.chunk, c.done, c.done+n-1, got, c.p.Chunks[c.chunk], ErrCorrupt)
	}
	c.whole.Write(c.buf)
	c.chunk++
	c.done += n
	if c.done == c.p.Size {
		var got Digest
		c.whole.Sum(got[:0])
		if got != c.p.SHA256 {
			c.buf = c.buf[:0]
			return fmt.Errorf("bundle: payload %s: sha256 %s, signed %s: %w", c.p.Role, got, c.p.SHA256, ErrCorrupt)
		}
	}
	return nil
}

// Bundle is a bundle file opened for random access (a flasher).
type Bundle struct {
	ra     io.ReaderAt
	m      *Manifest
	id     KeyID
	signed bool
}

// Open verifies the header, signature and manifest of the bundle in ra
// (size bytes), its exact size and its zero padding. Payload hashes are
// checked as payloads are read (PayloadReader, Verify).
func Open(ra io.ReaderAt, size int64, keys Keys) (*Bundle, error) {
	return open(ra, size, &keys)
}

// OpenUnsigned is Open without the signature check, for development
// (`kazasu flash --allow-unsigned`) and inspection. Payload hashes are still
// checked against the manifest.
func OpenUnsigned(ra io.ReaderAt, size int64) (*Bundle, error) {
	return open(ra, size, nil)
}

func open(ra io.ReaderAt, size int64, keys *Keys) (*Bundle, error) {
	h, raw, m, err := readHead(io.NewSectionReader(ra, 0, size), keys)
	if err != nil {
		return nil, err
	}
	if size != m.Size() {
		return nil, malformed("file is %d bytes, the manifest describes %d", size, m.Size())
	}
	pos := headerSize + int64(len(raw))
	for i := range m.Payloads {
		p := &m.Payloads[i]
		if err := skipZeros(io.NewSectionReader(ra, pos, p.Offset-pos), p.Offset-pos, pos); err != nil {
			return nil, err
		}
		pos = p.End()
	}
	return &Bundle{ra: ra, m: m, id: h.keyID, signed: keys != nil}, nil
}

// Manifest is the bundle's manifest (verified if opened with Open).
func (b *Bundle) Manifest() *Manifest { return b.m }

// Signed reports whether the signature was checked (Open, not OpenUnsigned).
func (b *Bundle) Signed() bool { return b.signed }

// KeyID is the key id in the header.
func (b *Bundle) KeyID() KeyID { return b.id }

// PayloadReader returns a reader of p's bytes that fails with ErrCorrupt
// before returning any chunk that does not match its hash.
func (b *Bundle) PayloadReader(p *Payload) io.Reader {
	return newChunkReader(io.NewSectionReader(b.ra, p.Offset, p.Size), p)
}

// Verify reads every payload and checks every chunk hash.
func (b *Bundle) Verify() error {
	for i := range b.m.Payloads {
		if _, err := io.Copy(io.Discard, b.PayloadReader(&b.m.Payloads[i])); err != nil {
			return err
		}
	}
	return nil
}

// Range is a piece of a payload: Length bytes at Source in the bundle file
// go to Target (on the disk for a disk payload; within the partition for
// root and boot payloads).
type Range struct {
	Source, Target, Length int64
}

// Ranges lists where p's bytes go, in order. For a disk payload these are
// the image's used ranges; everything else on the target is unspecified
// (a flasher should discard or zero it).
func (p *Payload) Ranges() []Range {
	if p.Role != RoleDisk {
		return []Range{{Source: p.Offset, Target: 0, Length: p.Size}}
	}
	out := make([]Range, len(p.Extents))
	src := p.Offset
	for i, e := range p.Extents {
		out[i] = Range{Source: src, Target: e.Target, Length: e.Length}
		src += e.Length
	}
	return out
}

// Source is a payload to put into a new bundle.
type Source struct {
	Role     Role
	R        io.ReaderAt
	Size     int64
	Extents  []Extent // disk payloads
	DiskSize int64    // disk payloads
}

// Write lays out an unsigned bundle: m supplies everything but Format,
// Product, ChunkSize and Payloads, which Write fills in from srcs (hashing
// each twice: once for the manifest, once while copying). It returns the
// manifest as written.
func Write(w io.Writer, m Manifest, srcs []Source) (*Manifest, error) {
	m.Format, m.Product, m.ChunkSize = Format, Product, ChunkSize
	m.Created, m.Expires = m.Created.UTC(), m.Expires.UTC()
	m.Payloads = make([]Payload, len(srcs))
	for i, s := range srcs {
		p := Payload{Role: s.Role, Size: s.Size, Extents: s.Extents, DiskSize: s.DiskSize}
		whole := sha256.New()
		sr := io.NewSectionReader(s.R, 0, s.Size)
		buf := make([]byte, ChunkSize)
		for left := s.Size; left > 0; {
			n := min(left, ChunkSize)
			if _, err := io.ReadFull(sr, buf[:n]); err != nil {
				return nil, fmt.Errorf("bundle: reading %s payload: %w", s.Role, err)
			}
			p.Chunks = append(p.Chunks, sha256.Sum256(buf[:n]))
			whole.Write(buf[:n])
			left -= n
		}
		whole.Sum(p.SHA256[:0])
		m.Payloads[i] = p
	}
	// Offsets depend on the manifest's length, which depends on the
	// offsets' digits: iterate to the fixed point.
	var raw []byte
	first := int64(Align)
	for range 8 {
		off := first
		for i := range m.Payloads {
			m.Payloads[i].Offset = off
			off = alignUp(off + m.Payloads[i].Size)
		}
		var err error
		if raw, err = json.Marshal(&m); err != nil {
			return nil, fmt.Errorf("bundle: encoding manifest: %w", err)
		}
		if FirstPayloadOffset(len(raw)) == first {
			break
		}
		first = FirstPayloadOffset(len(raw))
	}
	if err := m.validate(int64(len(raw))); err != nil {
		return nil, err
	}
	var hb [headerSize]byte
	copy(hb[:], magic)
	binary.BigEndian.PutUint32(hb[8:12], uint32(len(raw)))
	cw := &countWriter{w: w}
	cw.Write(hb[:])
	cw.Write(raw)
	for i, s := range srcs {
		p := &m.Payloads[i]
		cw.Write(make([]byte, p.Offset-cw.n))
		if cw.err == nil {
			if _, err := io.Copy(cw, io.NewSectionReader(s.R, 0, s.Size)); err != nil && cw.err == nil {
				cw.err = err
			}
		}
	}
	if cw.err != nil {
		return nil, fmt.Errorf("bundle: writing: %w", cw.err)
	}
	return &m, nil
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(b []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	c.err = err
	return n, err
}

// ReadWriterAt is a file that Sign can update in place.
type ReadWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// Sign signs the bundle in f with priv, in place: it checks the header and
// manifest, then writes key id and signature into the header. Signing an
// already signed bundle replaces the signature.
func Sign(f ReadWriterAt, priv ed25519.PrivateKey) (*Manifest, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, errors.New("bundle: sign: not an ed25519 private key")
	}
	var hb [headerSize]byte
	if _, err := f.ReadAt(hb[:], 0); err != nil {
		return nil, malformed("reading header: %v", err)
	}
	h, err := parseHeader(hb[:])
	if err != nil {
		return nil, err
	}
	raw := make([]byte, h.manifestLen)
	if _, err := f.ReadAt(raw, headerSize); err != nil {
		return nil, malformed("reading manifest: %v", err)
	}
	m, err := parseManifest(raw)
	if err != nil {
		return nil, err
	}
	id := IDOf(priv.Public().(ed25519.PublicKey))
	sig := ed25519.Sign(priv, SignedMessage(h.fixed[:], raw))
	if _, err := f.WriteAt(append(id[:], sig...), headerFixed); err != nil {
		return nil, fmt.Errorf("bundle: writing signature: %w", err)
	}
	return m, nil
}

// ManifestBytes returns the raw manifest of a bundle held in memory or a
// file, unverified, for display (`kazasu status`, fwsign -show).
func ManifestBytes(ra io.ReaderAt) ([]byte, error) {
	var hb [headerSize]byte
	if _, err := ra.ReadAt(hb[:], 0); err != nil {
		return nil, malformed("reading header: %v", err)
	}
	h, err := parseHeader(hb[:])
	if err != nil {
		return nil, err
	}
	raw := make([]byte, h.manifestLen)
	if _, err := ra.ReadAt(raw, headerSize); err != nil {
		return nil, malformed("reading manifest: %v", err)
	}
	return bytes.TrimSpace(raw), nil
}
