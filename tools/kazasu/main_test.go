package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runMain(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelpAndUnknown(t *testing.T) {
	if code, out, _ := run(t, "help"); code != 0 || !strings.Contains(out, "version") {
		t.Fatalf("help: code %d, out %q", code, out)
	}
	if code, _, errs := run(t, "no-such-command"); code != 2 || !strings.Contains(errs, "unknown command") {
		t.Fatalf("unknown: code %d, stderr %q", code, errs)
	}
	if code, _, errs := run(t, "version", "extra"); code != 2 || !strings.Contains(errs, "usage") {
		t.Fatalf("usage error: code %d, stderr %q", code, errs)
	}
	if code, out, _ := run(t, "version"); code != 0 || !strings.HasPrefix(out, "kazasu ") {
		t.Fatalf("version: code %d, out %q", code, out)
	}
}
