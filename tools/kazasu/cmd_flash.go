package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"

	"kazasu/firmware/bundle"
	"kazasu/firmware/layout"
	"kazasu/tools/flash"
)

const flashUsage = `usage: kazasu flash IMAGE|BUNDLE --device /dev/sdX|FILE [--device ...]
                    [--pub update.pub [--next-pub next.pub]] [--provision FILE]
                    [--yes] [--allow-fixed] [--allow-unsigned] [--json]

Writes a kazasu flash bundle (fwbuild's .flash.kzb, signed with fwsign; also
gzip-, xz- or zstd-compressed) or, for development, a raw disk image (.img, sparse,
or compressed: .img.gz, .img.xz, .img.zst) to SD cards, USB disks or image files, several at once:

  1. the bundle's signature is checked against --pub/--next-pub and every
     payload chunk against the signed manifest before any device is opened;
     raw images carry no signature and need --allow-unsigned;
  2. each --device is checked: a whole disk (not a partition), removable
     (--allow-fixed for eMMC through rpiboot or loop devices), not mounted,
     not holding the running system, not read-only, at least as large as
     the image; a FILE is created or extended to the image size;
  3. only the image's used ranges are written (zero blocks are skipped;
     compressed input is decompressed on the fly), the source is read once
     for all devices; then the stale headers a reused card may hold where
     the image is zero (first and last MiB of every partition, the gap
     before partition 1, the /perm ext4 journal, which fwbuild's mke2fs
     leaves unzeroed, the last MiB of a larger disk) are zeroed, and
     --provision writes the terminal's
     provisioning record at 1 MiB (firmware/layout, one device only);
  4. fsync, then every range is read back bypassing the page cache
     (O_DIRECT) and its SHA-256 compared.

Without --device, lists the disks with size, model and whether they can be
written. Block devices need typed confirmation unless --yes.

Progress: a live line on a terminal, plain lines otherwise (each 10%).
One report line per device; --json prints the report as JSON on stdout.

Exit status: 0 all devices verified; 2 usage; 3 refused (signature,
device checks, confirmation: nothing was written); 4 write error;
5 read-back mismatch. With several devices, the most severe outcome wins
(5 > 4 > 3).`

func init() {
	register(&command{Name: "flash", Summary: "write a signed image bundle to SD cards with read-back verification", Usage: flashUsage, Run: runFlash})
}

// flashStringsFlag is a repeatable string flag.
type flashStringsFlag []string

func (s *flashStringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *flashStringsFlag) Set(v string) error { *s = append(*s, v); return nil }

// parseAnyOrder parses flags and positional arguments in any order.
func parseAnyOrder(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// flashIsTerminal reports whether w or r is a terminal.
func flashIsTerminal(f any) bool {
	file, ok := f.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(file.Fd()), unix.TCGETS)
	return err == nil
}

// flashHooks lets tests interpose on a run (a corrupting writer); nil in
// production.
var flashHooks struct {
	wrap func(target string) func(io.WriterAt) io.WriterAt
	sys  *flash.Sys
}

// flashDeviceReport is one device's line of the report.
type flashDeviceReport struct {
	Device   string `json:"device"`
	Kind     string `json:"kind"` // block, file
	OK       bool   `json:"ok"`
	ExitCode int    `json:"exit_code"`
	Error    string `json:"error,omitempty"`
	Written  int64  `json:"written_bytes"`
	Verified int64  `json:"verified_bytes"`
	WriteMS  int64  `json:"write_ms"`
	VerifyMS int64  `json:"verify_ms"`
}

