package testpki

import (
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"sync"
)

// drbg is a deterministic byte generator: HMAC-SHA256 in counter mode,
// block i = HMAC(K, "kazasu/testpki/drbg" || uint64(i)), K = SHA-256 of the
// seed and label. It is a reproducible source for test keys, nothing more.
type drbg struct {
	key []byte
	ctr uint64
	buf []byte
}

func newDRBG(seed, label string) *drbg {
	k := sha256.Sum256([]byte("kazasu/testpki/v1\x00" + seed + "\x00" + label))
	return &drbg{key: k[:]}
}

func (d *drbg) Read(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if len(d.buf) == 0 {
			m := hmac.New(sha256.New, d.key)
			var c [8]byte
			binary.BigEndian.PutUint64(c[:], d.ctr)
			d.ctr++
			m.Write([]byte("kazasu/testpki/drbg"))
			m.Write(c[:])
			d.buf = m.Sum(nil)
		}
		k := copy(p, d.buf)
		d.buf = d.buf[k:]
		p = p[k:]
	}
	return n, nil
}

var (
	keyMu    sync.Mutex
	keyCache = map[string]*keyEntry{}
)

type keyEntry struct {
	once sync.Once
	key  *rsa.PrivateKey
	err  error
}

// deriveKey returns the RSA-2048 key for (seed, label), generating it on
// first use and caching it for the life of the process.
func deriveKey(seed, label string) (*rsa.PrivateKey, error) {
	keyMu.Lock()
	e, ok := keyCache[seed+"\x00"+label]
	if !ok {
		e = &keyEntry{}
		keyCache[seed+"\x00"+label] = e
	}
	keyMu.Unlock()
	e.once.Do(func() { e.key, e.err = generateKey(newDRBG(seed, label), 2048) })
	return e.key, e.err
}

var bigOne = big.NewInt(1)

// generateKey builds an RSA key with e = 65537 from primes drawn from r.
func generateKey(r io.Reader, bits int) (*rsa.PrivateKey, error) {
	const e = 65537
	for range 64 {
		p, err := randomPrime(r, bits/2, e)
		if err != nil {
			return nil, err
		}
		q, err := randomPrime(r, bits-bits/2, e)
		if err != nil {
			return nil, err
		}
		if p.Cmp(q) == 0 {
			continue
		}
		if p.Cmp(q) < 0 {
			p, q = q, p
		}
		// |p-q| must not be tiny (Fermat factoring); with independent random
		// 1024-bit primes this never triggers, but check rather than assume.
		if new(big.Int).Sub(p, q).BitLen() < bits/2-100 {
			continue
		}
		n := new(big.Int).Mul(p, q)
		if n.BitLen() != bits {
			continue
		}
		pm1 := new(big.Int).Sub(p, bigOne)
		qm1 := new(big.Int).Sub(q, bigOne)
		phi := new(big.Int).Mul(pm1, qm1)
		d := new(big.Int).ModInverse(big.NewInt(e), phi)
		if d == nil {
			continue
		}
		k := &rsa.PrivateKey{
			PublicKey: rsa.PublicKey{N: n, E: e},
			D:         d,
			Primes:    []*big.Int{p, q},
		}
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("testpki: derived key invalid: %w", err)
		}
		k.Precompute()
		return k, nil
	}
	return nil, fmt.Errorf("testpki: no usable RSA key after 64 prime pairs")
}

// randomPrime draws candidates with the two top bits and the low bit set
// (so p*q has exactly 2*bits bits) until one is probably prime and
// p-1 is coprime with e.
func randomPrime(r io.Reader, bits int, e int64) (*big.Int, error) {
	if bits%8 != 0 {
		return nil, fmt.Errorf("testpki: prime size %d is not a whole number of bytes", bits)
	}
	b := make([]byte, bits/8)
	ee := big.NewInt(e)
	m := new(big.Int)
	for {
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		b[0] |= 0xC0
		b[len(b)-1] |= 1
		p := new(big.Int).SetBytes(b)
		if m.Mod(p, ee).Cmp(bigOne) == 0 {
			continue
		}
		if p.ProbablyPrime(20) {
			return p, nil
		}
	}
}
