package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeClock advances one millisecond per call: deterministic timestamps.
func fakeClock() func() time.Time {
	t := time.Date(2026, 11, 21, 17, 0, 0, 0, time.UTC)
	return func() time.Time { t = t.Add(time.Millisecond); return t }
}

func openT(t *testing.T, dir string, max int64) *Log {
	t.Helper()
	l, err := Open(dir, Options{Terminal: "kz-test-1", MaxBytes: max, Now: fakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

var sample = []Entry{
	{Event: EventDaemonStart},
	{Event: EventTxStart, TxID: "tx-1", Reader: "sim0", Service: "juminhyo"},
	{Event: EventTap, TxID: "tx-1", Reader: "sim0", Token: TokenCard},
	{Event: EventCertRead, TxID: "tx-1", Cert: CertPrefixOf([]byte("cert"))},
	{Event: EventPINRejected, TxID: "tx-1", Reason: "tries_2"},
	{Event: EventPINVerified, TxID: "tx-1"},
	{Event: EventCertValid, TxID: "tx-1"},
	{Event: EventRelayed, TxID: "tx-1"},
	{Event: EventIssued, TxID: "tx-1", Token: TokenCard},
}

func writeSample(t *testing.T) (dir string, data []byte, head *Head) {
	t.Helper()
	dir = t.TempDir()
	l := openT(t, dir, 0)
	for _, e := range sample {
		if _, err := l.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	h := l.Head()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, LiveName))
	if err != nil {
		t.Fatal(err)
	}
	return dir, data, &h
}

func TestAppendVerify(t *testing.T) {
	dir, data, head := writeSample(t)
	res, err := VerifyFile(data, head)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != len(sample)+1 || res.LastSeq != uint64(len(sample)) || res.Terminal != "kz-test-1" || res.Sealed {
		t.Fatalf("result %+v", res)
	}
	first := strings.SplitN(string(data), "\n", 2)[0]
	if want := `{"v":1,"seq":0,"ts":"2026-11-21T17:00:00.001Z","ev":"genesis","term":"kz-test-1","prev":"` + strings.Repeat("0", 64) + `"}`; first != want {
		t.Fatalf("genesis:\n got %s\nwant %s", first, want)
	}
	// The head file on disk matches.
	hb, err := os.ReadFile(filepath.Join(dir, HeadName))
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHead(hb)
	if err != nil || *h != *head {
		t.Fatalf("head file %+v, %v; want %+v", h, err, head)
	}
	// Reopen continues the chain.
	l := openT(t, dir, 0)
	a, err := l.Append(Entry{Event: EventDaemonStop})
	if err != nil || a.Seq != uint64(len(sample))+1 {
		t.Fatalf("append after reopen: %+v %v", a, err)
	}
	l.Close()
	if _, err := l.Append(Entry{Event: EventDaemonStop}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, err := VerifyFiles([]string{filepath.Join(dir, LiveName)}, &Head{Seq: a.Seq, Hash: a.Hash.String()}); err != nil {
		t.Fatal(err)
	}
}

func TestEntryValidation(t *testing.T) {
	l := openT(t, t.TempDir(), 0)
	defer l.Close()
	bad := []Entry{
		{Event: "pin=1234"},
		{Event: EventGenesis},
		{Event: EventRotate},
		{Event: EventFailed, Reason: "PIN 1234 wrong"},
		{Event: EventFailed, Reason: "Yamada Taro"},
		{Event: EventFailed, Reason: strings.Repeat("a", 49)},
		{Event: EventTxStart, TxID: "tx 1"},
		{Event: EventTxStart, Reader: "Reader/0"},
		{Event: EventTxStart, Service: "住民票"},
		{Event: EventTap, Token: "passport"},
	}
	for _, e := range bad {
		if _, err := l.Append(e); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("Append(%+v) = %v, want ErrInvalidEntry", e, err)
		}
	}
	if _, err := Open(t.TempDir(), Options{Terminal: "bad id"}); !errors.Is(err, ErrInvalidEntry) {
		t.Errorf("Open with bad terminal: %v", err)
	}
}

func lines(data []byte) [][]byte {
	return bytes.SplitAfter(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
}

func join(ls [][]byte) []byte {
	var b []byte
	for _, l := range ls {
		if !bytes.HasSuffix(l, []byte("\n")) {
			l = append(append([]byte(nil), l...), '\n')
		}
		b = append(b, l...)
	}
	return b
}

func TestTamperDetected(t *testing.T) {
	_, data, head := writeSample(t)
	ls := lines(data)
	off := func(n int) int64 { // byte offset of line n (1-based)
		var o int64
		for _, l := range ls[:n-1] {
			o += int64(len(l))
		}
		return o
	}
	flip := func(b []byte, i int) []byte { c := append([]byte(nil), b...); c[i] ^= 0x01; return c }
	tests := []struct {
		name   string
		data   []byte
		head   *Head
		kind   error
		line   int
		offset int64
	}{
		{"truncated mid-record", data[:len(data)-10], head, ErrTruncated, 10, off(10)},
		{"truncated at a record boundary (head anchors)", join(ls[:8]), head, ErrTruncated, 9, off(9)},
		{"truncated, no head", join(ls[:8]), nil, ErrTruncated, 8, off(9)},
		{"bit flip in a hash", flip(data, int(off(4))+len(ls[3])-10), head, ErrChain, 4, off(4)},
		{"bit flip in a reason (valid JSON)", bytes.Replace(data, []byte(`"rc":"tries_2"`), []byte(`"rc":"tries_3"`), 1), head, ErrChain, 7, off(7)},
		{"bit flip in the last record", bytes.Replace(data, []byte(`"ev":"issued","tx":"tx-1","tok":"card"`), []byte(`"ev":"issued","tx":"tx-1","tok":"cars"`), 1), head, ErrMalformed, 10, off(10)},
		{"bit flip in the last record, still valid", bytes.Replace(data, []byte(`"ev":"issued","tx":"tx-1"`), []byte(`"ev":"issued","tx":"tx-2"`), 1), head, ErrChain, 10, 0},
		{"bit flip breaking JSON", flip(data, int(off(3))), head, ErrMalformed, 3, off(3)},
		{"reordered", join([][]byte{ls[0], ls[1], ls[3], ls[2], ls[4], ls[5], ls[6], ls[7], ls[8], ls[9]}), head, ErrSequence, 3, off(3)},
		{"deleted record", join(append(append([][]byte{}, ls[:4]...), ls[5:]...)), head, ErrSequence, 5, off(5)},
		{"deleted genesis", join(ls[1:]), head, ErrStructure, 1, 0},
		{"inserted free text", join(append([][]byte{ls[0], []byte(`{"v":1,"seq":1,"ts":"2026-11-21T17:00:00.002Z","ev":"failed","rc":"pin 1234","prev":"00"}`)}, ls[1:]...)), head, ErrMalformed, 2, off(2)},
		{"unknown field", bytes.Replace(data, []byte(`"rc":"tries_2"`), []byte(`"rc":"tries_2","name":"x"`), 1), head, ErrMalformed, 6, off(6)},
		{"non-canonical whitespace", bytes.Replace(data, []byte(`"rc":"tries_2"`), []byte(`"rc": "tries_2"`), 1), head, ErrMalformed, 6, off(6)},
		{"empty", nil, nil, ErrEmpty, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := VerifyFile(tt.data, tt.head)
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a VerifyError", err)
			}
			if !errors.Is(err, tt.kind) || ve.Line != tt.line || ve.Offset != tt.offset {
				t.Fatalf("got %v (line %d offset %d), want %v at line %d offset %d", err, ve.Line, ve.Offset, tt.kind, tt.line, tt.offset)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, 600)
	for i := 0; i < 20; i++ {
		if _, err := l.Append(Entry{Event: EventTap, TxID: "tx-1", Reader: "sim0", Token: TokenAndroid}); err != nil {
			t.Fatal(err)
		}
	}
	head := l.Head()
	l.Close()
	rot, err := Rotated(dir)
	if err != nil || len(rot) < 3 {
		t.Fatalf("rotated files %v %v", rot, err)
	}
	files := append(rot, filepath.Join(dir, LiveName))
	res, err := VerifyFiles(files, &head)
	if err != nil {
		t.Fatal(err)
	}
	if res.LastSeq != head.Seq {
		t.Fatalf("last seq %d, head %d", res.LastSeq, head.Seq)
	}
	// Dropping a middle file breaks the chain between files.
	if _, err := VerifyFiles(append([]string{rot[0]}, files[2:]...), &head); !errors.Is(err, ErrChain) {
		t.Fatalf("missing middle file: %v", err)
	}
	// An interrupted rotation (sealed but not renamed) is finished by Open.
	l = openT(t, dir, 0)
	l.mu.Lock()
	if _, err := l.appendLocked(Record{V: FormatVersion, Event: EventRotate}); err != nil {
		t.Fatal(err)
	}
	l.mu.Unlock()
	l.Close()
	l = openT(t, dir, 0)
	a, err := l.Append(Entry{Event: EventDaemonStart})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	rot2, _ := Rotated(dir)
	if len(rot2) != len(rot)+1 {
		t.Fatalf("rotation not finished: %v", rot2)
	}
	if _, err := VerifyFiles(append(rot2, filepath.Join(dir, LiveName)), &Head{Seq: a.Seq, Hash: a.Hash.String()}); err != nil {
		t.Fatal(err)
	}
	// A crash after the sealed file was renamed, before the new live file
	// exists: Open chains a new file to the newest sealed one.
	l = openT(t, dir, 0)
	l.mu.Lock()
	if _, err := l.appendLocked(Record{V: FormatVersion, Event: EventRotate}); err != nil {
		t.Fatal(err)
	}
	l.f.Close()
	l.f = nil
	if err := l.renameSealed(); err != nil {
		t.Fatal(err)
	}
	l.mu.Unlock()
	l = openT(t, dir, 0)
	l.Rotate()
	l.Close()
	rot3, _ := Rotated(dir)
	if _, err := VerifyFiles(rot3, nil); err != nil {
		t.Fatal(err)
	}
	// A crash after a rotation made the new live file, before the head
	// moved: the head names the seal the new genesis chains to.
	l = openT(t, dir, 0)
	sealHead := func() Head {
		l.mu.Lock()
		defer l.mu.Unlock()
		if err := l.rotateLocked(); err != nil {
			t.Fatal(err)
		}
		return Head{Seq: l.seq - 1, Hash: hashOfSeal(t, dir)}
	}()
	l.Close()
	b, _ := json.Marshal(sealHead)
	if err := os.WriteFile(filepath.Join(dir, HeadName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir, 0)
	l.Close()
	// But a live file deleted behind the head's back is not papered over.
	l = openT(t, dir, 0)
	l.Append(Entry{Event: EventDaemonStart})
	l.Close()
	if err := os.Remove(filepath.Join(dir, LiveName)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{Terminal: "kz-test-1"}); !errors.Is(err, ErrCorrupt) || !errors.Is(err, ErrTruncated) {
		t.Fatalf("deleted live file: %v", err)
	}
}

func TestTornTailRecovered(t *testing.T) {
	dir, data, _ := writeSample(t)
	torn := append(append([]byte(nil), data...), `{"v":1,"seq":10,"ts":"2026-11-21T`...)
	if err := os.WriteFile(filepath.Join(dir, LiveName), torn, 0o600); err != nil {
		t.Fatal(err)
	}
	l := openT(t, dir, 0)
	head := l.Head()
	l.Close()
	data, _ = os.ReadFile(filepath.Join(dir, LiveName))
	if _, err := VerifyFile(data, &head); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"ev":"recovered","rc":"torn_tail_truncated"`)) {
		t.Fatalf("no recovery record:\n%s", data)
	}
}

func TestOpenRefusesCorrupt(t *testing.T) {
	dir, data, _ := writeSample(t)
	ls := lines(data)
	// A cut tail behind the head's back is not silently accepted.
	if err := os.WriteFile(filepath.Join(dir, LiveName), join(ls[:5]), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{Terminal: "kz-test-1"}); !errors.Is(err, ErrCorrupt) || !errors.Is(err, ErrTruncated) {
		t.Fatalf("cut tail: %v", err)
	}
	// Nor a broken chain.
	if err := os.WriteFile(filepath.Join(dir, LiveName), join(append([][]byte{ls[0]}, ls[2:]...)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{Terminal: "kz-test-1"}); !errors.Is(err, ErrCorrupt) || !errors.Is(err, ErrSequence) {
		t.Fatalf("broken chain: %v", err)
	}
	// Nor another terminal's log.
	dir2, _, _ := writeSample(t)
	if _, err := Open(dir2, Options{Terminal: "kz-other"}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("other terminal: %v", err)
	}
}

func BenchmarkAppend(b *testing.B) {
	l, err := Open(b.TempDir(), Options{Terminal: "kz-bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	for b.Loop() {
		if _, err := l.Append(Entry{Event: EventTap, TxID: "tx-1", Reader: "sim0", Token: TokenCard}); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	dir := f.TempDir()
	l, err := Open(dir, Options{Terminal: "kz-fuzz", Now: fakeClock()})
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range sample {
		l.Append(e)
	}
	l.Close()
	data, _ := os.ReadFile(filepath.Join(dir, LiveName))
	f.Add(data)
	f.Add([]byte("{}\n"))
	f.Add([]byte(`{"v":1,"seq":0,"ts":"2026-11-21T17:00:00.001Z","ev":"genesis","term":"x","prev":"` + strings.Repeat("0", 64) + "\"}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Verify(bytes.NewReader(data))
		if err != nil {
			var ve *VerifyError
			if errors.As(err, &ve) && (ve.Line < 1 || ve.Offset < 0 || ve.Offset > int64(len(data))) {
				t.Fatalf("bad error position: %v", err)
			}
			return
		}
		if res.Records < 1 || res.Size != int64(len(data)) || res.LastSeq-res.FirstSeq != uint64(res.Records-1) {
			t.Fatalf("inconsistent result %+v for %d bytes", res, len(data))
		}
	})
}

// hashOfSeal returns the hash of the last record of the newest sealed file.
func hashOfSeal(t *testing.T, dir string) string {
	t.Helper()
	rot, _ := Rotated(dir)
	data, err := os.ReadFile(rot[len(rot)-1])
	if err != nil {
		t.Fatal(err)
	}
	res, err := Verify(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return res.LastHash.String()
}
