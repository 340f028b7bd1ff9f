package layout

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"unicode/utf16"
)

const (
	gptEntries    = 128
	gptEntrySize  = 128
	gptHeaderSize = 92
	gptEntryLBAs  = gptEntries * gptEntrySize / SectorSize // 32
)

// ErrNoGPT: the disk has no valid kazasu partition table.
var ErrNoGPT = errors.New("layout: no valid GPT")

// WriteTable writes the hybrid MBR, the primary GPT (LBA 1-33) and the
// backup GPT (last 33 LBAs) of d to w.
func (d *Disk) WriteTable(w io.WriterAt) error {
	last := d.Size/SectorSize - 1
	entries := make([]byte, gptEntries*gptEntrySize)
	for i, p := range d.Partitions {
		e := entries[i*gptEntrySize:]
		copy(e[0:16], p.Type[:])
		copy(e[16:32], p.ID[:])
		binary.LittleEndian.PutUint64(e[32:], uint64(p.FirstLBA))
		binary.LittleEndian.PutUint64(e[40:], uint64(p.LastLBA))
		for j, c := range utf16.Encode([]rune(p.Name)) {
			if j >= 36 {
				break
			}
			binary.LittleEndian.PutUint16(e[56+2*j:], c)
		}
	}
	entriesCRC := crc32.ChecksumIEEE(entries)
	header := func(current, backup, entriesLBA int64) []byte {
		h := make([]byte, SectorSize)
		copy(h, "EFI PART")
		binary.LittleEndian.PutUint32(h[8:], 0x00010000)
		binary.LittleEndian.PutUint32(h[12:], gptHeaderSize)
		binary.LittleEndian.PutUint64(h[24:], uint64(current))
		binary.LittleEndian.PutUint64(h[32:], uint64(backup))
		binary.LittleEndian.PutUint64(h[40:], 34)
		binary.LittleEndian.PutUint64(h[48:], uint64(last-33))
		copy(h[56:72], d.ID[:])
		binary.LittleEndian.PutUint64(h[72:], uint64(entriesLBA))
		binary.LittleEndian.PutUint32(h[80:], gptEntries)
		binary.LittleEndian.PutUint32(h[84:], gptEntrySize)
		binary.LittleEndian.PutUint32(h[88:], entriesCRC)
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:gptHeaderSize]))
		return h
	}
	writes := []struct {
		b   []byte
		lba int64
	}{
		{d.mbr(), 0},
		{header(1, last, 2), 1},
		{entries, 2},
		{entries, last - 32},
		{header(last, 1, last-32), last},
	}
	for _, x := range writes {
		if _, err := w.WriteAt(x.b, x.lba*SectorSize); err != nil {
			return fmt.Errorf("layout: writing partition table: %w", err)
		}
	}
	return nil
}

// mbr is the hybrid MBR: entry 1 the boot partition (FAT32 LBA, active),
// entry 2 type 0xEE over the GPT, so Linux uses the GPT and the Pi
// firmware finds the FAT.
func (d *Disk) mbr() []byte {
	b := make([]byte, SectorSize)
	binary.LittleEndian.PutUint32(b[440:], d.Signature)
	entry := func(i int, status, typ byte, first, count int64) {
		e := b[446+16*i:]
		e[0] = status
		copy(e[1:4], []byte{0xfe, 0xff, 0xff}) // CHS: beyond 8 GiB, use LBA
		e[4] = typ
		copy(e[5:8], []byte{0xfe, 0xff, 0xff})
		binary.LittleEndian.PutUint32(e[8:], uint32(first))
		binary.LittleEndian.PutUint32(e[12:], uint32(count))
	}
	boot := d.Partition(PartBoot)
	entry(0, 0x80, boot.MBRType, boot.FirstLBA, boot.LastLBA-boot.FirstLBA+1)
	entry(1, 0x00, 0xee, 1, boot.FirstLBA-1)
	b[510], b[511] = 0x55, 0xaa
	return b
}

