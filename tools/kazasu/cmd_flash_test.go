package main

import (
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"

	"kazasu/firmware/bundle"
	"kazasu/firmware/layout"
	"kazasu/tools/flash"
)

// flashImage is a kazasu-layout disk image for the tests: a real GPT and
// hybrid MBR, data in the boot, root A and perm partitions, root B zero.
type flashImage struct {
	path    string
	disk    *layout.Disk
	data    map[int64][]byte // offset -> bytes written
	size    int64
	pub     string // PEM public key file
	priv    ed25519.PrivateKey
	dir     string
	extents []bundle.Extent
}

func makeFlashImage(t *testing.T) *flashImage { return makeFlashImageFS(t, false) }

// makeFlashImageFS makes the image; with ext4, /perm is a real ext4 made
// as fwbuild makes it (lazy_journal_init: the journal is left unzeroed).
func makeFlashImageFS(t *testing.T, ext4 bool) *flashImage {
	t.Helper()
	dir := t.TempDir()
	size := (int64(layout.MinDiskBytes) + 1<<20 - 1) &^ (1<<20 - 1)
	d, err := layout.New(size, "pi4")
	if err != nil {
		t.Fatal(err)
	}
	im := &flashImage{path: filepath.Join(dir, "kazasu.img"), disk: d, data: map[int64][]byte{}, size: size, dir: dir}
	f, err := os.Create(im.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteTable(f); err != nil {
		t.Fatal(err)
	}
	rng := mrand.New(mrand.NewPCG(7, 7))
	for _, w := range []struct {
		part int
		off  int64
		n    int
	}{{layout.PartBoot, 0, 300 << 10}, {layout.PartRootA, 0, 2 << 20}, {layout.PartRootA, 100 << 20, 70000}, {layout.PartPerm, 1024, 4096}} {
		b := make([]byte, w.n)
		for i := range b {
			b[i] = byte(rng.UintN(255) + 1)
		}
		off := d.Partition(w.part).Offset() + w.off
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
		im.data[off] = b
	}
	if ext4 {
		if _, err := exec.LookPath("mke2fs"); err != nil {
			if os.Getenv("KAZASU_REQUIRE_TOOLS") == "1" {
				t.Fatal("mke2fs missing")
			}
			t.Skip("mke2fs missing")
		}
		perm := d.Partition(layout.PartPerm)
		delete(im.data, perm.Offset()+1024)
		f.WriteAt(make([]byte, 4096), perm.Offset()+1024)
		out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-E",
			fmt.Sprintf("offset=%d,lazy_itable_init=1,lazy_journal_init=1", perm.Offset()), im.path, fmt.Sprint((size-perm.Offset())/4096-16)).CombinedOutput()
		if err != nil {
			t.Fatalf("mke2fs: %v\n%s", err, out)
		}
	}
	// The used extents, as fwbuild computes them (non-zero 64 KiB blocks).
	buf := make([]byte, 64<<10)
	for off := int64(0); off < size; off += int64(len(buf)) {
		// Skip holes (SEEK_DATA) rather than reading 700 MiB of zeros.
		if next, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA); err != nil {
			break
		} else if next >= off+int64(len(buf)) {
			off = next/int64(len(buf))*int64(len(buf)) - int64(len(buf))
			continue
		}
		n, _ := f.ReadAt(buf, off)
		if allZeroBytes(buf[:n]) {
			continue
		}
		if k := len(im.extents); k > 0 && im.extents[k-1].Target+im.extents[k-1].Length == off {
			im.extents[k-1].Length += int64(n)
		} else {
			im.extents = append(im.extents, bundle.Extent{Target: off, Length: int64(n)})
		}
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	im.priv = priv
	im.pub = filepath.Join(dir, "update.pub")
	os.WriteFile(im.pub, bundle.MarshalPublicKey(pub), 0o644)
	return im
}

