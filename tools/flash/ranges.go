// Package flash writes kazasu firmware images to SD cards, eMMC and USB disks
// the way a field technician needs it: only the used ranges of the image
// (bmap-style), never to the wrong disk, and with proof of what was written.
//
// The flow for one target, in order:
//
//  1. Plan: the image's mapped ranges (SEEK_DATA/SEEK_HOLE on a sparse file,
//     refined to skip all-zero blocks of the block size) and their SHA-256.
//  2. Check the target: a regular file, or a block device that is removable,
//     not mounted (nor any of its partitions), not the disk the system runs
//     from, and at least as large as the image. Refusals are typed
//     (ErrRefused) and say why.
//  3. Write the mapped ranges, then the stale-header wipes (ranges the image
//     declares as zero but which a reused card may still hold old
//     superblocks in), fsync.
//  4. Read every mapped range back bypassing the page cache (O_DIRECT on
//     block devices; posix_fadvise DONTNEED otherwise) and compare hashes.
//
// Exit codes used by the kazasu CLI: ExitRefused, ExitWrite, ExitVerify.
package flash

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Range is a byte range of the image that holds data.
type Range struct {
	Off, Len int64
	SHA256   [32]byte // hash of the image bytes in the range
}

// End is the first offset after the range.
func (r Range) End() int64 { return r.Off + r.Len }

// Map is the block map of an image: its size and the ranges to write.
type Map struct {
	Size      int64
	BlockSize int64
	Ranges    []Range
}

// Mapped returns the number of bytes the map writes.
func (m *Map) Mapped() int64 {
	var n int64
	for _, r := range m.Ranges {
		n += r.Len
	}
	return n
}

// DefaultBlockSize is the granularity of the block map (bmaptool uses 4 KiB;
// 64 KiB keeps maps of multi-GiB images small and matches SD erase blocks
// better).
const DefaultBlockSize = 64 << 10

// maxRange bounds one range so that progress and per-range retries stay fine
// grained.
const maxRange = 4 << 20

// MapFile computes the block map of the image file f: the data extents the
// file system reports (SEEK_DATA/SEEK_HOLE), split into blocks of blockSize,
// dropping blocks that are all zero, merged into ranges of at most 4 MiB,
// each with its SHA-256.
func MapFile(f *os.File, blockSize int64) (*Map, error) {
	if blockSize <= 0 || blockSize%512 != 0 {
		return nil, fmt.Errorf("flash: block size %d is not a positive multiple of 512", blockSize)
	}
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("flash: map: %w", err)
	}
	size := st.Size()
	m := &Map{Size: size, BlockSize: blockSize}
	extents, err := dataExtents(f, size)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, blockSize)
	zero := make([]byte, blockSize)
	var cur *Range
	h := sha256.New()
	flush := func() {
		if cur != nil {
			copy(cur.SHA256[:], h.Sum(nil))
			m.Ranges = append(m.Ranges, *cur)
			cur = nil
			h.Reset()
		}
	}
	for _, e := range extents {
		// Align the extent to blocks.
		start := e[0] / blockSize * blockSize
		for off := start; off < e[1]; off += blockSize {
			n := min(blockSize, size-off)
			if _, err := f.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("flash: map: read at %d: %w", off, err)
			}
			if bytes.Equal(buf[:n], zero[:n]) {
				flush()
				continue
			}
			if cur != nil && (cur.End() != off || cur.Len+n > maxRange) {
				flush()
			}
			if cur == nil {
				cur = &Range{Off: off}
			}
			cur.Len += n
			h.Write(buf[:n])
		}
		flush()
	}
	flush()
	return m, nil
}

// dataExtents lists [start, end) extents holding data. Where the file system
// does not support SEEK_DATA the whole file is one extent.
func dataExtents(f *os.File, size int64) ([][2]int64, error) {
	var out [][2]int64
	fd := int(f.Fd())
	var off int64
	for off < size {
		start, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err != nil {
			if errors.Is(err, unix.ENXIO) { // no more data
				break
			}
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
				return [][2]int64{{0, size}}, nil
			}
			return nil, fmt.Errorf("flash: SEEK_DATA: %w", err)
		}
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		if err != nil {
			return nil, fmt.Errorf("flash: SEEK_HOLE: %w", err)
		}
		if end > size {
			end = size
		}
		out = append(out, [2]int64{start, end})
		off = end
	}
	return out, nil
}
