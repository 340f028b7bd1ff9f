package revocation

import (
	"bytes"
	"crypto/x509"
	"os"
	"strconv"
	"testing"

	"kazasu/drivers/sim/testpki"
)

// Benchmarks run at 100k entries by default. KAZASU_BENCH_N=10000000 runs
// them at national scale (the CRL is generated once into the temp dir and
// reused). `kazasu crl bench` runs the same comparison in child processes
// and reports peak RSS as well.
func benchN(b *testing.B) int {
	if s := os.Getenv("KAZASU_BENCH_N"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("KAZASU_BENCH_N=%q", s)
		}
		return n
	}
	return 100_000
}

func benchCRL(b *testing.B) []byte {
	b.Helper()
	p, err := th.BenchCRL(os.TempDir(), benchN(b))
	if err != nil {
		b.Fatal(err)
	}
	der, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	return der
}

// BenchmarkIngest: streaming parse + signature check + compact set.
func BenchmarkIngest(b *testing.B) {
	der := benchCRL(b)
	cands := roots(b)
	b.SetBytes(int64(len(der)))
	b.ResetTimer()
	for b.Loop() {
		in, err := Ingest(bytes.NewReader(der), cands)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len((&Set{issuers: []*issuerSet{{info: IssuerInfo{Number: in.Info.Number, Entries: in.Len()}, base: in.set}}}).Marshal()))/float64(in.Len()), "B/entry")
	}
}

// BenchmarkParseRevocationList is the baseline: crypto/x509 on the same CRL
// (no signature check).
func BenchmarkParseRevocationList(b *testing.B) {
	der := benchCRL(b)
	b.SetBytes(int64(len(der)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := x509.ParseRevocationList(der); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	der := benchCRL(b)
	in, err := Ingest(bytes.NewReader(der), roots(b))
	if err != nil {
		b.Fatal(err)
	}
	set, err := Load((&Set{issuers: []*issuerSet{{info: IssuerInfo{Issuer: in.Info.Issuer, Number: in.Info.Number, Entries: in.Len()}, base: in.set}}}).Marshal())
	if err != nil {
		b.Fatal(err)
	}
	id := in.Info.Issuer
	n := benchN(b)
	// Probes spread over the whole set (64 Ki of them, so most lookups
	// miss the CPU caches as a kiosk's occasional lookup would).
	probes := make([][]byte, 1<<16)
	for i := range probes {
		// Half hits (listed serials), half misses (neighbours).
		s := append([]byte(nil), testpki.BenchSerial((i*7919+i*i)%n, make([]byte, 20))...)
		if i%2 == 1 {
			s[len(s)-1] ^= 0x55
		}
		probes[i] = s
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		set.Revoked(id, probes[i&(1<<16-1)])
		i++
	}
}
