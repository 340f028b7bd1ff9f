package audit

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Kinds of verification failure, wrapped by *VerifyError.
var (
	ErrMalformed = errors.New("malformed record")          // not a canonical, valid record
	ErrTruncated = errors.New("truncated")                 // torn last line, or tail cut (head/seal)
	ErrChain     = errors.New("hash chain broken")         // prev does not match the previous line
	ErrSequence  = errors.New("sequence broken")           // seq not previous+1 (deleted or reordered)
	ErrStructure = errors.New("misplaced genesis or seal") // genesis not first, records after a seal
	ErrEmpty     = errors.New("empty log")
)

// VerifyError reports the first bad record.
type VerifyError struct {
	Line   int   // 1-based line number
	Offset int64 // byte offset of the line's start
	Kind   error // one of the Err kinds above
	Detail string
}

func (e *VerifyError) Error() string {
	s := fmt.Sprintf("audit: line %d (offset %d): %v", e.Line, e.Offset, e.Kind)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *VerifyError) Unwrap() error { return e.Kind }

// Result summarises an intact log file.
type Result struct {
	Records   int
	Terminal  string // from the genesis record
	FirstSeq  uint64
	LastSeq   uint64
	FirstPrev Hash // genesis prev: zero for the first file ever
	LastHash  Hash // hash of the last line
	Sealed    bool // ends with a rotate record
	Size      int64
}

// Head is the anchor of the live file's tail, kept in audit.head.
type Head struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// Verify reads a whole log file and checks every record and the chain. It
// returns the first problem as a *VerifyError; a nil error means the file is
// internally consistent (see [Result.Check] for the tail).
func Verify(r io.Reader) (*Result, error) {
	br := bufio.NewReaderSize(r, 4096)
	res := &Result{}
	var (
		off     int64
		prev    Hash
		prevSeq uint64
	)
	for line := 1; ; line++ {
		raw, err := readLine(br)
		fail := func(kind error, format string, args ...any) (*Result, error) {
			return nil, &VerifyError{Line: line, Offset: off, Kind: kind, Detail: fmt.Sprintf(format, args...)}
		}
		if err == io.EOF && len(raw) == 0 {
			break
		}
		if err == errLong {
			return fail(ErrMalformed, "line longer than %d bytes", MaxLine)
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("audit: read: %w", err)
		}
		if !bytes.HasSuffix(raw, []byte("\n")) {
			return fail(ErrTruncated, "last line has no newline (torn write or cut file)")
		}
		body := raw[:len(raw)-1]
		var rec Record
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			return fail(ErrMalformed, "%v", err)
		}
		if dec.More() {
			return fail(ErrMalformed, "trailing data")
		}
		if err := rec.check(); err != nil {
			return fail(ErrMalformed, "%v", err)
		}
		canon, err := rec.encode()
		if err != nil || !bytes.Equal(canon, body) {
			return fail(ErrMalformed, "not in canonical form")
		}
		if res.Sealed {
			return fail(ErrStructure, "record after the rotate seal")
		}
		if line == 1 {
			if rec.Event != EventGenesis {
				return fail(ErrStructure, "first record is %q, not genesis", rec.Event)
			}
			h, _ := hex.DecodeString(rec.Prev)
			copy(res.FirstPrev[:], h)
			if res.FirstPrev == (Hash{}) && rec.Seq != 0 {
				return fail(ErrSequence, "first file of a chain must start at seq 0")
			}
			res.FirstSeq = rec.Seq
			res.Terminal = rec.Terminal
		} else {
			if rec.Event == EventGenesis {
				return fail(ErrStructure, "genesis record in the middle of the file")
			}
			if rec.Seq != prevSeq+1 {
				return fail(ErrSequence, "seq %d after %d", rec.Seq, prevSeq)
			}
			if rec.Prev != prev.String() {
				return fail(ErrChain, "prev %s… is not the hash of line %d (%s…)", rec.Prev[:12], line-1, prev.String()[:12])
			}
		}
		res.Sealed = rec.Event == EventRotate
		prev = HashLine(body)
		prevSeq = rec.Seq
		res.Records++
		off += int64(len(raw))
	}
	if res.Records == 0 {
		return nil, &VerifyError{Line: 1, Kind: ErrEmpty}
	}
	res.LastSeq, res.LastHash, res.Size = prevSeq, prev, off
	return res, nil
}

