package revocation

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
)

// Store is the on-disk revocation set: one file, replaced atomically on
// every import, loaded whole into memory (the loaded set is a view of the
// file image). Lookups go through Set() and never block on imports.
type Store struct {
	path string
	mu   sync.Mutex // serialises imports
	cur  atomic.Pointer[Set]
}

// Open loads the store at path. A missing file is an empty store; a file
// that fails its checks is an error (ErrMalformed or ErrUnsupported), never
// silently replaced.
func Open(path string) (*Store, error) {
	s := &Store{path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		s.cur.Store(&Set{})
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("revocation: %w", err)
	}
	set, err := loadSet(b)
	if err != nil {
		return nil, fmt.Errorf("revocation: loading %s: %w", path, err)
	}
	s.cur.Store(set)
	return s, nil
}

// Load parses a store file image (as written by Store). It is exposed for
// tools and fuzzing; the image must not be modified afterwards.
func Load(b []byte) (*Set, error) { return loadSet(b) }

// Marshal returns the store file image of a set.
func (s *Set) Marshal() []byte { return marshalSet(s) }

// Path returns the store's file path.
func (s *Store) Path() string { return s.path }

// Set returns the current revocation set.
func (s *Store) Set() *Set { return s.cur.Load() }

// Import ingests one CRL from r (see Ingest), applies it to the current
// set (a complete CRL replaces the issuer's entries; a delta CRL replaces
// the previous delta over the stored base, since each delta lists every
// change since its base) and commits the result: file first (write, fsync, rename),
// then memory. On any error nothing changes.
func (s *Store) Import(r io.Reader, candidates []*x509.Certificate) (*CRLInfo, error) {
	in, err := Ingest(r, candidates)
	if err != nil {
		return nil, err
	}
	return s.Apply(in)
}

// Apply commits an ingested CRL (see Import).
func (s *Store) Apply(in *Ingested) (*CRLInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next, err := apply(s.cur.Load(), in)
	if err != nil {
		return nil, err
	}
	img := next.Marshal()
	if err := writeAtomic(s.path, img); err != nil {
		return nil, err
	}
	loaded, err := loadSet(img)
	if err != nil { // cannot happen unless marshal and load disagree
		return nil, fmt.Errorf("revocation: re-loading the written set: %w", err)
	}
	s.cur.Store(loaded)
	info := in.Info
	return &info, nil
}

// apply returns cur with the ingested CRL applied.
func apply(cur *Set, in *Ingested) (*Set, error) {
	id := in.Info.Issuer
	old := cur.issuer(id)
	is := &issuerSet{}
	is.info = IssuerInfo{Issuer: id, ThisUpdate: in.Info.ThisUpdate, NextUpdate: in.Info.NextUpdate}
	if !in.Info.IsDelta() {
		if old != nil && in.Info.Number.Cmp(old.info.Number) <= 0 {
			return nil, fmt.Errorf("%w: complete CRL number %v, stored %v", ErrNotNewer, in.Info.Number, old.info.Number)
		}
		is.info.Number = in.Info.Number
		is.base, is.info.Entries = in.set, in.n
	} else {
		if old == nil {
			return nil, fmt.Errorf("%w (base CRL number %v)", ErrNoBase, in.Info.BaseNumber)
		}
		// RFC 5280 §5.2.4: the complete CRL must have a number ≥ the
		// delta's BaseCRLNumber, and the delta must be newer than both the
		// complete CRL and any delta already applied.
		if old.info.Number.Cmp(in.Info.BaseNumber) < 0 {
			return nil, fmt.Errorf("%w: delta needs base CRL ≥ %v, stored %v", ErrNoBase, in.Info.BaseNumber, old.info.Number)
		}
		if in.Info.Number.Cmp(old.info.Number) <= 0 || old.info.DeltaNumber != nil && in.Info.Number.Cmp(old.info.DeltaNumber) <= 0 {
			return nil, fmt.Errorf("%w: delta CRL number %v", ErrNotNewer, in.Info.Number)
		}
		// A delta lists every change since its base, so it replaces the
		// previous delta rather than stacking on it.
		rb := newBuilder()
		for k := range in.removed {
			rb.add([]byte(k))
		}
		is.info.Number = old.info.Number
		is.info.DeltaNumber = in.Info.Number
		is.base = old.base
		is.add = in.set
		is.rem, _ = rb.group(nil)
		is.info.Entries = effectiveCount(is)
	}
	next := &Set{}
	for _, o := range cur.issuers {
		if o.info.Issuer != id {
			next.issuers = append(next.issuers, o)
		}
	}
	next.issuers = append(next.issuers, is)
	slices.SortFunc(next.issuers, func(a, b *issuerSet) int { return compareID(a.info.Issuer, b.info.Issuer) })
	return next, nil
}

func compareID(a, b IssuerID) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return 0
}

// writeAtomic writes b to path via a temporary file in the same directory,
// fsyncs it, renames it over path and fsyncs the directory.
func writeAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".revocation-*.tmp")
	if err != nil {
		return fmt.Errorf("revocation: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("revocation: writing store: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("revocation: syncing store: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("revocation: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("revocation: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
