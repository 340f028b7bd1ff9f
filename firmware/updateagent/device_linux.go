package updateagent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"kazasu/firmware/layout"
	"kazasu/firmware/slot"
)

// Device is the Platform of a real board (or of the qemu test VM, whose
// "firmware" is the test harness): the disk found through the boot
// partition's PARTUUID on the kernel command line.
type Device struct {
	Disk    string      // /dev/mmcblk0, /dev/vda
	BootID  layout.GUID // PARTUUID of partition 1
	Running slot.Slot
	// VM: the tryboot flag is a sector on FlagDevice that the harness
	// reads and clears, and a tryboot boot carries kazasu.tryboot=1.
	VM         bool
	FlagDevice string
	cmdline    string
	armed      bool
}

// The VM flag disk: the harness writes FlagPrefix+"0" (not armed), the
// agent's ArmTryboot writes FlagMagic; the harness clears it at boot.
const (
	FlagPrefix = "KAZASU-TRYBOOT-"
	FlagMagic  = FlagPrefix + "1"
)

var bootRE = regexp.MustCompile(`(?:^| )root=PARTUUID=([0-9a-fA-F-]{36})/PARTNROFF=[12](?: |$)`)

// OpenDevice finds the boot disk from /proc/cmdline.
func OpenDevice() (*Device, error) {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return nil, fmt.Errorf("updateagent: %w", err)
	}
	cmdline := strings.TrimSpace(string(b))
	m := bootRE.FindStringSubmatch(cmdline)
	if m == nil {
		return nil, fmt.Errorf("updateagent: kernel command line %q has no root=PARTUUID=…/PARTNROFF=; not a kazasu image", cmdline)
	}
	boot, err := layout.ParseGUID(strings.ToUpper(m[1]))
	if err != nil {
		return nil, err
	}
	running, err := layout.CmdlineSlot([]byte(cmdline), boot)
	if err != nil {
		return nil, err
	}
	d := &Device{BootID: boot, Running: slot.Slot(running), cmdline: cmdline}
	ents, err := os.ReadDir("/sys/block")
	if err != nil {
		return nil, fmt.Errorf("updateagent: %w", err)
	}
	for _, e := range ents {
		dev := "/dev/" + e.Name()
		f, err := os.Open(dev)
		if err != nil {
			continue
		}
		t, err := layout.ReadTable(f)
		f.Close()
		if err != nil || t.CheckKazasu() != nil || t.Partition(layout.PartBoot).ID != boot {
			continue
		}
		d.Disk = dev
		break
	}
	if d.Disk == "" {
		return nil, fmt.Errorf("updateagent: no disk has boot partition %s", boot)
	}
	if strings.Contains(" "+cmdline+" ", " kazasu.bootctl=vm ") {
		d.VM = true
		// The harness's flag disk starts with "KAZASU-TRYBOOT-".
		for _, e := range ents {
			dev := "/dev/" + e.Name()
			if dev == d.Disk {
				continue
			}
			f, err := os.Open(dev)
			if err != nil {
				continue
			}
			b := make([]byte, len(FlagPrefix))
			_, err = f.ReadAt(b, 0)
			f.Close()
			if err == nil && string(b) == FlagPrefix {
				d.FlagDevice = dev
				break
			}
		}
		if d.FlagDevice == "" {
			return nil, errors.New("updateagent: VM image without a tryboot flag disk (a disk starting with " + FlagPrefix + ")")
		}
	}
	return d, nil
}

// Part is the device node of partition n.
func (d *Device) Part(n int) string {
	if c := d.Disk[len(d.Disk)-1]; c >= '0' && c <= '9' {
		return fmt.Sprintf("%sp%d", d.Disk, n)
	}
	return fmt.Sprintf("%s%d", d.Disk, n)
}

// Observe implements Platform.
func (d *Device) Observe() (running, cmdline slot.Slot, tryboot bool, err error) {
	sec, err := d.readCmdline(false)
	if err != nil {
		return 0, 0, false, err
	}
	c, err := layout.CmdlineSlot(sec, d.BootID)
	if err != nil {
		return 0, 0, false, fmt.Errorf("updateagent: cmdline.txt: %w", err)
	}
	if d.VM {
		tryboot = strings.Contains(" "+d.cmdline+" ", " kazasu.tryboot=1 ")
	} else {
		b, err := os.ReadFile("/proc/device-tree/chosen/bootloader/tryboot")
		tryboot = err == nil && len(b) == 4 && binary.BigEndian.Uint32(b) == 1
	}
	return d.Running, slot.Slot(c), tryboot, nil
}

func (d *Device) readCmdline(try bool) ([]byte, error) {
	f, err := os.Open(d.Part(layout.PartBoot))
	if err != nil {
		return nil, fmt.Errorf("updateagent: %w", err)
	}
	defer f.Close()
	off := int64(layout.CmdlineOffset)
	if try {
		off = layout.TryCmdlineOffset
	}
	sec := make([]byte, layout.CmdlineSize)
	if _, err := f.ReadAt(sec, off); err != nil {
		return nil, fmt.Errorf("updateagent: reading the command line at %d: %w", off, err)
	}
	return sec, nil
}

