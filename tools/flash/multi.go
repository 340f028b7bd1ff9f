package flash

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A Block is a run of image bytes to write at Off on every target.
type Block struct {
	Off  int64
	Data []byte // never modified after Next returns it
}

// Source produces an image as blocks in ascending, non-overlapping order,
// leaving out what is zero in the image (holes, zero blocks). Next returns
// io.EOF after the last block. Progress reports how far the source is, in
// its own units (compressed bytes read, mapped bytes produced), for ETA.
type Source interface {
	Next() (Block, error)
	Progress() (done, total int64)
}

// Target is one device or file to write.
type Target struct {
	Path string
	// BlockDevice selects O_EXCL open and O_DIRECT read-back.
	BlockDevice bool
	// WrapWriter lets tests interpose on the writes to this target.
	WrapWriter func(io.WriterAt) io.WriterAt
	// MinSize: a regular file target is extended to at least this size
	// (the image size), as dd would leave it.
	MinSize int64
	// Extra patches for this target only (e.g. wiping the end of a disk
	// larger than the image), written and verified after the common ones.
	Extra []Patch
}

// MultiOptions control WriteMulti.
type MultiOptions struct {
	// Patches returns the patches to write after the image, given the map
	// of what the image wrote (so zero wipes can leave mapped data alone).
	Patches func(m *Map) []Patch
	// Progress is called from the targets' goroutines (concurrently) after
	// every block and phase change.
	Progress func(Progress)
	// Observe, if set, sees every block as it is read (before any target
	// writes it), e.g. to pick up a file system superblock from a stream.
	Observe func(Block)
}

// TargetResult is the outcome for one target.
type TargetResult struct {
	Target string
	Result *Result // nil on failure
	Err    error   // classify with ExitCodeFor
}

// queued is how many blocks may wait for the slowest target.
const queued = 32

// WriteMulti writes the image produced by src to every target at once: the
// source is read once; each block is hashed into the map and handed to
// one writer goroutine per target. A target that fails is dropped and the
// others go on. Then each target gets the patches, an fsync and the
// read-back of every range and patch, bypassing the page cache. A source
// error fails every target still running.
func WriteMulti(ctx context.Context, src Source, targets []Target, o MultiOptions) (*Map, []TargetResult) {
	res := make([]TargetResult, len(targets))
	type tstate struct {
		f     *os.File
		w     io.WriterAt
		ch    chan Block
		err   error
		done  int64
		start time.Time
	}
	st := make([]*tstate, len(targets))
	for i, t := range targets {
		res[i].Target = t.Path
		f, err := openTarget(t)
		s := &tstate{f: f, err: err, start: time.Now()}
		if err == nil {
			s.w = f
			if t.WrapWriter != nil {
				s.w = t.WrapWriter(f)
			}
		}
		st[i] = s
	}
	defer func() {
		for _, s := range st {
			if s.f != nil {
				s.f.Close()
			}
		}
	}()
	report := func(i int, ph Phase, done, total int64) {
		if o.Progress != nil {
			o.Progress(Progress{Target: targets[i].Path, Phase: ph, Done: done, Total: total, Elapsed: time.Since(st[i].start), Written: st[i].done})
		}
	}

	// Write phase: one goroutine per open target.
	var wg sync.WaitGroup
	var srcMu sync.Mutex // guards src.Progress against Next
	srcProgress := func() (int64, int64) {
		srcMu.Lock()
		defer srcMu.Unlock()
		return src.Progress()
	}
	var alive atomic.Int32 // targets still writing; the source stops at 0
	for i, s := range st {
		if s.err != nil {
			continue
		}
		s.ch = make(chan Block, queued)
		alive.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range s.ch {
				if s.err != nil || ctx.Err() != nil {
					continue // drain: the producer must never block on a dead target
				}
				if _, err := s.w.WriteAt(b.Data, b.Off); err != nil {
					s.err = fmt.Errorf("flash: write %s at %d: %w: %w", targets[i].Path, b.Off, ErrWrite, err)
					alive.Add(-1)
					continue
				}
				s.done += int64(len(b.Data))
				d, t := srcProgress()
				report(i, PhaseWrite, d, t)
			}
		}()
	}
	m := &Map{BlockSize: DefaultBlockSize}
	var srcErr error
	var cur *Range
	var h hash.Hash = sha256.New()
	flush := func() {
		if cur != nil {
			copy(cur.SHA256[:], h.Sum(nil))
			m.Ranges = append(m.Ranges, *cur)
			cur = nil
			h.Reset()
		}
	}
	var last int64
	for alive.Load() > 0 {
		if err := ctx.Err(); err != nil {
			srcErr = err
			break
		}
		srcMu.Lock()
		b, err := src.Next()
		srcMu.Unlock()
		if err == io.EOF {
			break
		}
		if err != nil {
			srcErr = fmt.Errorf("flash: reading the image: %w", err)
			break
		}
		if len(b.Data) == 0 {
			continue
		}
		if b.Off < last {
			srcErr = fmt.Errorf("flash: image source went backwards (block at %d after %d)", b.Off, last)
			break
		}
		last = b.Off + int64(len(b.Data))
		if o.Observe != nil {
			o.Observe(b)
		}
		for i := 0; i < len(b.Data); {
			// Split into ranges of at most maxRange.
			if cur != nil && (cur.End() != b.Off+int64(i) || cur.Len >= maxRange) {
				flush()
			}
			if cur == nil {
				cur = &Range{Off: b.Off + int64(i)}
			}
			n := min(int64(len(b.Data)-i), maxRange-cur.Len)
			h.Write(b.Data[i : i+int(n)])
			cur.Len += n
			i += int(n)
		}
		for _, s := range st {
			if s.ch != nil {
				select {
				case s.ch <- b:
				case <-ctx.Done():
				}
			}
		}
	}
	flush()
	for _, s := range st {
		if s.ch != nil {
			close(s.ch)
		}
	}
	wg.Wait()
	if srcErr == nil && ctx.Err() != nil {
		srcErr = ctx.Err()
	}

	// Finish phase: patches, fsync, read-back, concurrently per target.
	var patches []Patch
	if srcErr == nil && o.Patches != nil && alive.Load() > 0 {
		patches = o.Patches(m)
	}
	for i, s := range st {
		switch {
		case s.err != nil:
			res[i].Err = s.err
			continue
		case srcErr != nil:
			res[i].Err = fmt.Errorf("%w: %s left partly written", srcErr, targets[i].Path)
			if !errors.Is(srcErr, context.Canceled) {
				res[i].Err = fmt.Errorf("%w (%w)", res[i].Err, ErrWrite)
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ps := append(append([]Patch(nil), patches...), targets[i].Extra...)
			r, err := finish(ctx, s.f, s.w, m, ps, targets[i], s.done, s.start, func(ph Phase, d, t int64) { report(i, ph, d, t) })
			res[i].Result, res[i].Err = r, err
		}()
	}
	wg.Wait()
	return m, res
}

