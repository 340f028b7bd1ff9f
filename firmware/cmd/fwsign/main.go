// Command fwsign signs kazasu bundles where the signing key lives, makes
// keys, and verifies bundles:
//
//	fwsign -genkey -out DIR               # DIR/update.key (keep offline), DIR/update.pub
//	fwsign -key update.key BUNDLE...      # sign in place (replaces any signature)
//	fwsign -verify -pub update.pub [-next-pub next.pub] BUNDLE...
//
// Signing reads only the header and manifest and writes 72 bytes; the
// manifest already pins every payload byte by its chunk hashes.
package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"kazasu/firmware/bundle"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fwsign:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("fwsign", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var (
		genkey  = fl.Bool("genkey", false, "make a new key pair in -out")
		out     = fl.String("out", ".", "directory for -genkey")
		name    = fl.String("name", "update", "key file name stem for -genkey")
		key     = fl.String("key", "", "private key (PEM PKCS #8) to sign with")
		verify  = fl.Bool("verify", false, "verify bundles instead of signing")
		pub     = fl.String("pub", "", "current public key for -verify")
		nextPub = fl.String("next-pub", "", "next public key for -verify")
	)
	if err := fl.Parse(args); err != nil {
		return err
	}
	switch {
	case *genkey:
		pk, sk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		kp, pp := filepath.Join(*out, *name+".key"), filepath.Join(*out, *name+".pub")
		for _, p := range []string{kp, pp} {
			if _, err := os.Stat(p); err == nil {
				return fmt.Errorf("%s exists; not overwriting a key", p)
			}
		}
		if err := os.WriteFile(kp, bundle.MarshalPrivateKey(sk), 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(pp, bundle.MarshalPublicKey(pk), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key id %s\n%s\n%s\n", bundle.IDOf(pk), kp, pp)
		return nil
	case *verify:
		var keys bundle.Keys
		for p, dst := range map[string]*ed25519.PublicKey{*pub: &keys.Current, *nextPub: &keys.Next} {
			if p == "" {
				continue
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if *dst, err = bundle.ParsePublicKey(b); err != nil {
				return err
			}
		}
		if keys.Current == nil {
			return fmt.Errorf("-verify needs -pub")
		}
		for _, path := range fl.Args() {
			if err := verifyFile(stdout, path, keys); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
		}
		return nil
	case *key != "":
		b, err := os.ReadFile(*key)
		if err != nil {
			return err
		}
		priv, err := bundle.ParsePrivateKey(b)
		if err != nil {
			return err
		}
		if fl.NArg() == 0 {
			return fmt.Errorf("no bundles to sign")
		}
		for _, path := range fl.Args() {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			m, err := bundle.Sign(f, priv)
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			fmt.Fprintf(stdout, "signed %s: %s %s build %d for %v, key %s\n", path, m.Kind, m.Version, m.Build, m.Boards, bundle.IDOf(priv.Public().(ed25519.PublicKey)))
		}
		return nil
	}
	fl.Usage()
	return fmt.Errorf("one of -genkey, -key or -verify is required")
}

func verifyFile(stdout io.Writer, path string, keys bundle.Keys) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	b, err := bundle.Open(f, st.Size(), keys)
	if err != nil {
		return err
	}
	if err := b.Verify(); err != nil {
		return err
	}
	m, _ := json.MarshalIndent(b.Manifest(), "", "  ")
	fmt.Fprintf(stdout, "%s: OK, signed by %s\n%s\n", path, b.KeyID(), summarize(m))
	return nil
}

// summarize drops the chunk lists from the manifest JSON for display.
func summarize(js []byte) string {
	var m map[string]any
	if json.Unmarshal(js, &m) != nil {
		return string(js)
	}
	if ps, ok := m["payloads"].([]any); ok {
		for _, p := range ps {
			if pm, ok := p.(map[string]any); ok {
				if c, ok := pm["chunks"].([]any); ok {
					pm["chunks"] = fmt.Sprintf("%d chunk hashes", len(c))
				}
				if e, ok := pm["extents"].([]any); ok {
					pm["extents"] = fmt.Sprintf("%d extents", len(e))
				}
			}
		}
	}
	out, _ := json.MarshalIndent(m, "", "  ")
	return string(out)
}
