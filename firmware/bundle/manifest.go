package bundle

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"
)

// Errors, for errors.Is; every error returned by this package wraps one of
// them and says what exactly was wrong.
var (
	ErrMalformed    = errors.New("malformed bundle")
	ErrUnsigned     = errors.New("bundle is not signed")
	ErrUnknownKey   = errors.New("bundle signed by a key this device does not trust")
	ErrBadSignature = errors.New("bundle signature does not verify")
	ErrCorrupt      = errors.New("bundle payload does not match its signed hash")
	ErrWrongBoard   = errors.New("bundle is not for this board")
	ErrExpired      = errors.New("bundle has expired")
	ErrNotYetValid  = errors.New("bundle is not valid yet")
	ErrDowngrade    = errors.New("bundle is not newer than the installed build")
	ErrClockUnset   = errors.New("device clock is not set")
	ErrWrongKind    = errors.New("bundle is of the wrong kind")
)

// Limits of format 1.
const (
	Format       = 1
	Product      = "kazasu"
	MaxManifest  = 1 << 20 // manifest bytes
	ChunkSize    = 1 << 20 // payload hash chunk
	Align        = 4096    // payload offset alignment
	MaxPayload   = 1 << 36 // 64 GiB
	MaxPayloads  = 4
	MaxBoards    = 16
	MaxExtents   = 4096
	headerFixed  = 16
	headerSize   = 88
	magic        = "KZBUNDL1"
	signedDomain = "kazasu bundle v1\n"
)

// Kind says what a bundle is for.
type Kind string

const (
	KindUpdate Kind = "update" // root (and optionally boot) for the A/B agent
	KindFlash  Kind = "flash"  // a whole disk image, for `kazasu flash`
)

// Role names a payload.
type Role string

const (
	RoleRoot Role = "root" // squashfs for the inactive root slot
	RoleBoot Role = "boot" // FAT image of the boot partition
	RoleDisk Role = "disk" // used ranges of a whole disk image
)

// Digest is a SHA-256 hash, hex in JSON.
type Digest [32]byte

func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// MarshalText is lower-case hex.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText accepts exactly 64 lower-case hex digits.
func (d *Digest) UnmarshalText(b []byte) error {
	if len(b) != 64 || !bytes.Equal(bytes.ToLower(b), b) {
		return fmt.Errorf("digest %.70q is not 64 lower-case hex digits", b)
	}
	_, err := hex.Decode(d[:], b)
	return err
}

// Extent is a range of the target disk that a disk payload fills, in order.
type Extent struct {
	Target int64 `json:"target"` // byte offset on the target device
	Length int64 `json:"length"`
}

// ExtentReader presents the extents of a disk image as one contiguous
// payload (the Source of a payload with Extents).
func ExtentReader(r io.ReaderAt, ext []Extent) io.ReaderAt {
	return extentReader{r, ext}
}

type extentReader struct {
	r   io.ReaderAt
	ext []Extent
}

func (e extentReader) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for _, x := range e.ext {
		if off >= x.Length {
			off -= x.Length
			continue
		}
		k := min(int64(len(p)-n), x.Length-off)
		m, err := e.r.ReadAt(p[n:n+int(k)], x.Target+off)
		n += m
		if err != nil {
			return n, err
		}
		off = 0
		if n == len(p) {
			return n, nil
		}
	}
	return n, io.EOF
}

// Payload describes one payload of the bundle.
type Payload struct {
	Role   Role     `json:"role"`
	Offset int64    `json:"offset"` // in the bundle file
	Size   int64    `json:"size"`
	SHA256 Digest   `json:"sha256"`
	Chunks []Digest `json:"chunks"` // SHA-256 of each ChunkSize piece; the last may be short
	// Disk payloads only: where the payload's bytes go, and the smallest
	// device that can hold the image.
	Extents  []Extent `json:"extents,omitempty"`
	DiskSize int64    `json:"disk_size,omitempty"`
}

// End is Offset+Size.
func (p *Payload) End() int64 { return p.Offset + p.Size }

