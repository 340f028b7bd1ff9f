package flash

import (
	"fmt"
	"io"
	"os"
)

// FileSource reads a raw (possibly sparse) image file: only the data
// extents the file system reports (SEEK_DATA/SEEK_HOLE), leaving out
// all-zero blocks.
type FileSource struct {
	f       *os.File
	extents [][2]int64
	total   int64
	done    int64
	buf     []byte
	queue   []Block
	ext     int
	pos     int64
}

// NewFileSource maps the data extents of f.
func NewFileSource(f *os.File) (*FileSource, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("flash: %w", err)
	}
	ext, err := dataExtents(f, st.Size())
	if err != nil {
		return nil, err
	}
	s := &FileSource{f: f, extents: ext}
	for _, e := range ext {
		s.total += e[1] - e[0]
	}
	if len(ext) > 0 {
		s.pos = ext[0][0] / DefaultBlockSize * DefaultBlockSize
	}
	return s, nil
}

// Next implements Source.
func (s *FileSource) Next() (Block, error) {
	if s.buf == nil {
		s.buf = make([]byte, chunk)
	}
	for len(s.queue) == 0 {
		if s.ext >= len(s.extents) {
			return Block{}, io.EOF
		}
		e := s.extents[s.ext]
		if s.pos >= e[1] {
			s.ext++
			if s.ext < len(s.extents) {
				// Block-align the next extent, never going back over bytes
				// already read.
				s.pos = max(s.pos, s.extents[s.ext][0]/DefaultBlockSize*DefaultBlockSize)
			}
			continue
		}
		// Read up to the extent's end rounded up to a block.
		end := min((e[1]+DefaultBlockSize-1)/DefaultBlockSize*DefaultBlockSize, s.pos+chunk)
		if s.ext+1 < len(s.extents) {
			end = min(end, max(s.extents[s.ext+1][0], e[1]))
		}
		n, err := s.f.ReadAt(s.buf[:end-s.pos], s.pos)
		if err != nil && err != io.EOF {
			return Block{}, fmt.Errorf("reading %s at %d: %w", s.f.Name(), s.pos, err)
		}
		if n == 0 {
			s.pos = e[1]
			continue
		}
		s.queue = splitRuns(s.buf[:n], s.pos)
		s.done += int64(n)
		s.pos += int64(n)
	}
	b := s.queue[0]
	s.queue = s.queue[1:]
	return b, nil
}

// Progress implements Source: bytes of data extents read.
func (s *FileSource) Progress() (int64, int64) { return min(s.done, s.total), s.total }

// ExtentSource reads a payload stream whose bytes fill the given extents of
// the disk in order (a flash bundle's disk payload), leaving out all-zero
// blocks.
type ExtentSource struct {
	R       io.Reader
	Extents []Span
	done    int64
	total   int64
	ext     int
	off     int64 // within the current extent
	buf     []byte
	queue   []Block
}

// NewExtentSource returns a source over r, whose length must be the sum of
// the extents' lengths.
func NewExtentSource(r io.Reader, extents []Span) *ExtentSource {
	s := &ExtentSource{R: r, Extents: extents}
	for _, e := range extents {
		s.total += e.Len
	}
	return s
}

// Next implements Source.
func (s *ExtentSource) Next() (Block, error) {
	if s.buf == nil {
		s.buf = make([]byte, chunk)
	}
	for len(s.queue) == 0 {
		if s.ext >= len(s.Extents) {
			var one [1]byte
			if n, _ := io.ReadFull(s.R, one[:]); n > 0 {
				return Block{}, fmt.Errorf("payload is longer than its extents (%d bytes)", s.total)
			}
			return Block{}, io.EOF
		}
		e := s.Extents[s.ext]
		if s.off >= e.Len {
			s.ext++
			s.off = 0
			continue
		}
		// Stay block-aligned on the disk where the extent is.
		n := min(int64(chunk), e.Len-s.off)
		if _, err := io.ReadFull(s.R, s.buf[:n]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return Block{}, fmt.Errorf("payload at byte %d: %w", s.done, err)
		}
		s.queue = splitRuns(s.buf[:n], e.Off+s.off)
		s.off += n
		s.done += n
	}
	b := s.queue[0]
	s.queue = s.queue[1:]
	return b, nil
}

// Progress implements Source: payload bytes read.
func (s *ExtentSource) Progress() (int64, int64) { return s.done, s.total }