// openTarget opens a target for writing: O_EXCL for block devices (EBUSY
// while anything has it mounted or claimed), created and extended to
// MinSize for files.
func openTarget(t Target) (*os.File, error) {
	flags := os.O_WRONLY
	if t.BlockDevice {
		flags |= unix.O_EXCL
	} else {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(t.Path, flags, 0o644)
	if err != nil {
		if errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("flash: %s is in use (mounted or opened exclusively by another program): %w", t.Path, ErrRefused)
		}
		return nil, fmt.Errorf("flash: open %s: %w: %w", t.Path, ErrRefused, err)
	}
	if !t.BlockDevice && t.MinSize > 0 {
		st, err := f.Stat()
		if err == nil && st.Mode().IsRegular() && st.Size() < t.MinSize {
			err = f.Truncate(t.MinSize)
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("flash: sizing %s: %w: %w", t.Path, ErrWrite, err)
		}
	}
	return f, nil
}

// finish writes the patches, syncs and verifies one target.
func finish(ctx context.Context, f *os.File, w io.WriterAt, m *Map, patches []Patch, t Target, written int64, start time.Time, report func(Phase, int64, int64)) (*Result, error) {
	zero := make([]byte, chunk)
	for _, p := range patches {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if p.Data != nil {
			if _, err := w.WriteAt(p.Data, p.Off); err != nil {
				return nil, fmt.Errorf("flash: write %s (%s) at %d: %w: %w", t.Path, p.What, p.Off, ErrWrite, err)
			}
		} else {
			for off := p.Off; off < p.Off+p.Len; off += chunk {
				n := min(chunk, p.Off+p.Len-off)
				if _, err := w.WriteAt(zero[:n], off); err != nil {
					return nil, fmt.Errorf("flash: wipe %s (%s) at %d: %w: %w", t.Path, p.What, off, ErrWrite, err)
				}
			}
		}
		written += p.length()
	}
	report(PhaseSync, 0, 0)
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("flash: fsync %s: %w: %w", t.Path, ErrWrite, err)
	}
	res := &Result{Target: t.Path, Written: written, Write: time.Since(start)}
	total := m.Mapped()
	for _, p := range patches {
		total += p.length()
	}
	vstart := time.Now()
	n, err := verify(ctx, m, Options{Patches: patches, BlockDevice: t.BlockDevice}, t.Path, func(d int64) { report(PhaseVerify, d, total) })
	if err != nil {
		return nil, err
	}
	res.Verified, res.Verify = n, time.Since(vstart)
	report(PhaseDone, total, total)
	return res, nil
}

