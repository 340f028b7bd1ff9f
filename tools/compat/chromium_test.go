package compat

import (
	"bytes"
	"context"
	"image"
	imgcolor "image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// chromium finds a headless-capable Chromium, or skips the test unless
// KAZASU_REQUIRE_TOOLS=1 (CI), where a missing browser is a failure.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("KAZASU_REQUIRE_TOOLS") == "1" {
		t.Fatal("chromium not found and KAZASU_REQUIRE_TOOLS=1")
	}
	t.Skip("chromium not installed")
	return ""
}

// screenshot renders file with headless Chromium into a PNG.
func screenshot(t *testing.T, browser, file string, w, h int) image.Image {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--screenshot="+out,
		"--window-size="+itoa(w)+","+itoa(h), "file://"+file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.Bytes())
	}
	b, err := os.ReadFile(out)
	if err != nil || len(b) == 0 {
		t.Fatalf("no screenshot: %v (%d bytes)\n%s", err, len(b), stderr.Bytes())
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if p := os.Getenv("KAZASU_SCREENSHOT"); p != "" {
		os.WriteFile(p, b, 0o644) // for a person to look at
	}
	return img
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestReportRendersInChromium renders the fleet's report in headless
// Chromium and checks the picture: the right size, and the heat map's
// cells drawn in their colours (green for complete, red for never).
func TestReportRendersInChromium(t *testing.T) {
	browser := chromium(t)
	runs := simFleet(t)
	dir := t.TempDir()
	if err := WriteReport(dir, runs, time.Now()); err != nil {
		t.Fatal(err)
	}
	img := screenshot(t, browser, filepath.Join(dir, "index.html"), 1400, 1000)
	if b := img.Bounds(); b.Dx() != 1400 || b.Dy() != 1000 {
		t.Fatalf("screenshot %v, want 1400×1000", b)
	}
	count := map[imgcolor.RGBA]int{}
	want := map[string]imgcolor.RGBA{
		"green (100%)": {0x2e, 0x7d, 0x32, 0xff},
		"red (0%)":     {0xc6, 0x28, 0x28, 0xff},
		"amber (≥50%)": {0xf9, 0xa8, 0x25, 0xff},
	}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := imgcolor.RGBAModel.Convert(img.At(x, y)).(imgcolor.RGBA)
			count[c]++
		}
	}
	for name, c := range want {
		// A cell is 146 × 30 px: a few cells' worth at least.
		if count[c] < 3*146*30/2 {
			t.Errorf("%s cells: %d pixels of %v", name, count[c], c)
		}
	}
	if len(count) < 20 {
		t.Errorf("only %d distinct colours: the page did not render", len(count))
	}
}
