package revocation

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"kazasu/drivers/sim/testpki"
)

var (
	th = testpki.New("kazasu-revocation-test")
	t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
)

func roots(t testing.TB) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for _, k := range []testpki.Kind{testpki.Auth, testpki.Sign} {
		for g := 1; g <= testpki.Generations; g++ {
			c, _ := th.Root(k, g)
			out = append(out, c)
		}
	}
	return out
}

func mustCRL(t testing.TB, kind testpki.Kind, gen int, serials []int64, o testpki.CRLOptions) []byte {
	t.Helper()
	var e []testpki.Revoked
	for _, s := range serials {
		r := testpki.Revoked{Serial: big.NewInt(s), Time: t0.Add(-time.Hour)}
		if s < 0 { // negative numbers mark removeFromCRL in these tests
			r.Serial = big.NewInt(-s)
			r.Reason = testpki.ReasonRemoveFromCRL
		}
		e = append(e, r)
	}
	der, err := th.CRL(kind, gen, e, t0, t0.Add(24*time.Hour), o)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestIngestAgreesWithX509(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var entries []testpki.Revoked
	for i := range 3000 {
		var s *big.Int
		switch i % 5 {
		case 0:
			s = big.NewInt(int64(rng.IntN(300))) // short, with duplicates across the range
		case 1:
			s = new(big.Int).SetUint64(rng.Uint64()) // 8–9 bytes
		case 2:
			b := make([]byte, 20)
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			b[0] &= 0x7f
			s = new(big.Int).SetBytes(b) // up to 20 bytes
		case 3:
			s = new(big.Int).Lsh(big.NewInt(int64(i)), 80) // long, shared tail
			s.Add(s, big.NewInt(0x1234))
		case 4:
			s = big.NewInt(int64(-rng.IntN(1000) - 1)) // negative (non-conforming CAs)
		}
		entries = append(entries, testpki.Revoked{Serial: s, Time: t0.Add(-time.Duration(i) * time.Minute), Reason: i % 4})
	}
	der, err := th.CRL(testpki.Auth, 2, entries, t0, t0.Add(time.Hour), testpki.CRLOptions{Number: big.NewInt(9)})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	in, err := Ingest(bytes.NewReader(der), roots(t))
	if err != nil {
		t.Fatal(err)
	}
	g2, _ := th.Root(testpki.Auth, 2)
	if in.Info.Issuer != IssuerIDOf(g2) || in.Info.Number.Int64() != 9 || in.Info.IsDelta() || in.Info.Entries != len(ref.RevokedCertificateEntries) {
		t.Fatalf("info %+v", in.Info)
	}
	if !in.Info.ThisUpdate.Equal(ref.ThisUpdate) || !in.Info.NextUpdate.Equal(ref.NextUpdate) {
		t.Fatal("update times differ from crypto/x509")
	}
	want := map[string]bool{}
	for _, e := range ref.RevokedCertificateEntries {
		want[string(SerialBytes(e.SerialNumber))] = true
	}
	if in.Len() != len(want) {
		t.Fatalf("%d distinct serials, want %d", in.Len(), len(want))
	}
	for s := range want {
		if !in.Revoked([]byte(s)) {
			t.Fatalf("serial %x missing", s)
		}
		// Neighbours (±1 in the last byte) are absent unless listed.
		for _, d := range []int{-1, 1} {
			n := []byte(s)
			n = append([]byte(nil), n...)
			n[len(n)-1] += byte(d)
			if !want[string(n)] && in.Revoked(n) && isMinimal(n) {
				t.Fatalf("false positive %x", n)
			}
		}
	}
}

func isMinimal(s []byte) bool {
	return len(s) == 1 || !(s[0] == 0 && s[1]&0x80 == 0 || s[0] == 0xff && s[1]&0x80 != 0)
}

func TestSerialBytes(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want []byte
	}{
		{0, []byte{0}}, {1, []byte{1}}, {127, []byte{0x7f}}, {128, []byte{0, 0x80}}, {256, []byte{1, 0}},
		{-1, []byte{0xff}}, {-128, []byte{0x80}}, {-129, []byte{0xff, 0x7f}}, {-256, []byte{0xff, 0x00}},
	} {
		if got := SerialBytes(big.NewInt(tt.n)); !bytes.Equal(got, tt.want) {
			t.Errorf("SerialBytes(%d) = %x, want %x", tt.n, got, tt.want)
		}
	}
}

