// Package quirks holds per-token tuning profiles ("quirk profiles") derived
// by the phone-model compatibility lab (kazasu compat) and applied by kazasud:
// the largest APDUs a phone takes, its timeouts, the ISO-DEP mode and poll
// order that work best with it.
//
// Profiles are data: a JSON file (version 1) loaded strictly. A profile
// matches a target by its activation features — the Type B ATQB application
// data and protocol info (never the PUPI, which phones randomise), or the
// Type A ATS (never the UID) — optionally narrowed by the JPKI token label.
// The most specific matching profile wins.
//
// What kazasud applies, and when: the ISO-DEP mode at the tap itself, on
// readers that choose it after activation (PN532), from profiles without a
// token label (the label is read later); timeouts and read sizes once the
// profile matches, narrowed by the token label when it is known. The poll
// order is recorded for operators but not applied per tap: it would have to
// be chosen before any target is known.
package quirks

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"kazasu/drivers/nfc"
)

// Version is the file format version this package reads and writes.
const Version = 1

// Match selects the targets a profile applies to.
type Match struct {
	// Tech is "A" or "B"; empty matches both.
	Tech string `json:"tech,omitempty"`
	// Features is a hex prefix of the target's feature string (see
	// Features); empty matches any target of the tech.
	Features string `json:"features,omitempty"`
	// Token is a JPKI token label (e.g. "JPKIAPGPSETOKEN"); empty matches
	// any token.
	Token string `json:"token,omitempty"`
}

// Profile is the tuning for one kind of target.
type Profile struct {
	Name  string `json:"name"`
	Match Match  `json:"match"`
	// MaxCommandAPDU and MaxResponseAPDU bound APDU sizes (bytes, header
	// and SW included); 0 = no limit known.
	MaxCommandAPDU  int `json:"max_command_apdu,omitempty"`
	MaxResponseAPDU int `json:"max_response_apdu,omitempty"`
	// ExtendedAPDU says whether extended-length APDUs work; nil = unknown.
	ExtendedAPDU *bool `json:"extended_apdu,omitempty"`
	// ReadChunk is the READ BINARY Le to use (1..65536); 0 = default.
	ReadChunk int `json:"read_chunk,omitempty"`
	// APDUTimeout bounds one ordinary APDU, SignTimeout the signature
	// command (cards and phones may need several S(WTX)).
	APDUTimeout Duration `json:"apdu_timeout,omitempty"`
	SignTimeout Duration `json:"sign_timeout,omitempty"`
	// ISODepMode is "chip" or "host" ("" = reader default).
	ISODepMode string `json:"isodep_mode,omitempty"`
	// PollOrder is e.g. ["A","B"] for phones that only present as A.
	PollOrder []string `json:"poll_order,omitempty"`
	// Evidence says where the profile came from (runs, trials, success).
	Evidence string `json:"evidence,omitempty"`
}

// Duration is a time.Duration written as a Go duration string in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"1.5s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if v < 0 || v > time.Minute {
		return fmt.Errorf("duration %s out of range 0..1m", v)
	}
	*d = Duration(v)
	return nil
}

// Set is a loaded profile file.
type Set struct {
	Version  int       `json:"version"`
	Profiles []Profile `json:"profiles"`
}

// maxFile bounds a profile file.
const maxFile = 4 << 20

// Load reads a profile file strictly: unknown fields, trailing data, a wrong
// version and invalid values are errors naming the profile.
func Load(r io.Reader) (*Set, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("quirks: read: %w", err)
	}
	if len(b) > maxFile {
		return nil, fmt.Errorf("quirks: file larger than %d bytes", maxFile)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s Set
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("quirks: %w", err)
	}
	if dec.More() {
		return nil, errors.New("quirks: trailing data after the profile set")
	}
	if s.Version != Version {
		return nil, fmt.Errorf("quirks: version %d, want %d", s.Version, Version)
	}
	seen := map[string]bool{}
	for i := range s.Profiles {
		p := &s.Profiles[i]
		if err := p.validate(); err != nil {
			return nil, fmt.Errorf("quirks: profile %d (%q): %w", i, p.Name, err)
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("quirks: profile %q defined twice", p.Name)
		}
		seen[p.Name] = true
	}
	return &s, nil
}

