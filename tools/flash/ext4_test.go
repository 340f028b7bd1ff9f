package flash

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

func mke2fs(t *testing.T, size int64, features string) []byte {
	t.Helper()
	if _, err := exec.LookPath("mke2fs"); err != nil {
		if os.Getenv("KAZASU_REQUIRE_TOOLS") == "1" {
			t.Fatal("mke2fs missing")
		}
		t.Skip("mke2fs missing")
	}
	p := filepath.Join(t.TempDir(), "fs.img")
	f, _ := os.Create(p)
	f.Truncate(size)
	f.Close()
	out, err := exec.Command("mke2fs", "-q", "-F", "-b", "4096", "-I", "256", "-i", "16384", "-m", "0", "-O", features,
		"-E", "lazy_itable_init=1,lazy_journal_init=1", p).CombinedOutput()
	if err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	f, _ = os.Open(p)
	defer f.Close()
	sb := make([]byte, Ext4SuperblockSize)
	f.ReadAt(sb, Ext4SuperblockOffset)
	return sb
}

func TestExt4JournalOfMke2fs(t *testing.T) {
	// fwbuild's /perm features; a 400 MiB file system gets a 16 MiB journal
	// at block 65536 (debugfs -R "stat <8>": (0-4095):65536-69631).
	sb := mke2fs(t, 400<<20, "has_journal,ext_attr,resize_inode,dir_index,filetype,extent,64bit,flex_bg,sparse_super,large_file,huge_file,dir_nlink,extra_isize,metadata_csum")
	got, err := Ext4Journal(sb)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Span{{65536 * 4096, 4096 * 4096}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("journal %v, want %v", got, want)
	}
	// Without a journal, or not ext4 at all: ErrNoJournal.
	if _, err := Ext4Journal(mke2fs(t, 64<<20, "^has_journal,extent")); !errors.Is(err, ErrNoJournal) {
		t.Fatalf("no journal: %v", err)
	}
	if _, err := Ext4Journal(make([]byte, Ext4SuperblockSize)); !errors.Is(err, ErrNoJournal) {
		t.Fatalf("zeros: %v", err)
	}
	if _, err := Ext4Journal(sb[:100]); err == nil {
		t.Fatal("short superblock accepted")
	}
}