type flashReport struct {
	Image     string   `json:"image"`
	Format    string   `json:"format"` // bundle or raw, +gzip, +xz or +zstd when compressed
	Signed    bool     `json:"signed"`
	KeyID     string   `json:"key_id,omitempty"`
	Version   string   `json:"version,omitempty"`
	Build     uint64   `json:"build,omitempty"`
	Boards    []string `json:"boards,omitempty"`
	ImageSize int64    `json:"image_bytes"`
	Mapped    int64    `json:"mapped_bytes"`
	Wiped     int64    `json:"wiped_bytes"`
	// JournalWiped: the /perm ext4 journal (not zeroed by mke2fs
	// lazy_journal_init, unmapped in the image) was zeroed on the devices.
	JournalWiped bool                `json:"journal_wiped"`
	Provision    string              `json:"provisioned_terminal,omitempty"`
	Devices      []flashDeviceReport `json:"devices"`
	ExitCode     int                 `json:"exit_code"`
	ElapsedMS    int64               `json:"elapsed_ms"`
	refusalMsg   string
}

// flashInput is an opened image: its size, first bytes, and a source.
type flashInput struct {
	format string
	size   int64
	head   []byte // the first headBytes of the image (zeros where unmapped)
	src    flash.Source
	signed bool
	keyID  string
	man    *bundle.Manifest
	close  func()
}

const headBytes = layout.BootStart * layout.SectorSize // 4 MiB: tables and the provisioning gap