// WriteCmdline implements Platform: one aligned sector, synced.
func (d *Device) WriteCmdline(try bool, s slot.Slot) error {
	sec, err := d.readCmdline(try)
	if err != nil {
		return err
	}
	out, err := layout.SetCmdlineSlot(sec, d.BootID, int(s))
	if err != nil {
		return err
	}
	if bytes.Equal(out, sec) {
		return nil
	}
	f, err := os.OpenFile(d.Part(layout.PartBoot), os.O_RDWR|unix.O_DSYNC, 0)
	if err != nil {
		return fmt.Errorf("updateagent: %w", err)
	}
	defer f.Close()
	off := int64(layout.CmdlineOffset)
	if try {
		off = layout.TryCmdlineOffset
	}
	if _, err := f.WriteAt(out, off); err != nil {
		return fmt.Errorf("updateagent: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("updateagent: %w", err)
	}
	return f.Close()
}

// OpenSlot implements Platform.
func (d *Device) OpenSlot(s slot.Slot) (SlotDevice, error) {
	if s == d.Running {
		return nil, fmt.Errorf("updateagent: refusing to write the running slot %s", s)
	}
	f, err := os.OpenFile(d.Part(int(s)), os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("updateagent: %w", err)
	}
	var size uint64
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size))); errno != 0 {
		err = errno
		f.Close()
		return nil, fmt.Errorf("updateagent: BLKGETSIZE64 %s: %w", f.Name(), err)
	}
	return &blockDev{File: f, size: int64(size)}, nil
}

type blockDev struct {
	*os.File
	size int64
}

func (b *blockDev) Size() int64 { return b.size }
func (b *blockDev) DropCache() error {
	return unix.Fadvise(int(b.Fd()), 0, 0, unix.FADV_DONTNEED)
}

// ArmTryboot implements Platform.
func (d *Device) ArmTryboot() error {
	if d.VM {
		f, err := os.OpenFile(d.FlagDevice, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("updateagent: %w", err)
		}
		defer f.Close()
		sec := make([]byte, layout.SectorSize)
		copy(sec, FlagMagic)
		if _, err := f.WriteAt(sec, 0); err != nil {
			return fmt.Errorf("updateagent: %w", err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("updateagent: %w", err)
		}
		d.armed = true
		return f.Close()
	}
	if err := setTrybootMailbox(); err != nil {
		return err
	}
	d.armed = true
	return nil
}

// setTrybootMailbox sets the firmware's tryboot flag through the VideoCore
// property mailbox (/dev/vcio, tag 0x00038064, value 1), as
// `vcmailbox 0x00038064 4 0 1` does.
func setTrybootMailbox() error {
	f, err := os.OpenFile("/dev/vcio", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("updateagent: tryboot: %w", err)
	}
	defer f.Close()
	buf := [7]uint32{7 * 4, 0, 0x00038064, 4, 0, 1, 0}
	// IOCTL_MBOX_PROPERTY = _IOWR(100, 0, char *)
	req := uintptr(3)<<30 | unsafe.Sizeof(uintptr(0))<<16 | 100<<8
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), req, uintptr(unsafe.Pointer(&buf[0]))); errno != 0 {
		return fmt.Errorf("updateagent: tryboot mailbox: %w", errno)
	}
	if buf[1] != 0x80000000 {
		return fmt.Errorf("updateagent: tryboot mailbox answered %#x", buf[1])
	}
	return nil
}

// Reboot implements Platform: sync, then reset through the firmware.
func (d *Device) Reboot(reason string) error {
	unix.Sync()
	if d.armed && !d.VM {
		// reboot(2) RESTART2 "0 tryboot": the downstream Pi kernel hands
		// the argument to the firmware, which sets the flag (again).
		arg, err := unix.BytePtrFromString("0 tryboot")
		if err != nil {
			return err
		}
		_, _, errno := unix.Syscall6(unix.SYS_REBOOT, unix.LINUX_REBOOT_MAGIC1, unix.LINUX_REBOOT_MAGIC2,
			unix.LINUX_REBOOT_CMD_RESTART2, uintptr(unsafe.Pointer(arg)), 0, 0)
		return fmt.Errorf("updateagent: reboot: %w", errno)
	}
	return unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
}

// ProvisionTo copies the disk's provisioning record to path if path does
// not exist yet (first boot). It returns false if there was none.
func (d *Device) ProvisionTo(path string) (bool, error) {
	if _, err := os.Stat(path); err == nil {
		return true, nil
	}
	f, err := os.Open(d.Disk)
	if err != nil {
		return false, fmt.Errorf("updateagent: %w", err)
	}
	defer f.Close()
	p, err := layout.ReadProvision(f)
	if errors.Is(err, layout.ErrNoProvision) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	b, err := provisionJSON(p)
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("updateagent: %w", err)
	}
	return true, writeFileAtomic(path, b, 0o600)
}
