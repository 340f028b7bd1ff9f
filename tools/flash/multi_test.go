package flash

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestWriteMultiFileSource(t *testing.T) {
	p, want := sparseImage(t, 24<<20, map[int64]int{0: 5000, 3<<20 + 100: 2 << 20, 20 << 20: 64 << 10})
	img, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	src, err := NewFileSource(img)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var targets []Target
	for _, n := range []string{"good1", "bad", "good2", "eio"} {
		tg := Target{Path: filepath.Join(dir, n), MinSize: 24 << 20}
		switch n {
		case "bad":
			tg.WrapWriter = func(w io.WriterAt) io.WriterAt { return &corrupter{w: w, nth: 2} }
		case "eio":
			tg.WrapWriter = func(io.WriterAt) io.WriterAt { return failingWriter{} }
		}
		targets = append(targets, tg)
	}
	// good2 is a reused card: stale bytes where the image is zero.
	if err := os.WriteFile(targets[2].Path, bytes.Repeat([]byte{0xEE}, 24<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	prov := []byte("KZPROV01 record")
	m, res := WriteMulti(context.Background(), src, targets, MultiOptions{Patches: func(m *Map) []Patch {
		ps := ZeroPatches([]Span{{0, 1 << 20}, {10 << 20, 1 << 20}}, m, []Span{{12 << 20, int64(len(prov))}}, "stale header wipe")
		return append(ps, Patch{Off: 12 << 20, Data: prov, What: "provisioning record"})
	}})
	if m.Mapped() != 64<<10+(2<<20+64<<10)+64<<10 {
		t.Fatalf("mapped %d (ranges %+v)", m.Mapped(), m.Ranges)
	}
	codes := []int{ExitCodeFor(res[0].Err), ExitCodeFor(res[1].Err), ExitCodeFor(res[2].Err), ExitCodeFor(res[3].Err)}
	if !reflect.DeepEqual(codes, []int{ExitOK, ExitVerify, ExitOK, ExitWrite}) {
		t.Fatalf("exit codes %v, errors %v / %v / %v / %v", codes, res[0].Err, res[1].Err, res[2].Err, res[3].Err)
	}
	for _, i := range []int{0, 2} {
		got, _ := os.ReadFile(targets[i].Path)
		if len(got) != 24<<20 {
			t.Fatalf("%s: %d bytes", targets[i].Path, len(got))
		}
		for _, r := range m.Ranges {
			if !bytes.Equal(got[r.Off:r.End()], want[r.Off:r.End()]) {
				t.Fatalf("%s: range %d differs", targets[i].Path, r.Off)
			}
		}
		if !bytes.Equal(got[0:1<<20], want[0:1<<20]) || !bytes.Equal(got[10<<20:11<<20], make([]byte, 1<<20)) {
			t.Fatalf("%s: wipes wrong", targets[i].Path)
		}
		if !bytes.Equal(got[12<<20:12<<20+len(prov)], prov) {
			t.Fatalf("%s: provisioning record missing", targets[i].Path)
		}
	}
	stale, _ := os.ReadFile(targets[2].Path)
	if stale[15<<20] != 0xEE {
		t.Fatal("an unmapped, unwiped byte was written")
	}
}

func TestWriteMultiGzipStream(t *testing.T) {
	p, want := sparseImage(t, 8<<20, map[int64]int{4096: 70000, 5 << 20: 1 << 20})
	raw, _ := os.ReadFile(p)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	zr, err := gzip.NewReader(bytes.NewReader(gz.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "card")
	m, res := WriteMulti(context.Background(), &StreamSource{R: zr, Size: 8 << 20}, []Target{{Path: target}}, MultiOptions{})
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	got, _ := os.ReadFile(target)
	for _, r := range m.Ranges {
		if !bytes.Equal(got[r.Off:r.End()], want[r.Off:r.End()]) {
			t.Fatalf("range %d differs", r.Off)
		}
	}
	// A truncated stream fails every target with a write-class error.
	zr, _ = gzip.NewReader(bytes.NewReader(gz.Bytes()[:gz.Len()/2]))
	_, res = WriteMulti(context.Background(), &StreamSource{R: zr, Size: 8 << 20}, []Target{{Path: target}}, MultiOptions{})
	if !errors.Is(res[0].Err, ErrWrite) {
		t.Fatalf("truncated stream: %v", res[0].Err)
	}
}

func TestExtentSource(t *testing.T) {
	payload := append(bytes.Repeat([]byte{1}, 100), make([]byte, 200<<10)...)
	payload = append(payload, bytes.Repeat([]byte{2}, 50)...)
	s := NewExtentSource(bytes.NewReader(payload), []Span{{1 << 20, 100}, {8 << 20, 200<<10 + 50}})
	var got []Span
	for {
		b, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, Span{b.Off, int64(len(b.Data))})
	}
	// The zero 64 KiB blocks of the second extent are left out.
	want := []Span{{1 << 20, 100}, {8<<20 + 192<<10, 8<<10 + 50}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("blocks %v, want %v", got, want)
	}
	short := NewExtentSource(bytes.NewReader(payload[:10]), []Span{{0, 100}})
	if _, err := short.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short payload: %v", err)
	}
}

func TestZeroPatches(t *testing.T) {
	m := &Map{Ranges: []Range{{Off: 100, Len: 50}, {Off: 400, Len: 100}}}
	got := ZeroPatches([]Span{{0, 300}, {250, 300}, {1000, 10}}, m, []Span{{520, 10}}, "w")
	var spans []Span
	for _, p := range got {
		spans = append(spans, Span{p.Off, p.Len})
	}
	want := []Span{{0, 100}, {150, 250}, {500, 20}, {530, 20}, {1000, 10}}
	if !reflect.DeepEqual(spans, want) {
		t.Fatalf("patches %v, want %v", spans, want)
	}
}