func runFlash(ctx context.Context, env *Env) error {
	fs := flag.NewFlagSet("flash", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var devices flashStringsFlag
	fs.Var(&devices, "device", "")
	pub := fs.String("pub", "", "")
	nextPub := fs.String("next-pub", "", "")
	provPath := fs.String("provision", "", "")
	yes := fs.Bool("yes", false, "")
	allowFixed := fs.Bool("allow-fixed", false, "")
	allowUnsigned := fs.Bool("allow-unsigned", false, "")
	asJSON := fs.Bool("json", false, "")
	args, err := parseAnyOrder(fs, env.Args)
	if err != nil || len(args) > 1 {
		return errUsage
	}
	sys := flash.HostSys
	if flashHooks.sys != nil {
		sys = *flashHooks.sys
	}
	if len(devices) == 0 {
		return flashList(env, sys, args)
	}
	if len(args) != 1 {
		return errUsage
	}
	refuse := func(err error) error { return exitCode(flash.ExitRefused, err) }
	seen := map[string]bool{}
	imgInfo, _ := os.Stat(args[0])
	for _, d := range devices {
		abs, _ := filepath.Abs(d)
		if real, err := filepath.EvalSymlinks(d); err == nil {
			abs = real // /dev/disk/by-id/... and /dev/sdb are one disk
		}
		if seen[abs] {
			return refuse(fmt.Errorf("--device %s given twice (or under two names)", d))
		}
		seen[abs] = true
		if st, err := os.Stat(d); err == nil && imgInfo != nil && os.SameFile(st, imgInfo) {
			return refuse(fmt.Errorf("--device %s is the image itself", d))
		}
	}
	if *provPath != "" && len(devices) > 1 {
		return refuse(errors.New("--provision writes one terminal's identity: flash one device at a time with it"))
	}

	// 1. The image and its signature, before any device is touched.
	keys, err := flashKeys(*pub, *nextPub)
	if err != nil {
		return refuse(err)
	}
	in, err := openFlashInput(args[0], keys, *allowUnsigned)
	if err != nil {
		return refuse(err)
	}
	defer in.close()
	rep := &flashReport{Image: args[0], Format: in.format, Signed: in.signed, KeyID: in.keyID, ImageSize: in.size}
	if in.man != nil {
		rep.Version, rep.Build, rep.Boards = in.man.Version, in.man.Build, in.man.Boards
	}
	disk, tableErr := layout.ReadTable(bytes.NewReader(in.head))
	provArea := in.head[layout.ProvisionOffset : layout.ProvisionOffset+layout.ProvisionMax]
	var provRec []byte
	if *provPath != "" {
		if !allZeroBytes(provArea) {
			return refuse(errors.New("the image already carries a provisioning record (fwbuild -provision); provision a generic image"))
		}
		p, err := readProvisionFile(*provPath)
		if err != nil {
			return refuse(err)
		}
		if provRec, err = layout.EncodeProvision(p); err != nil {
			return refuse(err)
		}
		rep.Provision = p.TerminalID
	}

	// 2. The devices.
	targets := make([]flash.Target, len(devices))
	var blockDescs []string
	var refusals []string
	for i, d := range devices {
		t, desc, err := flashTarget(sys, d, in.size, *allowFixed)
		if err != nil {
			refusals = append(refusals, err.Error())
			continue
		}
		if flashHooks.wrap != nil {
			t.WrapWriter = flashHooks.wrap(d)
		}
		targets[i] = t
		if t.BlockDevice {
			blockDescs = append(blockDescs, desc)
		}
	}
	if len(refusals) > 0 {
		for _, r := range refusals {
			fmt.Fprintf(env.Stderr, "kazasu flash: %s\n", r)
		}
		return exitCode(flash.ExitRefused, fmt.Errorf("%d of %d devices refused; nothing was written", len(refusals), len(devices)))
	}
	if len(blockDescs) > 0 && !*yes {
		if err := flashConfirm(env, blockDescs); err != nil {
			return refuse(err)
		}
	}

	// 3.-4. Write, wipe, provision, sync, verify.
	desc := fmt.Sprintf("%s (%s", args[0], in.format)
	if in.man != nil {
		desc += fmt.Sprintf(", version %s build %d for %s", in.man.Version, in.man.Build, strings.Join(in.man.Boards, ","))
	}
	if in.signed {
		desc += ", signed by " + in.keyID
	} else {
		desc += ", UNSIGNED"
	}
	fmt.Fprintf(env.Stderr, "flashing %s, %s) to %s\n", desc, flash.HumanBytes(in.size), strings.Join(devices, ", "))
	if tableErr != nil {
		fmt.Fprintf(env.Stderr, "warning: the image has no kazasu partition table (%v): stale headers of a reused card are not wiped\n", tableErr)
	}
	prog := newFlashProgress(env.Stderr, flashIsTerminal(env.Stderr))
	start := time.Now()
	perm := newSuperblockCatcher(disk)
	m, results := flash.WriteMulti(ctx, in.src, targets, flash.MultiOptions{
		Progress: prog.update,
		Observe:  perm.observe,
		Patches: func(m *flash.Map) []flash.Patch {
			var keep []flash.Span
			if provRec != nil {
				keep = append(keep, flash.Span{Off: layout.ProvisionOffset, Len: int64(len(provRec))})
			}
			areas := wipeAreas(disk, in.size)
			journal, err := perm.journal(in.size)
			if err != nil {
				fmt.Fprintf(env.Stderr, "warning: %v: a stale journal on a reused card is not wiped\n", err)
			}
			ps := flash.ZeroPatches(areas, m, keep, "stale header wipe")
			ps = append(ps, flash.ZeroPatches(journal, m, keep, "/perm journal wipe")...)
			for _, p := range ps {
				rep.Wiped += p.Len
			}
			rep.JournalWiped = len(journal) > 0
			if provRec != nil {
				ps = append(ps, flash.Patch{Off: layout.ProvisionOffset, Data: provRec, What: "provisioning record"})
			}
			return ps
		},
	})
	prog.finish()
	rep.Mapped = m.Mapped()
	rep.ElapsedMS = time.Since(start).Milliseconds()
	for i, r := range results {
		dr := flashDeviceReport{Device: devices[i], Kind: "file", ExitCode: flash.ExitCodeFor(r.Err)}
		if targets[i].BlockDevice {
			dr.Kind = "block"
		}
		if r.Err != nil {
			dr.Error = r.Err.Error()
			if errors.Is(r.Err, context.Canceled) {
				dr.ExitCode = flash.ExitWrite
				dr.Error = "interrupted: " + dr.Error
			}
		} else {
			dr.OK = true
			dr.Written, dr.Verified = r.Result.Written, r.Result.Verified
			dr.WriteMS, dr.VerifyMS = r.Result.Write.Milliseconds(), r.Result.Verify.Milliseconds()
		}
		rep.ExitCode = max(rep.ExitCode, dr.ExitCode)
		rep.Devices = append(rep.Devices, dr)
	}
	printFlashReport(env, rep, *asJSON)
	if rep.ExitCode != 0 {
		failed := 0
		for _, d := range rep.Devices {
			if !d.OK {
				failed++
			}
		}
		return exitCode(rep.ExitCode, fmt.Errorf("%d of %d devices failed", failed, len(rep.Devices)))
	}
	return nil
}

func printFlashReport(env *Env, rep *flashReport, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		return
	}
	for _, d := range rep.Devices {
		if d.OK {
			secs := float64(d.WriteMS+d.VerifyMS) / 1000
			fmt.Fprintf(env.Stdout, "OK      %s: wrote %s (%s of image data, %s wiped%s), read back and verified %s in %.1f s\n",
				d.Device, flash.HumanBytes(d.Written), flash.HumanBytes(rep.Mapped), flash.HumanBytes(rep.Wiped), provNote(rep), flash.HumanBytes(d.Verified), secs)
			continue
		}
		what := map[int]string{flash.ExitRefused: "REFUSED", flash.ExitWrite: "WRITE", flash.ExitVerify: "VERIFY"}[d.ExitCode]
		fmt.Fprintf(env.Stdout, "FAILED  %s: %s error (exit %d): %s\n", d.Device, what, d.ExitCode, d.Error)
	}
}

