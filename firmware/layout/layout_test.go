package layout

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// memDisk is a sparse in-memory disk.
type memDisk struct{ b []byte }

func (m *memDisk) WriteAt(p []byte, off int64) (int, error) { return copy(m.b[off:], p), nil }
func (m *memDisk) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(m.b).ReadAt(p, off)
}

func TestGUID(t *testing.T) {
	s := "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
	g := MustParseGUID(s)
	if g.String() != s || g[0] != 0xa2 || g[3] != 0xeb {
		t.Fatalf("%s %x", g, g[:])
	}
	for _, bad := range []string{"", "EBD0A0A2B9E5443387C068B6B72699C7", "XBD0A0A2-B9E5-4433-87C0-68B6B72699C7"} {
		if _, err := ParseGUID(bad); err == nil {
			t.Errorf("ParseGUID(%q) accepted", bad)
		}
	}
	if DeriveGUID("pi4") != DeriveGUID("pi4") || DeriveGUID("pi4") == DeriveGUID("pi5") {
		t.Fatal("DeriveGUID not stable or not distinct")
	}
	if v := DeriveGUID("x").String()[14]; v != '4' {
		t.Fatalf("version nibble %c", v)
	}
}

func TestTableRoundTrip(t *testing.T) {
	d, err := New(DefaultDiskBytes, "pi4")
	if err != nil {
		t.Fatal(err)
	}
	m := &memDisk{b: make([]byte, 34*SectorSize)}
	tail := &memDisk{b: make([]byte, 33*SectorSize)}
	if err := d.WriteTable(splitWriter{m, tail, d.Size - 33*SectorSize}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadTable(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.CheckKazasu(); err != nil {
		t.Fatal(err)
	}
	for i, p := range d.Partitions {
		q := got.Partitions[i]
		if p.ID != q.ID || p.Type != q.Type || p.FirstLBA != q.FirstLBA || p.LastLBA != q.LastLBA || p.Name != q.Name {
			t.Errorf("partition %d: wrote %+v, read %+v", i+1, p, q)
		}
	}
	if got.ID != d.ID || got.Size != d.Size || got.Signature != d.Signature {
		t.Fatal("disk header differs")
	}
	if b := d.Partition(PartBoot); b.Offset() != 4<<20 || b.Size() != BootBytes {
		t.Fatalf("boot at %d size %d", b.Offset(), b.Size())
	}
	if p := d.Partition(PartPerm); p.LastLBA != d.Size/SectorSize-34 {
		t.Fatalf("perm ends at %d", p.LastLBA)
	}
	// Every header, entry and MBR byte matters.
	for _, off := range []int{510, 512, 512 + 16, 512 + 40, 1024, 1024 + 40, 1024 + 127*128} {
		c := &memDisk{b: bytes.Clone(m.b)}
		c.b[off] ^= 1
		if _, err := ReadTable(c); !errors.Is(err, ErrNoGPT) {
			t.Errorf("byte %d flipped: %v", off, err)
		}
	}
	if _, err := New(MinDiskBytes-SectorSize, "x"); err == nil {
		t.Error("too small a disk accepted")
	}
}

// splitWriter stores the head and the tail of a large sparse disk.
type splitWriter struct {
	head, tail *memDisk
	tailAt     int64
}

func (s splitWriter) WriteAt(p []byte, off int64) (int, error) {
	if off >= s.tailAt {
		return s.tail.WriteAt(p, off-s.tailAt)
	}
	return s.head.WriteAt(p, off)
}

// sfdisk (util-linux) reads our table the same way.
func TestTableWithSfdisk(t *testing.T) {
	sfdisk, err := exec.LookPath("sfdisk")
	if err != nil {
		if os.Getenv("KAZASU_REQUIRE_TOOLS") == "1" {
			t.Fatal("sfdisk missing (Debian package fdisk)")
		}
		t.Skip("sfdisk missing")
	}
	d, _ := New(DefaultDiskBytes, "pi4")
	path := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(d.Size)
	if err := d.WriteTable(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := exec.Command(sfdisk, "--dump", path).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	s := string(out)
	for _, p := range d.Partitions {
		want := strings.ToUpper(p.ID.String())
		if !strings.Contains(s, want) || !strings.Contains(s, "name=\""+p.Name+"\"") {
			t.Errorf("sfdisk output lacks partition %d (%s):\n%s", p.Number, want, s)
		}
	}
	if strings.Contains(strings.ToLower(s), "warn") {
		t.Errorf("sfdisk warns:\n%s", s)
	}
}

func TestCmdline(t *testing.T) {
	boot := DeriveGUID("pi4/p1")
	b, err := FormatCmdline(boot, PartRootA, []string{"console=tty1"}, []string{"kazasu.bootctl=vm"})
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != CmdlineSize || bytes.ContainsAny(b, "\n\x00") {
		t.Fatalf("%q", b)
	}
	if s, err := CmdlineSlot(b, boot); err != nil || s != PartRootA {
		t.Fatalf("slot %d %v", s, err)
	}
	b2, err := SetCmdlineSlot(b, boot, PartRootB)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := CmdlineSlot(b2, boot); s != PartRootB {
		t.Fatal("not switched")
	}
	if d := diff(b, b2); d != 1 {
		t.Fatalf("%d bytes changed, want 1", d)
	}
	// /proc/cmdline form, with the kernel's trailing newline.
	if s, err := CmdlineSlot([]byte(strings.TrimSpace(string(b2))+"\n"), GUID{}); err != nil || s != PartRootB {
		t.Fatal(s, err)
	}
	for name, bad := range map[string][]byte{
		"other disk":  mustFormat(t, DeriveGUID("pi5/p1"), PartRootA),
		"no root":     bytes.Repeat([]byte(" "), CmdlineSize),
		"binary":      append([]byte{0xff}, b[1:]...),
		"two roots":   append([]byte(RootArg(boot, 2)+" "), b[:CmdlineSize-len(RootArg(boot, 2))-1]...),
		"partnroff 3": bytes.Replace(b, []byte("PARTNROFF=1"), []byte("PARTNROFF=3"), 1),
	} {
		if _, err := SetCmdlineSlot(bad, boot, PartRootB); err == nil {
			t.Errorf("%s: edited", name)
		}
	}
	if _, err := SetCmdlineSlot(b[:100], boot, PartRootB); err == nil {
		t.Error("short sector edited")
	}
	if _, err := FormatCmdline(boot, 4, nil, nil); err == nil {
		t.Error("slot 4 accepted")
	}
	if _, err := FormatCmdline(boot, 2, []string{strings.Repeat("x", 600)}, nil); err == nil {
		t.Error("oversized accepted")
	}
}

func mustFormat(t *testing.T, g GUID, slot int) []byte {
	b, err := FormatCmdline(g, slot, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func diff(a, b []byte) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

func testCert(t testing.TB) (certPEM, keyPEM string) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kiosk-17"}, NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(k)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}))
}

func TestProvision(t *testing.T) {
	c, k := testCert(t)
	p := &Provision{TerminalID: "kiosk-17", ServiceURL: "https://jpki.example.lg.jp/api", CACerts: c, ClientCert: c, ClientKey: k}
	b, err := EncodeProvision(p)
	if err != nil {
		t.Fatal(err)
	}
	disk := &memDisk{b: make([]byte, ProvisionOffset+ProvisionMax)}
	disk.WriteAt(b, ProvisionOffset)
	got, err := ReadProvision(disk)
	if err != nil || *got != *p {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := ReadProvision(&memDisk{b: make([]byte, ProvisionOffset+ProvisionMax)}); !errors.Is(err, ErrNoProvision) {
		t.Errorf("empty gap: %v", err)
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x20
		if _, err := DecodeProvision(c); err == nil {
			t.Fatalf("byte %d flipped: accepted", i)
		}
	}
	for name, bad := range map[string]Provision{
		"id":      {TerminalID: "kiosk 17", ServiceURL: "https://x"},
		"http":    {TerminalID: "k", ServiceURL: "http://x"},
		"ca":      {TerminalID: "k", ServiceURL: "https://x", CACerts: "junk"},
		"keyless": {TerminalID: "k", ServiceURL: "https://x", ClientCert: c},
	} {
		if _, err := EncodeProvision(&bad); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func FuzzReadTable(f *testing.F) {
	d, _ := New(DefaultDiskBytes, "pi4")
	m := &memDisk{b: make([]byte, 34*SectorSize)}
	d.WriteTable(splitWriter{m, &memDisk{b: make([]byte, 33*SectorSize)}, d.Size - 33*SectorSize})
	f.Add(m.b)
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ReadTable(bytes.NewReader(b))
		if err != nil {
			return
		}
		for i := 1; i < len(got.Partitions); i++ {
			if got.Partitions[i].FirstLBA <= got.Partitions[i-1].LastLBA {
				t.Fatal("overlap accepted")
			}
		}
	})
}

func FuzzCmdline(f *testing.F) {
	b, _ := FormatCmdline(DeriveGUID("pi4/p1"), PartRootB, []string{"console=tty1"}, nil)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := CmdlineSlot(b, GUID{})
		if err == nil && s != PartRootA && s != PartRootB {
			t.Fatalf("slot %d", s)
		}
		if out, err := SetCmdlineSlot(b, GUID{}, PartRootA); err == nil {
			if s, err := CmdlineSlot(out, GUID{}); err != nil || s != PartRootA || len(out) != len(b) {
				t.Fatalf("edit broke the line: %v", err)
			}
		}
	})
}

func FuzzDecodeProvision(f *testing.F) {
	b, _ := EncodeProvision(&Provision{TerminalID: "k", ServiceURL: "https://x/"})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeProvision(b)
		if err == nil {
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
