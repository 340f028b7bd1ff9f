// Command fwbuild builds a kazasu firmware image and its bundles in one
// step, reproducibly:
//
//	go run ./firmware/cmd/fwbuild -board pi4 -version 1.4.0 -build 42 \
//	    -pub keys/current.pub [-next-pub keys/next.pub] -out out/
//
// It writes, in -out:
//
//	kazasu-pi4-1.4.0-42.img             the disk image (sparse; dd/bmaptool or kazasu flash)
//	kazasu-pi4-1.4.0-42.root.squashfs   the root file system
//	kazasu-pi4-1.4.0-42.update.kzb      unsigned update bundle (root), for kazasu push
//	kazasu-pi4-1.4.0-42.flash.kzb       unsigned flash bundle (used ranges of the image)
//	kazasu-pi4-1.4.0-42.json            hashes, sizes, offsets, release
//
// Sign the bundles with fwsign where the key lives. -board qemu builds the
// test VM image (generic arm64 kernel). Every timestamp comes from
// -epoch (default $SOURCE_DATE_EPOCH, else the last commit's time).
//
// kazasud is built from -kazasud (default ./daemon/cmd/kazasud). Until that
// package exists, pass a stand-in such as
// -kazasud ./tools/kazasu -kazasud-args "issuance serve --listen 127.0.0.1:8443 --tls-dir /perm/kazasu/tls".
package main

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"kazasu/firmware/bundle"
	"kazasu/firmware/image"
	"kazasu/firmware/layout"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fwbuild:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		board       = flag.String("board", "", "board id: pi3bplus, pi4, pi5, pi02w, cm4, or qemu")
		bus         = flag.String("bus", "", "PN532 wiring: uart, i2c or spi (default: the board's default, uart)")
		version     = flag.String("version", "", "release version, e.g. 1.4.0")
		build       = flag.Uint64("build", 0, "monotonic build number (> every build the devices have)")
		epoch       = flag.Int64("epoch", -1, "SOURCE_DATE_EPOCH (default: $SOURCE_DATE_EPOCH, else the HEAD commit time)")
		out         = flag.String("out", "", "output directory")
		pub         = flag.String("pub", "", "current update public key (PEM)")
		nextPub     = flag.String("next-pub", "", "next update public key (PEM), for rotation")
		provision   = flag.String("provision", "", "provisioning record JSON (terminal_id, service_url, ca_certs, client_cert, client_key)")
		diskSize    = flag.Int64("disk-size", layout.DefaultDiskBytes, "image size in bytes")
		kazasud     = flag.String("kazasud", image.KazasudPackage, "kazasud main package")
		kazasudArgs = flag.String("kazasud-args", "", "kazasud arguments (space-separated)")
		initPkg     = flag.String("init", image.DefaultInit, "PID 1 package")
		validity    = flag.Duration("validity", 365*24*time.Hour, "how long the bundles stay installable")
		commit      = flag.String("git-commit", "", "git commit to record (default: HEAD if in a clean checkout)")
		signKey     = flag.String("sign-key", "", "development only: sign the bundles with this private key right away")
		quiet       = flag.Bool("q", false, "no progress output")
		rootOnly    = flag.Bool("root-only", false, "build only the root and the update bundle (an update release)")
		files       = fileFlag{}
	)
	flag.Var(files, "file", "extra root file SRC:/etc/kazasu/NAME, e.g. kazasud.toml:/etc/kazasu/kazasud.toml (repeatable)")
	flag.Parse()
	if *board == "" || *version == "" || *build == 0 || *out == "" || *pub == "" {
		flag.Usage()
		return fmt.Errorf("-board, -version, -build, -out and -pub are required")
	}
	t, err := image.NewTarget(*board, *bus)
	if err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	ep, err := resolveEpoch(*epoch, root)
	if err != nil {
		return err
	}
	var keys bundle.Keys
	if keys.Current, err = readPub(*pub); err != nil {
		return err
	}
	if *nextPub != "" {
		if keys.Next, err = readPub(*nextPub); err != nil {
			return err
		}
	}
	var prov *layout.Provision
	if *provision != "" {
		b, err := os.ReadFile(*provision)
		if err != nil {
			return err
		}
		p, err := decodeProvisionJSON(b)
		if err != nil {
			return err
		}
		prov = p
	}
	if *commit == "" {
		*commit = headCommit(root)
	}
	svcs := image.DefaultServices()
	svcs[0].Import = *kazasud
	svcs[0].Args = strings.Fields(*kazasudArgs)
	cfg := image.Config{Target: t, Version: *version, Build: *build, Epoch: ep, Validity: *validity,
		Init: *initPkg, Services: svcs, Keys: keys, Provision: prov, DiskBytes: *diskSize,
		GitCommit: *commit, ModuleRoot: root, Out: *out, Log: os.Stderr, RootOnly: *rootOnly, Files: files}
	if *quiet {
		cfg.Log = nil
	}
	start := time.Now()
	res, err := image.Build(context.Background(), cfg)
	if err != nil {
		return err
	}
	if *signKey != "" {
		b, err := os.ReadFile(*signKey)
		if err != nil {
			return err
		}
		priv, err := bundle.ParsePrivateKey(b)
		if err != nil {
			return err
		}
		for _, p := range []string{res.Update, res.Flash} {
			if p == "" {
				continue
			}
			if err := signFile(p, priv); err != nil {
				return err
			}
		}
	}
	if !*rootOnly {
		fmt.Printf("image   %s\n  sha256 %s\n  %d bytes, %d used\nflash   %s\n", res.Image, res.ImageSHA256, res.ImageBytes, res.UsedBytes, res.Flash)
	}
	fmt.Printf("root    %s (%d bytes)\n  sha256 %s\nupdate  %s\nbuilt in %s\n",
		res.Root, res.RootBytes, res.RootSHA256, res.Update, time.Since(start).Round(100*time.Millisecond))
	return nil
}

