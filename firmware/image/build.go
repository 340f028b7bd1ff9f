package image

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"kazasu/firmware/bundle"
	"kazasu/firmware/layout"
)

// Package is a Go main package to put into the root file system.
type Package struct {
	Import string   // import path or ./relative directory in the module
	Path   string   // where in the root: "/user/kazasud"
	Args   []string // service arguments
}

// Config is one image build.
type Config struct {
	Target  *Target
	Version string    // "1.4.0"
	Build   uint64    // monotonic build number
	Epoch   time.Time // SOURCE_DATE_EPOCH: every timestamp in the image
	// Validity is how long the bundles stay installable (default 365 days).
	Validity time.Duration
	// Init is the PID 1 package (default kazasu/firmware/cmd/kazasu-init).
	Init string
	// Services are supervised by init, in order (default: kazasud and the
	// update agent).
	Services []Package
	// Keys are the update public keys baked into the root.
	Keys      bundle.Keys
	Provision *layout.Provision // optional, written into the gap
	DiskBytes int64             // default layout.DefaultDiskBytes
	GitCommit string            // optional, recorded in release.json and the manifests
	// ModuleRoot is the kazasu module directory (where go.mod is).
	ModuleRoot string
	// Out is the output directory.
	Out string
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// Files are extra root files: destination under /etc/kazasu/ (e.g.
	// "/etc/kazasu/kazasud.toml") → contents.
	Files map[string][]byte
	// TrialGuard overrides kazasu-init's trial guard deadline (default
	// trialguard.DefaultDeadline), via /etc/kazasu/trial-guard.
	TrialGuard time.Duration
	// RootOnly builds only the root file system and the update bundle
	// (no disk image, no flash bundle): an update release.
	RootOnly bool
}

// Default service packages.
const (
	DefaultInit    = "kazasu/firmware/cmd/kazasu-init"
	KazasudPackage = "./daemon/cmd/kazasud"
	AgentPackage   = "kazasu/firmware/cmd/kazasu-update"
	KazasudPath    = "/user/kazasud"
	AgentPath      = "/user/kazasu-update"
)

// DefaultServices is kazasud plus the update agent.
func DefaultServices() []Package {
	return []Package{
		{Import: KazasudPackage, Path: KazasudPath},
		{Import: AgentPackage, Path: AgentPath},
	}
}

// Release is /etc/kazasu/release.json in the root.
type Release struct {
	Version   string    `json:"version"`
	Build     uint64    `json:"build"`
	Board     string    `json:"board"`
	Bus       string    `json:"bus,omitempty"`
	ReaderURI string    `json:"reader_uri,omitempty"`
	Kernel    string    `json:"kernel"` // module@version of the boot partition's kernel
	Created   time.Time `json:"created"`
	GitCommit string    `json:"git_commit,omitempty"`
	Modules   []string  `json:"modules"` // pinned runtime and blob modules
}

// Service is one entry of /etc/kazasu/services.json, read by kazasu-init.
type Service struct {
	Path string   `json:"path"`
	Args []string `json:"args,omitempty"`
}

// Result describes the outputs.
type Result struct {
	Image       string `json:"image"`
	ImageSHA256 string `json:"image_sha256"`
	ImageBytes  int64  `json:"image_bytes"`
	UsedBytes   int64  `json:"used_bytes"`
	Root        string `json:"root"`
	RootSHA256  string `json:"root_sha256"`
	RootBytes   int64  `json:"root_bytes"`
	Update      string `json:"update_bundle"`
	Flash       string `json:"flash_bundle"`
	// Boot-partition byte offsets of the two command lines.
	CmdlineOffset    int64   `json:"cmdline_offset"`
	TryCmdlineOffset int64   `json:"try_cmdline_offset"`
	Release          Release `json:"release"`
}

func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}