func provNote(rep *flashReport) string {
	if rep.Provision == "" {
		return ""
	}
	return ", provisioned as " + rep.Provision
}

// wipeAreas are the ranges of a reused card that must read as the image
// does (zero) even though the image does not map them: the gap between
// the primary GPT and partition 1 (which holds the provisioning record),
// and the first and last MiB of every partition (file system and RAID
// superblocks, squashfs and FAT headers of the spare root and /perm).
func wipeAreas(d *layout.Disk, imageSize int64) []flash.Span {
	if d == nil {
		return nil
	}
	const mib = 1 << 20
	var out []flash.Span
	first := int64(-1)
	for _, p := range d.Partitions {
		off, size := p.Offset(), p.Size()
		if off >= imageSize {
			continue
		}
		size = min(size, imageSize-off)
		if first < 0 || off < first {
			first = off
		}
		out = append(out, flash.Span{Off: off, Len: min(mib, size)})
		if size > mib {
			out = append(out, flash.Span{Off: off + size - mib, Len: mib})
		}
	}
	if first > 34*layout.SectorSize {
		out = append(out, flash.Span{Off: 34 * layout.SectorSize, Len: first - 34*layout.SectorSize})
	}
	return out
}

func allZeroBytes(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func readProvisionFile(path string) (*layout.Provision, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("provisioning record: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p layout.Provision
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("provisioning record %s: %w", path, err)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("provisioning record %s: %w", path, err)
	}
	return &p, nil
}

func flashKeys(pub, next string) (*bundle.Keys, error) {
	if pub == "" {
		if next != "" {
			return nil, errors.New("--next-pub needs --pub")
		}
		return nil, nil
	}
	var k bundle.Keys
	for _, x := range []struct {
		path string
		dst  *[]byte
	}{{pub, (*[]byte)(&k.Current)}, {next, (*[]byte)(&k.Next)}} {
		if x.path == "" {
			continue
		}
		b, err := os.ReadFile(x.path)
		if err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		key, err := bundle.ParsePublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", x.path, err)
		}
		*x.dst = key
	}
	return &k, nil
}

