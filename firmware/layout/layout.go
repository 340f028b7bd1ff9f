// Package layout is the disk layout of a kazasu image, shared by the image
// builder, the update agent and the flasher: gokrazy's partition numbering
// (1 boot FAT32, 2 root A, 3 root B, 4 /perm ext4) in a GPT with a hybrid
// MBR (the Pi firmware reads only the MBR, whose first entry is the boot
// partition), the provisioning record in the gap before partition 1, and
// the padded kernel command lines the agent rewrites in place.
package layout

import (
	"crypto/sha256"
	"fmt"
)

// Sizes and positions, in 512-byte sectors unless named in bytes.
const (
	SectorSize = 512

	// ProvisionOffset is where the provisioning record lives (1 MiB), in
	// the gap between the GPT and partition 1.
	ProvisionOffset = 1 << 20
	// ProvisionMax is the room for it (up to partition 1 at 4 MiB, minus
	// a safety margin).
	ProvisionMax = 2 << 20

	BootStart = 8192 // 4 MiB
	BootBytes = 128 << 20
	RootBytes = 256 << 20

	// MinDiskBytes leaves at least 64 MiB for /perm.
	MinDiskBytes = BootStart*SectorSize + BootBytes + 2*RootBytes + 64<<20 + 34*SectorSize
	// DefaultDiskBytes is the image size fwbuild makes unless told.
	DefaultDiskBytes = 1 << 30
)

// Partition numbers, as gokrazy's runtime requires them.
const (
	PartBoot  = 1
	PartRootA = 2
	PartRootB = 3
	PartPerm  = 4
)

// Partition is one GPT entry.
type Partition struct {
	Number     int
	Name       string
	Type       GUID
	ID         GUID
	FirstLBA   int64
	LastLBA    int64 // inclusive
	MBRType    byte  // non-zero: also in the hybrid MBR
	MBRBootble bool
}

// Offset is the first byte.
func (p Partition) Offset() int64 { return p.FirstLBA * SectorSize }

// Size in bytes.
func (p Partition) Size() int64 { return (p.LastLBA - p.FirstLBA + 1) * SectorSize }

// Disk is a complete partitioning.
type Disk struct {
	Size       int64
	ID         GUID
	Signature  uint32 // MBR disk signature
	Partitions []Partition
}

// Well-known partition type GUIDs.
var (
	TypeBasicData = MustParseGUID("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7")
	TypeLinuxFS   = MustParseGUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4")
)

// DeriveGUID makes a stable version-4-shaped GUID from a seed, so images
// are reproducible and every image of a board has the same PARTUUIDs.
func DeriveGUID(seed string) GUID {
	s := sha256.Sum256([]byte("kazasu guid\x00" + seed))
	var g GUID
	copy(g[:], s[:16])
	g[7] = g[7]&0x0f | 0x40 // version 4 (byte 7 is the high byte of the LE time_hi field)
	g[8] = g[8]&0x3f | 0x80 // RFC 4122 variant
	return g
}

// New returns the layout of a disk of size bytes; seed (the board id)
// determines the GUIDs.
func New(size int64, seed string) (*Disk, error) {
	size &^= SectorSize - 1
	if size < MinDiskBytes {
		return nil, fmt.Errorf("layout: disk of %d bytes is smaller than the minimum %d", size, int64(MinDiskBytes))
	}
	lastUsable := size/SectorSize - 34
	d := &Disk{Size: size, ID: DeriveGUID(seed + "/disk")}
	g := DeriveGUID(seed + "/signature")
	d.Signature = uint32(g[0]) | uint32(g[1])<<8 | uint32(g[2])<<16 | uint32(g[3])<<24
	next := int64(BootStart)
	add := func(n int, name string, typ GUID, sectors int64, mbr byte) {
		p := Partition{Number: n, Name: name, Type: typ, ID: DeriveGUID(fmt.Sprintf("%s/p%d", seed, n)), FirstLBA: next, MBRType: mbr, MBRBootble: mbr != 0}
		if sectors <= 0 {
			p.LastLBA = lastUsable
		} else {
			p.LastLBA = next + sectors - 1
		}
		next = p.LastLBA + 1
		d.Partitions = append(d.Partitions, p)
	}
	add(PartBoot, "boot", TypeBasicData, BootBytes/SectorSize, 0x0c)
	add(PartRootA, "root-a", TypeLinuxFS, RootBytes/SectorSize, 0)
	add(PartRootB, "root-b", TypeLinuxFS, RootBytes/SectorSize, 0)
	add(PartPerm, "perm", TypeLinuxFS, 0, 0)
	return d, nil
}

// Partition returns partition n (1-based).
func (d *Disk) Partition(n int) Partition { return d.Partitions[n-1] }