// Build makes the image and both bundles (unsigned) in c.Out.
func Build(ctx context.Context, c Config) (*Result, error) {
	if c.Target == nil {
		return nil, errors.New("image: no target")
	}
	if c.Epoch.IsZero() || c.Build == 0 || c.Version == "" {
		return nil, errors.New("image: version, build and epoch are required")
	}
	if c.Validity == 0 {
		c.Validity = 365 * 24 * time.Hour
	}
	if c.Init == "" {
		c.Init = DefaultInit
	}
	if c.Services == nil {
		c.Services = DefaultServices()
	}
	if c.DiskBytes == 0 {
		c.DiskBytes = layout.DefaultDiskBytes
	}
	for _, k := range []ed25519.PublicKey{c.Keys.Current} {
		if len(k) != ed25519.PublicKeySize {
			return nil, errors.New("image: the current update public key is required (the device would trust nothing)")
		}
	}
	for _, tool := range []string{"mksquashfs", "mke2fs"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("image: %s not found; install Debian packages squashfs-tools and e2fsprogs", tool)
		}
	}
	if err := os.MkdirAll(c.Out, 0o755); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	work, err := os.MkdirTemp("", "fwbuild-")
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	defer os.RemoveAll(work)

	mods, err := c.modules(ctx)
	if err != nil {
		return nil, err
	}
	d, err := layout.New(c.DiskBytes, c.Target.ID)
	if err != nil {
		return nil, err
	}
	rel := Release{Version: c.Version, Build: c.Build, Board: c.Target.ID, Kernel: mods[c.Target.Kernel].id(),
		Created: c.Epoch.UTC(), GitCommit: c.GitCommit}
	for _, m := range []string{ModRuntime, c.Target.Kernel, ModFirmware} {
		if c.Target.Profile == nil && m == ModFirmware {
			continue
		}
		rel.Modules = append(rel.Modules, mods[m].id())
	}
	if w := c.Target.Wiring; w != nil {
		rel.Bus, rel.ReaderURI = w.Bus.String(), w.ReaderURI()
	}

	// Root file system.
	c.logf("compiling %d programs for linux/arm64", 3+len(c.Services))
	rootDir := filepath.Join(work, "root")
	if err := c.stageRoot(ctx, rootDir, rel); err != nil {
		return nil, err
	}
	stem := fmt.Sprintf("kazasu-%s-%s-%d", c.Target.ID, c.Version, c.Build)
	root := filepath.Join(c.Out, stem+".root.squashfs")
	if err := c.mksquashfs(ctx, rootDir, root); err != nil {
		return nil, err
	}
	rootInfo, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	if rootInfo.Size() > layout.RootBytes {
		return nil, fmt.Errorf("image: root file system is %d bytes, the slots hold %d", rootInfo.Size(), layout.RootBytes)
	}

	stemPath := filepath.Join(c.Out, stem)
	m := bundle.Manifest{Boards: []string{c.Target.ID}, Version: c.Version, Build: c.Build,
		Created: c.Epoch, Expires: c.Epoch.Add(c.Validity), Kernel: rel.Kernel, GitCommit: c.GitCommit}
	res := &Result{Root: root, RootBytes: rootInfo.Size(), Release: rel}
	if res.RootSHA256, _, err = fileSHA256(root); err != nil {
		return nil, err
	}
	res.Update = stemPath + ".update.kzb"
	m.Kind = bundle.KindUpdate
	if err := writeBundle(res.Update, m, []payloadFile{{role: bundle.RoleRoot, path: root}}); err != nil {
		return nil, err
	}
	if c.RootOnly {
		return res, writeResult(stemPath, res)
	}

	// Boot partition.
	c.logf("writing the boot partition")
	bootImg := filepath.Join(work, "boot.vfat")
	offs, err := c.buildBoot(bootImg, d, mods, rel)
	if err != nil {
		return nil, err
	}
	// /perm.
	permImg := filepath.Join(work, "perm.ext4")
	if err := c.mke2fs(ctx, permImg, d.Partition(layout.PartPerm).Size()); err != nil {
		return nil, err
	}

	// The disk.
	c.logf("assembling the %d MiB disk image", c.DiskBytes>>20)
	imgPath := stemPath + ".img"
	if err := assemble(imgPath, d, bootImg, root, permImg, c.Provision); err != nil {
		return nil, err
	}
	res.Image, res.CmdlineOffset, res.TryCmdlineOffset = imgPath, offs[0], offs[1]
	if res.ImageSHA256, res.ImageBytes, err = fileSHA256(imgPath); err != nil {
		return nil, err
	}
	ext, used, err := usedExtents(imgPath)
	if err != nil {
		return nil, err
	}
	res.UsedBytes = used
	res.Flash = stemPath + ".flash.kzb"
	m.Kind = bundle.KindFlash
	if err := writeBundle(res.Flash, m, []payloadFile{{role: bundle.RoleDisk, path: imgPath, extents: ext, diskSize: d.Size}}); err != nil {
		return nil, err
	}
	return res, writeResult(stemPath, res)
}