// openFlashInput opens IMAGE|BUNDLE, telling the formats apart by their
// magic bytes, and checks the signature (and, for a bundle file, every
// chunk) before returning.
func openFlashInput(path string, keys *bundle.Keys, allowUnsigned bool) (*flashInput, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	in := &flashInput{close: func() { f.Close() }}
	ok := false
	defer func() {
		if !ok {
			in.close()
		}
	}()
	var magic [8]byte
	n, _ := f.ReadAt(magic[:], 0)
	switch {
	case n == 8 && string(magic[:]) == "KZBUNDL1":
		in.format = "bundle"
		var b *bundle.Bundle
		if keys != nil {
			b, err = bundle.Open(f, st.Size(), *keys)
		} else if allowUnsigned {
			b, err = bundle.OpenUnsigned(f, st.Size())
		} else {
			err = errors.New("no public key to check the bundle's signature: give --pub (or --allow-unsigned for development)")
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if err := flashManifestOK(b.Manifest()); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		// Every chunk against the signed manifest before any device is
		// touched: a corrupt download is refused, not half-written.
		if err := b.Verify(); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		in.signed, in.man = b.Signed(), b.Manifest()
		if in.signed {
			in.keyID = b.KeyID().String()
		}
		p := in.man.Payload(bundle.RoleDisk)
		if err := in.fromPayload(bufio.NewReaderSize(b.PayloadReader(p), headBytes+64<<10), p); err != nil {
			return nil, err
		}
	case compression(magic[:n]) != "":
		kind := compression(magic[:n])
		counted := &flashCountingReader{r: f}
		zr, closeZ, err := decompress(kind, bufio.NewReaderSize(counted, 1<<20))
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, kind, err)
		}
		in.close = func() { closeZ(); f.Close() }
		br := bufio.NewReaderSize(zr, headBytes+64<<10)
		progress := func() (int64, int64) { return counted.n.Load(), st.Size() }
		if m, _ := br.Peek(8); string(m) == "KZBUNDL1" {
			in.format = "bundle+" + kind
			var r *bundle.Reader
			switch {
			case keys != nil:
				r, err = bundle.Read(br, *keys)
			case allowUnsigned:
				err = errors.New("a compressed bundle is streamed and needs its signature checked: give --pub (or decompress it for --allow-unsigned)")
			default:
				err = errors.New("no public key to check the bundle's signature: give --pub")
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			if err := flashManifestOK(r.Manifest()); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			p, data, err := r.Next()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			if p.Role != bundle.RoleDisk {
				return nil, fmt.Errorf("%s: first payload is %s, want disk", path, p.Role)
			}
			in.signed, in.keyID, in.man = true, r.KeyID().String(), r.Manifest()
			if err := in.fromPayload(bufio.NewReaderSize(data, headBytes+64<<10), p); err != nil {
				return nil, err
			}
			in.src = &flashProgressOverride{Source: in.src, f: progress}
			break
		}
		in.format = "raw+" + kind
		if !allowUnsigned {
			return nil, fmt.Errorf("%s is a raw disk image, which carries no signature: flash the signed .flash.kzb bundle, or pass --allow-unsigned for development", path)
		}
		head, _ := br.Peek(headBytes)
		in.head = append(make([]byte, 0, headBytes), head...)
		in.head = in.head[:headBytes]
		d, err := layout.ReadTable(bytes.NewReader(in.head))
		if err != nil {
			return nil, fmt.Errorf("%s: cannot tell the size of a compressed image without its partition table: %w", path, err)
		}
		in.size = d.Size
		in.src = &flash.StreamSource{R: br, Size: d.Size, Counted: progress}
	default:
		in.format = "raw"
		if !allowUnsigned {
			return nil, fmt.Errorf("%s is a raw disk image, which carries no signature: flash the signed .flash.kzb bundle, or pass --allow-unsigned for development", path)
		}
		in.size = st.Size()
		in.head = make([]byte, headBytes)
		f.ReadAt(in.head, 0)
		src, err := flash.NewFileSource(f)
		if err != nil {
			return nil, err
		}
		in.src = src
	}
	ok = true
	return in, nil
}

