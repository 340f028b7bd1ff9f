package compat

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"kazasu/daemon/quirks"
	"kazasu/drivers/jpki"
)

// Suite step names, in the order they run.
const (
	StepActivate  = "activate"
	StepSelect    = "select"
	StepToken     = "token"
	StepCert      = "cert"
	StepPINStatus = "pin_status"
	StepVerify    = "verify"
	StepSign      = "sign"
	StepRetap     = "retap"
)

// StepOrder lists the steps for reports.
var StepOrder = []string{StepActivate, StepSelect, StepToken, StepCert, StepPINStatus, StepVerify, StepSign, StepRetap}

var jpkiStep = map[string]bool{StepSelect: true, StepToken: true, StepCert: true, StepPINStatus: true, StepVerify: true, StepSign: true}

// Derive turns runs into quirk profiles: one per (tech, activation features,
// token) group, and one per (tech, activation features) for the time before
// the token is identified (no token in its match, so a token's own profile
// wins once the label is read), merging the runs of all readers and boards conservatively
// (smallest working limits, largest timeouts) and picking the ISO-DEP mode
// that gave the best transaction rate, then the fastest certificate read.
// Runs where nothing activated, or no supported JPKI token was identified
// (cards without JPKI, the refused Juki card), produce no profile.
func Derive(runs []*Run) *quirks.Set {
	type group struct {
		tech, features, token string
		runs                  []*Run
	}
	groups := map[string]*group{}
	var order []string
	for _, r := range runs {
		if tok, _ := jpki.ParseTokenLabel([]byte(r.Key.Token)); r.Tech == "" || r.ActivationRate() == 0 || tok == jpki.TokenUnknown || tok == jpki.TokenJuki {
			continue // nothing activated, no JPKI token, or one kazasud refuses
		}
		// Each run counts for its token's profile and for the profile that
		// applies before the token is identified (jpki options are chosen
		// when the session opens; phones of different token types may
		// share their activation features).
		for _, token := range []string{r.Key.Token, ""} {
			k := r.Tech + "|" + r.Features + "|" + token
			g := groups[k]
			if g == nil {
				g = &group{tech: r.Tech, features: r.Features, token: token}
				groups[k] = g
				order = append(order, k)
			}
			g.runs = append(g.runs, r)
		}
	}
	sort.Strings(order)
	set := &quirks.Set{Version: quirks.Version}
	names := map[string]int{}
	for _, k := range order {
		g := groups[k]
		p := quirks.Profile{Match: quirks.Match{Tech: g.tech, Features: g.features, Token: g.token}}
		models := map[string]bool{}
		var readers []string
		var extYes, extNo bool
		var apduT, signT, fwt time.Duration
		var trials, ok int
		modeScore := map[string][2]float64{} // mode → {best transaction rate, -cert p50}
		cmpScore := map[string][2]float64{}  // mode → {worst comparison rate, -worst cert p50}
		notes := map[string]bool{}
		for _, r := range g.runs {
			models[r.Key.Model] = true
			readers = append(readers, r.Key.Reader)
			fwt = max(fwt, r.FWT())
			// Limits come only from sweeps that stopped at a failure or
			// refusal; a sweep that ran out of EF or ceiling bounds nothing.
			if r.CommandCapped && r.MaxCommand > 0 && (p.MaxCommandAPDU == 0 || r.MaxCommand < p.MaxCommandAPDU) {
				p.MaxCommandAPDU = r.MaxCommand
			}
			if r.ShortCapped || r.ExtendedCapped {
				resp := 2 + max(r.MaxShortResponse, r.MaxExtendedResponse) // + SW1 SW2
				if r.ShortCapped {
					resp = 2 + r.MaxShortResponse
				}
				if resp > 2 && (p.MaxResponseAPDU == 0 || resp < p.MaxResponseAPDU) {
					p.MaxResponseAPDU = resp
				}
			}
			swept := r.MaxShortResponse > 0
			switch {
			case r.ExtendedCapped || r.ResponseChunk > 0:
				extNo = true
			case r.ExtendedOK && r.MaxExtendedResponse > 256:
				extYes = true
			}
			if swept {
				chunk := 256
				if r.ShortCapped {
					chunk = r.MaxShortResponse
				}
				if r.ResponseChunk > 0 {
					// Read no more than the token answers at once: no
					// GET RESPONSE round trips.
					chunk = min(chunk, r.ResponseChunk)
				}
				if p.ReadChunk == 0 || chunk < p.ReadChunk {
					p.ReadChunk = chunk
				}
			}
			for _, n := range runNotes(r) {
				notes[n] = true
			}
			for _, s := range r.Steps {
				d := time.Duration(s.P95us) * time.Microsecond
				switch {
				case s.Name == StepSign:
					signT = max(signT, d)
				case jpkiStep[s.Name]:
					apduT = max(apduT, d)
				}
				if jpkiStep[s.Name] {
					trials += s.Trials
					ok += s.OK
				}
			}
			sc, seen := modeScore[r.ISODepMode]
			cand := [2]float64{r.TransactionRate(), -float64(r.Step(StepCert).P50us)}
			if !seen || cand[0] > sc[0] || (cand[0] == sc[0] && cand[1] > sc[1]) {
				modeScore[r.ISODepMode] = cand
			}
			for _, m := range r.Modes {
				if m.Mode != "chip" && m.Mode != "host" {
					continue
				}
				cand := [2]float64{m.Rate(), -float64(m.CertP50us)}
				sc, seen := cmpScore[m.Mode]
				if !seen {
					sc = cand
				}
				cmpScore[m.Mode] = [2]float64{min(sc[0], cand[0]), min(sc[1], cand[1])}
			}
		}
		// Extended lengths: no if any run refused them (or answers in
		// 61xx pieces), yes if one read a whole EF with them, else unknown.
		switch {
		case extNo:
			f := false
			p.ExtendedAPDU = &f
		case extYes:
			t := true
			p.ExtendedAPDU = &t
			p.ReadChunk = 0
		default:
			p.ReadChunk = 0 // nothing measured: the reader's default
		}
		// Timeouts: three times the worst p95 seen, with floors that cover
		// one FWT at FWI 10 (309 ms) and a slow RSA signature, and at
		// least two (ordinary APDU) or four (signature) of the target's
		// FWTs, for targets that use long waiting times without S(WTX).
		p.APDUTimeout = quirks.Duration(max(3*apduT, 500*time.Millisecond, 2*fwt))
		p.SignTimeout = quirks.Duration(max(3*signT, 2*time.Second, 4*fwt))
		switch {
		case len(cmpScore) > 1:
			// Measured comparisons (PN532 paths): the mode whose worst
			// phone did best, then the faster certificate read.
			p.ISODepMode = bestMode(cmpScore)
		case len(modeScore) > 1:
			p.ISODepMode = bestMode(modeScore)
		}
		if g.tech == "A" {
			p.PollOrder = []string{"A", "B"}
		} else {
			p.PollOrder = []string{"B", "A"}
		}
		var ms []string
		for m := range models {
			ms = append(ms, m)
		}
		sort.Strings(ms)
		sort.Strings(readers)
		readers = dedup(readers)
		rate := 0.0
		if trials > 0 {
			rate = float64(ok) / float64(trials)
		}
		p.Evidence = fmt.Sprintf("%d runs; models %s; readers %s; JPKI steps %d/%d ok (%.0f%%)",
			len(g.runs), strings.Join(ms, ", "), strings.Join(readers, ", "), ok, trials, 100*rate)
		if len(notes) > 0 {
			var ns []string
			for n := range notes {
				ns = append(ns, n)
			}
			sort.Strings(ns)
			p.Evidence += "; seen: " + strings.Join(ns, ", ")
		}
		name := slug(strings.Join(ms, "+"))
		if g.token != "" {
			name += "-" + strings.ToLower(strings.TrimPrefix(g.token, "JPKIAP"))
		} else {
			name += "-any-token"
			p.Evidence = "before the token is identified: " + p.Evidence
		}
		if n := names[name]; n > 0 {
			names[name] = n + 1
			name = fmt.Sprintf("%s-%d", name, n+1)
		} else {
			names[name] = 1
		}
		p.Name = name
		set.Profiles = append(set.Profiles, p)
	}
	return set
}