// bundle writes a flash bundle of the image, signed unless sign is false.
func (im *flashImage) bundle(t *testing.T, sign bool, kind bundle.Kind) string {
	t.Helper()
	f, _ := os.Open(im.path)
	defer f.Close()
	var used int64
	for _, e := range im.extents {
		used += e.Length
	}
	out := filepath.Join(im.dir, "kazasu.flash.kzb")
	w, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	now := time.Now()
	m := bundle.Manifest{Kind: kind, Boards: []string{"pi4"}, Version: "1.4.0", Build: 42, Created: now.Add(-time.Hour), Expires: now.Add(24 * time.Hour), Kernel: "kernel.rpi@test"}
	src := bundle.Source{Role: bundle.RoleDisk, R: bundle.ExtentReader(f, im.extents), Size: used, Extents: im.extents, DiskSize: im.size}
	if kind == bundle.KindUpdate {
		src = bundle.Source{Role: bundle.RoleRoot, R: bytes.NewReader(im.data[im.disk.Partition(layout.PartRootA).Offset()]), Size: 2 << 20}
	}
	if _, err := bundle.Write(w, m, []bundle.Source{src}); err != nil {
		t.Fatal(err)
	}
	if sign {
		if _, err := bundle.Sign(w, im.priv); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// smallGzip is a compressed raw image's beginning: enough for a refusal.
func smallGzip(t *testing.T, dir string) string {
	p := filepath.Join(dir, "small.img.gz")
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(make([]byte, 1<<20))
	zw.Close()
	os.WriteFile(p, b.Bytes(), 0o644)
	return p
}

func gzipFile(t *testing.T, src string) string { return compressFile(t, src, "gzip") }

// compressFile writes src compressed as kind next to it.
func compressFile(t *testing.T, src, kind string) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dst := src + map[string]string{"gzip": ".gz", "xz": ".xz", "zstd": ".zst"}[kind]
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var zw io.WriteCloser
	switch kind {
	case "gzip":
		zw, err = gzip.NewWriterLevel(out, gzip.BestSpeed)
	case "xz":
		zw, err = xz.NewWriter(out)
	case "zstd":
		zw, err = zstd.NewWriter(out, zstd.WithEncoderLevel(zstd.SpeedFastest))
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(zw, in); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// checkCard asserts that the card holds the image's data, zeros where the
// wipes go, and returns its bytes at a few places.
func (im *flashImage) checkCard(t *testing.T, card string) {
	t.Helper()
	f, err := os.Open(card)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for off, want := range im.data {
		got := make([]byte, len(want))
		f.ReadAt(got, off)
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: image data at %d not on the card", card, off)
		}
	}
	d, err := layout.ReadTable(f)
	if err != nil || d.CheckKazasu() != nil {
		t.Fatalf("%s: partition table: %v", card, err)
	}
	// Root B and the end of /perm read as zero (stale headers wiped).
	for _, off := range []int64{im.disk.Partition(layout.PartRootB).Offset(), im.disk.Partition(layout.PartPerm).Offset() + 1<<20 - 512, layout.ProvisionOffset} {
		b := make([]byte, 512)
		f.ReadAt(b, off)
		if !allZeroBytes(b) {
			t.Fatalf("%s: stale bytes at %d not wiped", card, off)
		}
	}
}

// staleCard makes a reused card: 0xEE in the headers a wipe must clear and
// an old provisioning record.
func (im *flashImage) staleCard(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if st, _ := f.Stat(); st.Size() < im.size+8<<20 {
		f.Truncate(im.size + 8<<20)
	}
	junk := bytes.Repeat([]byte{0xEE}, 1<<20)
	for _, off := range []int64{im.disk.Partition(layout.PartRootB).Offset(), im.disk.Partition(layout.PartPerm).Offset(), layout.ProvisionOffset} {
		f.WriteAt(junk, off)
	}
}

func TestFlashSignedBundleToFiles(t *testing.T) {
	im := makeFlashImage(t)
	kzb := im.bundle(t, true, bundle.KindFlash)
	card1, card2 := filepath.Join(im.dir, "card1.img"), filepath.Join(im.dir, "card2.img")
	im.staleCard(t, card2)
	code, out, errs := run(t, "flash", kzb, "--device", card1, "--device", card2, "--pub", im.pub, "--json")
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
	var rep flashReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	if !rep.Signed || rep.Format != "bundle" || rep.Version != "1.4.0" || len(rep.Devices) != 2 || !rep.Devices[0].OK || !rep.Devices[1].OK {
		t.Fatalf("report %+v", rep)
	}
	if rep.Mapped >= im.size/50 || rep.Wiped == 0 {
		t.Fatalf("mapped %d of %d, wiped %d: not a sparse write", rep.Mapped, im.size, rep.Wiped)
	}
	im.checkCard(t, card1)
	im.checkCard(t, card2)
	checkPlainProgress(t, errs, "card1.img")
	checkPlainProgress(t, errs, "card2.img")
	if st, _ := os.Stat(card1); st.Size() != im.size {
		t.Fatalf("new card file is %d bytes, want the image size %d", st.Size(), im.size)
	}
}

func TestFlashProvisionAndPlainProgress(t *testing.T) {
	im := makeFlashImage(t)
	kzb := im.bundle(t, true, bundle.KindFlash)
	gz := gzipFile(t, kzb)
	prov := filepath.Join(im.dir, "kiosk.json")
	os.WriteFile(prov, []byte(`{"terminal_id":"T-0017","service_url":"https://issuance.example.jp"}`), 0o600)
	card := filepath.Join(im.dir, "card.img")
	im.staleCard(t, card)
	code, out, errs := run(t, "flash", gz, "--device", card, "--pub", im.pub, "--provision", prov)
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
	f, _ := os.Open(card)
	p, err := layout.ReadProvision(f)
	f.Close()
	if err != nil || p.TerminalID != "T-0017" {
		t.Fatalf("provisioning record: %+v, %v", p, err)
	}
	if !strings.HasPrefix(out, "OK      "+card+": ") || !strings.Contains(out, "provisioned as T-0017") {
		t.Fatalf("report line %q", out)
	}
	// Not a terminal: plain lines, each step at most once and in order,
	// starting and ending where they must.
	checkPlainProgress(t, errs, "card.img")
	if strings.Contains(errs, "\r") || strings.Contains(errs, "\x1b") {
		t.Fatal("terminal control characters on a non-terminal")
	}
	// The record names one terminal: two devices are refused.
	code, _, errs = run(t, "flash", kzb, "--device", card, "--device", card+"2", "--pub", im.pub, "--provision", prov)
	if code != flash.ExitRefused || !strings.Contains(errs, "one device at a time") {
		t.Fatalf("two devices with --provision: exit %d, %s", code, errs)
	}
}

func TestFlashRefusesUnsignedAndWrongInputs(t *testing.T) {
	im := makeFlashImage(t)
	unsigned := im.bundle(t, false, bundle.KindFlash)
	card := filepath.Join(im.dir, "card.img")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unsigned bundle", []string{unsigned, "--device", card, "--pub", im.pub}, "not signed"},
		{"no key", []string{unsigned, "--device", card}, "give --pub"},
		{"raw image", []string{im.path, "--device", card}, "carries no signature"},
		{"raw gzip image", []string{smallGzip(t, im.dir), "--device", card}, "carries no signature"},
		{"directory target", []string{im.path, "--allow-unsigned", "--device", im.dir}, "neither a block device nor a regular file"},
		{"same device twice", []string{im.path, "--allow-unsigned", "--device", card, "--device", card}, "given twice"},
		{"the image itself", []string{im.path, "--allow-unsigned", "--device", im.path}, "the image itself"},
	}
	link := filepath.Join(im.dir, "card-link")
	os.WriteFile(card+".other", nil, 0o644)
	os.Symlink(card+".other", link)
	cases = append(cases, struct {
		name string
		args []string
		want string
	}{"one device under two names", []string{im.path, "--allow-unsigned", "--device", link, "--device", card + ".other"}, "under two names"})
	for _, c := range cases {
		code, _, errs := run(t, append([]string{"flash"}, c.args...)...)
		if code != flash.ExitRefused || !strings.Contains(errs, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit 3 with %q", c.name, code, errs, c.want)
		}
	}
	if _, err := os.Stat(card); err == nil {
		t.Fatal("a refused run created the card file")
	}
	// An update bundle is not flashable.
	upd := im.bundle(t, true, bundle.KindUpdate)
	if code, _, errs := run(t, "flash", upd, "--device", card, "--pub", im.pub); code != 3 || !strings.Contains(errs, "kazasu push") {
		t.Fatalf("update bundle: exit %d, %s", code, errs)
	}
	// A flipped payload byte is caught before any device is written.
	b, _ := os.ReadFile(im.bundle(t, true, bundle.KindFlash))
	b[len(b)-100] ^= 1
	bad := filepath.Join(im.dir, "bad.kzb")
	os.WriteFile(bad, b, 0o644)
	if code, _, errs := run(t, "flash", bad, "--device", card, "--pub", im.pub); code != 3 || !strings.Contains(errs, "does not match its signed hash") {
		t.Fatalf("corrupt bundle: exit %d, %s", code, errs)
	}
	if _, err := os.Stat(card); err == nil {
		t.Fatal("a refused run created the card file")
	}
}

// corruptNth flips a bit in the nth write: a card that acknowledges writes
// it does not keep.
type corruptNth struct {
	w   io.WriterAt
	nth int
}

func (c *corruptNth) WriteAt(b []byte, off int64) (int, error) {
	c.nth--
	if c.nth == 0 {
		bad := append([]byte(nil), b...)
		bad[len(bad)/3] ^= 0x04
		return c.w.WriteAt(bad, off)
	}
	return c.w.WriteAt(b, off)
}

func TestFlashCorruptingWriterCaught(t *testing.T) {
	im := makeFlashImage(t)
	img := gzipFile(t, im.path)
	good, bad := filepath.Join(im.dir, "good.img"), filepath.Join(im.dir, "bad.img")
	flashHooks.wrap = func(target string) func(io.WriterAt) io.WriterAt {
		if target != bad {
			return nil
		}
		return func(w io.WriterAt) io.WriterAt { return &corruptNth{w: w, nth: 3} }
	}
	defer func() { flashHooks.wrap = nil }()
	code, out, errs := run(t, "flash", img, "--allow-unsigned", "--device", good, "--device", bad)
	if code != flash.ExitVerify {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, flash.ExitVerify, out, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "OK      "+good) || !strings.HasPrefix(lines[1], "FAILED  "+bad+": VERIFY error (exit 5)") {
		t.Fatalf("report:\n%s", out)
	}
	im.checkCard(t, good)
}

func TestFlashListsDevices(t *testing.T) {
	root := t.TempDir()
	mk := func(p, v string) {
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
		os.WriteFile(filepath.Join(root, p), []byte(v+"\n"), 0o644)
	}
	mk("block/sdb/dev", "8:16")
	mk("block/sdb/size", "31116288")
	mk("block/sdb/removable", "1")
	mk("block/sdb/ro", "0")
	mk("block/sdb/device/vendor", "SanDisk")
	mk("block/sdb/device/model", "Ultra")
	mk("block/sda/dev", "8:0")
	mk("block/sda/size", "500118192")
	mk("block/sda/removable", "0")
	mk("block/sda/ro", "0")
	mk("block/sda/sda2/dev", "8:2")
	mk("mountinfo", "22 1 8:2 / / rw - ext4 /dev/sda2 rw")
	mk("swaps", "Filename Type")
	sys := flash.Sys{SysBlock: filepath.Join(root, "block"), MountInfo: filepath.Join(root, "mountinfo"), Swaps: filepath.Join(root, "swaps"), Dev: "/dev"}
	flashHooks.sys = &sys
	defer func() { flashHooks.sys = nil }()
	code, out, _ := run(t, "flash")
	if code != 2 || !strings.Contains(out, "/dev/sdb") || !strings.Contains(out, "SanDisk Ultra") || !strings.Contains(out, "14.8 GiB") {
		t.Fatalf("exit %d, list:\n%s", code, out)
	}
	if !strings.Contains(out, "refused: /dev/sda holds the running system") {
		t.Fatalf("system disk not marked:\n%s", out)
	}
}

// TestFlashLoopDevices flashes real block devices (loop devices) as root:
// success with O_EXCL/O_DIRECT, refusal of a too-small and of a mounted
// device, and a corrupting writer caught on a block device.
func TestFlashLoopDevices(t *testing.T) {
	need := func(what string) {
		if os.Getenv("KAZASU_REQUIRE_TOOLS") == "1" {
			t.Fatal(what)
		}
		t.Skip(what)
	}
	if os.Geteuid() != 0 {
		need("needs root for loop devices")
	}
	for _, tool := range []string{"losetup", "mkfs.ext4", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			need(tool + " missing")
		}
	}
	im := makeFlashImage(t)
	kzb := im.bundle(t, true, bundle.KindFlash)
	loop := func(size int64) (string, string) {
		backing := filepath.Join(im.dir, fmt.Sprintf("loop%d.img", size))
		f, _ := os.Create(backing)
		f.Truncate(size)
		f.Close()
		out, err := exec.Command("losetup", "--find", "--show", backing).CombinedOutput()
		if err != nil {
			need("losetup: " + strings.TrimSpace(string(out)))
		}
		dev := strings.TrimSpace(string(out))
		t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
		return dev, backing
	}
	big, backing := loop(im.size + 16<<20)
	im.staleCard(t, backing)
	if bf, err := os.OpenFile(backing, os.O_WRONLY, 0); err == nil {
		bf.WriteAt(bytes.Repeat([]byte("EFI PART"), 512), im.size+16<<20-4096)
		bf.Close()
	}
	exec.Command("blockdev", "--flushbufs", big).Run()
	// Loop devices are not removable: refused without --allow-fixed.
	if code, _, errs := run(t, "flash", kzb, "--device", big, "--pub", im.pub, "--yes"); code != 3 || !strings.Contains(errs, "not a removable disk") {
		t.Fatalf("fixed disk: exit %d, %s", code, errs)
	}
	// No --yes and stdin not a terminal: refused.
	if code, _, errs := run(t, "flash", kzb, "--device", big, "--pub", im.pub, "--allow-fixed"); code != 3 || !strings.Contains(errs, "pass --yes") {
		t.Fatalf("unconfirmed: exit %d, %s", code, errs)
	}
	code, out, errs := run(t, "flash", kzb, "--device", big, "--pub", im.pub, "--allow-fixed", "--yes")
	if code != 0 {
		t.Fatalf("loop device: exit %d\n%s\n%s", code, out, errs)
	}
	im.checkCard(t, big)
	// The end of the larger disk (stale backup GPT of an older layout) is
	// wiped.
	tail := make([]byte, 4096)
	bf, _ := os.Open(backing)
	bf.ReadAt(tail, im.size+16<<20-4096)
	bf.Close()
	if !allZeroBytes(tail) {
		t.Fatal("the end of the disk was not wiped")
	}

	small, _ := loop(im.size - 64<<20)
	if code, _, errs := run(t, "flash", kzb, "--device", small, "--pub", im.pub, "--allow-fixed", "--yes"); code != 3 || !strings.Contains(errs, "too small") {
		t.Fatalf("too small: exit %d, %s", code, errs)
	}

	mounted, _ := loop(64 << 20)
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", mounted).CombinedOutput(); err != nil {
		t.Fatalf("mkfs: %v %s", err, out)
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", mounted, mnt).CombinedOutput(); err != nil {
		need("mount: " + strings.TrimSpace(string(out)))
	}
	defer exec.Command("umount", mnt).Run()
	if code, _, errs := run(t, "flash", kzb, "--device", mounted, "--pub", im.pub, "--allow-fixed", "--yes"); code != 3 || !strings.Contains(errs, "is mounted") {
		t.Fatalf("mounted: exit %d, %s", code, errs)
	}

	flashHooks.wrap = func(string) func(io.WriterAt) io.WriterAt {
		return func(w io.WriterAt) io.WriterAt { return &corruptNth{w: w, nth: 2} }
	}
	defer func() { flashHooks.wrap = nil }()
	if code, out, _ := run(t, "flash", kzb, "--device", big, "--pub", im.pub, "--allow-fixed", "--yes"); code != 5 || !strings.Contains(out, "VERIFY error") {
		t.Fatalf("corrupting writer on a block device: exit %d, %s", code, out)
	}
}