// fromPayload takes the image size, head and source from a disk payload
// read through br (whose buffer holds at least headBytes).
func (in *flashInput) fromPayload(br *bufio.Reader, p *bundle.Payload) error {
	in.size = p.DiskSize
	in.head = make([]byte, headBytes)
	var spans []flash.Span
	var pos int64 // payload position of the current extent
	for _, e := range p.Extents {
		spans = append(spans, flash.Span{Off: e.Target, Len: e.Length})
		if e.Target < headBytes {
			n := min(e.Length, headBytes-e.Target)
			if pos+n <= int64(br.Size()) {
				b, err := br.Peek(int(pos + n))
				if err != nil {
					return fmt.Errorf("bundle payload: %w", err)
				}
				copy(in.head[e.Target:], b[pos:pos+n])
			}
		}
		pos += e.Length
	}
	in.src = flash.NewExtentSource(br, spans)
	return nil
}

// flashManifestOK refuses bundles that are not flash bundles or have
// expired (the laptop's clock is trusted for the expiry only).
func flashManifestOK(m *bundle.Manifest) error {
	if m.Kind != bundle.KindFlash {
		return fmt.Errorf("a %s bundle cannot be flashed (push it with kazasu push): %w", m.Kind, bundle.ErrWrongKind)
	}
	p := m.Payload(bundle.RoleDisk)
	if p == nil {
		return fmt.Errorf("flash bundle without a disk payload: %w", bundle.ErrMalformed)
	}
	if !time.Now().Before(m.Expires) {
		return fmt.Errorf("version %s build %d expired at %s: %w", m.Version, m.Build, m.Expires.UTC().Format(time.RFC3339), bundle.ErrExpired)
	}
	return nil
}

type flashCountingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *flashCountingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

type flashProgressOverride struct {
	flash.Source
	f func() (int64, int64)
}

func (p *flashProgressOverride) Progress() (int64, int64) { return p.f() }

// flashTarget classifies and checks one --device.
func flashTarget(sys flash.Sys, path string, imageSize int64, allowFixed bool) (flash.Target, string, error) {
	var st unix.Stat_t
	err := unix.Stat(path, &st)
	switch {
	case errors.Is(err, unix.ENOENT):
		if _, derr := os.Stat(filepath.Dir(path)); derr != nil {
			return flash.Target{}, "", fmt.Errorf("%s: %w", path, derr)
		}
		return flash.Target{Path: path, MinSize: imageSize}, path, nil
	case err != nil:
		return flash.Target{}, "", fmt.Errorf("%s: %w", path, err)
	case st.Mode&unix.S_IFMT == unix.S_IFREG:
		return flash.Target{Path: path, MinSize: imageSize}, path, nil
	case st.Mode&unix.S_IFMT != unix.S_IFBLK:
		return flash.Target{}, "", fmt.Errorf("%s is neither a block device nor a regular file", path)
	}
	d, err := sys.Inspect(path)
	if err != nil {
		return flash.Target{}, "", err
	}
	if err := d.Check(imageSize, flash.CheckOptions{AllowFixed: allowFixed}); err != nil {
		return flash.Target{}, "", err
	}
	model := d.Model
	if model == "" {
		model = "no model"
	}
	t := flash.Target{Path: path, BlockDevice: true}
	// A disk larger than the image may keep an old backup GPT or RAID/LVM
	// signatures in its last MiB, past the image's own backup GPT.
	if tail := max(d.Size-1<<20, imageSize); tail < d.Size {
		t.Extra = []flash.Patch{{Off: tail, Len: d.Size - tail, What: "end-of-disk wipe"}}
	}
	return t, fmt.Sprintf("%s (%s, %s)", path, flash.HumanBytes(d.Size), model), nil
}

