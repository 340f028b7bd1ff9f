package flash

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrRefused marks a target the flasher will not write, with the reason in
// the wrapping error.
var ErrRefused = errors.New("refused")

// Device describes a block device (a whole disk).
type Device struct {
	Path      string // /dev/sdb
	Name      string // sdb
	Size      int64  // bytes
	Model     string // vendor + model from sysfs, may be empty
	Removable bool
	ReadOnly  bool
	// Mounts lists mount points of the disk or any of its partitions.
	Mounts []string
	// System is true when the disk holds the running system (/, /boot,
	// /boot/firmware, /usr, /var or active swap).
	System bool
	// Dev is "major:minor" of the whole disk.
	Dev string
	// Partitions lists "major:minor" of its partitions.
	Partitions []string
}

func (d *Device) String() string {
	var flags []string
	if d.Removable {
		flags = append(flags, "removable")
	}
	if d.System {
		flags = append(flags, "SYSTEM")
	}
	if len(d.Mounts) > 0 {
		flags = append(flags, "mounted on "+strings.Join(d.Mounts, ","))
	}
	if d.ReadOnly {
		flags = append(flags, "read-only")
	}
	model := d.Model
	if model == "" {
		model = "(no model)"
	}
	return fmt.Sprintf("%-12s %9s  %-28s %s", d.Path, HumanBytes(d.Size), model, strings.Join(flags, ", "))
}

// Sys locates the kernel interfaces, so tests can point it at a fake tree.
type Sys struct {
	SysBlock  string // /sys/block
	MountInfo string // /proc/self/mountinfo
	Swaps     string // /proc/swaps
	Dev       string // /dev
}

// HostSys is the running system.
var HostSys = Sys{SysBlock: "/sys/block", MountInfo: "/proc/self/mountinfo", Swaps: "/proc/swaps", Dev: "/dev"}

// systemMounts are mount points whose disk is the running system.
var systemMounts = map[string]bool{"/": true, "/boot": true, "/boot/firmware": true, "/usr": true, "/var": true, "/perm": true}

// ListDevices lists whole disks (not loop, ram or zram devices without a
// backing size), sorted by name.
func (s Sys) ListDevices() ([]*Device, error) {
	ents, err := os.ReadDir(s.SysBlock)
	if err != nil {
		return nil, fmt.Errorf("flash: list devices: %w", err)
	}
	mounts, err := s.mountsByDev()
	if err != nil {
		return nil, err
	}
	swaps := s.swapDevs()
	var out []*Device
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, "ram") || strings.HasPrefix(name, "zram") || strings.HasPrefix(name, "dm-") {
			continue
		}
		d, err := s.device(name, mounts, swaps)
		if err != nil || d.Size == 0 {
			continue
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Inspect describes the whole disk at path (e.g. /dev/sdb). A partition
// path is refused: images are written to whole disks.
func (s Sys) Inspect(path string) (*Device, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, fmt.Errorf("flash: %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(real, &st); err != nil {
		return nil, fmt.Errorf("flash: %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return nil, fmt.Errorf("flash: %s is not a block device", path)
	}
	dev := fmt.Sprintf("%d:%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
	ents, err := os.ReadDir(s.SysBlock)
	if err != nil {
		return nil, fmt.Errorf("flash: %w", err)
	}
	mounts, err := s.mountsByDev()
	if err != nil {
		return nil, err
	}
	swaps := s.swapDevs()
	for _, e := range ents {
		d, err := s.device(e.Name(), mounts, swaps)
		if err != nil {
			continue
		}
		if d.Dev == dev {
			d.Path = path
			return d, nil
		}
		for _, p := range d.Partitions {
			if p == dev {
				return nil, fmt.Errorf("flash: %s is a partition of %s: %w: give the whole disk", path, d.Path, ErrRefused)
			}
		}
	}
	return nil, fmt.Errorf("flash: %s (%s) is not a disk listed in %s", path, dev, s.SysBlock)
}

func (s Sys) device(name string, mounts map[string][]string, swaps map[string]bool) (*Device, error) {
	base := filepath.Join(s.SysBlock, name)
	d := &Device{Name: name, Path: filepath.Join(s.Dev, name)}
	d.Dev = readTrim(filepath.Join(base, "dev"))
	if d.Dev == "" {
		return nil, fmt.Errorf("no dev")
	}
	sectors, _ := strconv.ParseInt(readTrim(filepath.Join(base, "size")), 10, 64)
	d.Size = sectors * 512 // sysfs size is always in 512-byte units
	d.Removable = readTrim(filepath.Join(base, "removable")) == "1"
	d.ReadOnly = readTrim(filepath.Join(base, "ro")) == "1"
	d.Model = strings.TrimSpace(readTrim(filepath.Join(base, "device", "vendor")) + " " + readTrim(filepath.Join(base, "device", "model")))
	devs := []string{d.Dev}
	if ents, err := os.ReadDir(base); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), name) {
				if p := readTrim(filepath.Join(base, e.Name(), "dev")); p != "" {
					d.Partitions = append(d.Partitions, p)
					devs = append(devs, p)
				}
			}
		}
	}
	for _, dv := range devs {
		for _, mp := range mounts[dv] {
			d.Mounts = append(d.Mounts, mp)
			if systemMounts[mp] {
				d.System = true
			}
		}
		if swaps[dv] {
			d.System = true
			d.Mounts = append(d.Mounts, "[swap]")
		}
	}
	return d, nil
}