// Manifest is the signed description of a bundle.
type Manifest struct {
	Format    int       `json:"format"`
	Product   string    `json:"product"`
	Kind      Kind      `json:"kind"`
	Boards    []string  `json:"boards"`
	Version   string    `json:"version"`
	Build     uint64    `json:"build"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
	Kernel    string    `json:"kernel"`
	GitCommit string    `json:"git_commit,omitempty"`
	ChunkSize int64     `json:"chunk_size"`
	Payloads  []Payload `json:"payloads"`
}

// Payload returns the payload with the given role, or nil.
func (m *Manifest) Payload(r Role) *Payload {
	for i := range m.Payloads {
		if m.Payloads[i].Role == r {
			return &m.Payloads[i]
		}
	}
	return nil
}

// Size is the exact size of the bundle file.
func (m *Manifest) Size() int64 {
	if len(m.Payloads) == 0 {
		return 0
	}
	return m.Payloads[len(m.Payloads)-1].End()
}

var (
	boardRE   = regexp.MustCompile(`^[a-z0-9]{1,16}$`)
	versionRE = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+~-]{0,63}$`)
	kernelRE  = regexp.MustCompile(`^[!-~]{1,200}$`)
	commitRE  = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("bundle: %s: %w", fmt.Sprintf(format, args...), ErrMalformed)
}

// parseManifest decodes and structurally validates manifest bytes that sit
// at headerSize in a bundle.
func parseManifest(b []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, malformed("manifest: %v", err)
	}
	if dec.More() {
		return nil, malformed("manifest: trailing data after the JSON object")
	}
	if err := m.validate(int64(len(b))); err != nil {
		return nil, err
	}
	return &m, nil
}

func alignUp(v int64) int64 { return (v + Align - 1) &^ (Align - 1) }

// FirstPayloadOffset is where the first payload starts for a manifest of n bytes.
func FirstPayloadOffset(n int) int64 { return alignUp(headerSize + int64(n)) }

// validate checks everything that does not depend on the device.
func (m *Manifest) validate(manifestLen int64) error {
	if m.Format != Format {
		return malformed("format %d, this device reads format %d", m.Format, Format)
	}
	if m.Product != Product {
		return malformed("product %q, want %q", m.Product, Product)
	}
	if m.Kind != KindUpdate && m.Kind != KindFlash {
		return malformed("kind %q, want update or flash", m.Kind)
	}
	if len(m.Boards) == 0 || len(m.Boards) > MaxBoards {
		return malformed("%d boards, want 1..%d", len(m.Boards), MaxBoards)
	}
	seen := map[string]bool{}
	for _, b := range m.Boards {
		if !boardRE.MatchString(b) || seen[b] {
			return malformed("board %q invalid or repeated", b)
		}
		seen[b] = true
	}
	if !versionRE.MatchString(m.Version) {
		return malformed("version %q", m.Version)
	}
	if m.Build == 0 || m.Build > 1<<53 {
		return malformed("build %d out of range", m.Build)
	}
	if m.Created.IsZero() || !m.Expires.After(m.Created) {
		return malformed("expiry %s is not after creation %s", m.Expires.Format(time.RFC3339), m.Created.Format(time.RFC3339))
	}
	if !kernelRE.MatchString(m.Kernel) {
		return malformed("kernel %q", m.Kernel)
	}
	if m.GitCommit != "" && !commitRE.MatchString(m.GitCommit) {
		return malformed("git commit %q", m.GitCommit)
	}
	if m.ChunkSize != ChunkSize {
		return malformed("chunk size %d, want %d", m.ChunkSize, ChunkSize)
	}
	if len(m.Payloads) == 0 || len(m.Payloads) > MaxPayloads {
		return malformed("%d payloads, want 1..%d", len(m.Payloads), MaxPayloads)
	}
	next := FirstPayloadOffset(int(manifestLen))
	roles := map[Role]bool{}
	for i := range m.Payloads {
		p := &m.Payloads[i]
		switch {
		case m.Kind == KindUpdate && (p.Role == RoleRoot || p.Role == RoleBoot):
		case m.Kind == KindFlash && p.Role == RoleDisk:
		default:
			return malformed("payload %d: role %q not allowed in a %s bundle", i, p.Role, m.Kind)
		}
		if roles[p.Role] {
			return malformed("payload role %q repeated", p.Role)
		}
		roles[p.Role] = true
		if p.Offset < next || p.Offset%Align != 0 {
			return malformed("payload %s: offset %d (want 4096-aligned, at or after %d)", p.Role, p.Offset, next)
		}
		if p.Size <= 0 || p.Size > MaxPayload {
			return malformed("payload %s: size %d out of range", p.Role, p.Size)
		}
		if want := (p.Size + ChunkSize - 1) / ChunkSize; int64(len(p.Chunks)) != want {
			return malformed("payload %s: %d chunk hashes for %d bytes, want %d", p.Role, len(p.Chunks), p.Size, want)
		}
		if err := p.validateExtents(); err != nil {
			return err
		}
		next = alignUp(p.End())
	}
	if m.Kind == KindUpdate && !roles[RoleRoot] {
		return malformed("update bundle without a root payload")
	}
	return nil
}

