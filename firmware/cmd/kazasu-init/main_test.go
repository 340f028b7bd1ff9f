package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadServices(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "services.json")
	os.WriteFile(p, []byte(`[{"path":"/user/kazasud"},{"path":"/user/kazasu-update","args":["-stable","10s"]}]`), 0o644)
	s, err := loadServices(p)
	if err != nil || len(s) != 2 || s[1].Args[1] != "10s" {
		t.Fatal(s, err)
	}
	for body, want := range map[string]string{
		`[{"path":"kazasud"}]`: "not absolute",
		`{`:                    "unexpected end",
	} {
		os.WriteFile(p, []byte(body), 0o644)
		if _, err := loadServices(p); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", body, err)
		}
	}
	if _, err := loadServices(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file accepted")
	}
}
