package layout

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// CmdlineSize is the exact size of cmdline.txt and cmdline-try.txt: one
// sector, padded with spaces and without a newline, so the agent rewrites
// it with a single aligned sector write and the FAT never changes.
const CmdlineSize = SectorSize

// The two command-line files on the boot partition. config.txt names the
// first, tryboot.txt the second.
const (
	CmdlineFile    = "cmdline.txt"
	TryCmdlineFile = "cmdline-try.txt"
)

// The boot-partition byte offsets of cmdline.txt and cmdline-try.txt. The
// builder writes the two files first into a fresh FAT32 of BootBytes with
// 512-byte clusters, so they occupy the first data sectors, and checks
// that they landed here; the agent checks a sector's content before it
// rewrites it (SetCmdlineSlot).
const (
	CmdlineOffset    = 2082304
	TryCmdlineOffset = 2082816
)

// RootArg is the root= argument selecting slot (2 or 3) relative to the
// boot partition, the form gokrazy's rootdev understands.
func RootArg(boot GUID, slot int) string {
	return fmt.Sprintf("root=PARTUUID=%s/PARTNROFF=%d", strings.ToLower(boot.String()), slot-PartBoot)
}

// FormatCmdline builds a padded command line for slot. args come first
// (console=...), then root=, init and the panic settings, then extra.
func FormatCmdline(boot GUID, slot int, args, extra []string) ([]byte, error) {
	if slot != PartRootA && slot != PartRootB {
		return nil, fmt.Errorf("layout: slot %d is not a root partition", slot)
	}
	all := append(append(append([]string(nil), args...), RootArg(boot, slot), "init=/gokrazy/init", "rootwait", "panic=10", "oops=panic"), extra...)
	line := strings.Join(all, " ")
	if len(line) > CmdlineSize || !printable([]byte(line)) {
		return nil, fmt.Errorf("layout: command line of %d bytes does not fit in %d or is not printable ASCII", len(line), CmdlineSize)
	}
	return []byte(line + strings.Repeat(" ", CmdlineSize-len(line))), nil
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < ' ' || c > '~' {
			return false
		}
	}
	return true
}

var partnroffRE = regexp.MustCompile(`(?:^| )root=PARTUUID=([0-9a-fA-F-]{36})/PARTNROFF=([0-9]+)(?: |$)`)

// CmdlineSlot parses a command line (a cmdline.txt sector or /proc/cmdline)
// and returns the root slot it selects; boot, if non-zero, must match.
func CmdlineSlot(b []byte, boot GUID) (int, error) {
	s := strings.TrimRight(string(b), " \n\x00")
	if len(b) > 4096 || !printable([]byte(s)) {
		return 0, fmt.Errorf("layout: command line is not printable ASCII of at most 4096 bytes")
	}
	m := partnroffRE.FindAllStringSubmatch(s, -1)
	if len(m) != 1 {
		return 0, fmt.Errorf("layout: command line has %d root=PARTUUID=…/PARTNROFF= arguments, want 1", len(m))
	}
	if boot != (GUID{}) && !strings.EqualFold(m[0][1], boot.String()) {
		return 0, fmt.Errorf("layout: command line roots at PARTUUID %s, this disk's boot partition is %s", m[0][1], boot)
	}
	switch m[0][2] {
	case "1":
		return PartRootA, nil
	case "2":
		return PartRootB, nil
	}
	return 0, fmt.Errorf("layout: PARTNROFF=%s is not a root slot", m[0][2])
}

// SetCmdlineSlot returns a copy of the padded sector with root= pointing at
// slot. It refuses a sector that is not a valid kazasu command line.
func SetCmdlineSlot(sector []byte, boot GUID, slot int) ([]byte, error) {
	if len(sector) != CmdlineSize {
		return nil, fmt.Errorf("layout: command line sector is %d bytes, want %d", len(sector), CmdlineSize)
	}
	if !printable(sector) {
		return nil, fmt.Errorf("layout: command line sector holds non-printable bytes; refusing to edit it")
	}
	if _, err := CmdlineSlot(sector, boot); err != nil {
		return nil, err
	}
	if slot != PartRootA && slot != PartRootB {
		return nil, fmt.Errorf("layout: slot %d is not a root partition", slot)
	}
	old := []byte("/PARTNROFF=")
	i := bytes.Index(sector, old) + len(old)
	out := bytes.Clone(sector)
	out[i] = byte('0' + slot - PartBoot)
	return out, nil
}
