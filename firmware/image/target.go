// Package image builds kazasu firmware: a complete, bootable, bit-for-bit
// reproducible Raspberry Pi disk image in gokrazy's layout (boot FAT32 with
// kernel, DTB and VideoCore firmware from pinned Go modules; root A as
// squashfs; an empty root B; an ext4 /perm), plus a signed-later update
// bundle (the root) and flash bundle (the image's used ranges).
//
// gokrazy is used as a library (the init runtime, dhcp, ntp) and as a blob
// source (kernel.rpi, kernel.arm64, firmware), pinned in go.mod; gok is not
// used. External tools: the Go toolchain, mksquashfs (squashfs-tools) and
// mke2fs (e2fsprogs), both called with fixed timestamps and UUIDs.
package image

import (
	"fmt"

	"kazasu/boards"
)

// Pinned blob and runtime modules; versions come from go.mod.
const (
	ModRuntime     = "github.com/gokrazy/gokrazy"
	ModKernelRPi   = "github.com/gokrazy/kernel.rpi"
	ModKernelARM64 = "github.com/gokrazy/kernel.arm64"
	ModFirmware    = "github.com/gokrazy/firmware"
)

// VMTarget is the board id of the qemu image: the same root file system,
// with the generic arm64 kernel, booted by the test harness that plays the
// Pi firmware.
const VMTarget = "qemu"

// Target is what an image is built for.
type Target struct {
	ID      string          // board id: a boards profile id, or VMTarget
	Profile *boards.Profile // nil for VMTarget
	Wiring  *boards.Wiring  // the PN532 wiring; nil for VMTarget
	Kernel  string          // kernel module path
}

// NewTarget resolves a board id and bus ("" = the board's default wiring).
func NewTarget(id string, bus string) (*Target, error) {
	if id == VMTarget {
		if bus != "" {
			return nil, fmt.Errorf("image: the %s target has no reader wiring", VMTarget)
		}
		return &Target{ID: id, Kernel: ModKernelARM64}, nil
	}
	p, err := boards.ByID(id)
	if err != nil {
		return nil, fmt.Errorf("image: %w (or %s for the qemu image)", err, VMTarget)
	}
	w := p.Default()
	if bus != "" {
		b, err := boards.ParseBus(bus)
		if err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
		if w, err = p.Wiring(b); err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
	}
	return &Target{ID: id, Profile: p, Wiring: w, Kernel: ModKernelRPi}, nil
}

// consoleArgs are the kernel console arguments: none on the header UART
// when the PN532 owns it.
func (t *Target) consoleArgs() []string {
	switch {
	case t.Profile == nil:
		return []string{"console=ttyAMA0,115200"}
	case t.Wiring.SerialConsoleOff:
		return []string{"console=tty1"}
	case t.Profile == boards.Pi5:
		return []string{"console=ttyAMA10,115200", "console=tty1"}
	}
	return []string{"console=serial0,115200", "console=tty1"}
}

// extraArgs follow root= and the panic settings.
func (t *Target) extraArgs() []string {
	if t.Profile == nil {
		return []string{"kazasu.bootctl=vm"}
	}
	return nil
}

// configTxt is config.txt (cmdline = cmdline.txt) or tryboot.txt
// (cmdline = cmdline-try.txt).
func (t *Target) configTxt(header, cmdline string) string {
	s := "# " + header + "\n" +
		"# tryboot.txt is identical except that it names cmdline-try.txt.\n" +
		"arm_64bit=1\n" +
		"kernel=vmlinuz\n" +
		"cmdline=" + cmdline + "\n" +
		"disable_splash=1\n"
	if t.Profile == nil {
		return s
	}
	if t.Profile != boards.Pi5 && !t.Wiring.SerialConsoleOff {
		s += "enable_uart=1\n"
	}
	s += "# PN532 on " + t.Wiring.Bus.String() + " (" + t.Wiring.ReaderURI() + ")\n" + t.Wiring.ConfigFragment()
	return s
}

// firmwareFiles are the VideoCore files from github.com/gokrazy/firmware.
func (t *Target) firmwareFiles() []string {
	if t.Profile == nil {
		return nil
	}
	return t.Profile.Firmware.BootFiles()
}

// dtbs are the device trees copied from the kernel module.
func (t *Target) dtbs() []string {
	if t.Profile == nil {
		return nil
	}
	return append([]string{t.Profile.DTB}, t.Profile.AltDTBs...)
}

// overlays are the dtoverlay= names the wiring needs.
func (t *Target) overlays() []string {
	if t.Profile == nil {
		return nil
	}
	var out []string
	for _, l := range t.Wiring.ConfigTxt {
		if len(l) > len("dtoverlay=") && l[:len("dtoverlay=")] == "dtoverlay=" {
			out = append(out, l[len("dtoverlay="):])
		}
	}
	return out
}