// writeResult writes the build record with file names relative to the
// output directory, so the record is reproducible too.
func writeResult(stemPath string, res *Result) error {
	r := *res
	for _, p := range []*string{&r.Image, &r.Root, &r.Update, &r.Flash} {
		if *p != "" {
			*p = filepath.Base(*p)
		}
	}
	js, _ := json.MarshalIndent(&r, "", "  ")
	if err := os.WriteFile(stemPath+".json", append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	return nil
}

type module struct {
	Path, Version, Dir string
}

func (m module) id() string { return m.Path + "@" + m.Version }

// modules finds the pinned modules' directories (downloading them through
// the Go module proxy if needed; go.sum checks their hashes).
func (c *Config) modules(ctx context.Context) (map[string]module, error) {
	want := []string{ModRuntime, c.Target.Kernel}
	if c.Target.Profile != nil {
		want = append(want, ModFirmware)
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"mod", "download", "-json"}, want...)...)
	cmd.Dir = c.ModuleRoot
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("image: go mod download %s: %v: %s", strings.Join(want, " "), err, stderr.Bytes())
	}
	mods := map[string]module{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var m struct {
			Path, Version, Dir, Error string
		}
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("image: go mod download: %w", err)
		}
		if m.Error != "" || m.Dir == "" {
			return nil, fmt.Errorf("image: module %s: %s", m.Path, m.Error)
		}
		mods[m.Path] = module{m.Path, m.Version, m.Dir}
	}
	for _, w := range want {
		if _, ok := mods[w]; !ok {
			return nil, fmt.Errorf("image: module %s not pinned in go.mod", w)
		}
	}
	return mods, nil
}

// goBuild cross-compiles a main package reproducibly.
func (c *Config) goBuild(ctx context.Context, pkg, out string, ldflags ...string) error {
	if strings.HasPrefix(pkg, "./") {
		if _, err := os.Stat(filepath.Join(c.ModuleRoot, pkg)); err != nil {
			hint := ""
			if pkg == KazasudPackage {
				hint = "; kazasud's main package is not written yet: pass another long-running package, e.g. -kazasud ./tools/kazasu -kazasud-args 'issuance serve --listen 127.0.0.1:8443 --tls-dir /perm/kazasu/tls' (see firmware/README.md)"
			}
			return fmt.Errorf("image: package %s does not exist in %s%s", pkg, c.ModuleRoot, hint)
		}
	}
	args := []string{"build", "-trimpath", "-buildvcs=false", "-tags", "gokrazy,netgo,osusergo",
		"-ldflags", strings.Join(append([]string{"-s", "-w", "-buildid="}, ldflags...), " "), "-o", out, pkg}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = c.ModuleRoot
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0", "GOFLAGS=-mod=readonly")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("image: go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// stageRoot fills dir with the root file system tree.
func (c *Config) stageRoot(ctx context.Context, dir string, rel Release) error {
	for _, d := range []string{"gokrazy", "user", "etc/kazasu/keys", "etc/ssl", "dev", "proc", "sys", "tmp", "perm", "run", "lib"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("image: %w", err)
		}
	}
	bins := []struct{ pkg, path string }{
		{c.Init, "/gokrazy/init"},
		{ModRuntime + "/cmd/dhcp", "/gokrazy/dhcp"},
		{ModRuntime + "/cmd/ntp", "/gokrazy/ntp"},
	}
	var svcs []Service
	for _, s := range c.Services {
		if !strings.HasPrefix(s.Path, "/user/") || strings.Contains(s.Path[6:], "/") {
			return fmt.Errorf("image: service path %q must be /user/NAME", s.Path)
		}
		bins = append(bins, struct{ pkg, path string }{s.Import, s.Path})
		svcs = append(svcs, Service{Path: s.Path, Args: s.Args})
	}
	ts := c.Epoch.UTC().Format(time.RFC3339)
	for _, b := range bins {
		var ld []string
		if b.path == "/gokrazy/init" {
			ld = append(ld, "-X main.buildTimestamp="+ts)
		}
		if err := c.goBuild(ctx, b.pkg, filepath.Join(dir, b.path), ld...); err != nil {
			return err
		}
	}
	relJSON, _ := json.MarshalIndent(rel, "", "  ")
	svcJSON, _ := json.MarshalIndent(svcs, "", "  ")
	files := map[string][]byte{
		"etc/hostname":                []byte("kazasu"),
		"etc/hosts":                   []byte("127.0.0.1 localhost\n::1 localhost\n"),
		"etc/kazasu/release.json":     append(relJSON, '\n'),
		"etc/kazasu/services.json":    append(svcJSON, '\n'),
		"etc/kazasu/keys/current.pub": bundle.MarshalPublicKey(c.Keys.Current),
	}
	if c.TrialGuard != 0 {
		files["etc/kazasu/trial-guard"] = []byte(c.TrialGuard.String() + "\n")
	}
	for dst, b := range c.Files {
		rel := strings.TrimPrefix(dst, "/")
		if !strings.HasPrefix(dst, "/etc/kazasu/") || strings.Contains(rel, "..") || strings.HasSuffix(rel, "/") {
			return fmt.Errorf("image: extra file %q must be a file under /etc/kazasu/", dst)
		}
		if _, taken := files[rel]; taken {
			return fmt.Errorf("image: extra file %s would replace a generated file", dst)
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755); err != nil {
			return fmt.Errorf("image: %w", err)
		}
		files[rel] = b
	}
	if len(c.Keys.Next) == ed25519.PublicKeySize {
		files["etc/kazasu/keys/next.pub"] = bundle.MarshalPublicKey(c.Keys.Next)
	}
	if c.Target.Wiring != nil {
		w := c.Target.Wiring
		b, _ := json.MarshalIndent(map[string]any{"board": c.Target.ID, "bus": w.Bus.String(),
			"reader_uri": w.ReaderURI(), "gpio": w.GPIONames()}, "", "  ")
		files["etc/kazasu/board.json"] = append(b, '\n')
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("image: %w", err)
		}
	}
	// gokrazy writes resolv.conf to /tmp; /var lives on /perm.
	for link, target := range map[string]string{"etc/resolv.conf": "/tmp/resolv.conf", "var": "/perm/var"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			return fmt.Errorf("image: %w", err)
		}
	}
	return nil
}

