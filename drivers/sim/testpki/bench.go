package testpki

import (
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// BenchSerial returns serial i of the synthetic national-scale revocation
// list (DER INTEGER contents, written into buf, which needs 20 bytes):
// 99 % are random positive 63-bit serials (8 bytes), 1 % are 20-byte serials
// sharing a fixed 12-byte prefix with a random 8-byte tail (a CA that puts
// a constant in front of a counter). Serials appear in random order, as
// revocations do. The sequence is fixed; duplicates are astronomically
// unlikely but allowed (a set must fold them).
func BenchSerial(i int, buf []byte) []byte {
	v := splitmix64(uint64(i))
	if i%100 == 99 {
		b := buf[:20]
		copy(b, "\x4b\x5a\x53\x55\x2d\x54\x45\x53\x54\x2d\x30\x31") // "KZSU-TEST-01"
		for j := 19; j >= 12; j-- {
			b[j] = byte(v)
			v >>= 8
		}
		return b
	}
	v = v>>1 | 1<<56 // 57…63 bits: always 8 content bytes, positive
	b := buf[:8]
	for j := 7; j >= 0; j-- {
		b[j] = byte(v)
		v >>= 8
	}
	return b
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// BenchCRLTimes are the thisUpdate/nextUpdate of BenchCRL.
var (
	BenchThisUpdate = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	BenchNextUpdate = BenchThisUpdate.Add(48 * time.Hour)
)

// BenchCRL writes (or reuses, if already there) the n-entry CRL of
// BenchSerial, issued by the auth generation-3 root with cRLNumber 1, at
// dir/kazasu-bench-<seed hash>-<n>.crl, and returns its path.
func (h *Hierarchy) BenchCRL(dir string, n int) (string, error) {
	c, _, err := h.RootE(Auth, 3)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("kazasu-bench-%x-%d.crl", c.SubjectKeyId[:6], n))
	if st, err := os.Stat(path); err == nil && st.Size() > 0 {
		return path, nil
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return "", fmt.Errorf("testpki: %w", err)
	}
	_, err = h.WriteLargeCRL(f, LargeCRL{
		Kind: Auth, Generation: 3, ThisUpdate: BenchThisUpdate, NextUpdate: BenchNextUpdate,
		Number: big.NewInt(1), Count: n,
		Entry: func(i int, buf []byte) ([]byte, time.Time) {
			return BenchSerial(i, buf), BenchThisUpdate.Add(-time.Duration(i%86400) * time.Second)
		},
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("testpki: %w", err)
	}
	return path, nil
}
