package compat

import (
	"context"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"kazasu/daemon/quirks"
	"kazasu/drivers/iso14443"
	"kazasu/drivers/libnfc"
	"kazasu/drivers/nfc"
	"kazasu/drivers/reader"
	"kazasu/drivers/sim/card"
)

// The fleet runs once per test binary (about 20 s of mostly idle waiting
// on the emulated PN532 host links) and is shared by the tests below.
var (
	fleetOnce sync.Once
	fleetRuns []*Run
	fleetErr  error
)

const fleetTrials = 3

func simFleet(t *testing.T) []*Run {
	t.Helper()
	if testing.Short() {
		t.Skip("the simulated fleet takes about 20 s")
	}
	fleetOnce.Do(func() {
		fleetRuns, fleetErr = SimFleet(context.Background(), FleetOptions{Trials: fleetTrials, Software: "test"})
	})
	if fleetErr != nil {
		t.Fatal(fleetErr)
	}
	return fleetRuns
}

func runOf(runs []*Run, profile, path string) *Run {
	for _, r := range runs {
		if r.Key.Model == profile && r.Key.Reader == path {
			return r
		}
	}
	return nil
}

// TestSimFleetFillsMatrix: every profile × every path, stored and read
// back, fills the matrix. Without the libnfc build tag there are four
// paths (direct, PN532 UART, I2C, SPI); with it five.
func TestSimFleetFillsMatrix(t *testing.T) {
	runs := simFleet(t)
	profiles, paths := FleetProfiles(), FleetPaths()
	if len(profiles) < 20 {
		t.Fatalf("%d simulated profiles, want at least 20", len(profiles))
	}
	wantPaths := 4
	if libnfc.Available {
		wantPaths = 5
	}
	if len(paths) != wantPaths {
		t.Fatalf("paths %v, want %d", paths, wantPaths)
	}
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "fleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, r := range runs {
		if err := db.Insert(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	latest, err := db.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := BuildMatrix(latest)
	if len(m.Rows) != len(profiles) || len(m.Cols) != len(paths) || len(m.Cells) != len(profiles)*len(paths) {
		t.Fatalf("matrix %d rows × %d cols, %d cells; want %d × %d full", len(m.Rows), len(m.Cols), len(m.Cells), len(profiles), len(paths))
	}
	for _, p := range profiles {
		for _, path := range paths {
			r := runOf(latest, p, path)
			if r == nil {
				t.Fatalf("no run for %s on %s", p, path)
			}
			if r.Trials != fleetTrials || r.ActivationRate() == 0 || r.TimeBase != "modelled" || r.Software != "test" {
				t.Errorf("%s on %s: trials %d, activation %.2f, time base %q", p, path, r.Trials, r.ActivationRate(), r.TimeBase)
			}
			if strings.HasPrefix(path, "pn532_") != strings.HasPrefix(r.RFSettings, "CIU TxMode ") {
				t.Errorf("%s on %s: RF settings %q", p, path, r.RFSettings)
			}
			if r.ReaderModel == "" || r.ReaderFirmware == "" || r.Key.Board != "sim" || r.Key.RFProfile != "default" {
				t.Errorf("%s on %s: reader %q %q, board %q, RF %q", p, path, r.ReaderModel, r.ReaderFirmware, r.Key.Board, r.Key.RFProfile)
			}
		}
	}
	// Cards and phones that can do JPKI complete it on the direct path;
	// the others fail with the reason their kind implies.
	for _, p := range card.Profiles() {
		r := runOf(latest, p.Name, reader.ViaDirect)
		switch p.Kind {
		case card.KindJuki:
			wantErr(t, r, KindUnsupportedToken)
		case card.KindNonJPKI, card.KindTypeA:
			wantErr(t, r, KindNotJPKI)
		case card.KindIPhone:
			wantErr(t, r, KindNotArmed)
		default:
			if p.DropAtAPDU == 0 && !p.WTX.Disabled && r.TransactionRate() != 1 {
				t.Errorf("%s: JPKI %.2f, errors %v", p.Name, r.TransactionRate(), r.Errors)
			}
		}
	}
}

func wantErr(t *testing.T, r *Run, kind string) {
	t.Helper()
	if r.TransactionRate() != 0 || r.Errors[kind] != r.Trials {
		t.Errorf("%s: JPKI %.2f, errors %v; want every trial failing with %s", r.Key.Model, r.TransactionRate(), r.Errors, kind)
	}
}

func targetOf(t *testing.T, r *Run) nfc.Target {
	t.Helper()
	atqb, err1 := hex.DecodeString(r.ATQB)
	ats, err2 := hex.DecodeString(r.ATS)
	if err1 != nil || err2 != nil {
		t.Fatalf("%s: ATQB %q ATS %q", r.Key.Model, r.ATQB, r.ATS)
	}
	tech := nfc.TechA
	if r.Tech == "B" {
		tech = nfc.TechB
	}
	return nfc.Target{Tech: tech, ATQB: atqb, ATS: ats}
}

// TestFleetQuirksInResultsAndProfiles checks, for every profile of the
// simulated table, that each of its quirks shows in the run results and
// in the quirk profile derived for its activation features. The
// expectations come from the profile table itself, so a new quirk
// without a check fails here.
func TestFleetQuirksInResultsAndProfiles(t *testing.T) {
	runs := simFleet(t)
	all := Derive(runs)
	var direct []*Run
	for _, r := range runs {
		if r.Key.Reader == reader.ViaDirect {
			direct = append(direct, r)
		}
	}
	perPath := Derive(direct) // no libnfc limits merged in
	for _, p := range card.Profiles() {
		r := runOf(runs, p.Name, reader.ViaDirect)
		if r == nil {
			t.Fatalf("no run of %s", p.Name)
		}
		errf := func(format string, args ...any) {
			t.Helper()
			t.Errorf("%s (%s): %s", p.Name, p.Note, fmt.Sprintf(format, args...))
		}
		// Radio side.
		wantTech := "A"
		if slices.Contains(p.Techs, nfc.TechB) {
			wantTech = "B" // the default poll order is B, then A
		}
		if r.Tech != wantTech {
			errf("tech %s, want %s", r.Tech, wantTech)
		}
		if r.FSC != iso14443.FrameSize(p.FSCI) {
			errf("FSC %d, want %d", r.FSC, iso14443.FrameSize(p.FSCI))
		}
		if r.FWT() != iso14443.FWT(p.FWI).Truncate(time.Microsecond) {
			errf("FWT %v, want %v", r.FWT(), iso14443.FWT(p.FWI))
		}
		// SFGI travels only in an extended (13-byte) ATQB, which a PICC
		// sends only when the PCD's REQB/WUPB asks for it.
		wantSFGT := time.Duration(0)
		if len(r.ATQB) == 2*13 {
			wantSFGT = iso14443.SFGT(p.SFGI)
		}
		if time.Duration(r.SFGTus)*time.Microsecond != wantSFGT.Truncate(time.Microsecond) {
			errf("SFGT %dµs with ATQB %s, want %v", r.SFGTus, r.ATQB, wantSFGT)
		}
		if r.CIDSupported != p.CID {
			errf("CID supported %v, want %v", r.CIDSupported, p.CID)
		}
		if wantRandom := p.RandomID && p.ID == nil; r.RandomID != wantRandom || (!wantRandom && r.IDsSeen != 1) {
			errf("random ID %v (%d IDs), want %v", r.RandomID, r.IDsSeen, wantRandom)
		}
		if !r.RetapOK {
			errf("re-tap failed: %+v", r.Step(StepRetap))
		}
		jpkiKind := p.Kind != card.KindJuki && p.Kind != card.KindNonJPKI && p.Kind != card.KindTypeA
		// APDU level: the sweep runs unless the token drops every tap or
		// the session dies at the signature.
		sweeps := jpkiKind && (p.DropAtAPDU == 0 || p.DropTaps > 0) && !p.WTX.Disabled
		if sweeps != (r.MaxShortResponse > 0) {
			errf("sweep ran %v (max short %d, limit %q), want %v", r.MaxShortResponse > 0, r.MaxShortResponse, r.ResponseLimit, sweeps)
		}
		if sweeps {
			if r.ExtendedOK == p.ShortOnly {
				errf("extended OK %v with short-only %v (%s)", r.ExtendedOK, p.ShortOnly, r.ResponseLimit)
			}
			if p.ShortOnly != strings.Contains(r.CommandLimit, "6700") {
				errf("command limit %q with short-only %v", r.CommandLimit, p.ShortOnly)
			}
			if !p.ShortOnly && r.MaxCommand < 7+FleetMaxCommand {
				errf("max command %d: chaining did not carry %d bytes", r.MaxCommand, FleetMaxCommand)
			}
			if r.ResponseChunk != p.ResponseChunk {
				errf("61xx chunk %d, want %d", r.ResponseChunk, p.ResponseChunk)
			}
			if p.Kind != card.KindIPhone { // an unarmed iPhone reads only the token EF
				want := "filler"
				switch {
				case p.ExactLe:
					want = "6Cxx"
				case p.ExactEF:
					want = "6282"
				}
				if r.EOFStatus != want {
					errf("end of EF %q, want %q", r.EOFStatus, want)
				}
			}
		}
		// Timing and S(WTX), where the signature ran.
		if sign := r.Step(StepSign); sign.OK > 0 {
			if time.Duration(sign.P50us)*time.Microsecond < p.Timing.Sign {
				errf("sign p50 %v below the token's %v", time.Duration(sign.P50us)*time.Microsecond, p.Timing.Sign)
			}
			fwtNeedsWTX := p.Timing.Sign > iso14443.FWT(p.FWI)
			switch {
			case p.WTX.Storm > 0 && r.WTXSeen < p.WTX.Storm*fleetTrials*5:
				errf("S(WTX) storm not seen: %d", r.WTXSeen)
			case fwtNeedsWTX && r.SignWTX == 0:
				errf("signing %v at FWT %v without S(WTX)", p.Timing.Sign, iso14443.FWT(p.FWI))
			case !fwtNeedsWTX && p.WTX.Storm == 0 && r.WTXSeen != 0:
				errf("%d S(WTX) from a token that needs none", r.WTXSeen)
			}
		}
		if p.Timing.APDU > 0 {
			if tok := r.Step(StepToken); tok.OK > 0 && time.Duration(tok.P50us)*time.Microsecond < 2*p.Timing.APDU {
				errf("token step p50 %v with %v per APDU", time.Duration(tok.P50us)*time.Microsecond, p.Timing.APDU)
			}
		}
		if p.WTX.Disabled && r.WTXSeen != 0 {
			errf("%d S(WTX) from a token that never sends them", r.WTXSeen)
		}
		if p.DropAtAPDU > 0 && r.Errors["timeout"]+r.Errors["target_gone"] == 0 {
			errf("drop at APDU %d not seen: errors %v", p.DropAtAPDU, r.Errors)
		}

		// The derived profiles.
		if !jpkiKind || r.Key.Token == "" {
			if prof := all.Lookup(targetOf(t, r), r.Key.Token); prof != nil && r.Key.Token != "" {
				errf("profile %s derived for a non-JPKI target", prof.Name)
			}
			continue
		}
		for _, set := range []*quirks.Set{all, perPath} {
			prof := set.Lookup(targetOf(t, r), r.Key.Token)
			if prof == nil {
				errf("no derived profile for features %s, token %s", r.Features, r.Key.Token)
				continue
			}
			// Every path carries 256-byte answers and 255-byte commands
			// (signatures need them): a smaller limit is a sweep bug.
			if (prof.MaxResponseAPDU != 0 && prof.MaxResponseAPDU < 258) || (prof.MaxCommandAPDU != 0 && prof.MaxCommandAPDU < 260) {
				errf("profile %s limits: command %d, response %d", prof.Name, prof.MaxCommandAPDU, prof.MaxResponseAPDU)
			}
			if !strings.Contains(prof.Evidence, p.Name) {
				errf("profile %s evidence lacks the model: %s", prof.Name, prof.Evidence)
			}
			if want := wantTech; prof.PollOrder[0] != want {
				errf("profile %s polls %v first, want %s", prof.Name, prof.PollOrder, want)
			}
			if d := time.Duration(prof.APDUTimeout); d < 2*r.FWT() {
				errf("profile %s APDU timeout %v below 2 FWT (%v)", prof.Name, d, iso14443.FWT(p.FWI))
			}
			if sign := r.Step(StepSign); sign.OK > 0 && time.Duration(prof.SignTimeout) < 3*time.Duration(sign.P95us)*time.Microsecond {
				errf("profile %s sign timeout %v below 3 × p95 %v", prof.Name, time.Duration(prof.SignTimeout), time.Duration(sign.P95us)*time.Microsecond)
			}
			if sweeps {
				if p.ShortOnly && (prof.ExtendedAPDU == nil || *prof.ExtendedAPDU || prof.ReadChunk == 0) {
					errf("short-only, but profile %s: extended %v, read chunk %d", prof.Name, *prof.ExtendedAPDU, prof.ReadChunk)
				}
				if p.ResponseChunk > 0 && (prof.ReadChunk == 0 || prof.ReadChunk > p.ResponseChunk || !strings.Contains(prof.Evidence, "61xx")) {
					errf("61xx chunks, but profile %s reads %d (%s)", prof.Name, prof.ReadChunk, prof.Evidence)
				}
				if p.ExactLe && !strings.Contains(prof.Evidence, "6Cxx") {
					errf("profile %s evidence lacks 6Cxx: %s", prof.Name, prof.Evidence)
				}
			}
			if !p.CID && !strings.Contains(prof.Evidence, "no CID") {
				errf("profile %s evidence lacks no CID: %s", prof.Name, prof.Evidence)
			}
			if p.RandomID && p.ID == nil && !strings.Contains(prof.Evidence, "random ID") {
				errf("profile %s evidence lacks random ID: %s", prof.Name, prof.Evidence)
			}
			if p.FSCI < 4 && !strings.Contains(prof.Evidence, "commands chained") {
				errf("profile %s evidence lacks the small FSC: %s", prof.Name, prof.Evidence)
			}
		}
		// Where the paths differ (libnfc carries no extended APDUs), the
		// merged profile takes the smaller limit.
		if libnfc.Available && sweeps {
			if prof := all.Lookup(targetOf(t, r), r.Key.Token); prof != nil && *prof.ExtendedAPDU {
				errf("profile %s allows extended APDUs that libnfc did not carry", prof.Name)
			}
		}
	}
	// Profiles load back and match by features, never by ID.
	var sb strings.Builder
	if err := all.Write(&sb); err != nil {
		t.Fatal(err)
	}
	if _, err := quirks.Load(strings.NewReader(sb.String())); err != nil {
		t.Fatalf("derived profiles do not load: %v", err)
	}
}
