package bundle

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestExtentReader(t *testing.T) {
	disk := make([]byte, 64)
	for i := range disk {
		disk[i] = byte(i)
	}
	ext := []Extent{{Target: 4, Length: 3}, {Target: 20, Length: 5}, {Target: 60, Length: 4}}
	want := append(append(append([]byte(nil), disk[4:7]...), disk[20:25]...), disk[60:64]...)
	r := ExtentReader(bytes.NewReader(disk), ext)
	for off := range len(want) {
		for n := 1; off+n <= len(want); n++ {
			p := make([]byte, n)
			if k, err := r.ReadAt(p, int64(off)); k != n || err != nil || !bytes.Equal(p, want[off:off+n]) {
				t.Fatalf("ReadAt(%d bytes, %d) = %d, %v, % X; want % X", n, off, k, err, p[:k], want[off:off+n])
			}
		}
	}
	p := make([]byte, 4)
	if k, err := r.ReadAt(p, int64(len(want)-2)); k != 2 || !errors.Is(err, io.EOF) {
		t.Fatalf("read past the end: %d, %v; want 2, EOF", k, err)
	}
}
