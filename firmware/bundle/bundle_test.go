package bundle

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var (
	testKey  = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	nextKey  = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	otherKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	testKeys = Keys{Current: testKey.Public().(ed25519.PublicKey), Next: nextKey.Public().(ed25519.PublicKey)}
	t0       = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func payloadBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

var (
	rootData = payloadBytes(1, 2*ChunkSize+4000) // three chunks, the last short; 96 bytes of padding follow
	bootData = payloadBytes(2, 70000)
)

func baseManifest() Manifest {
	return Manifest{
		Kind: KindUpdate, Boards: []string{"pi4", "cm4"}, Version: "1.4.0", Build: 42,
		Created: t0, Expires: t0.Add(180 * 24 * time.Hour), Kernel: "kernel.rpi@v0.0.0-20251127164438-9778ec0261de",
		GitCommit: "0123456789abcdef",
	}
}

// makeBundle builds a bundle and signs it with key (nil: unsigned).
func makeBundle(t testing.TB, m Manifest, key ed25519.PrivateKey) []byte {
	t.Helper()
	var buf bytes.Buffer
	_, err := Write(&buf, m, []Source{
		{Role: RoleRoot, R: bytes.NewReader(rootData), Size: int64(len(rootData))},
		{Role: RoleBoot, R: bytes.NewReader(bootData), Size: int64(len(bootData))},
	})
	if err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if key != nil {
		if _, err := Sign(memFile(b), key); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// memFile is a ReadWriterAt over a byte slice.
type memFile []byte

func (m memFile) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(m).ReadAt(p, off)
}
func (m memFile) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > int64(len(m)) {
		return 0, io.ErrShortWrite
	}
	return copy(m[off:], p), nil
}

// readAll verifies b through the streaming path and returns the payloads.
func readAll(b []byte, keys Keys) (map[Role][]byte, *Manifest, error) {
	r, err := Read(bytes.NewReader(b), keys)
	if err != nil {
		return nil, nil, err
	}
	out := map[Role][]byte{}
	for {
		p, pr, err := r.Next()
		if err == io.EOF {
			return out, r.Manifest(), nil
		}
		if err != nil {
			return nil, nil, err
		}
		data, err := io.ReadAll(pr)
		if err != nil {
			return nil, nil, err
		}
		out[p.Role] = data
	}
}

// openAll verifies b through the random-access path.
func openAll(b []byte, keys Keys) error {
	bu, err := Open(bytes.NewReader(b), int64(len(b)), keys)
	if err != nil {
		return err
	}
	return bu.Verify()
}

func policy() Policy {
	return Policy{Board: "pi4", Kind: KindUpdate, InstalledBuild: 41, Now: t0.Add(time.Hour), ClockValidAfter: t0.Add(-365 * 24 * time.Hour), Kernel: "kernel.rpi@v0.0.0-20251127164438-9778ec0261de"}
}

func TestRoundTrip(t *testing.T) {
	b := makeBundle(t, baseManifest(), testKey)
	got, m, err := readAll(b, testKeys)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[RoleRoot], rootData) || !bytes.Equal(got[RoleBoot], bootData) {
		t.Fatal("payloads differ")
	}
	if err := m.Admit(policy()); err != nil {
		t.Fatal(err)
	}
	if err := openAll(b, testKeys); err != nil {
		t.Fatal(err)
	}
	// Signed with the next key: also trusted.
	if err := openAll(makeBundle(t, baseManifest(), nextKey), testKeys); err != nil {
		t.Fatalf("next key: %v", err)
	}
	bu, _ := Open(bytes.NewReader(b), int64(len(b)), testKeys)
	root := bu.Manifest().Payload(RoleRoot)
	if root.Offset%Align != 0 || len(root.Chunks) != 3 || bu.KeyID() != IDOf(testKeys.Current) || !bu.Signed() {
		t.Fatalf("payload %+v", root)
	}
	if r := root.Ranges(); len(r) != 1 || r[0] != (Range{Source: root.Offset, Target: 0, Length: root.Size}) {
		t.Fatalf("ranges %v", r)
	}
	if int64(len(b)) != bu.Manifest().Size() {
		t.Fatal("size")
	}
	// Deterministic: the same inputs give the same bytes.
	if !bytes.Equal(b, makeBundle(t, baseManifest(), testKey)) {
		t.Fatal("Write+Sign is not deterministic")
	}
}