func decodeProvisionJSON(b []byte) (*layout.Provision, error) {
	var p layout.Provision
	dec := jsonDecoder(b)
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	return &p, p.Validate()
}

func readPub(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return bundle.ParsePublicKey(b)
}

func signFile(path string, priv ed25519.PrivateKey) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := bundle.Sign(f, priv); err != nil {
		return err
	}
	return f.Close()
}

func moduleRoot() (string, error) {
	b, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(b))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run fwbuild inside the kazasu module")
	}
	return strings.TrimSuffix(gomod, "/go.mod"), nil
}

func resolveEpoch(flagVal int64, root string) (time.Time, error) {
	if flagVal >= 0 {
		return time.Unix(flagVal, 0).UTC(), nil
	}
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
		}
		return time.Unix(v, 0).UTC(), nil
	}
	cmd := exec.Command("git", "log", "-1", "--format=%ct")
	cmd.Dir = root
	b, err := cmd.Output()
	if err != nil {
		return time.Time{}, fmt.Errorf("no -epoch, no SOURCE_DATE_EPOCH and no git commit time: %w", err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(v, 0).UTC(), nil
}

// headCommit is HEAD's hash when the work tree is clean, else "".
func headCommit(root string) string {
	st := exec.Command("git", "status", "--porcelain", "--untracked-files=no")
	st.Dir = root
	if b, err := st.Output(); err != nil || len(b) > 0 {
		return ""
	}
	c := exec.Command("git", "rev-parse", "HEAD")
	c.Dir = root
	b, err := c.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// fileFlag collects -file SRC:DST, reading SRC at once.
type fileFlag map[string][]byte

func (f fileFlag) String() string { return fmt.Sprint(len(f), " files") }

func (f fileFlag) Set(v string) error {
	src, dst, ok := strings.Cut(v, ":")
	if !ok || src == "" || dst == "" {
		return fmt.Errorf("want SRC:/etc/kazasu/NAME, got %q", v)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	f[dst] = b
	return nil
}