// checkPlainProgress checks the non-terminal progress lines of one device:
// a subsequence of write 0%..100%, syncing, verify 0%..100%, verified, with
// "write 100%", "syncing", "verify 100%" and "verified" present.
func checkPlainProgress(t *testing.T, errs, name string) {
	t.Helper()
	var canon []string
	for i := 0; i <= 100; i += 10 {
		canon = append(canon, fmt.Sprintf("write %d%%", i))
	}
	canon = append(canon, "syncing")
	for i := 0; i <= 100; i += 10 {
		canon = append(canon, fmt.Sprintf("verify %d%%", i))
	}
	canon = append(canon, "verified")
	j := 0
	seen := map[string]bool{}
	for _, l := range strings.Split(errs, "\n") {
		l, ok := strings.CutPrefix(l, name+": ")
		if !ok {
			continue
		}
		for j < len(canon) && canon[j] != l {
			j++
		}
		if j == len(canon) {
			t.Fatalf("progress line %q out of order or unknown in:\n%s", l, errs)
		}
		seen[l] = true
		j++
	}
	for _, must := range []string{"write 100%", "syncing", "verify 100%", "verified"} {
		if !seen[must] {
			t.Fatalf("progress lacks %q:\n%s", must, errs)
		}
	}
}

func TestFlashWipesStalePermJournal(t *testing.T) {
	im := makeFlashImageFS(t, true)
	kzb := im.bundle(t, true, bundle.KindFlash)
	perm := im.disk.Partition(layout.PartPerm)
	f, _ := os.Open(im.path)
	sb := make([]byte, flash.Ext4SuperblockSize)
	f.ReadAt(sb, perm.Offset()+flash.Ext4SuperblockOffset)
	f.Close()
	journal, err := flash.Ext4Journal(sb)
	if err != nil {
		t.Fatal(err)
	}
	// A reused card: an old journal full of plausible transactions.
	card := filepath.Join(im.dir, "card.img")
	im.staleCard(t, card)
	cf, _ := os.OpenFile(card, os.O_WRONLY, 0)
	for _, j := range journal {
		cf.WriteAt(bytes.Repeat([]byte{0xC0, 0x3B, 0x39, 0x98}, int(j.Len/4)), perm.Offset()+j.Off)
	}
	cf.Close()
	code, out, errs := run(t, "flash", kzb, "--device", card, "--pub", im.pub, "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	var rep flashReport
	json.Unmarshal([]byte(out), &rep)
	if !rep.JournalWiped {
		t.Fatalf("journal not wiped: %s\n%s", out, errs)
	}
	imgF, _ := os.Open(im.path)
	defer imgF.Close()
	cardF, _ := os.Open(card)
	defer cardF.Close()
	for _, j := range journal {
		want, got := make([]byte, j.Len), make([]byte, j.Len)
		imgF.ReadAt(want, perm.Offset()+j.Off)
		cardF.ReadAt(got, perm.Offset()+j.Off)
		if !bytes.Equal(got, want) {
			t.Fatalf("journal at %d+%d on the card differs from the image (stale transactions left)", perm.Offset()+j.Off, j.Len)
		}
	}
	im.checkCard(t, card)
	if _, err := exec.LookPath("e2fsck"); err == nil {
		if out, err := exec.Command("e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", card, perm.Offset())).CombinedOutput(); err != nil {
			t.Fatalf("e2fsck of /perm on the card: %v\n%s", err, out)
		}
	}
}

