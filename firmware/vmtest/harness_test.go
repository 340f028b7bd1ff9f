package vmtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"

	"kazasu/firmware/layout"
	"kazasu/firmware/updateagent"
)

// vm is one qemu machine plus the harness playing the Pi firmware.
type vm struct {
	t      *testing.T
	qemu   string
	kernel string
	disk   string // the SD card
	flag   string // the tryboot flag "register"
	port   int
	log    *os.File
	cmd    *exec.Cmd
	exited chan error
	boots  int
	client *updateagent.Client
}

func moduleRoot() string {
	_, f, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(f), "..", "..")
}

func kernelPath(t *testing.T) string {
	cmd := exec.Command("go", "mod", "download", "-json", "github.com/gokrazy/kernel.arm64")
	cmd.Dir = moduleRoot()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download kernel.arm64: %v", err)
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Fatalf("kernel.arm64: %s", out)
	}
	return filepath.Join(m.Dir, "vmlinuz")
}

func newVM(t *testing.T, qemu, image string) *vm {
	dir := t.TempDir()
	v := &vm{t: t, qemu: qemu, kernel: kernelPath(t), disk: filepath.Join(dir, "sd.img"), flag: filepath.Join(dir, "flag.img")}
	if out, err := exec.Command("cp", "--sparse=always", image, v.disk).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	flag := make([]byte, 1<<20)
	copy(flag, updateagent.FlagPrefix+"0")
	if err := os.WriteFile(v.flag, flag, 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	v.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	v.client = &updateagent.Client{Base: fmt.Sprintf("http://127.0.0.1:%d", v.port)}
	if v.log, err = os.Create(filepath.Join(dir, "console.log")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		v.kill()
		if t.Failed() {
			b, _ := os.ReadFile(v.log.Name())
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("console (tail):\n%s", b)
		}
	})
	return v
}

// firmware does what the Pi firmware does at power-on: consume the
// one-shot tryboot flag, read tryboot.txt or config.txt, take the command
// line file it names.
func (v *vm) firmware() (cmdline string, tryboot bool) {
	t := v.t
	f, err := os.OpenFile(v.flag, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, len(updateagent.FlagMagic))
	f.ReadAt(head, 0)
	if string(head) == updateagent.FlagMagic {
		tryboot = true
		f.WriteAt([]byte(updateagent.FlagPrefix+"0"), 0) // one-shot: cleared before the OS runs
	}
	f.Close()

	disk, err := os.Open(v.disk)
	if err != nil {
		t.Fatal(err)
	}
	defer disk.Close()
	d, err := layout.ReadTable(disk)
	if err != nil {
		t.Fatal(err)
	}
	boot := d.Partition(layout.PartBoot)
	bk, err := file.OpenFromPath(v.disk, true)
	if err != nil {
		t.Fatal(err)
	}
	defer bk.Close()
	fs, err := fat32.Read(bk, boot.Size(), boot.Offset(), layout.SectorSize)
	if err != nil {
		t.Fatal(err)
	}
	cfgName := "/config.txt"
	if tryboot {
		cfgName = "/tryboot.txt"
	}
	fh, err := fs.OpenFile(cfgName, os.O_RDONLY)
	if err != nil {
		t.Fatalf("firmware: %s: %v", cfgName, err)
	}
	cfg, _ := io.ReadAll(fh)
	var name string
	for _, l := range strings.Split(string(cfg), "\n") {
		if v, ok := strings.CutPrefix(l, "cmdline="); ok {
			name = v
		}
	}
	off := map[string]int64{layout.CmdlineFile: layout.CmdlineOffset, layout.TryCmdlineFile: layout.TryCmdlineOffset}[name]
	if off == 0 {
		t.Fatalf("firmware: %s names cmdline %q", cfgName, name)
	}
	sec := make([]byte, layout.CmdlineSize)
	if _, err := disk.ReadAt(sec, boot.Offset()+off); err != nil {
		t.Fatal(err)
	}
	// The file's bytes must be what the FAT says is the file.
	fh2, err := fs.OpenFile("/"+name, os.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	viaFAT, _ := io.ReadAll(fh2)
	if !bytes.Equal(viaFAT, sec) {
		t.Fatalf("firmware: %s at offset %d differs from the FAT's view", name, off)
	}
	cmdline = strings.TrimRight(string(sec), " ")
	if tryboot {
		cmdline += " kazasu.tryboot=1"
	}
	return cmdline, tryboot
}

// boot powers the machine on (after the previous run ended).
func (v *vm) boot() (tryboot bool) {
	v.t.Helper()
	if v.cmd != nil {
		v.t.Fatal("boot while running")
	}
	cmdline, tryboot := v.firmware()
	v.boots++
	fmt.Fprintf(v.log, "\n=== harness: boot %d (tryboot=%v): %s\n", v.boots, tryboot, cmdline)
	v.cmd = exec.Command(v.qemu, "-machine", "virt", "-cpu", "cortex-a72", "-smp", "2", "-m", "768",
		"-nographic", "-no-reboot", "-kernel", v.kernel, "-append", cmdline,
		"-drive", "file="+v.disk+",if=none,id=d0,format=raw", "-device", "virtio-blk-pci,drive=d0,addr=0x4",
		"-drive", "file="+v.flag+",if=none,id=d1,format=raw", "-device", "virtio-blk-pci,drive=d1,addr=0x5",
		"-netdev", fmt.Sprintf("user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:%d", v.port, updateagent.DefaultPort),
		"-device", "virtio-net-pci,netdev=n0,addr=0x6,romfile=")
	v.cmd.Stdout, v.cmd.Stderr = v.log, v.log
	if err := v.cmd.Start(); err != nil {
		v.t.Fatal(err)
	}
	v.exited = make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(v.cmd, v.exited)
	return tryboot
}

// waitExit waits for the guest to reset (qemu exits under -no-reboot).
func (v *vm) waitExit(timeout time.Duration) {
	v.t.Helper()
	select {
	case <-v.exited:
		v.cmd = nil
	case <-time.After(timeout):
		v.t.Fatalf("guest did not reset within %s", timeout)
	}
}

// kill is a power cut.
func (v *vm) kill() {
	if v.cmd != nil {
		v.cmd.Process.Kill()
		<-v.exited
		v.cmd = nil
	}
}

// status waits for the agent's API, then until ok(status) holds.
func (v *vm) status(what string, timeout time.Duration, ok func(*updateagent.Status) bool) *updateagent.Status {
	v.t.Helper()
	deadline := time.Now().Add(timeout)
	var last *updateagent.Status
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case err := <-v.exited:
			v.cmd = nil
			v.t.Fatalf("%s: qemu exited (%v); last status %+v", what, err, last)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		st, err := v.client.Status(ctx)
		cancel()
		if err == nil {
			last = st
			if ok(st) {
				return st
			}
		}
		lastErr = err
		time.Sleep(time.Second)
	}
	v.t.Fatalf("%s: not reached within %s; last status %+v, error %v", what, timeout, last, lastErr)
	return nil
}
