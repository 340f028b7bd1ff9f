package main

import (
	"strings"
	"testing"
)

// TestDemo runs the README's main job (on virtual time, to keep CI fast)
// and checks every scripted transaction ended as expected.
func TestDemo(t *testing.T) {
	code, out, errs := run(t, "demo", "--uri", "sim:")
	if code != 0 {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, want := range []string{
		"1. My Number Card", "2. Android phone", "3. iPhone, armed", "4. My Number Card, wrong PIN first",
		"pin-required (2 tries left)", "tap→PIN prompt", "PIN→result", "all 4 transactions ended as expected",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "done — ticket") != 4 {
		t.Errorf("want 4 tickets:\n%s", out)
	}
	if strings.Contains(out, "1234") || strings.Contains(out, "5678") || strings.Contains(out, "9999") {
		t.Error("a PIN appears in the demo output")
	}
}
