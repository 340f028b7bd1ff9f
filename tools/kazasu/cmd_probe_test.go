package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kazasu/drivers/libnfc"
	"kazasu/drivers/sim/card"
	"kazasu/drivers/sim/pn532emu"
	"kazasu/drivers/sim/rf"
)

// emulatedReader serves a PN532 emulator with a My Number Card on a pty.
func emulatedReader(t *testing.T) string {
	t.Helper()
	tok, err := card.New(card.KindMyNumber, card.Options{Seed: "probe"})
	if err != nil {
		t.Fatal(err)
	}
	field := &rf.Field{}
	field.Add(tok)
	emu := pn532emu.New(pn532emu.Options{Field: field})
	p, err := pn532emu.OpenPTY(filepath.Join(t.TempDir(), "ttyPN532"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { emu.ServePTY(ctx, p); close(done) }()
	t.Cleanup(func() { cancel(); <-done; p.Close() })
	return p.Link()
}

func lines(out, prefix string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func TestProbeSim(t *testing.T) {
	code, out, errs := run(t, "probe", "--reader", "sim:android", "--trace", filepath.Join(t.TempDir(), "t.pcapng"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"Type A", "JPKI:      android (token JPKIAPGPSETOKEN)", "ISO-DEP:   host-managed", "trace:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code, out, _ := run(t, "probe", "--reader", "sim:juki"); code != 0 || !strings.Contains(out, "refused") {
		t.Errorf("juki: %d\n%s", code, out)
	}
	if code, _, errs := run(t, "probe", "--reader", "sim:", "--timeout", "300ms"); code != 3 || !strings.Contains(errs, "no card") {
		t.Errorf("empty field: exit %d %s", code, errs)
	}
	if code, _, _ := run(t, "probe"); code != 2 {
		t.Errorf("no --reader: exit %d", code)
	}
}

// TestProbeSameTargetBothDrivers: kazasu's PN532 driver and libnfc's
// pn532_uart report the same target on the same emulated reader.
func TestProbeSameTargetBothDrivers(t *testing.T) {
	if !libnfc.Available {
		t.Skip("built without the libnfc tag")
	}
	os.Setenv("LIBNFC_LOG_LEVEL", "0")
	link := emulatedReader(t)
	code, ours, errs := run(t, "probe", "--reader", "pn532_uart:"+link+":115200", "--mode", "chip")
	if code != 0 {
		t.Fatalf("pn532_uart: exit %d: %s", code, errs)
	}
	code, theirs, errs := run(t, "probe", "--reader", "libnfc:pn532_uart:"+link)
	if code != 0 {
		t.Fatalf("libnfc: exit %d: %s", code, errs)
	}
	for _, p := range []string{"target:", "ATQB:", "frames:", "JPKI:"} {
		if a, b := lines(ours, p), lines(theirs, p); a != b || a == "" {
			t.Errorf("%s differs:\n  pn532_uart: %s\n  libnfc:     %s", p, a, b)
		}
	}
	if !strings.Contains(ours, "PN532 1.6") || !strings.Contains(theirs, "PN532 1.6") {
		t.Errorf("chip/firmware:\n%s\n%s", ours, theirs)
	}
}

func TestReadersCommand(t *testing.T) {
	code, out, _ := run(t, "readers", "sim:mynumber", "sim:?via=pn532_spi", "pn532_uart:/nonexistent")
	if code != 1 || !strings.Contains(out, "FAILED") || !strings.Contains(out, "PN532") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if code, out, _ := run(t, "readers"); code != 0 || !strings.Contains(out, "sim") {
		t.Fatalf("default config: exit %d:\n%s", code, out)
	}
}
