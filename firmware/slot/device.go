package slot

import "io"

// Device is a root partition opened for writing and reading back.
type Device interface {
	io.WriterAt
	io.ReaderAt
	Sync() error
	Close() error
	// Size is the partition size in bytes.
	Size() int64
	// DropCache evicts the device's pages, so a read-back comes from the
	// medium (posix_fadvise DONTNEED after fsync).
	DropCache() error
}
