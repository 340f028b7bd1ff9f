package bundle

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
)

// KeyID is the first 8 bytes of SHA-256 over a raw ed25519 public key.
type KeyID [8]byte

func (k KeyID) String() string { return hex.EncodeToString(k[:]) }

// IDOf returns the key id of pub.
func IDOf(pub ed25519.PublicKey) KeyID {
	s := sha256.Sum256(pub)
	var id KeyID
	copy(id[:], s[:8])
	return id
}

// Keys are the public keys a device trusts: the current signing key and the
// next one, so the signing key can be rotated by shipping a bundle signed
// with the current key that carries the new pair.
type Keys struct {
	Current, Next ed25519.PublicKey
}

func (k Keys) lookup(id KeyID) (ed25519.PublicKey, bool) {
	for _, pub := range []ed25519.PublicKey{k.Current, k.Next} {
		if len(pub) == ed25519.PublicKeySize && IDOf(pub) == id {
			return pub, true
		}
	}
	return nil, false
}

func (k Keys) String() string {
	s := ""
	for _, pub := range []ed25519.PublicKey{k.Current, k.Next} {
		if len(pub) == ed25519.PublicKeySize {
			if s != "" {
				s += ", "
			}
			s += IDOf(pub).String()
		}
	}
	return "[" + s + "]"
}

// MarshalPublicKey encodes pub as a PEM "PUBLIC KEY" (PKIX).
func MarshalPublicKey(pub ed25519.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err) // cannot fail for an ed25519 key
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// ParsePublicKey decodes a PEM "PUBLIC KEY" holding an ed25519 key.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("bundle: public key: no PEM PUBLIC KEY block")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("bundle: public key: %w", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("bundle: public key is %T, want ed25519", k)
	}
	return pub, nil
}

// MarshalPrivateKey encodes priv as a PEM "PRIVATE KEY" (PKCS #8).
func MarshalPrivateKey(priv ed25519.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// ParsePrivateKey decodes a PEM "PRIVATE KEY" holding an ed25519 key.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("bundle: private key: no PEM PRIVATE KEY block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("bundle: private key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("bundle: private key is %T, want ed25519", k)
	}
	return priv, nil
}
