package revocation

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"hash/crc32"
	"math/big"
	"testing"

	"kazasu/drivers/sim/testpki"
)

// FuzzIngest: the streaming parser never panics, and whatever it accepts
// crypto/x509 accepts too, with the same serials.
func FuzzIngest(f *testing.F) {
	good := mustCRL(f, testpki.Auth, 3, []int64{1, 2, 300, 1 << 40}, testpki.CRLOptions{Number: big.NewInt(3)})
	delta := mustCRL(f, testpki.Auth, 3, []int64{5, -2}, testpki.CRLOptions{Number: big.NewInt(4), DeltaBase: big.NewInt(3)})
	f.Add(good)
	f.Add(delta)
	f.Add(good[:len(good)/2])
	f.Add(testpki.CorruptSignature(good))
	f.Add([]byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x30, 0x03, 0x30, 0x01, 0x00})
	cands := roots(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := Ingest(bytes.NewReader(data), cands)
		if err != nil {
			return
		}
		ref, err := x509.ParseRevocationList(data)
		if err != nil {
			t.Fatalf("Ingest accepted what crypto/x509 rejects: %v", err)
		}
		for _, e := range ref.RevokedCertificateEntries {
			s := SerialBytes(e.SerialNumber)
			if e.ReasonCode != 8 && !in.Revoked(s) {
				t.Fatalf("serial %x missing", s)
			}
		}
	})
}

// FuzzLoad: the store loader never panics and never accepts an image whose
// lookups could misbehave. With fix set, the checksum is recomputed so the
// structural checks are reached.
func FuzzLoad(f *testing.F) {
	b := newBuilder()
	var ser [20]byte
	for i := range 2000 {
		b.add(testpki.BenchSerial(i, ser[:]))
	}
	b.add([]byte{0x05})
	b.add([]byte{0x00, 0x80})
	base, _ := b.group(nil)
	ab, rb := newBuilder(), newBuilder()
	ab.add([]byte{0x06})
	rb.add([]byte{0x05})
	rb.add([]byte{0x00, 0x80})
	is := &issuerSet{info: IssuerInfo{Number: big.NewInt(7), DeltaNumber: big.NewInt(8)}, base: base}
	is.add, _ = ab.group(nil)
	is.rem, _ = rb.group(nil)
	is.info.Entries = effectiveCount(is)
	s := &Set{issuers: []*issuerSet{is}}
	img := s.Marshal()
	f.Add(img, false)
	f.Add(img, true)
	f.Add(img[:len(img)/3], true)
	f.Add((&Set{}).Marshal(), false)
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		if fix && len(data) >= 4 {
			data = append([]byte(nil), data...)
			binary.LittleEndian.PutUint32(data[len(data)-4:], crc32.Checksum(data[:len(data)-4], castagnoli))
		}
		set, err := Load(data)
		if err != nil {
			return
		}
		// Lookups of every stored serial and of probes never panic, and a
		// loaded set re-encodes to the same image.
		var buf [20]byte
		for _, is := range set.issuers {
			for i := range 50 {
				is.contains(testpki.BenchSerial(i, buf[:]))
			}
			for _, gr := range is.groups() {
				for _, g := range gr.segs() {
					for _, v := range g.values(nil) {
						if !g.contains(v) {
							t.Fatalf("stored value %x not found", v)
						}
					}
				}
			}
		}
		if !bytes.Equal(set.Marshal(), data) {
			t.Fatal("re-encoding differs")
		}
	})
}