func (c *Config) mksquashfs(ctx context.Context, dir, out string) error {
	os.Remove(out)
	t := strconv.FormatInt(c.Epoch.Unix(), 10)
	cmd := exec.CommandContext(ctx, "mksquashfs", dir, out, "-noappend", "-comp", "gzip", "-all-root",
		"-no-xattrs", "-mkfs-time", t, "-all-time", t, "-processors", "1", "-quiet", "-no-progress")
	// mksquashfs refuses SOURCE_DATE_EPOCH together with the explicit
	// times above.
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SOURCE_DATE_EPOCH=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("image: mksquashfs: %v\n%s", err, b)
	}
	return nil
}

func (c *Config) mke2fs(ctx context.Context, out string, size int64) error {
	f, err := os.Create(out)
	if err == nil {
		err = f.Truncate(size)
		f.Close()
	}
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	fsID := layout.DeriveGUID(c.Target.ID + "/perm-fs").String()
	seed := layout.DeriveGUID(c.Target.ID + "/perm-hash").String()
	// Features spelled out and the host's mke2fs.conf ignored, so the
	// result depends only on the e2fsprogs version.
	cmd := exec.CommandContext(ctx, "mke2fs", "-q", "-F", "-b", "4096", "-I", "256", "-i", "16384", "-L", "perm", "-m", "0",
		"-O", "has_journal,ext_attr,resize_inode,dir_index,filetype,extent,64bit,flex_bg,sparse_super,large_file,huge_file,dir_nlink,extra_isize,metadata_csum",
		"-U", strings.ToLower(fsID), "-E", "hash_seed="+strings.ToLower(seed)+",lazy_itable_init=1,lazy_journal_init=1,root_owner=0:0", out)
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME="+strconv.FormatInt(c.Epoch.Unix(), 10), "MKE2FS_CONFIG=/dev/null")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("image: mke2fs: %v\n%s", err, b)
	}
	return nil
}

func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("image: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("image: hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
