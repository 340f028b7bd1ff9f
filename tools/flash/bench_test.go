package flash

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkFlashVsDD compares `kazasu flash` (mapped ranges only, fsync,
// read-back verification) with `dd conv=fsync` followed by `sha256sum` of the
// written file, on the same sparse image in the same run, and reports the
// ratio dd/flash (target ≥ 2). The image is 512 MiB with 48 MiB of data,
// the shape of a fresh kiosk image (most of it empty data partition).
//
//	go test -run '^$' -bench FlashVsDD -benchtime 3x ./tools/flash
func BenchmarkFlashVsDD(b *testing.B) {
	for _, tool := range []string{"dd", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s missing", tool)
		}
	}
	writes := map[int64]int{}
	for i := int64(0); i < 12; i++ {
		writes[i*40<<20] = 4 << 20
	}
	p, _ := sparseImage(b, 512<<20, writes)
	m := mapOf(b, p)
	img, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer img.Close()
	dir := b.TempDir()
	var flashT, ddT time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		target := filepath.Join(dir, "flash.img")
		os.Remove(target)
		os.WriteFile(target, nil, 0o600)
		t0 := time.Now()
		if _, err := Write(context.Background(), img, m, target, Options{}); err != nil {
			b.Fatal(err)
		}
		flashT += time.Since(t0)

		ddTarget := filepath.Join(dir, "dd.img")
		os.Remove(ddTarget)
		t1 := time.Now()
		if out, err := exec.Command("dd", "if="+p, "of="+ddTarget, "bs=4M", "conv=fsync", "status=none").CombinedOutput(); err != nil {
			b.Fatalf("dd: %v %s", err, out)
		}
		if out, err := exec.Command("sha256sum", ddTarget).CombinedOutput(); err != nil {
			b.Fatalf("sha256sum: %v %s", err, out)
		}
		ddT += time.Since(t1)
	}
	b.StopTimer()
	b.ReportMetric(float64(flashT.Milliseconds())/float64(b.N), "flash-ms/op")
	b.ReportMetric(float64(ddT.Milliseconds())/float64(b.N), "dd+sha256sum-ms/op")
	b.ReportMetric(float64(ddT)/float64(flashT), "speedup")
}
