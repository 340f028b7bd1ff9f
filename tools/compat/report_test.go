package compat

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kazasu/daemon/quirks"
	"kazasu/drivers/nfc"
)

func run(model, reader, mode string, tech string, features string, ext bool, rate float64, started time.Time) *Run {
	trials := 10
	ok := int(rate * float64(trials))
	steps := []Step{{Name: StepActivate, OK: trials, Trials: trials, P50us: 12000, P95us: 15000}}
	for _, n := range []string{StepSelect, StepToken, StepCert, StepPINStatus} {
		steps = append(steps, Step{Name: n, OK: ok, Trials: trials, P50us: 20000, P95us: 40000})
	}
	steps = append(steps, Step{Name: StepSign, OK: ok, Trials: trials, P50us: 300000, P95us: 350000})
	r := &Run{
		Key:   Key{Model: model, OSBuild: "B1", Token: "JPKIAPGPSETOKEN", Reader: reader, Board: "pi4", RFProfile: "default"},
		Label: model + " / B1", Started: started, Software: "test", Trials: trials,
		Tech: tech, Features: features, FSC: 256, FSD: 64, FWTus: 77300, ISODepMode: mode,
		MaxShortResponse: 256, MaxCommand: 261, ExtendedOK: ext, Steps: steps,
		Errors: map[string]int{"timeout": 10 - ok},
	}
	if ext {
		r.MaxExtendedResponse = 4096
	} else {
		r.ExtendedCapped, r.CommandCapped = true, true
		r.ResponseLimit, r.CommandLimit = "extended Le 16: 6700, 0 bytes", "Nc 256: 6700 (extended Lc refused)"
	}
	return r
}

func TestDBDeriveReport(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "compat.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	runs := []*Run{
		run("Phone X", "pn532_uart", "chip", "A", "0578807002", false, 1, t0),
		run("Phone X", "pn532_uart", "chip", "A", "0578807002", false, 0.5, t0.Add(-time.Hour)), // older: superseded
		run("Phone X", "pn532_spi", "host", "A", "0578807002", false, 1, t0),
		run("Phone Y", "libnfc", "chip", "B", "000005E0B381A1", true, 0.9, t0),
	}
	runs[2].Step(StepCert) // exercise lookup of a present step
	for _, r := range runs {
		if err := db.Insert(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Insert(ctx, runs[0]); err == nil {
		t.Fatal("duplicate (key, start) accepted")
	}
	db.Close()
	db, err = Open(ctx, path) // reopen: schema check on an existing file
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	latest, err := db.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(latest) != 3 {
		t.Fatalf("latest: %d runs, want 3", len(latest))
	}
	for _, r := range latest {
		if r.Key.Model == "Phone X" && r.TransactionRate() != 1 {
			t.Fatalf("older run returned as latest: %+v", r.Key)
		}
	}

	set := Derive(latest)
	if len(set.Profiles) != 4 { // per token, and before the token is known
		t.Fatalf("profiles: %+v", set.Profiles)
	}
	if pre := set.Lookup(nfc.Target{Tech: nfc.TechA, ATS: []byte{0x05, 0x78, 0x80, 0x70, 0x02}}, ""); pre == nil || pre.Name != "phone-x-any-token" || pre.ReadChunk != 256 {
		t.Fatalf("profile before the token is known: %+v", pre)
	}
	px := set.Lookup(nfc.Target{Tech: nfc.TechA, ATS: []byte{0x05, 0x78, 0x80, 0x70, 0x02}}, "JPKIAPGPSETOKEN")
	if px == nil || px.Name != "phone-x-gpsetoken" {
		t.Fatalf("phone X profile: %+v", px)
	}
	if *px.ExtendedAPDU || px.ReadChunk != 256 || px.MaxResponseAPDU != 258 || px.MaxCommandAPDU != 261 {
		t.Fatalf("phone X limits: %+v", px)
	}
	if px.PollOrder[0] != "A" || px.ISODepMode != "chip" { // chip and host tie on rate; equal cert p50 → name order
		t.Fatalf("phone X order/mode: %+v", px)
	}
	if time.Duration(px.SignTimeout) != 2*time.Second || time.Duration(px.APDUTimeout) != 500*time.Millisecond {
		t.Fatalf("timeouts: %v %v", time.Duration(px.SignTimeout), time.Duration(px.APDUTimeout))
	}
	py := set.Lookup(nfc.Target{Tech: nfc.TechB, ATQB: []byte{0x50, 9, 9, 9, 9, 0, 0, 5, 0xE0, 0xB3, 0x81, 0xA1}}, "JPKIAPGPSETOKEN")
	if py == nil || !*py.ExtendedAPDU || py.MaxResponseAPDU != 0 || py.MaxCommandAPDU != 0 || py.ReadChunk != 0 { // no limit found
		t.Fatalf("phone Y profile: %+v", py)
	}
	var buf bytes.Buffer
	set.Write(&buf)
	if _, err := quirks.Load(&buf); err != nil {
		t.Fatalf("derived profiles do not load: %v", err)
	}

	out := t.TempDir()
	if err := WriteReport(out, latest, t0); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(out, "matrix.md"))
	for _, want := range []string{"| phone / card | libnfc [pi4] | pn532_spi [pi4] | pn532_uart [pi4] |", "| Phone X / B1 (GPSETOKEN) | — | 100% · 380 ms | 100% · 380 ms |", "| Phone Y / B1 (GPSETOKEN) | 90% · 380 ms | — | — |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("matrix.md lacks %q:\n%s", want, md)
		}
	}
	html, _ := os.ReadFile(filepath.Join(out, "index.html"))
	for _, want := range []string{`<svg id="heatmap"`, `<svg id="latency"`, "Phone X / B1 (GPSETOKEN)", "#2e7d32", "#7cb342"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "quirks.json")); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesOtherSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	db.db.Exec(`UPDATE meta SET v='99' WHERE k='schema'`)
	db.Close()
	if _, err := Open(ctx, path); err == nil || !strings.Contains(err.Error(), "schema version 99") {
		t.Fatalf("err %v", err)
	}
}
