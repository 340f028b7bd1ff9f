package compat

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"kazasu/daemon/quirks"
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
// token) group, merging the runs of all readers and boards conservatively
// (smallest working limits, largest timeouts) and picking the ISO-DEP mode
// that gave the best transaction rate, then the fastest certificate read.
// Groups where nothing ever activated produce no profile.
func Derive(runs []*Run) *quirks.Set {
	type group struct {
		tech, features, token string
		runs                  []*Run
	}
	groups := map[string]*group{}
	var order []string
	for _, r := range runs {
		if r.Tech == "" || r.ActivationRate() == 0 {
			continue
		}
		k := r.Tech + "|" + r.Features + "|" + r.Key.Token
		g := groups[k]
		if g == nil {
			g = &group{tech: r.Tech, features: r.Features, token: r.Key.Token}
			groups[k] = g
			order = append(order, k)
		}
		g.runs = append(g.runs, r)
	}
	sort.Strings(order)
	set := &quirks.Set{Version: quirks.Version}
	names := map[string]int{}
	for _, k := range order {
		g := groups[k]
		p := quirks.Profile{Match: quirks.Match{Tech: g.tech, Features: g.features, Token: g.token}}
		models := map[string]bool{}
		var readers []string
		extAll := true
		var apduT, signT time.Duration
		var trials, ok int
		modeScore := map[string][2]float64{} // mode → {best transaction rate, -cert p50}
		for _, r := range g.runs {
			models[r.Key.Model] = true
			readers = append(readers, r.Key.Reader)
			if r.MaxCommand > 0 && (p.MaxCommandAPDU == 0 || r.MaxCommand < p.MaxCommandAPDU) {
				p.MaxCommandAPDU = r.MaxCommand
			}
			resp := r.MaxShortResponse
			if r.ExtendedOK && r.MaxExtendedResponse > resp {
				resp = r.MaxExtendedResponse
			}
			if resp > 0 {
				resp += 2 // SW1 SW2
				if p.MaxResponseAPDU == 0 || resp < p.MaxResponseAPDU {
					p.MaxResponseAPDU = resp
				}
			}
			if !r.ExtendedOK {
				extAll = false
				if r.MaxShortResponse > 0 && (p.ReadChunk == 0 || r.MaxShortResponse < p.ReadChunk) {
					p.ReadChunk = r.MaxShortResponse
				}
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
		}
		if extAll {
			t := true
			p.ExtendedAPDU = &t
			p.ReadChunk = 0
		} else {
			f := false
			p.ExtendedAPDU = &f
		}
		// Timeouts: three times the worst p95 seen, with floors that cover
		// one FWT at FWI 10 (309 ms) and a slow RSA signature.
		p.APDUTimeout = quirks.Duration(max(3*apduT, 500*time.Millisecond))
		p.SignTimeout = quirks.Duration(max(3*signT, 2*time.Second))
		if len(modeScore) > 1 {
			best, bestSc := "", [2]float64{-1, 0}
			for m, sc := range modeScore {
				if m == "" {
					continue
				}
				if sc[0] > bestSc[0] || (sc[0] == bestSc[0] && sc[1] > bestSc[1]) || (sc == bestSc && m < best) {
					best, bestSc = m, sc
				}
			}
			p.ISODepMode = best
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
		name := slug(strings.Join(ms, "+"))
		if g.token != "" {
			name += "-" + strings.ToLower(strings.TrimPrefix(g.token, "JPKIAP"))
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
