package testpki

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// RootFileName is the base name (without extension) WriteDir uses for a
// root: "auth-gen3", "sign-gen1", …
func RootFileName(kind Kind, gen int) string { return fmt.Sprintf("%s-gen%d", kind, gen) }

// WriteDir writes every root of the hierarchy into dir as PEM (.pem) and
// DER (.der), plus SHA256SUMS (sha256sum format, one line per .pem file:
// the certificate's SHA-256 fingerprint, which equals the .der file's
// hash) and roots-auth.pem / roots-sign.pem / roots.pem bundles for
// openssl -CAfile.
func (h *Hierarchy) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("testpki: %w", err)
	}
	var sums strings.Builder
	bundles := map[string][]byte{}
	for _, kind := range []Kind{Auth, Sign} {
		for gen := 1; gen <= Generations; gen++ {
			c, _, err := h.RootE(kind, gen)
			if err != nil {
				return err
			}
			base := RootFileName(kind, gen)
			p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
			if err := writeFile(filepath.Join(dir, base+".pem"), p); err != nil {
				return err
			}
			if err := writeFile(filepath.Join(dir, base+".der"), c.Raw); err != nil {
				return err
			}
			fp := sha256.Sum256(c.Raw)
			fmt.Fprintf(&sums, "%s  %s.pem\n", hex.EncodeToString(fp[:]), base)
			bundles["roots-"+kind.String()+".pem"] = append(bundles["roots-"+kind.String()+".pem"], p...)
			bundles["roots.pem"] = append(bundles["roots.pem"], p...)
		}
	}
	for name, b := range bundles {
		if err := writeFile(filepath.Join(dir, name), b); err != nil {
			return err
		}
	}
	return writeFile(filepath.Join(dir, "SHA256SUMS"), []byte(sums.String()))
}

// WriteDir writes the identity into dir: auth.pem/.der, auth-key.pem
// (PKCS#8), sign.pem/.der, sign-key.pem, auth-ca.pem, sign-ca.pem.
func (id *Identity) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("testpki: %w", err)
	}
	for _, f := range []struct {
		name string
		der  []byte
		typ  string
	}{
		{"auth", id.AuthDER, "CERTIFICATE"},
		{"sign", id.SignDER, "CERTIFICATE"},
		{"auth-ca", id.AuthCADER, "CERTIFICATE"},
		{"sign-ca", id.SignCADER, "CERTIFICATE"},
	} {
		if err := writeFile(filepath.Join(dir, f.name+".pem"), pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der})); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, f.name+".der"), f.der); err != nil {
			return err
		}
	}
	for name, k := range map[string]any{"auth-key.pem": id.AuthKey, "sign-key.pem": id.SignKey} {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return fmt.Errorf("testpki: %w", err)
		}
		if err := writeFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, b []byte) error {
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("testpki: %w", err)
	}
	return nil
}
