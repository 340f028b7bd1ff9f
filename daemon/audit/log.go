package audit

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// File names inside the log directory.
const (
	LiveName = "audit.log"
	HeadName = "audit.head"
)

// ErrCorrupt is wrapped by Open when the existing log fails verification;
// kazasud must not silently start a new chain over it.
var ErrCorrupt = errors.New("audit: existing log is corrupt")

// ErrClosed is returned by Append after Close or after a failed write.
var ErrClosed = errors.New("audit: log closed")

// Options configures Open.
type Options struct {
	Terminal string           // terminal id for genesis records (required)
	MaxBytes int64            // rotate when the live file grows past this; 0: never
	Now      func() time.Time // clock; time.Now if nil
}

// Log is an open audit log. It is safe for concurrent use by one process.
type Log struct {
	dir  string
	opts Options

	mu       sync.Mutex
	f        *os.File
	size     int64
	firstSeq uint64
	seq      uint64
	last     Hash
	err      error // sticky: set after a failed write or Close
}

// Appended describes a record just made durable; Line (without newline) is
// what should be uploaded.
type Appended struct {
	Seq  uint64
	Hash Hash
	Line []byte
}

// Open opens (or creates) the log in dir, recovering from a crash at any
// point of an append or a rotation.
func Open(dir string, opts Options) (*Log, error) {
	if !reTerm.MatchString(opts.Terminal) {
		return nil, fmt.Errorf("%w: terminal %q", ErrInvalidEntry, opts.Terminal)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l := &Log{dir: dir, opts: opts}
	recovered, err := l.open()
	if err != nil {
		return nil, err
	}
	if recovered {
		if _, err := l.Append(Entry{Event: EventRecovered, Reason: "torn_tail_truncated"}); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

func (l *Log) live() string { return filepath.Join(l.dir, LiveName) }

func (l *Log) open() (recovered bool, err error) {
	data, err := os.ReadFile(l.live())
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := l.checkHeadWithoutLive(); err != nil {
			return false, err
		}
		return false, l.startFile()
	case err != nil:
		return false, fmt.Errorf("audit: %w", err)
	}
	if i := bytes.LastIndexByte(data, '\n'); i+1 != len(data) {
		// A torn final line: an Append that never returned. Cut it off.
		if err := os.Truncate(l.live(), int64(i+1)); err != nil {
			return false, fmt.Errorf("audit: truncating torn tail: %w", err)
		}
		data = data[:i+1]
		recovered = true
	}
	if len(data) == 0 {
		// Crash between creating the file and its genesis being durable
		// cannot happen (genesis is written before the rename); an empty
		// live file is therefore a cut file.
		return false, fmt.Errorf("%w: %s is empty", ErrCorrupt, l.live())
	}
	res, err := Verify(bytes.NewReader(data))
	if err != nil {
		return false, fmt.Errorf("%w: %s: %w", ErrCorrupt, l.live(), err)
	}
	if res.Terminal != l.opts.Terminal {
		return false, fmt.Errorf("%w: %s belongs to terminal %q", ErrCorrupt, l.live(), res.Terminal)
	}
	if hb, err := os.ReadFile(filepath.Join(l.dir, HeadName)); err == nil && !res.Sealed {
		head, err := ParseHead(hb)
		if err != nil {
			return false, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if _, err := VerifyFile(data, head); err != nil {
			return false, fmt.Errorf("%w: %s: %w", ErrCorrupt, l.live(), err)
		}
	}
	l.firstSeq, l.seq, l.last, l.size = res.FirstSeq, res.LastSeq, res.LastHash, res.Size
	if res.Sealed {
		// A rotation was interrupted after the seal: finish it.
		if err := l.renameSealed(); err != nil {
			return false, err
		}
		return recovered, l.startFile()
	}
	f, err := os.OpenFile(l.live(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return false, fmt.Errorf("audit: %w", err)
	}
	l.f = f
	return recovered, l.writeHead()
}

// checkHeadWithoutLive refuses to start a new live file when the head
// names a record that no sealed file holds: the live file was lost or
// deleted, not rotated (a rotation interrupted after its rename leaves the
// head at the seal, the last record of the newest sealed file).
func (l *Log) checkHeadWithoutLive() error {
	hb, err := os.ReadFile(filepath.Join(l.dir, HeadName))
	if errors.Is(err, os.ErrNotExist) {
		return nil // a new log
	}
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	head, err := ParseHead(hb)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	rot, err := Rotated(l.dir)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if len(rot) > 0 {
		data, err := os.ReadFile(rot[len(rot)-1])
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		if res, err := VerifyFile(data, nil); err == nil && res.LastSeq == head.Seq && res.LastHash.String() == head.Hash {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is missing but %s names record %d: %w", ErrCorrupt, LiveName, HeadName, head.Seq, ErrTruncated)
}

// rotatedName is the name of a sealed file.
func rotatedName(first, last uint64) string {
	return fmt.Sprintf("audit-%020d-%020d.log", first, last)
}

// Rotated lists the sealed files in dir, oldest first.
func Rotated(dir string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(dir, "audit-*-*.log"))
	if err != nil {
		return nil, err
	}
	sort.Strings(m) // zero-padded sequence numbers sort numerically
	return m, nil
}

// startFile creates a new live file whose genesis chains to the newest
// sealed file (or starts a chain) and makes it durable before it appears.
func (l *Log) startFile() error {
	var seq uint64
	var prev Hash
	rot, err := Rotated(l.dir)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if n := len(rot); n > 0 {
		data, err := os.ReadFile(rot[n-1])
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		res, err := Verify(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrCorrupt, rot[n-1], err)
		}
		if !res.Sealed {
			return fmt.Errorf("%w: %s is not sealed", ErrCorrupt, rot[n-1])
		}
		seq, prev = res.LastSeq+1, res.LastHash
	}
	rec := Record{V: FormatVersion, Seq: seq, Time: l.now(), Event: EventGenesis, Terminal: l.opts.Terminal, Prev: prev.String()}
	line, err := rec.encode()
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	tmp := l.live() + ".tmp"
	if err := writeSync(tmp, append(line, '\n')); err != nil {
		return err
	}
	if err := os.Rename(tmp, l.live()); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		return err
	}
	f, err := os.OpenFile(l.live(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	l.f, l.firstSeq, l.seq, l.last, l.size = f, seq, seq, HashLine(line), int64(len(line)+1)
	return l.writeHead()
}

func (l *Log) renameSealed() error {
	if err := os.Rename(l.live(), filepath.Join(l.dir, rotatedName(l.firstSeq, l.seq))); err != nil {
		return fmt.Errorf("audit: rotate: %w", err)
	}
	return syncDir(l.dir)
}

func (l *Log) now() string { return l.opts.Now().UTC().Format(timeFormat) }

// Append validates e, writes it as the next record and fsyncs it.
func (l *Log) Append(e Entry) (Appended, error) {
	if err := e.validate(); err != nil {
		return Appended{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	a, err := l.appendLocked(e.record())
	if err != nil {
		return Appended{}, err
	}
	if l.opts.MaxBytes > 0 && l.size > l.opts.MaxBytes {
		if err := l.rotateLocked(); err != nil {
			return a, err // the record itself is durable
		}
	}
	return a, nil
}

func (e *Entry) record() Record {
	r := Record{V: FormatVersion, Event: e.Event, TxID: e.TxID, Reader: e.Reader, Token: string(e.Token), Service: e.Service, Reason: e.Reason}
	if e.Cert != nil {
		r.Cert = hex.EncodeToString(e.Cert[:])
	}
	return r
}

func (l *Log) appendLocked(r Record) (Appended, error) {
	if l.err != nil {
		return Appended{}, l.err
	}
	r.Seq, r.Time, r.Prev = l.seq+1, l.now(), l.last.String()
	line, err := r.encode()
	if err != nil {
		return Appended{}, fmt.Errorf("audit: %w", err)
	}
	if len(line) > MaxLine {
		return Appended{}, fmt.Errorf("%w: record too long", ErrInvalidEntry)
	}
	n, err := l.f.Write(append(line, '\n'))
	if err == nil {
		err = l.f.Sync()
	}
	if err != nil {
		// The file may now end in a torn line; only Open can repair it.
		l.err = fmt.Errorf("audit: write failed, log must be reopened: %w", err)
		l.size += int64(n)
		return Appended{}, l.err
	}
	l.seq, l.last, l.size = r.Seq, HashLine(line), l.size+int64(n)
	if err := l.writeHead(); err != nil {
		return Appended{}, err
	}
	return Appended{Seq: r.Seq, Hash: l.last, Line: line}, nil
}

// Rotate seals the live file and starts a new one chained to it.
func (l *Log) Rotate() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rotateLocked()
}

func (l *Log) rotateLocked() error {
	if _, err := l.appendLocked(Record{V: FormatVersion, Event: EventRotate}); err != nil {
		return err
	}
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	l.f = nil
	if err := l.renameSealed(); err != nil {
		l.err = err
		return err
	}
	if err := l.startFile(); err != nil {
		l.err = err
		return err
	}
	return nil
}

// Head returns the anchor of the last durable record.
func (l *Log) Head() Head {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Head{Seq: l.seq, Hash: l.last.String()}
}

// Close closes the log; later Appends fail with ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = ErrClosed
	}
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

func (l *Log) writeHead() error {
	b, _ := json.Marshal(Head{Seq: l.seq, Hash: l.last.String()})
	p := filepath.Join(l.dir, HeadName)
	if err := writeSync(p+".tmp", append(b, '\n')); err != nil {
		return err
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return fmt.Errorf("audit: head: %w", err)
	}
	return syncDir(l.dir)
}

func writeSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("audit: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("audit: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit: sync dir: %w", err)
	}
	return nil
}