func (p *Payload) validateExtents() error {
	if p.Role != RoleDisk {
		if p.Extents != nil || p.DiskSize != 0 {
			return malformed("payload %s: extents or disk_size on a non-disk payload", p.Role)
		}
		return nil
	}
	if len(p.Extents) == 0 || len(p.Extents) > MaxExtents {
		return malformed("disk payload: %d extents, want 1..%d", len(p.Extents), MaxExtents)
	}
	var sum, end int64
	for i, e := range p.Extents {
		if e.Target < end || e.Length <= 0 || e.Target%512 != 0 || e.Length%512 != 0 || e.Length > MaxPayload || e.Target > MaxPayload {
			return malformed("disk payload: extent %d (%d+%d) not 512-aligned, empty, out of range or overlapping", i, e.Target, e.Length)
		}
		end = e.Target + e.Length
		sum += e.Length
	}
	if sum != p.Size {
		return malformed("disk payload: extents cover %d bytes, payload has %d", sum, p.Size)
	}
	if p.DiskSize < end || p.DiskSize%512 != 0 {
		return malformed("disk payload: disk size %d smaller than the last extent end %d or unaligned", p.DiskSize, end)
	}
	return nil
}

// Policy is what a device knows when it decides whether to install a
// verified bundle.
type Policy struct {
	Board          string    // this board's profile id
	Kind           Kind      // the kind the caller handles
	InstalledBuild uint64    // highest build ever committed on this device
	Kernel         string    // the kernel the device's boot partition carries; "" skips the check
	Now            time.Time // the device clock
	// ClockValidAfter: a clock before this is "not set" (a Pi has no RTC).
	ClockValidAfter time.Time
}

// Admit applies the device policy to a verified manifest: kind, board,
// clock, validity period, build number and kernel.
func (m *Manifest) Admit(p Policy) error {
	if p.Kind != "" && m.Kind != p.Kind {
		return fmt.Errorf("bundle: a %s bundle cannot be used here (want %s): %w", m.Kind, p.Kind, ErrWrongKind)
	}
	ok := false
	for _, b := range m.Boards {
		ok = ok || b == p.Board
	}
	if !ok {
		return fmt.Errorf("bundle: built for %v, this board is %q: %w", m.Boards, p.Board, ErrWrongBoard)
	}
	if p.Now.Before(p.ClockValidAfter) || p.Now.IsZero() {
		return fmt.Errorf("bundle: clock reads %s, cannot check expiry: %w", p.Now.UTC().Format(time.RFC3339), ErrClockUnset)
	}
	if !p.Now.Before(m.Expires) {
		return fmt.Errorf("bundle: version %s build %d expired at %s: %w", m.Version, m.Build, m.Expires.UTC().Format(time.RFC3339), ErrExpired)
	}
	if p.Now.Add(24 * time.Hour).Before(m.Created) {
		return fmt.Errorf("bundle: created %s, more than a day ahead of the device clock %s: %w", m.Created.UTC().Format(time.RFC3339), p.Now.UTC().Format(time.RFC3339), ErrNotYetValid)
	}
	if m.Build <= p.InstalledBuild {
		return fmt.Errorf("bundle: build %d (version %s) is not newer than installed build %d; refusing a replay or downgrade: %w", m.Build, m.Version, p.InstalledBuild, ErrDowngrade)
	}
	if p.Kernel != "" && m.Kernel != p.Kernel {
		return fmt.Errorf("bundle: needs kernel %s, this device boots %s; reflash the board: %w", m.Kernel, p.Kernel, ErrWrongBoard)
	}
	return nil
}