// ReadTable parses and checks the MBR and primary GPT of a disk: header and
// entry CRCs, bounds, and that partitions lie inside the usable area in
// ascending order without overlap.
func ReadTable(r io.ReaderAt) (*Disk, error) {
	buf := make([]byte, 34*SectorSize)
	if _, err := r.ReadAt(buf, 0); err != nil {
		return nil, fmt.Errorf("%w: reading: %v", ErrNoGPT, err)
	}
	mbr, h, ents := buf[:SectorSize], buf[SectorSize:2*SectorSize], buf[2*SectorSize:]
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		return nil, fmt.Errorf("%w: MBR signature missing", ErrNoGPT)
	}
	if string(h[:8]) != "EFI PART" || binary.LittleEndian.Uint32(h[12:]) != gptHeaderSize {
		return nil, fmt.Errorf("%w: header signature or size", ErrNoGPT)
	}
	want := binary.LittleEndian.Uint32(h[16:])
	hc := append([]byte(nil), h[:gptHeaderSize]...)
	binary.LittleEndian.PutUint32(hc[16:], 0)
	if crc32.ChecksumIEEE(hc) != want {
		return nil, fmt.Errorf("%w: header CRC mismatch", ErrNoGPT)
	}
	if binary.LittleEndian.Uint64(h[72:]) != 2 || binary.LittleEndian.Uint32(h[80:]) != gptEntries || binary.LittleEndian.Uint32(h[84:]) != gptEntrySize {
		return nil, fmt.Errorf("%w: unsupported entry array (want 128 entries of 128 bytes at LBA 2)", ErrNoGPT)
	}
	if crc32.ChecksumIEEE(ents) != binary.LittleEndian.Uint32(h[88:]) {
		return nil, fmt.Errorf("%w: partition entries CRC mismatch", ErrNoGPT)
	}
	backup := int64(binary.LittleEndian.Uint64(h[32:]))
	firstUsable := int64(binary.LittleEndian.Uint64(h[40:]))
	lastUsable := int64(binary.LittleEndian.Uint64(h[48:]))
	if backup <= 34 || backup > 1<<40 || firstUsable < 34 || lastUsable >= backup || lastUsable < firstUsable {
		return nil, fmt.Errorf("%w: usable area %d-%d, backup at %d", ErrNoGPT, firstUsable, lastUsable, backup)
	}
	d := &Disk{Size: (backup + 1) * SectorSize, Signature: binary.LittleEndian.Uint32(mbr[440:])}
	copy(d.ID[:], h[56:72])
	prevEnd := firstUsable - 1
	for i := range gptEntries {
		e := ents[i*gptEntrySize : (i+1)*gptEntrySize]
		var p Partition
		copy(p.Type[:], e[0:16])
		if p.Type == (GUID{}) {
			continue
		}
		copy(p.ID[:], e[16:32])
		p.Number = i + 1
		p.FirstLBA = int64(binary.LittleEndian.Uint64(e[32:]))
		p.LastLBA = int64(binary.LittleEndian.Uint64(e[40:]))
		if p.FirstLBA <= prevEnd || p.LastLBA < p.FirstLBA || p.LastLBA > lastUsable {
			return nil, fmt.Errorf("%w: partition %d (%d-%d) out of order, overlapping or outside %d-%d", ErrNoGPT, p.Number, p.FirstLBA, p.LastLBA, firstUsable, lastUsable)
		}
		prevEnd = p.LastLBA
		var name []uint16
		for j := 0; j < 36; j++ {
			c := binary.LittleEndian.Uint16(e[56+2*j:])
			if c == 0 {
				break
			}
			name = append(name, c)
		}
		p.Name = string(utf16.Decode(name))
		if p.Number == PartBoot {
			me := mbr[446:]
			if binary.LittleEndian.Uint32(me[8:]) == uint32(p.FirstLBA) {
				p.MBRType, p.MBRBootble = me[4], me[0] == 0x80
			}
		}
		d.Partitions = append(d.Partitions, p)
	}
	return d, nil
}

// CheckKazasu verifies that d has kazasu's four partitions, numbered 1-4.
func (d *Disk) CheckKazasu() error {
	if len(d.Partitions) != 4 {
		return fmt.Errorf("layout: %d partitions, want 4 (boot, root A, root B, perm)", len(d.Partitions))
	}
	for i, p := range d.Partitions {
		if p.Number != i+1 {
			return fmt.Errorf("layout: partition %d numbered %d", i+1, p.Number)
		}
	}
	if b := d.Partition(PartBoot); b.MBRType != 0x0c || !b.MBRBootble {
		return errors.New("layout: boot partition missing from the hybrid MBR; the Pi firmware would not find it")
	}
	return nil
}