func TestDiskPayloadRanges(t *testing.T) {
	img := payloadBytes(3, 3*4096)
	var buf bytes.Buffer
	m := baseManifest()
	m.Kind = KindFlash
	ext := []Extent{{Target: 0, Length: 4096}, {Target: 1 << 20, Length: 8192}}
	if _, err := Write(&buf, m, []Source{{Role: RoleDisk, R: bytes.NewReader(img), Size: int64(len(img)), Extents: ext, DiskSize: 2 << 20}}); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if _, err := Sign(memFile(b), testKey); err != nil {
		t.Fatal(err)
	}
	bu, err := Open(bytes.NewReader(b), int64(len(b)), testKeys)
	if err != nil {
		t.Fatal(err)
	}
	p := bu.Manifest().Payload(RoleDisk)
	r := p.Ranges()
	if len(r) != 2 || r[0] != (Range{p.Offset, 0, 4096}) || r[1] != (Range{p.Offset + 4096, 1 << 20, 8192}) {
		t.Fatalf("ranges %+v", r)
	}
	pol := policy()
	if err := bu.Manifest().Admit(pol); !errors.Is(err, ErrWrongKind) {
		t.Fatalf("flash bundle admitted by the update agent: %v", err)
	}
	pol.Kind = KindFlash
	if err := bu.Manifest().Admit(pol); err != nil {
		t.Fatal(err)
	}
}

// Every byte of header, manifest and padding, and bytes in every chunk of
// every payload, flipped one at a time: both verification paths refuse,
// and say why.
func TestTamperEveryRegion(t *testing.T) {
	good := makeBundle(t, baseManifest(), testKey)
	bu, _ := Open(bytes.NewReader(good), int64(len(good)), testKeys)
	m := bu.Manifest()
	var offsets []int64
	for i := int64(0); i < m.Payloads[0].Offset; i++ { // header, manifest, padding
		offsets = append(offsets, i)
	}
	for _, p := range m.Payloads {
		for c := int64(0); c < int64(len(p.Chunks)); c++ {
			start := p.Offset + c*ChunkSize
			end := min(start+ChunkSize, p.End()) - 1
			offsets = append(offsets, start, (start+end)/2, end)
		}
		for i := p.End(); i < alignUp(p.End()) && i < int64(len(good)); i++ {
			offsets = append(offsets, i) // padding after the payload
		}
	}
	b := bytes.Clone(good)
	for _, off := range offsets {
		b[off] ^= 0x40
		region := "payload"
		switch {
		case off < 8:
			region = "magic"
		case off < 16:
			region = "length"
		case off < headerSize:
			region = "signature"
		case off < headerSize+int64(len(mustManifest(t, good))):
			region = "manifest"
		case off < m.Payloads[0].Offset:
			region = "padding"
		}
		for name, verify := range map[string]func([]byte, Keys) error{
			"stream": func(b []byte, k Keys) error { _, _, err := readAll(b, k); return err },
			"open":   openAll,
		} {
			err := verify(b, testKeys)
			if err == nil {
				t.Fatalf("%s: byte %d (%s) flipped: accepted", name, off, region)
			}
			var want []error
			switch region {
			case "magic", "padding":
				want = []error{ErrMalformed}
			case "length": // a shorter manifest no longer matches its signature
				want = []error{ErrMalformed, ErrBadSignature}
			case "signature":
				want = []error{ErrUnknownKey, ErrBadSignature}
			case "manifest":
				want = []error{ErrBadSignature}
			case "payload":
				want = []error{ErrCorrupt, ErrMalformed}
			}
			ok := false
			for _, w := range want {
				ok = ok || errors.Is(err, w)
			}
			if !ok || !strings.HasPrefix(err.Error(), "bundle: ") {
				t.Fatalf("%s: byte %d (%s): error %q, want one of %v", name, off, region, err, want)
			}
		}
		b[off] ^= 0x40
	}
	if err := openAll(b, testKeys); err != nil {
		t.Fatalf("restored bundle: %v", err)
	}
	t.Logf("%d tampered bundles refused on both paths", len(offsets))
}