// Span is a byte range [Off, Off+Len) of a disk.
type Span struct{ Off, Len int64 }

// ZeroPatches turns areas that must read as zero on the target (stale
// headers of a reused card) into zero patches, leaving out every byte the
// map writes and every byte of keep (e.g. a provisioning record written as
// a patch of its own). Overlapping areas are merged.
func ZeroPatches(areas []Span, m *Map, keep []Span, what string) []Patch {
	var excl []Span
	for _, r := range m.Ranges {
		excl = append(excl, Span{r.Off, r.Len})
	}
	excl = append(excl, keep...)
	sort.Slice(excl, func(i, j int) bool { return excl[i].Off < excl[j].Off })
	areas = mergeSpans(areas)
	var out []Patch
	for _, a := range areas {
		pos, end := a.Off, a.Off+a.Len
		for _, e := range excl {
			if e.Off+e.Len <= pos || e.Off >= end {
				continue
			}
			if e.Off > pos {
				out = append(out, Patch{Off: pos, Len: e.Off - pos, What: what})
			}
			pos = max(pos, e.Off+e.Len)
		}
		if pos < end {
			out = append(out, Patch{Off: pos, Len: end - pos, What: what})
		}
	}
	return out
}

func mergeSpans(s []Span) []Span {
	s = append([]Span(nil), s...)
	sort.Slice(s, func(i, j int) bool { return s[i].Off < s[j].Off })
	var out []Span
	for _, x := range s {
		if x.Len <= 0 {
			continue
		}
		if k := len(out); k > 0 && x.Off <= out[k-1].Off+out[k-1].Len {
			out[k-1].Len = max(out[k-1].Off+out[k-1].Len, x.Off+x.Len) - out[k-1].Off
			continue
		}
		out = append(out, x)
	}
	return out
}

// StreamSource reads a whole image as a stream (e.g. from a decompressor),
// in runs of up to 1 MiB, leaving out all-zero blocks of DefaultBlockSize.
// Counted, if set, reports the source's progress (compressed bytes read
// and the compressed size).
type StreamSource struct {
	R       io.Reader
	Size    int64 // image size: reading stops there; a shorter stream is an error
	Counted func() (done, total int64)
	pos     int64
	buf     []byte
	queue   []Block // runs of the last chunk not returned yet
}

// Next implements Source.
func (s *StreamSource) Next() (Block, error) {
	if s.buf == nil {
		s.buf = make([]byte, chunk)
	}
	for {
		if len(s.queue) > 0 {
			b := s.queue[0]
			s.queue = s.queue[1:]
			return b, nil
		}
		if s.pos >= s.Size {
			// The stream must end where the image ends.
			var one [1]byte
			if n, _ := io.ReadFull(s.R, one[:]); n > 0 {
				return Block{}, fmt.Errorf("image stream is longer than the image size %d", s.Size)
			}
			return Block{}, io.EOF
		}
		n := min(int64(len(s.buf)), s.Size-s.pos)
		if _, err := io.ReadFull(s.R, s.buf[:n]); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return Block{}, fmt.Errorf("image stream ends before byte %d of %d: %w", s.pos+n, s.Size, io.ErrUnexpectedEOF)
			}
			return Block{}, err
		}
		s.queue = append(s.queue, splitRuns(s.buf[:n], s.pos)...)
		s.pos += n
	}
}

// Progress implements Source.
func (s *StreamSource) Progress() (int64, int64) {
	if s.Counted != nil {
		return s.Counted()
	}
	return s.pos, s.Size
}

// splitRuns returns the runs of non-zero DefaultBlockSize blocks of buf
// (which holds the image at base), copied out of buf.
func splitRuns(buf []byte, base int64) []Block {
	var runs []Block
	n := int64(len(buf))
	for off := int64(0); off < n; off += DefaultBlockSize {
		e := min(off+DefaultBlockSize, n)
		if allZero(buf[off:e]) {
			continue
		}
		if k := len(runs); k > 0 && runs[k-1].Off+int64(len(runs[k-1].Data)) == base+off {
			runs[k-1].Data = buf[runs[k-1].Off-base : e]
			continue
		}
		runs = append(runs, Block{Off: base + off, Data: buf[off:e]})
	}
	for i := range runs {
		runs[i].Data = append([]byte(nil), runs[i].Data...)
	}
	return runs
}

var zeroBlock = make([]byte, DefaultBlockSize)

func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroBlock))
		if !bytes.Equal(b[:n], zeroBlock[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}
