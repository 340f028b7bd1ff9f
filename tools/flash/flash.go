package flash

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Exit codes of `kazasu flash`, distinct per failure class.
const (
	ExitOK      = 0
	ExitRefused = 3 // target refused, bad signature, bad arguments about targets
	ExitWrite   = 4 // I/O error while writing
	ExitVerify  = 5 // read-back did not match
)

// ErrWrite and ErrVerify classify failures after the target was accepted.
var (
	ErrWrite  = errors.New("write failed")
	ErrVerify = errors.New("verification failed")
)

// ExitCodeFor maps an error from this package to its exit code.
func ExitCodeFor(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrVerify):
		return ExitVerify
	case errors.Is(err, ErrWrite):
		return ExitWrite
	default:
		return ExitRefused
	}
}

// Patch is extra data written after the image: a provisioning record, or
// zeros that wipe a stale header (Data nil, Len bytes).
type Patch struct {
	Off  int64
	Data []byte
	Len  int64 // used when Data is nil: write Len zero bytes
	What string
}

func (p Patch) length() int64 {
	if p.Data != nil {
		return int64(len(p.Data))
	}
	return p.Len
}

// Phase names a stage of a flash run for progress reports.
type Phase string

const (
	PhaseWrite  Phase = "write"
	PhaseSync   Phase = "sync"
	PhaseVerify Phase = "verify"
	PhaseDone   Phase = "done"
)

// Progress is reported while a target is written and verified.
type Progress struct {
	Target  string
	Phase   Phase
	Done    int64 // bytes of this phase done
	Total   int64 // bytes of this phase in all
	Elapsed time.Duration
	// Written is what WriteMulti has written to this target so far, for
	// the rate; in its write phase Done and Total are the source's
	// progress (e.g. compressed bytes read), which gives the ETA.
	Written int64
}

// Options control one flash run.
type Options struct {
	// Patches are written after the mapped ranges (and verified too).
	Patches []Patch
	// Progress, if set, is called after every chunk.
	Progress func(Progress)
	// WrapWriter lets tests interpose on the writes (e.g. a corrupting
	// writer); nil in production.
	WrapWriter func(io.WriterAt) io.WriterAt
	// BlockDevice selects O_DIRECT read-back and O_EXCL open; set for
	// block devices.
	BlockDevice bool
}

// Result summarises a successful run.
type Result struct {
	Target   string
	Written  int64
	Verified int64
	Write    time.Duration
	Verify   time.Duration
}

const chunk = 1 << 20

// Write writes the mapped ranges of img (described by m) and the patches to
// the target path, syncs, and verifies by reading back. img is read with
// ReadAt, so several targets may share it.
func Write(ctx context.Context, img io.ReaderAt, m *Map, target string, o Options) (*Result, error) {
	flags := os.O_WRONLY
	if o.BlockDevice {
		// O_EXCL on a block device fails with EBUSY while anything has it
		// mounted or claimed: a last guard against a race with automount.
		flags |= unix.O_EXCL
	}
	f, err := os.OpenFile(target, flags, 0)
	if err != nil {
		if errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("flash: %s is in use (mounted?): %w", target, ErrRefused)
		}
		return nil, fmt.Errorf("flash: open %s: %w: %w", target, ErrRefused, err)
	}
	defer f.Close()
	var w io.WriterAt = f
	if o.WrapWriter != nil {
		w = o.WrapWriter(f)
	}
	res := &Result{Target: target}
	start := time.Now()
	total := m.Mapped()
	for _, p := range o.Patches {
		total += p.length()
	}
	report := func(ph Phase, done, tot int64) {
		if o.Progress != nil {
			o.Progress(Progress{Target: target, Phase: ph, Done: done, Total: tot, Elapsed: time.Since(start)})
		}
	}
	buf := make([]byte, chunk)
	var done int64
	for _, r := range m.Ranges {
		for off := r.Off; off < r.End(); off += chunk {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			n := min(chunk, r.End()-off)
			if _, err := img.ReadAt(buf[:n], off); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
				return nil, fmt.Errorf("flash: read image at %d: %w", off, err)
			}
			if _, err := w.WriteAt(buf[:n], off); err != nil {
				return nil, fmt.Errorf("flash: write %s at %d: %w: %w", target, off, ErrWrite, err)
			}
			done += n
			report(PhaseWrite, done, total)
		}
	}
	zero := make([]byte, chunk)
	for _, p := range o.Patches {
		if p.Data != nil {
			if _, err := w.WriteAt(p.Data, p.Off); err != nil {
				return nil, fmt.Errorf("flash: write %s (%s) at %d: %w: %w", target, p.What, p.Off, ErrWrite, err)
			}
		} else {
			for off := p.Off; off < p.Off+p.Len; off += chunk {
				n := min(chunk, p.Off+p.Len-off)
				if _, err := w.WriteAt(zero[:n], off); err != nil {
					return nil, fmt.Errorf("flash: wipe %s (%s) at %d: %w: %w", target, p.What, off, ErrWrite, err)
				}
			}
		}
		done += p.length()
		report(PhaseWrite, done, total)
	}
	report(PhaseSync, 0, 0)
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("flash: fsync %s: %w: %w", target, ErrWrite, err)
	}
	res.Written = done
	res.Write = time.Since(start)

	vstart := time.Now()
	n, err := verify(ctx, m, o, target, func(d int64) { report(PhaseVerify, d, total) })
	if err != nil {
		return nil, err
	}
	res.Verified = n
	res.Verify = time.Since(vstart)
	report(PhaseDone, total, total)
	return res, nil
}