func mustManifest(t *testing.T, b []byte) []byte {
	raw, err := ManifestBytes(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestTruncatedAndTrailing(t *testing.T) {
	good := makeBundle(t, baseManifest(), testKey)
	for _, n := range []int{0, 7, headerSize - 1, headerSize + 10, 4096, len(good) - ChunkSize, len(good) - 1} {
		if _, _, err := readAll(good[:n], testKeys); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "truncated") && !strings.Contains(err.Error(), "reading") {
			t.Errorf("stream truncated to %d: %v", n, err)
		}
		if err := openAll(good[:n], testKeys); !errors.Is(err, ErrMalformed) {
			t.Errorf("open truncated to %d: %v", n, err)
		}
	}
	long := append(bytes.Clone(good), 0)
	if _, _, err := readAll(long, testKeys); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "after the last payload") {
		t.Errorf("trailing byte, stream: %v", err)
	}
	if err := openAll(long, testKeys); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "manifest describes") {
		t.Errorf("trailing byte, open: %v", err)
	}
}

func TestSignatureRefusals(t *testing.T) {
	unsigned := makeBundle(t, baseManifest(), nil)
	if _, _, err := readAll(unsigned, testKeys); !errors.Is(err, ErrUnsigned) || !strings.Contains(err.Error(), "no signature") {
		t.Errorf("unsigned: %v", err)
	}
	if _, err := OpenUnsigned(bytes.NewReader(unsigned), int64(len(unsigned))); err != nil {
		t.Errorf("OpenUnsigned: %v", err)
	}
	foreign := makeBundle(t, baseManifest(), otherKey)
	_, _, err := readAll(foreign, testKeys)
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), IDOf(otherKey.Public().(ed25519.PublicKey)).String()) {
		t.Errorf("foreign key: %v", err)
	}
	// A valid signature moved onto another manifest.
	m2 := baseManifest()
	m2.Build = 43
	other := makeBundle(t, m2, nil)
	good := makeBundle(t, baseManifest(), testKey)
	copy(other[16:headerSize], good[16:headerSize])
	if _, _, err := readAll(other, testKeys); !errors.Is(err, ErrBadSignature) {
		t.Errorf("transplanted signature: %v", err)
	}
	// Device with no keys at all.
	if _, _, err := readAll(good, Keys{}); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("no keys: %v", err)
	}
}

// A correctly signed bundle that the device must still refuse.
func TestPolicyRefusals(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Manifest, *Policy)
		want error
		msg  string
	}{
		{"wrong board", func(m *Manifest, p *Policy) { p.Board = "pi5" }, ErrWrongBoard, `built for [pi4 cm4], this board is "pi5"`},
		{"expired", func(m *Manifest, p *Policy) { p.Now = m.Expires }, ErrExpired, "expired at 2026-06-30T00:00:00Z"},
		{"from the future", func(m *Manifest, p *Policy) { p.Now = m.Created.Add(-25 * time.Hour) }, ErrNotYetValid, "ahead of the device clock"},
		{"clock unset", func(m *Manifest, p *Policy) { p.Now = time.Unix(0, 0) }, ErrClockUnset, "cannot check expiry"},
		{"replay", func(m *Manifest, p *Policy) { p.InstalledBuild = 42 }, ErrDowngrade, "build 42 (version 1.4.0) is not newer than installed build 42"},
		{"downgrade", func(m *Manifest, p *Policy) { p.InstalledBuild = 50 }, ErrDowngrade, "refusing a replay or downgrade"},
		{"kernel", func(m *Manifest, p *Policy) { p.Kernel = "kernel.rpi@other" }, ErrWrongBoard, "reflash the board"},
		{"kind", func(m *Manifest, p *Policy) { p.Kind = KindFlash }, ErrWrongKind, "a update bundle cannot be used here"},
	} {
		m, p := baseManifest(), policy()
		c.edit(&m, &p)
		b := makeBundle(t, m, testKey)
		_, got, err := readAll(b, testKeys)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		err = got.Admit(p)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v; want %v containing %q", c.name, err, c.want, c.msg)
		}
	}
}