// flashConfirm asks for typed confirmation on a terminal.
func flashConfirm(env *Env, descs []string) error {
	if !flashIsTerminal(env.Stdin) {
		return errors.New("overwriting block devices needs confirmation: pass --yes (stdin is not a terminal)")
	}
	fmt.Fprintf(env.Stderr, "This ERASES everything on:\n  %s\nType yes to continue: ", strings.Join(descs, "\n  "))
	line, _ := bufio.NewReader(env.Stdin).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return errors.New("not confirmed; nothing was written")
	}
	return nil
}

// flashList prints the disks and whether each can be written.
func flashList(env *Env, sys flash.Sys, args []string) error {
	devs, err := sys.ListDevices()
	if err != nil {
		return exitCode(1, err)
	}
	var size int64
	if len(args) == 1 {
		size = imageSizeHint(args[0])
	}
	fmt.Fprintln(env.Stdout, "disks (give one or more with --device):")
	for _, d := range devs {
		verdict := "ok"
		if err := d.Check(size, flash.CheckOptions{}); err != nil {
			verdict = "refused: " + strings.TrimPrefix(strings.TrimSuffix(err.Error(), ": refused"), "flash: ")
		}
		fmt.Fprintf(env.Stdout, "  %s  %s\n", d, verdict)
	}
	if len(devs) == 0 {
		fmt.Fprintln(env.Stdout, "  (none)")
	}
	return exitCode(2, errors.New("no --device given"))
}

// flashProgress renders progress: a redrawn line per run on a terminal,
// plain lines at every 10% and phase change otherwise.
type flashProgress struct {
	w     io.Writer
	tty   bool
	mu    sync.Mutex
	last  map[string]string // plain: last "phase/decile" printed
	state map[string]flash.Progress
	drawn time.Time
}

func newFlashProgress(w io.Writer, tty bool) *flashProgress {
	return &flashProgress{w: w, tty: tty, last: map[string]string{}, state: map[string]flash.Progress{}}
}

func (p *flashProgress) update(pr flash.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state[pr.Target] = pr
	if p.tty {
		if time.Since(p.drawn) < 200*time.Millisecond && pr.Phase != flash.PhaseDone {
			return
		}
		p.drawn = time.Now()
		var parts []string
		names := make([]string, 0, len(p.state))
		for n := range p.state {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			parts = append(parts, flashProgressText(p.state[n], true))
		}
		fmt.Fprintf(p.w, "\r\x1b[K%s", strings.Join(parts, " | "))
		return
	}
	key := string(pr.Phase)
	if pr.Total > 0 && (pr.Phase == flash.PhaseWrite || pr.Phase == flash.PhaseVerify) {
		key += fmt.Sprint(pr.Done * 10 / pr.Total)
	}
	if p.last[pr.Target] == key {
		return
	}
	p.last[pr.Target] = key
	fmt.Fprintf(p.w, "%s\n", flashProgressText(pr, false))
}

func flashProgressText(pr flash.Progress, tty bool) string {
	name := filepath.Base(pr.Target)
	switch pr.Phase {
	case flash.PhaseSync:
		return name + ": syncing"
	case flash.PhaseDone:
		return name + ": verified"
	}
	pct := 0
	if pr.Total > 0 {
		pct = int(pr.Done * 100 / pr.Total)
		if !tty {
			pct = pct / 10 * 10 // plain lines come at each 10%
		}
	}
	s := fmt.Sprintf("%s: %s %d%%", name, pr.Phase, pct)
	if !tty {
		return s
	}
	secs := pr.Elapsed.Seconds()
	if pr.Phase == flash.PhaseWrite && secs > 0 {
		s += fmt.Sprintf(" %s %s/s", flash.HumanBytes(pr.Written), flash.HumanBytes(int64(float64(pr.Written)/secs)))
		if pr.Done > 0 && pr.Total > pr.Done {
			eta := time.Duration(float64(pr.Elapsed) * float64(pr.Total-pr.Done) / float64(pr.Done))
			s += " ETA " + eta.Round(time.Second).String()
		}
	} else if pr.Phase == flash.PhaseVerify {
		s += fmt.Sprintf(" %s of %s", flash.HumanBytes(pr.Done), flash.HumanBytes(pr.Total))
	}
	return s
}

