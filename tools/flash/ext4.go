package flash

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Ext4SuperblockOffset is where an ext2/3/4 superblock starts in its file
// system; Ext4SuperblockSize is its length.
const (
	Ext4SuperblockOffset = 1024
	Ext4SuperblockSize   = 1024
)

// ErrNoJournal: the file system has no journal (or none this parser can
// locate from the superblock alone).
var ErrNoJournal = errors.New("no locatable ext4 journal")

// Ext4Journal returns where the journal of the ext4 file system whose
// superblock is sb lies, as byte ranges relative to the file system's
// start. It reads the copy of the journal inode's extent tree root that
// mke2fs keeps in the superblock (s_jnl_blocks), so no inode table is
// needed.
//
// Why a flasher cares: mke2fs -E lazy_journal_init=1 (what fwbuild uses,
// for a fast build) does not zero the journal, and the zeros of a fresh
// image are not written by a sparse flasher. A reused card then keeps an
// old journal behind the new, empty one; with the same file system UUID
// (fwbuild derives it from the board) and sequence numbers restarting at
// 1, a replay after a power cut can run on into stale transactions. The
// journal must be zeroed on the card.
func Ext4Journal(sb []byte) ([]Span, error) {
	if len(sb) < Ext4SuperblockSize {
		return nil, fmt.Errorf("ext4: superblock of %d bytes", len(sb))
	}
	le := binary.LittleEndian
	if le.Uint16(sb[0x38:]) != 0xEF53 {
		return nil, fmt.Errorf("ext4: bad superblock magic: %w", ErrNoJournal)
	}
	logBS := le.Uint32(sb[0x18:])
	if logBS > 6 {
		return nil, fmt.Errorf("ext4: block size 2^(10+%d): %w", logBS, ErrNoJournal)
	}
	bs := int64(1024) << logBS
	const hasJournal = 0x4
	if le.Uint32(sb[0x5C:])&hasJournal == 0 {
		return nil, ErrNoJournal
	}
	if le.Uint32(sb[0xE0:]) == 0 || le.Uint32(sb[0xE4:]) != 0 {
		return nil, fmt.Errorf("ext4: external journal: %w", ErrNoJournal)
	}
	const backupBlocks = 1 // EXT3_JNL_BACKUP_BLOCKS
	if sb[0xFD] != backupBlocks {
		return nil, fmt.Errorf("ext4: no journal inode backup in the superblock: %w", ErrNoJournal)
	}
	iblock := sb[0x10C : 0x10C+60]
	size := int64(le.Uint32(sb[0x10C+15*4:]))<<32 | int64(le.Uint32(sb[0x10C+16*4:]))
	if le.Uint16(iblock[0:]) != 0xF30A {
		return nil, fmt.Errorf("ext4: journal inode does not use extents: %w", ErrNoJournal)
	}
	entries, depth := int(le.Uint16(iblock[2:])), le.Uint16(iblock[6:])
	if depth != 0 || entries < 1 || entries > 4 {
		return nil, fmt.Errorf("ext4: journal extent tree of depth %d with %d entries: %w", depth, entries, ErrNoJournal)
	}
	var out []Span
	var total int64
	for i := 0; i < entries; i++ {
		e := iblock[12+12*i:]
		n := int64(le.Uint16(e[4:]))
		if n > 32768 { // uninitialised extent
			n -= 32768
		}
		start := int64(le.Uint16(e[6:]))<<32 | int64(le.Uint32(e[8:]))
		if n == 0 || start == 0 {
			return nil, fmt.Errorf("ext4: journal extent %d: %d blocks at %d: %w", i, n, start, ErrNoJournal)
		}
		out = append(out, Span{Off: start * bs, Len: n * bs})
		total += n * bs
	}
	if size > 0 && total < size {
		return nil, fmt.Errorf("ext4: journal extents cover %d of %d bytes: %w", total, size, ErrNoJournal)
	}
	return out, nil
}