// Manifests that are signed but structurally wrong: every field.
func TestManifestValidation(t *testing.T) {
	good := makeBundle(t, baseManifest(), nil)
	raw := mustManifest(t, good)
	var base map[string]any
	if err := json.Unmarshal(raw, &base); err != nil {
		t.Fatal(err)
	}
	payload := func(m map[string]any, i int) map[string]any { return m["payloads"].([]any)[i].(map[string]any) }
	for _, c := range []struct {
		name string
		edit func(m map[string]any)
		msg  string
	}{
		{"format", func(m map[string]any) { m["format"] = 2 }, "format 2"},
		{"product", func(m map[string]any) { m["product"] = "other" }, "product"},
		{"kind", func(m map[string]any) { m["kind"] = "rootfs" }, "kind"},
		{"no boards", func(m map[string]any) { m["boards"] = []string{} }, "0 boards"},
		{"bad board", func(m map[string]any) { m["boards"] = []string{"Pi 4"} }, "board"},
		{"repeated board", func(m map[string]any) { m["boards"] = []string{"pi4", "pi4"} }, "repeated"},
		{"version", func(m map[string]any) { m["version"] = "" }, "version"},
		{"build 0", func(m map[string]any) { m["build"] = 0 }, "build 0"},
		{"expiry", func(m map[string]any) { m["expires"] = m["created"] }, "expiry"},
		{"kernel", func(m map[string]any) { m["kernel"] = "" }, "kernel"},
		{"commit", func(m map[string]any) { m["git_commit"] = "XYZ" }, "git commit"},
		{"chunk size", func(m map[string]any) { m["chunk_size"] = 4096 }, "chunk size"},
		{"unknown field", func(m map[string]any) { m["rollback"] = true }, "unknown field"},
		{"no payloads", func(m map[string]any) { m["payloads"] = []any{} }, "0 payloads"},
		{"role", func(m map[string]any) { payload(m, 0)["role"] = "disk" }, "not allowed"},
		{"repeated role", func(m map[string]any) { payload(m, 1)["role"] = "root" }, "repeated"},
		{"no root", func(m map[string]any) { m["payloads"] = m["payloads"].([]any)[1:] }, "without a root"},
		{"offset unaligned", func(m map[string]any) { payload(m, 0)["offset"] = 4097 }, "offset 4097"},
		{"offset overlap", func(m map[string]any) { payload(m, 1)["offset"] = 8192 }, "offset 8192"},
		{"size", func(m map[string]any) { payload(m, 0)["size"] = -1 }, "size -1"},
		{"chunk count", func(m map[string]any) { payload(m, 0)["size"] = 3*ChunkSize + 1 }, "chunk hashes"},
		{"digest", func(m map[string]any) { payload(m, 0)["sha256"] = "00" }, "digest"},
		{"digest case", func(m map[string]any) { payload(m, 0)["sha256"] = strings.ToUpper(payload(m, 0)["sha256"].(string)) }, "digest"},
		{"extents on root", func(m map[string]any) { payload(m, 0)["disk_size"] = 4096 }, "non-disk"},
		{"trailing json", nil, "trailing data"},
	} {
		m := map[string]any{}
		data, _ := json.Marshal(base)
		json.Unmarshal(data, &m)
		var mb []byte
		if c.edit != nil {
			c.edit(m)
			mb, _ = json.Marshal(m)
		} else {
			mb = append(bytes.Clone(raw), []byte(" {}")...)
		}
		_, err := parseManifest(mb)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v; want ErrMalformed containing %q", c.name, err, c.msg)
		}
		// The same manifest signed into a bundle is refused by Read too.
		var hb [headerSize]byte
		copy(hb[:], magic)
		binary.BigEndian.PutUint32(hb[8:], uint32(len(mb)))
		b := append(hb[:], mb...)
		if _, err := Sign(memFile(b), testKey); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Sign accepted it: %v", c.name, err)
		}
		id := IDOf(testKeys.Current)
		copy(b[16:], id[:])
		copy(b[24:], ed25519.Sign(testKey, SignedMessage(b[:16], mb)))
		if _, err := Read(bytes.NewReader(b), testKeys); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Read: %v", c.name, err)
		}
	}
}