var errLong = errors.New("line too long")

// readLine reads one line including its newline, bounded by MaxLine.
func readLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		chunk, err := br.ReadSlice('\n')
		out = append(out, chunk...)
		if len(out) > MaxLine+1 {
			return out, errLong
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return out, err
	}
}

// Check verifies that the tail of a verified file is anchored: a sealed
// file without a head is complete by itself; otherwise the file must
// contain the head record (the head may lag the file by one record after a
// crash, never lead). head may be nil only for a sealed file.
func (res *Result) Check(head *Head, headRecordHash func(seq uint64) (Hash, bool)) error {
	if head == nil && res.Sealed {
		return nil
	}
	if head == nil {
		return &VerifyError{Line: res.Records, Offset: res.Size, Kind: ErrTruncated, Detail: "file is not sealed and no head is known: cannot rule out a cut tail"}
	}
	if head.Seq > res.LastSeq {
		return &VerifyError{Line: res.Records + 1, Offset: res.Size, Kind: ErrTruncated, Detail: fmt.Sprintf("head names seq %d, file ends at %d", head.Seq, res.LastSeq)}
	}
	if head.Seq+1 == res.FirstSeq && res.LastSeq == res.FirstSeq && strings.EqualFold(res.FirstPrev.String(), head.Hash) {
		// A crash right after a rotation made the new file live, before the
		// head moved on: the head is the seal the genesis chains to.
		return nil
	}
	if head.Seq+1 < res.LastSeq || head.Seq < res.FirstSeq {
		return &VerifyError{Line: res.Records, Offset: res.Size, Kind: ErrTruncated, Detail: fmt.Sprintf("head (seq %d) does not belong to this file (seq %d..%d)", head.Seq, res.FirstSeq, res.LastSeq)}
	}
	h, ok := headRecordHash(head.Seq)
	if !ok || !strings.EqualFold(h.String(), head.Hash) {
		return &VerifyError{Line: int(head.Seq-res.FirstSeq) + 1, Kind: ErrChain, Detail: "record differs from the head anchor"}
	}
	return nil
}

// VerifyFile verifies a file and its tail anchor: the head file if given
// (headPath may be ""), else the seal. data is the file content.
func VerifyFile(data []byte, head *Head) (*Result, error) {
	res, err := Verify(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	err = res.Check(head, func(seq uint64) (Hash, bool) {
		n := int(seq - res.FirstSeq)
		for i, l := range bytes.SplitAfter(data, []byte("\n")) {
			if i == n {
				return HashLine(l), true
			}
		}
		return Hash{}, false
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// ParseHead decodes a head file strictly.
func ParseHead(b []byte) (*Head, error) {
	if len(b) > 256 {
		return nil, errors.New("audit: head file too large")
	}
	var h Head
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("audit: head: %w", err)
	}
	if dec.More() || !reHash.MatchString(h.Hash) {
		return nil, errors.New("audit: head: malformed")
	}
	return &h, nil
}

// VerifyFiles verifies a sequence of log files given oldest first (sealed
// files from [Rotated], then optionally the live file): each file, the
// chain across files, and the tail: every file but the last must be sealed,
// and the last must be sealed or reach head. It returns the result of the
// last file; errors name the file.
func VerifyFiles(files []string, head *Head) (*Result, error) {
	if len(files) == 0 {
		return nil, errors.New("audit: no files")
	}
	var prev *Result
	for i, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		var h *Head
		if i == len(files)-1 {
			h = head
		}
		res, err := Verify(bytes.NewReader(data))
		if err == nil && i < len(files)-1 && !res.Sealed {
			err = &VerifyError{Line: res.Records, Offset: res.Size, Kind: ErrTruncated, Detail: "not sealed, yet a later file follows"}
		}
		if err == nil && i == len(files)-1 {
			res, err = VerifyFile(data, h)
		}
		if err == nil && prev != nil && (res.FirstPrev != prev.LastHash || res.FirstSeq != prev.LastSeq+1) {
			err = &VerifyError{Line: 1, Kind: ErrChain, Detail: fmt.Sprintf("genesis does not chain to %s", files[i-1])}
		}
		if err == nil && prev != nil && res.Terminal != prev.Terminal {
			err = &VerifyError{Line: 1, Kind: ErrChain, Detail: "terminal id changes between files"}
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		prev = res
	}
	return prev, nil
}
