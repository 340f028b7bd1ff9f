package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kazasu/daemon/quirks"
	"kazasu/tools/compat"
)

func TestCompatUsage(t *testing.T) {
	db := filepath.Join(t.TempDir(), "c.db")
	for _, args := range [][]string{
		{"compat"},
		{"compat", "nope"},
		{"compat", "run", "--db", db},
		{"compat", "run", "--reader", "sim:mynumber", "--db", db},
		{"compat", "run", "--reader", "sim:mynumber", "--label", "no build", "--db", db},
		{"compat", "run", "--reader", "sim:mynumber", "--label", "M / B", "--db", db, "--test-pin", "12"},
		{"compat", "run", "--reader", "sim:mynumber", "--label", "M / B", "--db", db, "--poll", "C"},
		{"compat", "run", "--reader", "sim:mynumber", "--label", "M / B", "--db", db, "--test-pin", "-"}, // empty stdin
		{"compat", "run", "--sim-fleet", "--db", db, "--reader", "sim:mynumber"},
		{"compat", "run", "--sim-fleet", "--db", db, "--test-pin", "1234"},
		{"compat", "report", "--db", db},
		{"compat", "derive", "--out", "x.json"},
	} {
		if code, _, _ := run(t, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	if code, _, errs := run(t, "compat", "run", "--reader", "sim:mynumber?seed=cli", "--label", "M / B", "--db", db, "--compare-modes"); code != 2 || !strings.Contains(errs, "one way only") {
		t.Errorf("--compare-modes on the direct simulator: exit %d, %q", code, errs)
	}
	if code, _, errs := run(t, "compat", "report", "--db", filepath.Join(t.TempDir(), "none.db"), "--out", t.TempDir()); code != 1 || !strings.Contains(errs, "results database") {
		t.Errorf("missing database: exit %d, %q", code, errs)
	}
}

func latestRun(t *testing.T, db string) []*compat.Run {
	t.Helper()
	d, err := compat.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	runs, err := d.Latest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

// TestCompatRunPIN: VERIFY and signing only with --test-pin; a wrong test
// PIN is tried once per run, never again.
func TestCompatRunPIN(t *testing.T) {
	dir := t.TempDir()
	uri := "sim:mynumber?via=direct&seed=cli"
	for _, tc := range []struct {
		label, pin            string
		verifyOK, verifyTried int
		signOK, skipped       int
		uri                   string
		compare               bool
	}{
		{label: "Card / none", pin: "", verifyOK: 0, verifyTried: 0, signOK: 0, skipped: 3},
		{label: "Card / wrong", pin: "9753", verifyOK: 0, verifyTried: 1, signOK: 0, skipped: 2},
		{label: "Card / right", pin: "1234", verifyOK: 3, verifyTried: 3, signOK: 3, skipped: 0},
		{label: "Card / stdin", pin: "-", verifyOK: 3, verifyTried: 3, signOK: 3, skipped: 0},
		{label: "Card / modes", uri: "sim:mynumber?via=pn532_i2c&seed=cli", compare: true},
	} {
		db := filepath.Join(dir, strings.ReplaceAll(tc.label, " / ", "-")+".db")
		u := uri
		if tc.uri != "" {
			u = tc.uri
		}
		args := []string{"compat", "run", "--reader", u, "--label", tc.label, "--trials", "3", "--db", db, "--board", "pi4", "--rf-profile", "lab-a"}
		if tc.compare {
			args = append(args, "--compare-modes")
		}
		if tc.pin != "" {
			args = append(args, "--test-pin", tc.pin)
		}
		var code int
		var out, errs string
		if tc.pin == "-" {
			code, out, errs = runStdin(t, "1234\n", args...)
		} else {
			code, out, errs = run(t, args...)
		}
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s\n%s", tc.label, code, out, errs)
		}
		if tc.pin != "" && tc.pin != "-" && (strings.Contains(out, tc.pin) || strings.Contains(errs, tc.pin)) {
			t.Fatalf("%s: the PIN appears in the output", tc.label)
		}
		runs := latestRun(t, db)
		if len(runs) != 1 {
			t.Fatalf("%s: %d runs stored", tc.label, len(runs))
		}
		r := runs[0]
		if tc.compare {
			if len(r.Modes) != 2 || r.Modes[0].Mode != "host" || r.Modes[1].Mode != "chip" || r.Modes[1].OK != 3 || r.ISODepMode != "host" {
				t.Errorf("%s: modes %+v, ISO-DEP %s", tc.label, r.Modes, r.ISODepMode)
			}
			continue
		}
		v, s := r.Step(compat.StepVerify), r.Step(compat.StepSign)
		if v.OK != tc.verifyOK || v.Trials != tc.verifyTried || v.Skipped != tc.skipped || s.OK != tc.signOK {
			t.Errorf("%s: verify %+v, sign %+v", tc.label, v, s)
		}
		if r.Key.Board != "pi4" || r.Key.RFProfile != "lab-a" || r.Key.Model != "Card" || r.Key.Reader != "sim" || !strings.HasPrefix(r.Software, "kazasu ") {
			t.Errorf("%s: key %+v, software %q", tc.label, r.Key, r.Software)
		}
		if !strings.Contains(out, "stored as run") || !strings.Contains(out, "activation 100%") {
			t.Errorf("%s: output %q", tc.label, out)
		}
	}
}

func TestCompatFleetReportDerive(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "lab.db")
	code, out, errs := run(t, "compat", "run", "--sim-fleet", "--db", db, "--trials", "2",
		"--profiles", "android-short-only,mynumber-d1,nonjpki", "--paths", "direct,pn532_i2c")
	if code != 0 || !strings.Contains(out, "6 runs (3 phones/cards × 2 reader paths)") {
		t.Fatalf("fleet: exit %d\n%s\n%s", code, out, errs)
	}
	rep := filepath.Join(dir, "report")
	if code, out, errs := run(t, "compat", "report", "--db", db, "--out", rep); code != 0 {
		t.Fatalf("report: exit %d\n%s\n%s", code, out, errs)
	}
	md, err := os.ReadFile(filepath.Join(rep, "matrix.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| phone / card | direct [sim] | pn532_i2c [sim] |", "| nonjpki / sim | 0% · not_jpki | 0% · not_jpki |", "android-short-only / sim (GPSETOKEN) | 100% · "} {
		if !strings.Contains(string(md), want) {
			t.Errorf("matrix.md lacks %q:\n%s", want, md)
		}
	}
	if _, err := os.Stat(filepath.Join(rep, "index.html")); err != nil {
		t.Fatal(err)
	}
	qf := filepath.Join(dir, "quirks.json")
	if code, out, errs := run(t, "compat", "derive", "--db", db, "--out", qf); code != 0 || !strings.Contains(out, "4 quirk profiles from 6 runs") {
		t.Fatalf("derive: exit %d\n%s\n%s", code, out, errs)
	}
	// Only one reader path's runs.
	qd := filepath.Join(dir, "direct.json")
	if code, out, errs := run(t, "compat", "derive", "--db", db, "--out", qd, "--readers", "direct"); code != 0 || !strings.Contains(out, "4 quirk profiles from 3 runs") {
		t.Fatalf("derive --readers: exit %d\n%s\n%s", code, out, errs)
	}
	if code, _, _ := run(t, "compat", "derive", "--db", db, "--out", qd, "--readers", "libnfc"); code != 1 {
		t.Fatalf("derive --readers with no runs: exit %d", code)
	}
	f, err := os.Open(qf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	set, err := quirks.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range set.Profiles {
		switch p.Match.Tech {
		case "A":
			if p.ExtendedAPDU == nil || *p.ExtendedAPDU || p.ReadChunk != 256 || p.PollOrder[0] != "A" {
				t.Errorf("short-only phone: %+v", p)
			}
		case "B":
			if p.ExtendedAPDU == nil || !*p.ExtendedAPDU || p.APDUTimeout < quirks.Duration(4900e6) || p.PollOrder[0] != "B" {
				t.Errorf("FWI 13 card: %+v", p)
			}
		default:
			t.Errorf("unexpected profile %+v", p)
		}
	}
}

func runStdin(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runMain(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}