func TestBuilderExact(t *testing.T) {
	// Random and clustered values in one segment, against a map.
	for _, tc := range []struct {
		name string
		gen  func(r *rand.Rand, i int) uint64
	}{
		{"random63", func(r *rand.Rand, i int) uint64 { return r.Uint64() >> 1 }},
		{"random64", func(r *rand.Rand, i int) uint64 { return r.Uint64() }},
		{"sequential", func(r *rand.Rand, i int) uint64 { return 1_000_000 + uint64(i) }},
		{"clustered", func(r *rand.Rand, i int) uint64 { return uint64(i%7)<<40 | uint64(r.IntN(5000)) }},
		{"single", func(r *rand.Rand, i int) uint64 { return 42 }},
		{"extremes", func(r *rand.Rand, i int) uint64 {
			return []uint64{0, 1, 2, 1 << 63, 1<<63 + 1, 1<<64 - 2, 1<<64 - 1, 0x0123456789abcdef}[i%8]
		}},
		{"skewed", func(r *rand.Rand, i int) uint64 {
			if i%1000 == 0 {
				return r.Uint64() // a few far outliers stretch the span
			}
			return 1<<40 + uint64(r.IntN(200_000)) // a dense cluster inside few buckets
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			b := newBuilder()
			want := map[uint64]bool{}
			var ser [8]byte
			for i := range 50_000 {
				v := tc.gen(r, i)
				want[v] = true
				putBE(ser[:], v, 8)
				b.add(ser[:])
			}
			gr, n := b.group(nil)
			g := gr.short[8]
			if n != len(want) || g.n != len(want) {
				t.Fatalf("n = %d, want %d", n, len(want))
			}
			for v := range want {
				if !g.contains(v) {
					t.Fatalf("%x missing", v)
				}
				if !want[v+1] && g.contains(v+1) || !want[v-1] && g.contains(v-1) {
					t.Fatalf("false positive next to %x", v)
				}
			}
			for range 100_000 {
				v := r.Uint64()
				if g.contains(v) != want[v] {
					t.Fatalf("contains(%x) wrong", v)
				}
			}
			// The encoded form round-trips through the loader.
			s := &Set{issuers: []*issuerSet{{info: IssuerInfo{Number: big.NewInt(1), Entries: n}, base: gr}}}
			ls, err := Load(s.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			var id IssuerID
			for v := range want {
				putBE(ser[:], v, 8)
				if !ls.Revoked(id, ser[:]) {
					t.Fatalf("%x missing after load", v)
				}
			}
			t.Logf("%s: %.2f bytes/entry", tc.name, float64(len(s.Marshal()))/float64(n))
		})
	}
}

func TestIngestRejects(t *testing.T) {
	good := mustCRL(t, testpki.Sign, 3, []int64{1, 2, 3}, testpki.CRLOptions{Number: big.NewInt(4)})
	wrongKey := mustCRL(t, testpki.Sign, 3, []int64{1}, testpki.CRLOptions{SignerGeneration: 2})
	tests := []struct {
		name  string
		der   []byte
		roots []*x509.Certificate
		want  error
	}{
		{"bad signature", testpki.CorruptSignature(good), roots(t), ErrBadSignature},
		{"signed by another generation's key", wrongKey, roots(t), ErrBadSignature},
		{"issuer not a candidate", good, roots(t)[:3], ErrUnknownIssuer},
		{"trailing data", append(append([]byte(nil), good...), 0), roots(t), ErrMalformed},
		{"empty", nil, roots(t), ErrMalformed},
		{"garbage", []byte("-----BEGIN X509 CRL-----"), roots(t), ErrMalformed},
		{"indefinite length", []byte{0x30, 0x80, 0, 0}, roots(t), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Ingest(bytes.NewReader(tt.der), tt.roots)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	// Every truncation is malformed, never a panic or a success.
	for i := 0; i < len(good); i++ {
		_, err := Ingest(bytes.NewReader(good[:i]), roots(t))
		var me *MalformedError
		if !errors.As(err, &me) {
			t.Fatalf("truncated to %d: err = %v", i, err)
		}
	}
}

func TestStoreImportDeltaReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rev.kzr")
	st, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	g3, _ := th.Root(testpki.Auth, 3)
	id := IssuerIDOf(g3)
	ser := func(n int64) []byte { return SerialBytes(big.NewInt(n)) }
	if _, err := st.Import(bytes.NewReader(mustCRL(t, testpki.Auth, 3, []int64{10, 11, 12}, testpki.CRLOptions{Number: big.NewInt(100)})), roots(t)); err != nil {
		t.Fatal(err)
	}
	// Delta over 100: 13 revoked, 11 released from hold.
	if _, err := st.Import(bytes.NewReader(mustCRL(t, testpki.Auth, 3, []int64{13, -11}, testpki.CRLOptions{Number: big.NewInt(101), DeltaBase: big.NewInt(100)})), roots(t)); err != nil {
		t.Fatal(err)
	}
	check := func(s *Set) {
		t.Helper()
		for n, want := range map[int64]bool{10: true, 11: false, 12: true, 13: true, 14: false} {
			if s.Revoked(id, ser(n)) != want {
				t.Errorf("serial %d: revoked = %v, want %v", n, !want, want)
			}
		}
		info, ok := s.Info(id)
		if !ok || info.Number.Int64() != 100 || info.DeltaNumber.Int64() != 101 || info.Entries != 3 {
			t.Errorf("info %+v", info)
		}
	}
	check(st.Set())
	re, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	check(re.Set())

	for _, tc := range []struct {
		name string
		der  []byte
		want error
	}{
		{"replayed complete CRL", mustCRL(t, testpki.Auth, 3, nil, testpki.CRLOptions{Number: big.NewInt(100)}), ErrNotNewer},
		{"old delta", mustCRL(t, testpki.Auth, 3, nil, testpki.CRLOptions{Number: big.NewInt(101), DeltaBase: big.NewInt(100)}), ErrNotNewer},
		{"delta over a newer base", mustCRL(t, testpki.Auth, 3, nil, testpki.CRLOptions{Number: big.NewInt(300), DeltaBase: big.NewInt(200)}), ErrNoBase},
		{"delta without any base", mustCRL(t, testpki.Auth, 2, nil, testpki.CRLOptions{Number: big.NewInt(2), DeltaBase: big.NewInt(1)}), ErrNoBase},
		{"removeFromCRL in a complete CRL", mustCRL(t, testpki.Auth, 3, []int64{-5}, testpki.CRLOptions{Number: big.NewInt(500)}), ErrMalformed},
		{"newer CRL with a bad signature", testpki.CorruptSignature(mustCRL(t, testpki.Auth, 3, []int64{99}, testpki.CRLOptions{Number: big.NewInt(600)})), ErrBadSignature},
		{"newer CRL signed by another generation", mustCRL(t, testpki.Auth, 3, []int64{99}, testpki.CRLOptions{Number: big.NewInt(601), SignerGeneration: 2}), ErrBadSignature},
		{"truncated newer CRL", mustCRL(t, testpki.Auth, 3, []int64{99}, testpki.CRLOptions{Number: big.NewInt(602)})[:200], ErrMalformed},
	} {
		if _, err := st.Import(bytes.NewReader(tc.der), roots(t)); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	check(st.Set()) // nothing changed in memory
	if re, err := Open(path); err != nil {
		t.Fatal(err)
	} else {
		check(re.Set()) // nor on disk
	}

	// A newer complete CRL replaces the issuer's entries (the delta is folded).
	if _, err := st.Import(bytes.NewReader(mustCRL(t, testpki.Auth, 3, []int64{20}, testpki.CRLOptions{Number: big.NewInt(102)})), roots(t)); err != nil {
		t.Fatal(err)
	}
	if st.Set().Revoked(id, ser(10)) || !st.Set().Revoked(id, ser(20)) {
		t.Error("complete CRL did not replace the issuer's entries")
	}
	// A second issuer is independent.
	if _, err := st.Import(bytes.NewReader(mustCRL(t, testpki.Sign, 3, []int64{20}, testpki.CRLOptions{Number: big.NewInt(1)})), roots(t)); err != nil {
		t.Fatal(err)
	}
	if len(st.Set().Issuers()) != 2 || !st.Set().Revoked(id, ser(20)) {
		t.Error("second issuer disturbed the first")
	}

	// Corruption is detected on open, never silently accepted.
	b, _ := os.ReadFile(path)
	b[len(b)/2] ^= 1
	os.WriteFile(path, b, 0o644)
	if _, err := Open(path); !errors.Is(err, ErrMalformed) {
		t.Fatalf("corrupt store: err = %v", err)
	}
}

type fixedSets struct{ s *Set }

func (f fixedSets) Set() *Set { return f.s }

func TestCheckerFreshness(t *testing.T) {
	id, err := th.Issue(testpki.SamplePerson("REVCHECK0001"), testpki.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	crl := mustCRL(t, testpki.Auth, 3, []int64{1}, testpki.CRLOptions{Number: big.NewInt(1)})
	st, err := Open(filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Import(bytes.NewReader(crl), roots(t)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := &Checker{Sets: st}
	if r, err := c.Check(ctx, id.AuthCert, id.AuthCA, t0.Add(time.Hour)); err != nil || r.Status != Good || r.Source != SourceCRL {
		t.Fatalf("fresh: %+v %v", r, err)
	}
	late := t0.Add(25 * time.Hour)
	_, err = c.Check(ctx, id.AuthCert, id.AuthCA, late)
	var se *StaleError
	if !errors.As(err, &se) || !errors.Is(err, ErrStale) {
		t.Fatalf("stale, fail-closed: err = %v", err)
	}
	c.Grace = 2 * time.Hour
	if _, err := c.Check(ctx, id.AuthCert, id.AuthCA, late); err != nil {
		t.Fatalf("within grace: %v", err)
	}
	c.Grace = 0
	c.FailOpen = true
	if r, err := c.Check(ctx, id.AuthCert, id.AuthCA, late); err != nil || !r.Stale || r.Status != Good {
		t.Fatalf("fail-open: %+v %v", r, err)
	}
	if _, err := c.Check(ctx, id.SignCert, id.SignCA, t0); !errors.Is(err, ErrNoCRL) {
		t.Fatalf("no CRL for sign CA: err = %v", err)
	}
	var _ = fixedSets{}
}

// TestNationalShape100k ingests the benchmark CRL shape at 100k entries
// (random 63-bit serials plus 1 % long serials sharing a prefix) and checks
// exactness and size: every listed serial found, none of their neighbours,
// at most 8 bytes per entry in the loaded set.
func TestNationalShape100k(t *testing.T) {
	const n = 100_000
	p, err := th.BenchCRL(t.TempDir(), n)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Open(filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := st.Import(f, roots(t))
	if err != nil {
		t.Fatal(err)
	}
	set := st.Set()
	if info.Entries != n || set.Len() != n {
		t.Fatalf("entries %d, set %d", info.Entries, set.Len())
	}
	listed := map[string]bool{}
	buf := make([]byte, 20)
	for i := range n {
		listed[string(testpki.BenchSerial(i, buf))] = true
	}
	for s := range listed {
		if !set.Revoked(info.Issuer, []byte(s)) {
			t.Fatalf("listed serial %x not found", s)
		}
		probe := []byte(s)
		probe[len(probe)-1] ^= 1
		if !listed[string(probe)] && set.Revoked(info.Issuer, probe) {
			t.Fatalf("false positive %x", probe)
		}
	}
	if per := float64(set.Size()) / n; per > 8 {
		t.Fatalf("%.2f bytes per entry", per)
	} else {
		t.Logf("%.2f bytes per entry", per)
	}
	var other IssuerID
	if set.Revoked(other, testpki.BenchSerial(0, buf)) {
		t.Fatal("serial found under another issuer")
	}
}

// Lookups proceed while imports replace the set (run with -race).
func TestConcurrentLookupsDuringImport(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	g3, _ := th.Root(testpki.Auth, 3)
	id := IssuerIDOf(g3)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		ser := SerialBytes(big.NewInt(1))
		for {
			select {
			case <-stop:
				return
			default:
				set := st.Set()
				if info, ok := set.Info(id); ok && info.Number.Int64() >= 1 && !set.Revoked(id, ser) {
					t.Error("serial 1 missing from a committed set")
					return
				}
			}
		}
	}()
	for n := int64(1); n <= 5; n++ {
		if _, err := st.Import(bytes.NewReader(mustCRL(t, testpki.Auth, 3, []int64{1, n + 100}, testpki.CRLOptions{Number: big.NewInt(n)})), roots(t)); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	<-done
}

func TestPlausibleTime(t *testing.T) {
	for _, tt := range []struct {
		tag  byte
		v    string
		want bool
	}{
		{0x17, "260301000000Z", true},
		{0x18, "20260301000000Z", true},
		{0x17, "2603010000000", false},
		{0x17, "26030100000/Z", false},
		{0x17, "2603010:0000Z", false},
		{0x17, "260301000000", false},
		{0x18, "2026030100000AZ", false},
		{0x18, "20260301000000z", false},
		{0x17, "2603\xb0100000Z", false},
		{0x17, "20260301000000Z", false}, // GeneralizedTime length under a UTCTime tag
	} {
		if got := plausibleTime(cbasn1Tag(tt.tag), []byte(tt.v)); got != tt.want {
			t.Errorf("plausibleTime(%#x, %q) = %v", tt.tag, tt.v, got)
		}
	}
	// Every single-byte substitution in a digit position is caught.
	base := []byte("20260301000000Z")
	for i := 0; i < 14; i++ {
		for c := 0; c < 256; c++ {
			v := append([]byte(nil), base...)
			v[i] = byte(c)
			want := c >= '0' && c <= '9'
			if got := plausibleTime(cbasn1Tag(0x18), v); got != want {
				t.Fatalf("byte %d = %#x: %v", i, c, got)
			}
		}
	}
}

func cbasn1Tag(b byte) cbasn1.Tag { return cbasn1.Tag(b) }

// RFC 5280 §5.2.4: a delta lists every change since its base, so a newer
// delta replaces the older one. A certificate put on hold after the base
// and released before the next delta is simply not listed in it, and must
// not stay revoked.
func TestDeltaReplacesPreviousDelta(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	g3, _ := th.Root(testpki.Auth, 3)
	id := IssuerIDOf(g3)
	ser := func(n int64) []byte { return SerialBytes(big.NewInt(n)) }
	imp := func(serials []int64, o testpki.CRLOptions) {
		t.Helper()
		if _, err := st.Import(bytes.NewReader(mustCRL(t, testpki.Auth, 3, serials, o)), roots(t)); err != nil {
			t.Fatal(err)
		}
	}
	imp([]int64{10, 11, 12}, testpki.CRLOptions{Number: big.NewInt(100)})
	imp([]int64{13, -11}, testpki.CRLOptions{Number: big.NewInt(101), DeltaBase: big.NewInt(100)}) // 13 on hold, 11 released
	imp([]int64{14, -12}, testpki.CRLOptions{Number: big.NewInt(102), DeltaBase: big.NewInt(100)}) // 13 released again: not listed
	want := map[int64]bool{10: true, 11: true, 12: false, 13: false, 14: true}
	for _, s := range []*Set{st.Set(), mustReopen(t, st)} {
		for n, w := range want {
			if s.Revoked(id, ser(n)) != w {
				t.Errorf("serial %d: revoked = %v, want %v", n, !w, w)
			}
		}
		if info, _ := s.Info(id); info.Entries != 3 || info.DeltaNumber.Int64() != 102 {
			t.Errorf("info %+v", info)
		}
	}
}

func mustReopen(t *testing.T, st *Store) *Set {
	t.Helper()
	re, err := Open(st.Path())
	if err != nil {
		t.Fatal(err)
	}
	return re.Set()
}

// Stores written by format version 1 (no delta groups) still load.
func TestLoadVersion1(t *testing.T) {
	b := newBuilder()
	b.add([]byte{0x07})
	gr, n := b.group(nil)
	var id IssuerID
	id[0] = 1
	img := (&Set{issuers: []*issuerSet{{info: IssuerInfo{Issuer: id, Number: big.NewInt(3), Entries: n}, base: gr}}}).Marshal()
	// Down-convert: version 1, and drop the two empty delta groups (8 bytes
	// before the trailer), then fix the checksum.
	v1 := append([]byte(nil), img[:len(img)-12]...)
	v1[4] = 1
	v1 = binary.LittleEndian.AppendUint32(v1, crc32.Checksum(v1, castagnoli))
	s, err := Load(v1)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Revoked(id, []byte{0x07}) || s.Revoked(id, []byte{0x08}) || s.Len() != 1 {
		t.Fatal("version 1 store content")
	}
}