// mountsByDev maps "major:minor" to mount points from mountinfo.
func (s Sys) mountsByDev() (map[string][]string, error) {
	f, err := os.Open(s.MountInfo)
	if err != nil {
		return nil, fmt.Errorf("flash: read mounts: %w", err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint ...
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		out[f[2]] = append(out[f[2]], unescapeMount(f[4]))
	}
	return out, sc.Err()
}

// swapDevs returns the "major:minor" of active swap devices.
func (s Sys) swapDevs() map[string]bool {
	out := map[string]bool{}
	b, err := os.ReadFile(s.Swaps)
	if err != nil {
		return out
	}
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) == 0 || !strings.HasPrefix(f[0], "/") {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(f[0], &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK {
			out[fmt.Sprintf("%d:%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))] = true
		}
	}
	return out
}

func unescapeMount(s string) string {
	// mountinfo escapes space, tab, newline and backslash as \ooo.
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func readTrim(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// CheckOptions relax the target checks.
type CheckOptions struct {
	// AllowFixed allows non-removable disks (eMMC through rpiboot shows up
	// as removable; loop devices in tests do not).
	AllowFixed bool
}

// Check refuses targets that must not be written: mounted, system, read-only,
// too small, or (without AllowFixed) not removable. The error wraps
// ErrRefused and says why.
func (d *Device) Check(imageSize int64, o CheckOptions) error {
	switch {
	case d.System:
		return fmt.Errorf("flash: %s holds the running system: %w", d.Path, ErrRefused)
	case len(d.Mounts) > 0:
		return fmt.Errorf("flash: %s is mounted (%s); unmount it first: %w", d.Path, strings.Join(d.Mounts, ", "), ErrRefused)
	case d.ReadOnly:
		return fmt.Errorf("flash: %s is read-only (lock switch?): %w", d.Path, ErrRefused)
	case d.Size < imageSize:
		return fmt.Errorf("flash: %s is too small: %s, the image needs %s: %w", d.Path, HumanBytes(d.Size), HumanBytes(imageSize), ErrRefused)
	case !d.Removable && !o.AllowFixed:
		return fmt.Errorf("flash: %s is not a removable disk (use --allow-fixed for eMMC or loop devices): %w", d.Path, ErrRefused)
	}
	return nil
}

// HumanBytes formats n with binary units (e.g. "1.9 GiB").
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