// bestMode picks the mode with the best score (rate, then -latency),
// ignoring "" and breaking ties by name.
func bestMode(scores map[string][2]float64) string {
	best, bestSc := "", [2]float64{-1, 0}
	for m, sc := range scores {
		if m == "" {
			continue
		}
		if sc[0] > bestSc[0] || (sc[0] == bestSc[0] && sc[1] > bestSc[1]) || (sc == bestSc && m < best) {
			best, bestSc = m, sc
		}
	}
	return best
}

// runNotes lists what a run showed beyond the profile's numbers, for the
// profile's evidence (kazasud applies the numbers; people read the notes).
func runNotes(r *Run) []string {
	var n []string
	add := func(on bool, s string) {
		if on {
			n = append(n, s)
		}
	}
	add(r.FSC > 0 && r.FSC < 64, fmt.Sprintf("FSC %d (commands chained)", r.FSC))
	add(r.FWTus > 0 && r.FWTus < 10000, fmt.Sprintf("short FWT %.1f ms", float64(r.FWTus)/1000))
	add(r.FWTus > 1000000, fmt.Sprintf("long FWT %.0f ms", float64(r.FWTus)/1000))
	add(r.SFGTus > 0, fmt.Sprintf("SFGT %.1f ms", float64(r.SFGTus)/1000))
	add(!r.CIDSupported && r.Tech != "", "no CID")
	add(r.RandomID, "random ID per tap")
	add(!r.RandomID && r.IDsSeen == 1 && r.Trials > 1, "fixed ID")
	add(r.ResponseChunk > 0, fmt.Sprintf("61xx every %d bytes", r.ResponseChunk))
	add(r.EOFStatus == "6Cxx", "6Cxx at the end of an EF")
	add(r.EOFStatus == "6282", "exact-size EFs")
	add(r.MaxShortResponse > 0 && !r.ExtendedOK && strings.Contains(r.ResponseLimit, "6700"), "extended Le refused (6700)")
	add(strings.Contains(r.CommandLimit, "6700"), "extended Lc refused (6700)")
	add(r.WTXObserved && r.SignWTX > 0, fmt.Sprintf("S(WTX) while signing (%d)", r.SignWTX))
	add(r.WTXObserved && r.Trials > 0 && r.WTXSeen-r.Trials*r.SignWTX > 5*r.Trials, "S(WTX) outside signing")
	add(r.Errors["target_gone"]+r.Errors["timeout"] > 0 && r.RetapOK, "drops, re-tap recovers")
	add(r.TransactionRate() == 0 && r.ActivationRate() > 0, "JPKI never completed")
	return n
}

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

func slug(s string) string {
	s = strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if s == "" {
		return "target"
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

func dedup(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
