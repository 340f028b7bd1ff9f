package testpki

import (
	"bufio"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// LargeCRL describes a CRL for WriteLargeCRL: Count entries produced on
// demand, so a 10-million-entry CRL never exists in memory.
type LargeCRL struct {
	Kind                   Kind
	Generation             int
	ThisUpdate, NextUpdate time.Time
	Number                 *big.Int // nil means 1
	Count                  int
	// Entry returns entry i: the serial as DER INTEGER contents (minimal
	// two's complement, 1…20 bytes; it may alias buf, which has room for
	// 20 bytes) and the revocation time. It is called twice per entry (once
	// to size the CRL, once to write it) and must return the same value.
	Entry func(i int, buf []byte) (serial []byte, revokedAt time.Time)
}

var sha256WithRSA = []byte{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00}

// WriteLargeCRL streams a signed DER CRL to w: the TBS is hashed as it is
// written and its SHA-256 signed at the end. It returns the bytes written.
// Entries carry no extensions; serials are written as given.
func (h *Hierarchy) WriteLargeCRL(w io.Writer, p LargeCRL) (int64, error) {
	if p.Count < 0 || p.Entry == nil {
		return 0, errors.New("testpki: large CRL needs Count ≥ 0 and an Entry function")
	}
	ca, key, err := h.RootE(p.Kind, p.Generation)
	if err != nil {
		return 0, err
	}
	num := p.Number
	if num == nil {
		num = big.NewInt(1)
	}
	buf := make([]byte, 20)
	// Pass 1: the length of revokedCertificates.
	var entriesLen int64
	for i := range p.Count {
		s, t := p.Entry(i, buf)
		if len(s) == 0 || len(s) > 20 {
			return 0, fmt.Errorf("testpki: entry %d: serial of %d bytes", i, len(s))
		}
		entriesLen += int64(entryLen(len(s), t))
	}
	var pre cryptobyte.Builder
	pre.AddASN1Int64(1) // v2
	pre.AddBytes(sha256WithRSA)
	pre.AddBytes(ca.RawSubject)
	addTime(&pre, p.ThisUpdate)
	addTime(&pre, p.NextUpdate)
	prefix, err := pre.Bytes()
	if err != nil {
		return 0, err
	}
	var ext cryptobyte.Builder
	ext.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // authorityKeyIdentifier
				b.AddASN1ObjectIdentifier([]int{2, 5, 29, 35})
				b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(ca.SubjectKeyId) })
					})
				})
			})
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // cRLNumber
				b.AddASN1ObjectIdentifier([]int{2, 5, 29, 20})
				b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) { b.AddASN1BigInt(num) })
			})
		})
	})
	suffix, err := ext.Bytes()
	if err != nil {
		return 0, err
	}
	revHdr := derHeader(0x30, entriesLen)
	tbsLen := int64(len(prefix)) + int64(len(revHdr)) + entriesLen + int64(len(suffix))
	tbsHdr := derHeader(0x30, tbsLen)
	sigLen := int64(key.Size())
	sigBits := derHeader(0x03, sigLen+1)
	outerLen := int64(len(tbsHdr)) + tbsLen + int64(len(sha256WithRSA)) + int64(len(sigBits)) + 1 + sigLen

	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 1<<20)
	hh := sha256.New()
	tw := io.MultiWriter(bw, hh)
	if _, err := bw.Write(derHeader(0x30, outerLen)); err != nil {
		return cw.n, err
	}
	tw.Write(tbsHdr)
	tw.Write(prefix)
	tw.Write(revHdr)
	// Entries go through a local buffer hashed in large blocks.
	chunk := make([]byte, 0, 1<<16)
	var written int64
	for i := range p.Count {
		s, t := p.Entry(i, buf)
		if len(chunk)+64 > cap(chunk) {
			tw.Write(chunk)
			chunk = chunk[:0]
		}
		before := len(chunk)
		chunk = appendEntry(chunk, s, t)
		written += int64(len(chunk) - before)
	}
	tw.Write(chunk)
	if written != entriesLen {
		return cw.n, fmt.Errorf("testpki: Entry is not deterministic (%d bytes sized, %d written)", entriesLen, written)
	}
	tw.Write(suffix)
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, hh.Sum(nil))
	if err != nil {
		return cw.n, fmt.Errorf("testpki: signing large CRL: %w", err)
	}
	bw.Write(sha256WithRSA)
	bw.Write(sigBits)
	bw.WriteByte(0)
	bw.Write(sig)
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	if cw.n != int64(len(derHeader(0x30, outerLen)))+outerLen {
		return cw.n, fmt.Errorf("testpki: large CRL length mismatch")
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// derHeader encodes a tag and a definite length.
func derHeader(tag byte, n int64) []byte {
	if n < 0x80 {
		return []byte{tag, byte(n)}
	}
	var l []byte
	for v := n; v > 0; v >>= 8 {
		l = append([]byte{byte(v)}, l...)
	}
	return append([]byte{tag, 0x80 | byte(len(l))}, l...)
}

func useUTCTime(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 1950 && y < 2050
}

func entryLen(serialLen int, t time.Time) int {
	tl := 15
	if !useUTCTime(t) {
		tl = 17
	}
	return 2 + 2 + serialLen + tl
}

func appendEntry(b, serial []byte, t time.Time) []byte {
	b = append(b, 0x30, byte(entryLen(len(serial), t)-2), 0x02, byte(len(serial)))
	b = append(b, serial...)
	return appendTime(b, t)
}

func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	if useUTCTime(t) {
		b = append(b, 0x17, 13)
		return t.AppendFormat(b, "060102150405Z")
	}
	b = append(b, 0x18, 15)
	return t.AppendFormat(b, "20060102150405Z")
}

func addTime(b *cryptobyte.Builder, t time.Time) {
	b.AddBytes(appendTime(nil, t))
}
