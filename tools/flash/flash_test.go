package flash

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sparseImage makes a sparse image of size bytes with data written at the
// given offsets (random bytes, seeded), and returns its path and contents.
func sparseImage(t testing.TB, size int64, writes map[int64]int) (string, []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img.raw")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for off, n := range writes {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(255) + 1) // never all zero
		}
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
		copy(want[off:], b)
	}
	return p, want
}

func mapOf(t testing.TB, p string) *Map {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := MapFile(f, DefaultBlockSize)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMapSkipsHolesAndZeroBlocks(t *testing.T) {
	p, want := sparseImage(t, 64<<20, map[int64]int{0: 4096, 10 << 20: 300 << 10, 63 << 20: 1 << 20})
	// A written-but-zero block must be skipped too.
	f, _ := os.OpenFile(p, os.O_WRONLY, 0)
	f.WriteAt(make([]byte, 1<<20), 30<<20)
	f.Close()
	m := mapOf(t, p)
	if m.Size != 64<<20 {
		t.Fatalf("size %d", m.Size)
	}
	// 4096 at 0 → one 64 KiB block; 300 KiB at 10 MiB → 5 blocks (320 KiB);
	// 1 MiB at the end → 16 blocks.
	wantMapped := int64(64<<10 + 320<<10 + 1<<20)
	if got := m.Mapped(); got != wantMapped {
		t.Fatalf("mapped %d, want %d (ranges %+v)", got, wantMapped, m.Ranges)
	}
	for _, r := range m.Ranges {
		if sha256.Sum256(want[r.Off:r.End()]) != r.SHA256 {
			t.Fatalf("range %d+%d: hash mismatch", r.Off, r.Len)
		}
		if r.Len > maxRange {
			t.Fatalf("range longer than %d: %d", maxRange, r.Len)
		}
	}
}

func TestMapRejectsBadBlockSize(t *testing.T) {
	p, _ := sparseImage(t, 1<<20, nil)
	f, _ := os.Open(p)
	defer f.Close()
	if _, err := MapFile(f, 1000); err == nil {
		t.Fatal("block size 1000 accepted")
	}
}

func TestWriteAndVerifyRegularFile(t *testing.T) {
	p, want := sparseImage(t, 32<<20, map[int64]int{0: 1 << 20, 5 << 20: 2 << 20, 31 << 20: 123})
	m := mapOf(t, p)
	img, _ := os.Open(p)
	defer img.Close()
	// The target holds stale data everywhere: only mapped ranges and
	// patches are rewritten.
	target := filepath.Join(t.TempDir(), "card.img")
	stale := bytes.Repeat([]byte{0xEE}, 40<<20)
	if err := os.WriteFile(target, stale, 0o600); err != nil {
		t.Fatal(err)
	}
	prov := []byte(`{"terminal":"T-0001"}`)
	var phases []Phase
	res, err := Write(context.Background(), img, m, target, Options{
		Patches: []Patch{
			{Off: 20 << 20, Len: 64 << 10, What: "stale header wipe"},
			{Off: 24 << 20, Data: prov, What: "provisioning record"},
		},
		Progress: func(p Progress) {
			if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
				phases = append(phases, p.Phase)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != m.Mapped()+64<<10+int64(len(prov)) || res.Verified != res.Written {
		t.Fatalf("result %+v, mapped %d", res, m.Mapped())
	}
	got, _ := os.ReadFile(target)
	for _, r := range m.Ranges {
		if !bytes.Equal(got[r.Off:r.End()], want[r.Off:r.End()]) {
			t.Fatalf("range %d not written", r.Off)
		}
	}
	if !bytes.Equal(got[20<<20:20<<20+64<<10], make([]byte, 64<<10)) {
		t.Fatal("wipe not written")
	}
	if !bytes.Equal(got[24<<20:24<<20+len(prov)], prov) {
		t.Fatal("provisioning record not written")
	}
	if got[15<<20] != 0xEE {
		t.Fatal("an unmapped range was written")
	}
	if strings.Join(phaseStrings(phases), ",") != "write,sync,verify,done" {
		t.Fatalf("phases %v", phases)
	}
}

func phaseStrings(ps []Phase) []string {
	var s []string
	for _, p := range ps {
		s = append(s, string(p))
	}
	return s
}

// corrupter flips one bit of the nth write that reaches it: a bad card that
// acknowledges writes it does not keep.
type corrupter struct {
	w   io.WriterAt
	nth int
}

func (c *corrupter) WriteAt(b []byte, off int64) (int, error) {
	c.nth--
	if c.nth == 0 {
		bad := append([]byte(nil), b...)
		bad[len(bad)/2] ^= 0x10
		return c.w.WriteAt(bad, off)
	}
	return c.w.WriteAt(b, off)
}

func TestCorruptingWriterIsCaught(t *testing.T) {
	p, _ := sparseImage(t, 16<<20, map[int64]int{0: 3 << 20, 9 << 20: 1 << 20})
	m := mapOf(t, p)
	img, _ := os.Open(p)
	defer img.Close()
	for nth := 1; nth <= 4; nth++ {
		target := filepath.Join(t.TempDir(), "card.img")
		os.WriteFile(target, nil, 0o600)
		_, err := Write(context.Background(), img, m, target, Options{
			WrapWriter: func(w io.WriterAt) io.WriterAt { return &corrupter{w: w, nth: nth} },
		})
		if !errors.Is(err, ErrVerify) || ExitCodeFor(err) != ExitVerify {
			t.Fatalf("corrupted write %d: err %v (exit %d), want verification failure", nth, err, ExitCodeFor(err))
		}
	}
}

type failingWriter struct{}

func (failingWriter) WriteAt([]byte, int64) (int, error) { return 0, errors.New("EIO") }

func TestWriteErrorExitCode(t *testing.T) {
	p, _ := sparseImage(t, 1<<20, map[int64]int{0: 100})
	m := mapOf(t, p)
	img, _ := os.Open(p)
	defer img.Close()
	target := filepath.Join(t.TempDir(), "card.img")
	os.WriteFile(target, nil, 0o600)
	_, err := Write(context.Background(), img, m, target, Options{WrapWriter: func(io.WriterAt) io.WriterAt { return failingWriter{} }})
	if ExitCodeFor(err) != ExitWrite {
		t.Fatalf("err %v exit %d", err, ExitCodeFor(err))
	}
}

// fakeSys builds a sysfs/procfs tree for device checks.
func fakeSys(t *testing.T) Sys {
	t.Helper()
	root := t.TempDir()
	mk := func(p, v string) {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// sda: the system disk (root mounted from sda2).
	mk("block/sda/dev", "8:0")
	mk("block/sda/size", "500118192")
	mk("block/sda/removable", "0")
	mk("block/sda/ro", "0")
	mk("block/sda/sda2/dev", "8:2")
	// sdb: a 16 GB SD card in a USB reader, partition 1 mounted.
	mk("block/sdb/dev", "8:16")
	mk("block/sdb/size", "31116288")
	mk("block/sdb/removable", "1")
	mk("block/sdb/ro", "0")
	mk("block/sdb/device/vendor", "Generic")
	mk("block/sdb/device/model", "STORAGE DEVICE")
	mk("block/sdb/sdb1/dev", "8:17")
	// sdc: a clean 1 GB card.
	mk("block/sdc/dev", "8:32")
	mk("block/sdc/size", "2097152")
	mk("block/sdc/removable", "1")
	mk("block/sdc/ro", "0")
	// sdd: locked card.
	mk("block/sdd/dev", "8:48")
	mk("block/sdd/size", "31116288")
	mk("block/sdd/removable", "1")
	mk("block/sdd/ro", "1")
	// sde: clean, fixed (eMMC).
	mk("block/sde/dev", "8:64")
	mk("block/sde/size", "31116288")
	mk("block/sde/removable", "0")
	mk("block/sde/ro", "0")
	mk("block/zram0/dev", "253:0")
	mk("block/zram0/size", "0")
	mk("mountinfo", "22 1 8:2 / / rw - ext4 /dev/sda2 rw\n30 22 8:17 / /media/tech/boot\\040fs rw - vfat /dev/sdb1 rw")
	mk("swaps", "Filename Type Size Used Priority")
	return Sys{SysBlock: filepath.Join(root, "block"), MountInfo: filepath.Join(root, "mountinfo"), Swaps: filepath.Join(root, "swaps"), Dev: "/dev"}
}

func TestDeviceChecks(t *testing.T) {
	s := fakeSys(t)
	devs, err := s.ListDevices()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*Device{}
	var names []string
	for _, d := range devs {
		byName[d.Name] = d
		names = append(names, d.Name)
	}
	if strings.Join(names, ",") != "sda,sdb,sdc,sdd,sde" {
		t.Fatalf("devices %v (zram with size 0 must be skipped)", names)
	}
	if byName["sdb"].Model != "Generic STORAGE DEVICE" || byName["sdb"].Size != 31116288*512 {
		t.Fatalf("sdb %+v", byName["sdb"])
	}
	const img = 2 << 30 // 2 GiB image
	cases := []struct {
		dev  string
		opts CheckOptions
		want string // substring of the refusal, "" = accepted
	}{
		{"sda", CheckOptions{AllowFixed: true}, "running system"},
		{"sdb", CheckOptions{}, "mounted (/media/tech/boot fs)"},
		{"sdc", CheckOptions{}, "too small"},
		{"sdd", CheckOptions{}, "read-only"},
		{"sde", CheckOptions{}, "not a removable disk"},
		{"sde", CheckOptions{AllowFixed: true}, ""},
	}
	for _, c := range cases {
		err := byName[c.dev].Check(img, c.opts)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: refused: %v", c.dev, err)
			}
			continue
		}
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want refusal containing %q", c.dev, err, c.want)
		}
		if ExitCodeFor(err) != ExitRefused {
			t.Errorf("%s: exit code %d", c.dev, ExitCodeFor(err))
		}
	}
}

// TestLoopDevice flashes a real block device (a loop device) when running as
// root with losetup available: O_EXCL open, O_DIRECT read-back.
func TestLoopDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		if os.Getenv("KAZASU_REQUIRE_TOOLS") == "1" {
			t.Fatal("losetup missing")
		}
		t.Skip("losetup missing")
	}
	backing := filepath.Join(t.TempDir(), "loop.img")
	if err := os.WriteFile(backing, bytes.Repeat([]byte{0x5A}, 24<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", backing).CombinedOutput()
	if err != nil {
		t.Skipf("losetup: %v: %s (no loop devices in this sandbox)", err, out)
	}
	loop := strings.TrimSpace(string(out))
	defer exec.Command("losetup", "-d", loop).Run()

	d, err := HostSys.Inspect(loop)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Check(16<<20, CheckOptions{}); !errors.Is(err, ErrRefused) {
		t.Fatalf("loop device accepted without --allow-fixed: %v", err)
	}
	if err := d.Check(16<<20, CheckOptions{AllowFixed: true}); err != nil {
		t.Fatal(err)
	}
	if err := d.Check(32<<20, CheckOptions{AllowFixed: true}); !errors.Is(err, ErrRefused) {
		t.Fatalf("too-small loop device accepted: %v", err)
	}
	p, want := sparseImage(t, 16<<20, map[int64]int{0: 1 << 20, 7<<20 + 512: 3000})
	m := mapOf(t, p)
	img, _ := os.Open(p)
	defer img.Close()
	if _, err := Write(context.Background(), img, m, loop, Options{BlockDevice: true}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(backing)
	for _, r := range m.Ranges {
		if !bytes.Equal(got[r.Off:r.End()], want[r.Off:r.End()]) {
			t.Fatalf("range %d not on the device", r.Off)
		}
	}
	// A corrupting writer under the flasher on a block device is caught by
	// the O_DIRECT read-back.
	_, err = Write(context.Background(), img, m, loop, Options{BlockDevice: true,
		WrapWriter: func(w io.WriterAt) io.WriterAt { return &corrupter{w: w, nth: 1} }})
	if !errors.Is(err, ErrVerify) {
		t.Fatalf("corruption on a block device not caught: %v", err)
	}
}
