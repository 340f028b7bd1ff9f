package image

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"

	"kazasu/firmware/bundle"
	"kazasu/firmware/layout"
)

var (
	testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, 32))
	epoch   = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("KAZASU_REQUIRE_TOOLS") == "1" {
				t.Fatalf("%s missing (see tools/scripts/packages.sh)", tool)
			}
			t.Skipf("%s missing", tool)
		}
	}
}

func moduleRoot(t *testing.T) string {
	_, f, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(f), "..", "..")
}

// StandinServices is what the tests (and the qemu scenarios) run as
// kazasud until daemon/cmd/kazasud exists: the kazasu tool's reference
// issuance service, a real long-running kazasu program.
func testServices(root string) []Package {
	s := DefaultServices()
	if _, err := os.Stat(filepath.Join(root, KazasudPackage)); err != nil {
		s[0].Import = "./tools/kazasu"
		s[0].Args = []string{"issuance", "serve", "--listen", "127.0.0.1:8443", "--tls-dir", "/perm/kazasu/tls"}
	}
	return s
}

func testConfig(t *testing.T, board, out string) Config {
	tg, err := NewTarget(board, "")
	if err != nil {
		t.Fatal(err)
	}
	root := moduleRoot(t)
	return Config{Target: tg, Version: "1.0.0", Build: 7, Epoch: epoch, Services: testServices(root),
		Keys: bundle.Keys{Current: testKey.Public().(ed25519.PublicKey)}, ModuleRoot: root, Out: out,
		Provision: &layout.Provision{TerminalID: "kiosk-17", ServiceURL: "https://jpki.example.lg.jp/"}}
}

