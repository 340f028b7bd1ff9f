package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kazasu/daemon/audit"
)

func TestAuditVerify(t *testing.T) {
	dir := t.TempDir()
	l, err := audit.Open(dir, audit.Options{Terminal: "kz-cli"})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []audit.Entry{{Event: audit.EventDaemonStart}, {Event: audit.EventTxStart, TxID: "t1", Reader: "sim0"}, {Event: audit.EventFailed, TxID: "t1", Reason: "timeout"}} {
		if _, err := l.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	live := filepath.Join(dir, audit.LiveName)
	if code, out, errs := run(t, "audit", "verify", live); code != 0 || !strings.HasPrefix(out, "OK 1 file(s), terminal kz-cli, last file seq 0..3") {
		t.Fatalf("intact: code %d out %q err %q", code, out, errs)
	}
	data, _ := os.ReadFile(live)
	// Cut the last record: the chain is fine, the head catches it.
	cut := data[:strings.LastIndex(strings.TrimSuffix(string(data), "\n"), "\n")+1]
	copyTo := filepath.Join(dir, "copy.log")
	os.WriteFile(copyTo, cut, 0o600)
	if code, out, _ := run(t, "audit", "verify", "--head", filepath.Join(dir, audit.HeadName), copyTo); code != 1 || !strings.Contains(out, "FAIL") || !strings.Contains(out, "truncated") {
		t.Fatalf("cut: code %d out %q", code, out)
	}
	// Without any anchor an unsealed file cannot be proven complete.
	if code, out, _ := run(t, "audit", "verify", copyTo); code != 1 || !strings.Contains(out, "cannot rule out") {
		t.Fatalf("no head: code %d out %q", code, out)
	}
	// A flipped byte.
	flipped := []byte(strings.Replace(string(data), `"rdr":"sim0"`, `"rdr":"sim1"`, 1))
	os.WriteFile(live, flipped, 0o600)
	if code, out, _ := run(t, "audit", "verify", live); code != 1 || !strings.Contains(out, "line 4") || !strings.Contains(out, "hash chain broken") {
		t.Fatalf("flipped: code %d out %q", code, out)
	}
	// A whole directory with rotated files.
	dir2 := t.TempDir()
	l2, err := audit.Open(dir2, audit.Options{Terminal: "kz-cli", MaxBytes: 400})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := l2.Append(audit.Entry{Event: audit.EventTap, Reader: "sim0", Token: audit.TokenCard}); err != nil {
			t.Fatal(err)
		}
	}
	l2.Close()
	if code, out, errs := run(t, "audit", "verify", "--dir", dir2); code != 0 || !strings.Contains(out, "anchored by") {
		t.Fatalf("dir: code %d out %q err %q", code, out, errs)
	}
	rot, _ := audit.Rotated(dir2)
	if len(rot) < 2 {
		t.Fatalf("rotated %v", rot)
	}
	os.Remove(rot[1])
	if code, out, _ := run(t, "audit", "verify", "--dir", dir2); code != 1 || !strings.Contains(out, "does not chain") {
		t.Fatalf("dir with a file removed: code %d out %q", code, out)
	}
	// Deleting the live file of a directory is caught by the head.
	dir3 := t.TempDir()
	l3, _ := audit.Open(dir3, audit.Options{Terminal: "kz-cli", MaxBytes: 400})
	for range 10 {
		l3.Append(audit.Entry{Event: audit.EventTap, Reader: "sim0"})
	}
	l3.Close()
	os.Remove(filepath.Join(dir3, audit.LiveName))
	if code, out, _ := run(t, "audit", "verify", "--dir", dir3); code != 1 || !strings.Contains(out, "truncated") {
		t.Fatalf("dir without its live file: code %d out %q", code, out)
	}
	if code, _, _ := run(t, "audit", "verify", "--dir", dir2, live); code != 2 {
		t.Fatalf("--dir with files: code %d", code)
	}
	if code, _, _ := run(t, "audit", "verify"); code != 2 {
		t.Fatalf("usage: code %d", code)
	}
	if code, _, _ := run(t, "audit", "check", live); code != 2 {
		t.Fatalf("usage: code %d", code)
	}
}