// TestFlashCompressed: signed bundles and (for development) raw images
// compressed with gzip, xz or zstd are written and verified like plain
// ones; a truncated compressed file is a write-time error, not a bad card.
func TestFlashCompressed(t *testing.T) {
	im := makeFlashImage(t)
	kzb := im.bundle(t, true, bundle.KindFlash)
	for _, kind := range []string{"gzip", "xz", "zstd"} {
		t.Run(kind, func(t *testing.T) {
			z := compressFile(t, kzb, kind)
			card := filepath.Join(im.dir, kind+"-card.img")
			code, out, errs := run(t, "flash", z, "--device", card, "--pub", im.pub, "--json")
			if code != 0 {
				t.Fatalf("bundle: exit %d\nstdout %s\nstderr %s", code, out, errs)
			}
			if !strings.Contains(out, `"format": "bundle+`+kind+`"`) {
				t.Fatalf("report does not name bundle+%s: %s", kind, out)
			}
			im.checkCard(t, card)

			raw := compressFile(t, im.path, kind)
			card2 := filepath.Join(im.dir, kind+"-card2.img")
			if code, out, errs := run(t, "flash", raw, "--device", card2, "--allow-unsigned"); code != 0 {
				t.Fatalf("raw: exit %d\nstdout %s\nstderr %s", code, out, errs)
			}
			im.checkCard(t, card2)

			// Cut the compressed bundle short: refused or failed, never OK.
			b, _ := os.ReadFile(z)
			cut := z + ".cut"
			os.WriteFile(cut, b[:len(b)*2/3], 0o644)
			if code, out, _ := run(t, "flash", cut, "--device", filepath.Join(im.dir, kind+"-cut.img"), "--pub", im.pub); code == 0 {
				t.Fatalf("truncated %s bundle flashed: %s", kind, out)
			}
		})
	}
}