// Two builds of a Pi 4 image in different directories give the same
// bytes, and the image has what the Pi firmware needs.
func TestReproduciblePi4Image(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two images")
	}
	requireTools(t, "mksquashfs", "mke2fs")
	a, err := Build(context.Background(), testConfig(t, "pi4", t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(context.Background(), testConfig(t, "pi4", filepath.Join(t.TempDir(), "other", "dir")))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image sha256 %s (%d bytes, %d used), root %d bytes", a.ImageSHA256, a.ImageBytes, a.UsedBytes, a.RootBytes)
	if a.ImageSHA256 != b.ImageSHA256 || a.RootSHA256 != b.RootSHA256 {
		t.Fatalf("not reproducible: image %s vs %s, root %s vs %s", a.ImageSHA256, b.ImageSHA256, a.RootSHA256, b.RootSHA256)
	}
	for _, p := range [][2]string{{a.Update, b.Update}, {a.Flash, b.Flash}} {
		x, _, _ := fileSHA256(p[0])
		y, _, _ := fileSHA256(p[1])
		if x != y {
			t.Fatalf("bundle %s differs", filepath.Base(p[0]))
		}
	}
	files := checkImage(t, a, "pi4")
	for _, f := range []string{"start4.elf", "fixup4.dat", "bcm2711-rpi-4-b.dtb", "overlays/disable-bt.dtbo", "overlays/overlay_map.dtb", "vmlinuz"} {
		if _, ok := files[f]; !ok {
			t.Errorf("boot partition lacks %s", f)
		}
	}
	cfg := string(files["config.txt"])
	for _, line := range []string{"arm_64bit=1", "kernel=vmlinuz", "cmdline=cmdline.txt", "enable_uart=1", "dtoverlay=disable-bt", "gpio=17=op,dh"} {
		if !strings.Contains(cfg, "\n"+line+"\n") {
			t.Errorf("config.txt lacks %q:\n%s", line, cfg)
		}
	}
	if try := string(files["tryboot.txt"]); try != strings.Replace(cfg, "cmdline=cmdline.txt", "cmdline=cmdline-try.txt", 1) {
		t.Errorf("tryboot.txt is not config.txt with cmdline-try.txt:\n%s", try)
	}
	if c := string(files["cmdline.txt"]); strings.Contains(c, "console=serial0") || strings.Contains(c, "ttyAMA0") {
		t.Errorf("serial console on the PN532's UART: %q", c)
	}
}

// The qemu image builds from the same code (its boot is tested in
// firmware/vmtest); here only its layout and contents.
func TestVMRootOnly(t *testing.T) {
	requireTools(t, "mksquashfs", "mke2fs")
	if testing.Short() {
		t.Skip("builds a root")
	}
	c := testConfig(t, VMTarget, t.TempDir())
	c.RootOnly = true
	c.Files = map[string][]byte{"/etc/passwd": []byte("x")}
	if _, err := Build(context.Background(), c); err == nil || !strings.Contains(err.Error(), "under /etc/kazasu/") {
		t.Fatalf("extra file outside /etc/kazasu: %v", err)
	}
	c.Files = map[string][]byte{"/etc/kazasu/kazasud.toml": []byte("# test\n")}
	res, err := Build(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("unsquashfs", "-cat", res.Root, "etc/kazasu/kazasud.toml").Output(); err == nil && string(out) != "# test\n" {
		t.Fatalf("kazasud.toml: %q", out)
	}
	if res.Image != "" || res.Flash != "" {
		t.Fatal("root-only build made an image")
	}
	f, _ := os.Open(res.Update)
	defer f.Close()
	st, _ := f.Stat()
	bu, err := bundle.OpenUnsigned(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if err := bu.Verify(); err != nil || bu.Manifest().Boards[0] != VMTarget || !strings.Contains(bu.Manifest().Kernel, "kernel.arm64@") {
		t.Fatalf("%v %+v", err, bu.Manifest())
	}
}

// Every file a boot partition needs exists in the pinned modules.
func TestBlobsPresent(t *testing.T) {
	root := moduleRoot(t)
	for _, p := range []string{"pi3bplus", "pi4", "pi5", "pi02w", "cm4"} {
		for _, bus := range []string{"uart", "i2c", "spi"} {
			tg, err := NewTarget(p, bus)
			if err != nil {
				t.Fatal(err)
			}
			c := Config{Target: tg, ModuleRoot: root}
			mods, err := c.modules(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, f := range tg.firmwareFiles() {
				want = append(want, filepath.Join(mods[ModFirmware].Dir, f))
			}
			for _, f := range tg.dtbs() {
				want = append(want, filepath.Join(mods[tg.Kernel].Dir, f))
			}
			for _, o := range tg.overlays() {
				want = append(want, filepath.Join(mods[tg.Kernel].Dir, "overlays", o+".dtbo"))
			}
			want = append(want, filepath.Join(mods[tg.Kernel].Dir, "vmlinuz"))
			for _, f := range want {
				if _, err := os.Stat(f); err != nil {
					t.Errorf("%s/%s: %v", p, bus, err)
				}
			}
		}
	}
}

func TestTargets(t *testing.T) {
	for _, c := range []struct{ board, bus, err string }{
		{"pi4", "", ""}, {"pi5", "spi", ""}, {"qemu", "", ""}, {"qemu", "uart", "no reader wiring"},
		{"pi2", "", "unsupported board id"}, {"pi4", "usb", "unknown bus"},
	} {
		_, err := NewTarget(c.board, c.bus)
		if (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s/%s: %v, want %q", c.board, c.bus, err, c.err)
		}
	}
	tg, _ := NewTarget("pi5", "i2c")
	cfg := tg.configTxt("h", "cmdline.txt")
	if !strings.Contains(cfg, "dtparam=i2c_arm_baudrate=100000") || strings.Contains(cfg, "enable_uart") {
		t.Errorf("pi5 i2c config.txt:\n%s", cfg)
	}
	if a := tg.consoleArgs(); a[0] != "console=ttyAMA10,115200" {
		t.Errorf("pi5 console %v", a)
	}
}

// checkImage reads the image back: partition table, provisioning record,
// command lines at their offsets, the boot FAT (with go-diskfs and, where
// installed, fsck.fat), the root squashfs and the bundles.
func checkImage(t *testing.T, res *Result, board string) map[string][]byte {
	t.Helper()
	f, err := os.Open(res.Image)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := layout.ReadTable(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CheckKazasu(); err != nil {
		t.Fatal(err)
	}
	want, _ := layout.New(layout.DefaultDiskBytes, board)
	for i := range want.Partitions {
		if want.Partitions[i].ID != d.Partitions[i].ID {
			t.Fatalf("partition %d GUID differs from the layout", i+1)
		}
	}
	p, err := layout.ReadProvision(f)
	if err != nil || p.TerminalID != "kiosk-17" {
		t.Fatalf("provisioning record: %+v %v", p, err)
	}
	boot := d.Partition(layout.PartBoot)
	for _, off := range []int64{layout.CmdlineOffset, layout.TryCmdlineOffset} {
		sec := make([]byte, layout.CmdlineSize)
		f.ReadAt(sec, boot.Offset()+off)
		if s, err := layout.CmdlineSlot(sec, boot.ID); err != nil || s != layout.PartRootA {
			t.Fatalf("command line at %d: %v %q", off, err, sec)
		}
	}
	// Boot FAT.
	part := filepath.Join(t.TempDir(), "boot.vfat")
	bf, _ := os.Create(part)
	io.Copy(bf, io.NewSectionReader(f, boot.Offset(), boot.Size()))
	bf.Close()
	if _, err := exec.LookPath("fsck.fat"); err == nil {
		if out, err := exec.Command("fsck.fat", "-n", part).CombinedOutput(); err != nil {
			t.Fatalf("fsck.fat: %v\n%s", err, out)
		}
	}
	files := map[string][]byte{}
	bk, err := file.OpenFromPath(part, true)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := fat32.Read(bk, boot.Size(), 0, layout.SectorSize)
	if err != nil {
		t.Fatal(err)
	}
	var walk func(dir string)
	walk = func(dir string) {
		ents, err := fs.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			name := path.Join(dir, e.Name()) // io/fs-style paths: "." is the root
			if e.IsDir() {
				walk(name)
				continue
			}
			fh, err := fs.OpenFile("/"+name, os.O_RDONLY)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(fh)
			files[name] = b
		}
	}
	walk(".")
	if len(files["cmdline.txt"]) != layout.CmdlineSize || !bytes.Equal(files["cmdline.txt"], files["cmdline-try.txt"]) {
		t.Fatal("command-line files")
	}
	// Root squashfs.
	if _, err := exec.LookPath("unsquashfs"); err == nil {
		out, err := exec.Command("unsquashfs", "-lls", res.Root).CombinedOutput()
		if err != nil {
			t.Fatalf("unsquashfs: %v\n%s", err, out)
		}
		s := string(out)
		for _, want := range []string{"-rwxr-xr-x root/root", "squashfs-root/gokrazy/init", "squashfs-root/user/kazasud", "squashfs-root/user/kazasu-update",
			"squashfs-root/etc/kazasu/keys/current.pub", "etc/resolv.conf -> /tmp/resolv.conf", "2026-01-01 00:00"} {
			if !strings.Contains(s, want) {
				t.Errorf("root lacks %q", want)
			}
		}
		relJSON, err := exec.Command("unsquashfs", "-cat", res.Root, "etc/kazasu/release.json").Output()
		var rel Release
		if err != nil || json.Unmarshal(relJSON, &rel) != nil || rel.Build != 7 || rel.Board != board || !strings.Contains(rel.Kernel, "@v0.0.0-") {
			t.Errorf("release.json: %s %v", relJSON, err)
		}
	}
	// Root A holds the root; root B is empty.
	rootBytes, _ := os.ReadFile(res.Root)
	got := make([]byte, len(rootBytes))
	f.ReadAt(got, d.Partition(layout.PartRootA).Offset())
	if !bytes.Equal(got, rootBytes) {
		t.Fatal("root A does not hold the root squashfs")
	}
	// Bundles: unsigned until fwsign; their payloads are the root and the
	// image's used ranges.
	keys := bundle.Keys{Current: testKey.Public().(ed25519.PublicKey)}
	for _, path := range []string{res.Update, res.Flash} {
		bf, _ := os.Open(path)
		st, _ := bf.Stat()
		if _, err := bundle.Open(bf, st.Size(), keys); err == nil {
			t.Fatal("unsigned bundle verified")
		}
		bu, err := bundle.OpenUnsigned(bf, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		if err := bu.Verify(); err != nil {
			t.Fatal(err)
		}
		if bu.Manifest().Boards[0] != board || bu.Manifest().Build != 7 {
			t.Fatal("manifest")
		}
		if dp := bu.Manifest().Payload(bundle.RoleDisk); dp != nil {
			// Writing the ranges onto zeros reproduces the image.
			img := make([]byte, 1<<20)
			for _, r := range dp.Ranges() {
				if r.Target+r.Length > int64(len(img)) {
					continue
				}
				bf.ReadAt(img[r.Target:r.Target+r.Length], r.Source)
			}
			head := make([]byte, 1<<20)
			f.ReadAt(head, 0)
			if !bytes.Equal(img, head) {
				t.Fatal("flash ranges do not reproduce the first MiB")
			}
		}
		bf.Close()
	}
	return files
}