func TestDiskExtentValidation(t *testing.T) {
	for _, c := range []struct {
		ext  []Extent
		disk int64
		msg  string
	}{
		{[]Extent{{0, 4096}, {2048, 8192}}, 1 << 20, "overlapping"},
		{[]Extent{{1, 12288}}, 1 << 20, "512-aligned"},
		{[]Extent{{0, 4096}}, 1 << 20, "cover 4096"},
		{[]Extent{{0, 12288}}, 4096, "disk size"},
		{nil, 1 << 20, "0 extents"},
	} {
		p := Payload{Role: RoleDisk, Size: 12288, Extents: c.ext, DiskSize: c.disk}
		if err := p.validateExtents(); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%v: %v, want %q", c.ext, err, c.msg)
		}
	}
}

func TestKeysPEM(t *testing.T) {
	pub := testKey.Public().(ed25519.PublicKey)
	got, err := ParsePublicKey(MarshalPublicKey(pub))
	if err != nil || !got.Equal(pub) {
		t.Fatal(err)
	}
	priv, err := ParsePrivateKey(MarshalPrivateKey(testKey))
	if err != nil || !priv.Equal(testKey) {
		t.Fatal(err)
	}
	if _, err := ParsePublicKey(MarshalPrivateKey(testKey)); err == nil {
		t.Fatal("private key accepted as public")
	}
	if _, err := ParsePrivateKey([]byte("junk")); err == nil {
		t.Fatal("junk accepted")
	}
}

func FuzzRead(f *testing.F) {
	f.Add(makeBundle(f, baseManifest(), testKey))
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, _, err := readAll(b, testKeys); err == nil {
			// Only an untampered signed bundle can pass.
			if _, err := Open(bytes.NewReader(b), int64(len(b)), testKeys); err != nil {
				t.Fatalf("stream accepted what Open refuses: %v", err)
			}
		}
	})
}

// The parser behind the signature, fuzzed directly: whatever it accepts
// obeys the layout invariants.
func FuzzManifest(f *testing.F) {
	f.Add(mustManifestF(f))
	f.Add([]byte(`{"format":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseManifest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without kind: %v", err)
			}
			return
		}
		prev := FirstPayloadOffset(len(b))
		for _, p := range m.Payloads {
			if p.Offset < prev || p.Offset%Align != 0 || p.Size <= 0 || int64(len(p.Chunks)) != (p.Size+ChunkSize-1)/ChunkSize {
				t.Fatalf("invariant broken: %+v", p)
			}
			prev = p.End()
		}
	})
}

func mustManifestF(f *testing.F) []byte {
	raw, err := ManifestBytes(bytes.NewReader(makeBundle(f, baseManifest(), nil)))
	if err != nil {
		f.Fatal(err)
	}
	return raw
}