// verify reads every mapped range and patch back, bypassing the page cache,
// and compares hashes.
func verify(ctx context.Context, m *Map, o Options, target string, progress func(int64)) (int64, error) {
	f, direct, err := openReadBack(target, o.BlockDevice)
	if err != nil {
		return 0, fmt.Errorf("flash: open %s for read-back: %w: %w", target, ErrVerify, err)
	}
	defer f.Close()
	buf := alignedBuf(chunk + 4096)
	var done int64
	readRange := func(off, length int64) ([32]byte, error) {
		h := sha256.New()
		for pos := off; pos < off+length; {
			if err := ctx.Err(); err != nil {
				return [32]byte{}, err
			}
			want := min(chunk, off+length-pos)
			got, err := readBack(f, buf, pos, want, direct)
			if err != nil {
				return [32]byte{}, fmt.Errorf("flash: read back %s at %d: %w: %w", target, pos, ErrVerify, err)
			}
			h.Write(got)
			pos += want
			done += want
			progress(done)
		}
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		return sum, nil
	}
	for _, r := range m.Ranges {
		sum, err := readRange(r.Off, r.Len)
		if err != nil {
			return done, err
		}
		if sum != r.SHA256 {
			return done, fmt.Errorf("flash: %s: bytes %d..%d read back differ from the image (sha256 %x, want %x): %w (bad card or reader?)", target, r.Off, r.End(), sum[:6], r.SHA256[:6], ErrVerify)
		}
	}
	for _, p := range o.Patches {
		want := sha256.New()
		if p.Data != nil {
			want.Write(p.Data)
		} else {
			z := make([]byte, min(p.Len, chunk))
			for left := p.Len; left > 0; left -= int64(len(z)) {
				want.Write(z[:min(left, int64(len(z)))])
			}
		}
		sum, err := readRange(p.Off, p.length())
		if err != nil {
			return done, err
		}
		if string(sum[:]) != string(want.Sum(nil)) {
			return done, fmt.Errorf("flash: %s: %s at %d read back wrong: %w", target, p.What, p.Off, ErrVerify)
		}
	}
	return done, nil
}

// openReadBack opens target for reading without the page cache: O_DIRECT for
// block devices; for files, drop cached pages first (fsync already done).
func openReadBack(target string, block bool) (*os.File, bool, error) {
	if block {
		fd, err := unix.Open(target, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
		if err == nil {
			return os.NewFile(uintptr(fd), target), true, nil
		}
	}
	f, err := os.Open(target)
	if err != nil {
		return nil, false, err
	}
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	return f, false, nil
}

// readBack reads want bytes at off. With O_DIRECT the read is widened to
// 4 KiB alignment in an aligned buffer.
func readBack(f *os.File, buf []byte, off, want int64, direct bool) ([]byte, error) {
	if !direct {
		n, err := f.ReadAt(buf[:want], off)
		if int64(n) == want {
			return buf[:want], nil
		}
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	const align = 4096
	start := off / align * align
	end := (off + want + align - 1) / align * align
	n, err := f.ReadAt(buf[:end-start], start)
	if int64(n) < off+want-start {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf[off-start : off-start+want], nil
}

// alignedBuf returns a 4 KiB-aligned buffer of n bytes for O_DIRECT.
func alignedBuf(n int) []byte {
	b := make([]byte, n+4096)
	a := int(uintptr(unsafe.Pointer(&b[0])) & 4095)
	off := 0
	if a != 0 {
		off = 4096 - a
	}
	return b[off : off+n]
}