func (p *flashProgress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && !p.drawn.IsZero() {
		fmt.Fprintln(p.w)
	}
}

// imageSizeHint is the disk size an input needs, for the device list: a
// bundle's (unverified) manifest, a raw image's size, 0 when unknown.
func imageSizeHint(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	if raw, err := bundle.ManifestBytes(f); err == nil {
		var m bundle.Manifest
		if json.Unmarshal(raw, &m) == nil {
			if p := m.Payload(bundle.RoleDisk); p != nil {
				return p.DiskSize
			}
		}
		return 0
	}
	var magic [2]byte
	if n, _ := f.ReadAt(magic[:], 0); n == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		return 0
	}
	st, err := f.Stat()
	if err != nil {
		return 0
	}
	return st.Size()
}

// superblockCatcher picks the ext4 superblock of /perm (partition 4) out of
// the image as it streams by, to locate the journal that a reused card must
// not keep (see flash.Ext4Journal).
type superblockCatcher struct {
	off  int64 // superblock position on the disk; 0: no /perm
	part int64 // partition offset
	sb   []byte
	seen bool
}

func newSuperblockCatcher(d *layout.Disk) *superblockCatcher {
	c := &superblockCatcher{sb: make([]byte, flash.Ext4SuperblockSize)}
	if d != nil && len(d.Partitions) >= layout.PartPerm && d.Partitions[layout.PartPerm-1].Number == layout.PartPerm {
		c.part = d.Partition(layout.PartPerm).Offset()
		c.off = c.part + flash.Ext4SuperblockOffset
	}
	return c
}

func (c *superblockCatcher) observe(b flash.Block) {
	if c.off == 0 {
		return
	}
	lo, hi := max(b.Off, c.off), min(b.Off+int64(len(b.Data)), c.off+flash.Ext4SuperblockSize)
	if lo < hi {
		copy(c.sb[lo-c.off:], b.Data[lo-b.Off:hi-b.Off])
		c.seen = true
	}
}

// journal returns the disk ranges of the /perm journal; none (and no
// error) when the image has no /perm or an empty one.
func (c *superblockCatcher) journal(imageSize int64) ([]flash.Span, error) {
	if c.off == 0 || !c.seen {
		return nil, nil
	}
	spans, err := flash.Ext4Journal(c.sb)
	if err != nil {
		if errors.Is(err, flash.ErrNoJournal) && !bytes.Equal(c.sb[0x38:0x3A], []byte{0x53, 0xEF}) {
			return nil, nil // not ext4: nothing to do
		}
		return nil, fmt.Errorf("/perm: %w", err)
	}
	for i := range spans {
		spans[i].Off += c.part
		if spans[i].Off+spans[i].Len > imageSize {
			return nil, fmt.Errorf("/perm journal at %d+%d lies beyond the image (%d bytes)", spans[i].Off, spans[i].Len, imageSize)
		}
	}
	return spans, nil
}

// compression names the compressed format a file starts with ("" if none
// known): gzip (RFC 1952), xz (the .xz container) or zstd (RFC 8878).
func compression(magic []byte) string {
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return "gzip"
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return "xz"
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd"
	}
	return ""
}

// decompress returns a streaming decompressor of the kind and a function
// that frees it.
func decompress(kind string, r io.Reader) (io.Reader, func(), error) {
	switch kind {
	case "gzip":
		zr, err := gzip.NewReader(r)
		return zr, func() {}, err
	case "xz":
		zr, err := xz.NewReader(r)
		return zr, func() {}, err
	case "zstd":
		// One goroutine: the device write is the bottleneck, and a kiosk
		// technician's laptop need not lend every core.
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<27))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	}
	return nil, nil, fmt.Errorf("unknown compression %q", kind)
}
