package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kazasu/firmware/bundle"
)

func TestGenkeySignVerify(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if err := run([]string{"-genkey", "-out", dir}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-genkey", "-out", dir}, &out, &errb); err == nil || !strings.Contains(err.Error(), "not overwriting") {
		t.Fatalf("second genkey: %v", err)
	}
	if err := run([]string{"-genkey", "-out", dir, "-name", "next"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	// An unsigned bundle, as fwbuild writes it.
	var buf bytes.Buffer
	payload := bytes.Repeat([]byte{1}, 5000)
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err := bundle.Write(&buf, bundle.Manifest{Kind: bundle.KindUpdate, Boards: []string{"pi4"}, Version: "1", Build: 1,
		Created: epoch, Expires: epoch.AddDate(1, 0, 0), Kernel: "k@v"},
		[]bundle.Source{{Role: bundle.RoleRoot, R: bytes.NewReader(payload), Size: int64(len(payload))}})
	if err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(dir, "x.kzb")
	os.WriteFile(b, buf.Bytes(), 0o644)
	pub, key, next := filepath.Join(dir, "update.pub"), filepath.Join(dir, "update.key"), filepath.Join(dir, "next.pub")
	if err := run([]string{"-verify", "-pub", pub, b}, &out, &errb); err == nil || !strings.Contains(err.Error(), "no signature") {
		t.Fatalf("unsigned verified: %v", err)
	}
	if err := run([]string{"-key", key, b}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run([]string{"-verify", "-pub", pub, b}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "OK, signed by") || !strings.Contains(out.String(), "1 chunk hashes") {
		t.Fatalf("%s", out.String())
	}
	// Only the next key: not trusted as current... but as next it is.
	if err := run([]string{"-verify", "-pub", next, b}, &out, &errb); err == nil || !strings.Contains(err.Error(), "does not trust") {
		t.Fatalf("wrong key: %v", err)
	}
	if err := run([]string{"-verify", "-pub", next, "-next-pub", pub, b}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if err := run(nil, &out, &errb); err == nil {
		t.Fatal("no mode accepted")
	}
}