func (p *Profile) validate() error {
	if p.Name == "" {
		return errors.New("name is empty")
	}
	switch p.Match.Tech {
	case "", "A", "B":
	default:
		return fmt.Errorf("match.tech %q: want A, B or empty", p.Match.Tech)
	}
	if _, err := hex.DecodeString(p.Match.Features); err != nil || strings.ToUpper(p.Match.Features) != p.Match.Features {
		return fmt.Errorf("match.features %q: want upper-case hex", p.Match.Features)
	}
	if p.MaxCommandAPDU < 0 || p.MaxCommandAPDU > 65544 || p.MaxResponseAPDU < 0 || p.MaxResponseAPDU > 65538 {
		return errors.New("APDU limits out of range")
	}
	if (p.MaxCommandAPDU != 0 && p.MaxCommandAPDU < 5) || (p.MaxResponseAPDU != 0 && p.MaxResponseAPDU < 2) {
		return errors.New("APDU limits too small to carry any APDU")
	}
	if p.ReadChunk < 0 || p.ReadChunk > 65536 {
		return fmt.Errorf("read_chunk %d out of range 0..65536", p.ReadChunk)
	}
	switch p.ISODepMode {
	case "", "chip", "host":
	default:
		return fmt.Errorf("isodep_mode %q: want chip, host or empty", p.ISODepMode)
	}
	for _, t := range p.PollOrder {
		if t != "A" && t != "B" {
			return fmt.Errorf("poll_order entry %q: want A or B", t)
		}
	}
	return nil
}

// Features is the stable feature string of a target, in upper-case hex:
// Type B: application data (4 bytes) + protocol info (3 or 4 bytes) of the
// ATQB; Type A: the ATS. Random identifiers (PUPI, UID) are left out.
func Features(t nfc.Target) string {
	switch t.Tech {
	case nfc.TechB:
		if len(t.ATQB) >= 12 {
			return strings.ToUpper(hex.EncodeToString(t.ATQB[5:]))
		}
	case nfc.TechA:
		return strings.ToUpper(hex.EncodeToString(t.ATS))
	}
	return ""
}

// Lookup returns the most specific profile matching the target and token
// label (token may be empty before the token EF is read), or nil.
// Specificity: a token match counts more than any feature prefix; a longer
// feature prefix more than a shorter one; a tech match least.
func (s *Set) Lookup(t nfc.Target, token string) *Profile {
	if s == nil {
		return nil
	}
	feat := Features(t)
	best, bestScore := -1, -1
	for i, p := range s.Profiles {
		m := p.Match
		if m.Tech != "" && m.Tech != t.Tech.String() {
			continue
		}
		if !strings.HasPrefix(feat, m.Features) {
			continue
		}
		if m.Token != "" && m.Token != token {
			continue
		}
		score := len(m.Features)
		if m.Tech != "" {
			score++
		}
		if m.Token != "" {
			score += 1 << 16
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		return nil
	}
	return &s.Profiles[best]
}

// Write encodes the set as indented JSON with profiles sorted by name, so
// derived files diff well.
func (s *Set) Write(w io.Writer) error {
	out := *s
	out.Version = Version
	out.Profiles = append([]Profile(nil), s.Profiles...)
	sort.Slice(out.Profiles, func(i, j int) bool { return out.Profiles[i].Name < out.Profiles[j].Name })
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// PollOrderTechs converts the profile's poll order for nfc.PollOptions.
func (p *Profile) PollOrderTechs() []nfc.Tech {
	var out []nfc.Tech
	for _, t := range p.PollOrder {
		if t == "A" {
			out = append(out, nfc.TechA)
		} else {
			out = append(out, nfc.TechB)
		}
	}
	return out
}

// Mode converts the profile's ISO-DEP mode.
func (p *Profile) Mode() nfc.ISODepMode {
	switch p.ISODepMode {
	case "chip":
		return nfc.ISODepChip
	case "host":
		return nfc.ISODepHost
	}
	return nfc.ISODepAuto
}
