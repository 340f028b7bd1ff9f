// Package compat is kazasu's phone-model compatibility lab: it runs a test
// suite on whatever is tapped on a reader, stores the results in an embedded
// SQL database keyed by phone model × OS build × token type × reader × board
// × RF profile, derives quirk profiles (daemon/quirks) that kazasud loads,
// and renders an HTML and Markdown report (the matrix the customer's 2017
// working group drew up by hand for six reader models and dozens of Android
// phones, seed 002).
//
// # The suite (RunSuite)
//
// Each trial is one tap: activation (technology, ATQB/ATS, FSC/FSD, FWT,
// SFGT, CID, bit rates, who runs ISO-DEP, whether the PUPI/UID changes per
// tap), then the JPKI steps in the kiosk's order for the token (card:
// certificate, PIN status, VERIFY, signature; Android: PIN status, VERIFY,
// certificate, signature; iPhone: certificate, PIN status, signature), then
// removal (the presence check must notice it) and a re-tap that must
// activate and answer SELECT again. Activation and re-tap times cover the
// poll cycle that found the target (and the SELECT), not the wait for a
// person to tap. A step after a failure counts as not
// reached, so the last step's rate is the share of taps on which the whole
// transaction worked; failures are counted by kind (nfc kinds, JPKI
// refusals, status words) and never end the run. VERIFY and signing run
// only with a test PIN, never below two tries left and never again after
// one refusal; the PIN is neither logged nor stored.
//
// Once per run (spread over taps if a phase breaks the session) an APDU
// size sweep reads the auth CA certificate (or the token EF) with short Le
// up to 256 and extended Le up to the EF's size, looks at the raw answers
// (61xx chunks, the answer past the end of an exact-size EF), and sends
// GET DATA with data fields growing through short Lc to extended Lc
// (chaining in both directions on the way). S(WTX) requests are counted
// from the RF trace where the host runs ISO-DEP. On readers that can run
// ISO-DEP either way (PN532) a comparison of the other mode can be added.
//
// Latencies are wall-clock time on real readers and the simulators'
// modelled time on sim readers (Run.TimeBase): simreader's Elapsed and the
// PN532 emulator's meter charge air time, host-link bytes, chip firmware
// and card processing without sleeping, so the fleet runs in seconds and
// its numbers do not depend on the machine's load.
//
// # The simulated fleet (SimFleet)
//
// Every profile of drivers/sim/card (cards, Android and iPhone variants
// with quirks: Type A/B, FSC, FWI, SFGI, WTX habits, short-only APDUs,
// 61xx/6Cxx answers, slow processing, RF drops, random IDs, no CID) over
// every simulated reader path: the direct simulator and the PN532 driver
// over the emulator's UART (a pty), I2C and SPI, plus libnfc's pn532_uart
// driver when built with the libnfc tag — four paths without it, five
// with it. The simulated tokens are test tokens, so their own PINs are
// used for VERIFY and signing.
//
// # Quirk profiles (Derive)
//
// Runs are grouped by what a kiosk can see before and after identifying
// the token (technology, ATQB/ATS features without IDs, token label), so
// phones that look the same on air share one conservative profile: the
// smallest APDU limits any reader path carried, extended lengths only if
// every run read a whole EF with them, a READ BINARY chunk no larger than
// the token's 61xx pieces, timeouts from the slowest p95 with FWT floors,
// the ISO-DEP mode whose worst phone did best, and the poll order of the
// technology seen. Evidence lists the runs and the quirks seen.
//
// Known blind spots: the SFGI of an extended ATQB is only sent when a PCD
// asks for it, and no kazasu PCD does, so that quirk shows as SFGT 0;
// S(WTX) are invisible when the reader chip runs ISO-DEP.
package compat

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "modernc.org/sqlite" // pure-Go SQLite (pinned v1.60.1, see deps.md)
)

// Key identifies what a run measured. Together with the start time it is
// unique in the database.
type Key struct {
	Model     string `json:"model"`      // phone or card model, e.g. "Pixel 8"
	OSBuild   string `json:"os_build"`   // e.g. "AP4A.250105.002"
	Token     string `json:"token"`      // JPKI token label, or "" if none
	Reader    string `json:"reader"`     // reader path: pn532_uart, pn532_i2c, pn532_spi, libnfc, ...
	Board     string `json:"board"`      // board profile, e.g. "pi4-uart"
	RFProfile string `json:"rf_profile"` // RF settings name
}

// Step is the outcome of one suite step over all trials.
type Step struct {
	Name   string   `json:"name"`
	OK     int      `json:"ok"`
	Trials int      `json:"trials"`
	P50us  int64    `json:"p50_us"`
	P95us  int64    `json:"p95_us"`
	Errors []string `json:"errors,omitempty"` // distinct error texts, at most a few
	// NotReached counts trials (included in Trials) where an earlier step
	// failed, so the last step's rate is the whole transaction's.
	NotReached int `json:"not_reached,omitempty"`
	// Skipped counts trials (not in Trials) where the step could not run
	// by design: VERIFY and signing without a test PIN, an Android
	// certificate without VERIFY, VERIFY on an iPhone.
	Skipped int `json:"skipped,omitempty"`
}

// ModeStat compares ISO-DEP modes on one reader: taps on which activation,
// the token and the certificate (Android: the token) worked, and the
// certificate read's median latency.
type ModeStat struct {
	Mode      string         `json:"mode"`
	OK        int            `json:"ok"`
	Trials    int            `json:"trials"`
	CertP50us int64          `json:"cert_p50_us"`
	Errors    map[string]int `json:"errors,omitempty"`
}

// Rate is OK/Trials.
func (m ModeStat) Rate() float64 {
	if m.Trials == 0 {
		return 0
	}
	return float64(m.OK) / float64(m.Trials)
}

// SuccessRate is OK/Trials (0 when nothing ran).
func (s Step) SuccessRate() float64 {
	if s.Trials == 0 {
		return 0
	}
	return float64(s.OK) / float64(s.Trials)
}

// Run is one `kazasu compat run`.
type Run struct {
	ID             int64     `json:"id"`
	Key            Key       `json:"key"`
	Label          string    `json:"label"` // as given: "MODEL / OS BUILD"
	Started        time.Time `json:"started"`
	Software       string    `json:"software"`
	ReaderURI      string    `json:"reader_uri"`
	ReaderModel    string    `json:"reader_model"`
	ReaderFirmware string    `json:"reader_firmware"`
	// RFSettings are the reader's RF registers as read during the run
	// (PN532: CIU framing, antenna, threshold, gain, conductances); the
	// operator's name for them is Key.RFProfile.
	RFSettings string `json:"rf_settings,omitempty"`
	Trials     int    `json:"trials"`
	// TimeBase says what the latencies measure: "wall" (a real reader)
	// or "modelled" (a simulator's timing model: air, host link, card
	// processing; see drivers/sim/simreader and pn532emu).
	TimeBase string `json:"time_base,omitempty"`

	// Activation features (from the last successful activation).
	Tech       string `json:"tech"`     // "A" or "B"
	Features   string `json:"features"` // quirks.Features of the target
	ATQB       string `json:"atqb,omitempty"`
	ATS        string `json:"ats,omitempty"`
	FSC        int    `json:"fsc"`
	FSD        int    `json:"fsd"`
	FWTus      int64  `json:"fwt_us"`
	BitRates   string `json:"bit_rates"`
	ISODepMode string `json:"isodep_mode"`
	SFGTus     int64  `json:"sfgt_us,omitempty"`
	// CIDSupported is the target's CID capability (ATQB FO, ATS TC);
	// CIDInUse the CID the reader chose (-1: none).
	CIDSupported bool `json:"cid_supported"`
	CIDInUse     int  `json:"cid_in_use"`
	// RandomID: the PUPI/UID changed between taps (IDsSeen distinct).
	RandomID bool `json:"random_id"`
	IDsSeen  int  `json:"ids_seen"`

	// APDU size sweep.
	MaxShortResponse    int  `json:"max_short_response"`    // largest short-Le answer that came back whole (≤ 256)
	MaxExtendedResponse int  `json:"max_extended_response"` // largest extended-Le answer (0: extended refused)
	MaxCommand          int  `json:"max_command"`           // largest command APDU the path carried
	ExtendedOK          bool `json:"extended_ok"`
	// SweepEF is the EF the response sweep read; ResponseLimit and
	// CommandLimit say where the sweeps stopped and why.
	SweepEF       string `json:"sweep_ef,omitempty"`
	ResponseLimit string `json:"response_limit,omitempty"`
	CommandLimit  string `json:"command_limit,omitempty"`
	// ShortCapped, ExtendedCapped and CommandCapped say a sweep stopped at
	// a failure or refusal, so its maximum is a limit of the path; when
	// false the maximum is only as far as the EF or the sweep went.
	ShortCapped    bool `json:"short_capped,omitempty"`
	ExtendedCapped bool `json:"extended_capped,omitempty"`
	CommandCapped  bool `json:"command_capped,omitempty"`
	// ResponseChunk > 0: the token answers long responses in pieces of
	// this size with 61xx (GET RESPONSE). EOFStatus is its answer to a
	// READ BINARY across the end of the certificate EF: "filler" (EF
	// longer than the DER), "6282", "6Cxx" (exact Le wanted).
	ResponseChunk int    `json:"response_chunk,omitempty"`
	EOFStatus     string `json:"eof_status,omitempty"`
	// WTXSeen counts S(WTX) requests over the run, SignWTX the most in
	// one signature; WTXObserved says the host ran ISO-DEP and could see
	// them (in chip mode the reader firmware answers them unseen).
	WTXSeen     int  `json:"wtx_seen"`
	SignWTX     int  `json:"sign_wtx"`
	WTXObserved bool `json:"wtx_observed"`
	RetapOK     bool `json:"retap_ok"`
	// Modes compares ISO-DEP modes (first: the mode of the trials).
	Modes []ModeStat `json:"modes,omitempty"`

	Steps  []Step         `json:"steps"`
	Errors map[string]int `json:"errors,omitempty"` // error kind → count
}

// Step returns the named step, or a zero Step.
func (r *Run) Step(name string) Step {
	for _, s := range r.Steps {
		if s.Name == name {
			return s
		}
	}
	return Step{Name: name}
}

// DB is a results database.
type DB struct{ db *sql.DB }

const schema = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY,
  model TEXT NOT NULL, os_build TEXT NOT NULL, token TEXT NOT NULL,
  reader TEXT NOT NULL, board TEXT NOT NULL, rf_profile TEXT NOT NULL,
  started TEXT NOT NULL,
  label TEXT NOT NULL, software TEXT NOT NULL, trials INTEGER NOT NULL,
  activation_rate REAL NOT NULL, transaction_rate REAL NOT NULL,
  detail TEXT NOT NULL,
  UNIQUE (model, os_build, token, reader, board, rf_profile, started)
);
CREATE INDEX IF NOT EXISTS runs_key ON runs (model, os_build, token, reader, board, rf_profile);
CREATE TABLE IF NOT EXISTS steps (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  name TEXT NOT NULL, ok INTEGER NOT NULL, trials INTEGER NOT NULL,
  p50_us INTEGER NOT NULL, p95_us INTEGER NOT NULL,
  PRIMARY KEY (run_id, name)
);`

// schemaVersion is stored in meta; a database of another version is refused.
const schemaVersion = "1"

// Open opens (creating if needed) the database at path.
func Open(ctx context.Context, path string) (*DB, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, fmt.Errorf("compat: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("compat: %s: schema: %w", path, err)
	}
	var v string
	err = db.QueryRowContext(ctx, `SELECT v FROM meta WHERE k='schema'`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := db.ExecContext(ctx, `INSERT INTO meta(k, v) VALUES ('schema', ?)`, schemaVersion); err != nil {
			db.Close()
			return nil, fmt.Errorf("compat: %s: %w", path, err)
		}
	case err != nil:
		db.Close()
		return nil, fmt.Errorf("compat: %s: %w", path, err)
	case v != schemaVersion:
		db.Close()
		return nil, fmt.Errorf("compat: %s has schema version %s, this kazasu reads %s", path, v, schemaVersion)
	}
	return &DB{db: db}, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// ActivationRate is the share of trials whose activation succeeded.
func (r *Run) ActivationRate() float64 { return r.Step(StepActivate).SuccessRate() }

// TransactionRate is the share of trials where every JPKI step that ran
// succeeded: the minimum over the JPKI steps.
func (r *Run) TransactionRate() float64 {
	rate, any := 1.0, false
	for _, s := range r.Steps {
		if s.Trials == 0 || !jpkiStep[s.Name] {
			continue
		}
		any = true
		rate = min(rate, s.SuccessRate())
	}
	if !any {
		return 0
	}
	return rate
}

// ErrorRate is the number of step failures (the APDU sweep's left out)
// per tap.
func (r *Run) ErrorRate() float64 {
	if r.Trials == 0 {
		return 0
	}
	n := 0
	for k, v := range r.Errors {
		if !strings.HasPrefix(k, "sweep_") {
			n += v
		}
	}
	return float64(n) / float64(r.Trials)
}

// Insert stores a run and sets r.ID.
func (d *DB) Insert(ctx context.Context, r *Run) error {
	detail, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("compat: encode run: %w", err)
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("compat: insert: %w", err)
	}
	defer tx.Rollback()
	k := r.Key
	res, err := tx.ExecContext(ctx, `INSERT INTO runs (model, os_build, token, reader, board, rf_profile, started, label, software, trials, activation_rate, transaction_rate, detail)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		k.Model, k.OSBuild, k.Token, k.Reader, k.Board, k.RFProfile, r.Started.UTC().Format(time.RFC3339Nano),
		r.Label, r.Software, r.Trials, r.ActivationRate(), r.TransactionRate(), string(detail))
	if err != nil {
		return fmt.Errorf("compat: insert run: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("compat: insert run: %w", err)
	}
	for _, s := range r.Steps {
		if _, err := tx.ExecContext(ctx, `INSERT INTO steps (run_id, name, ok, trials, p50_us, p95_us) VALUES (?,?,?,?,?,?)`,
			id, s.Name, s.OK, s.Trials, s.P50us, s.P95us); err != nil {
			return fmt.Errorf("compat: insert step %s: %w", s.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("compat: insert: %w", err)
	}
	r.ID = id
	return nil
}

// Latest returns, for every key, its most recent run, ordered by model,
// OS build, reader, board, RF profile and token.
func (d *DB) Latest(ctx context.Context) ([]*Run, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT detail, id FROM runs r WHERE started = (
		SELECT MAX(started) FROM runs q WHERE q.model=r.model AND q.os_build=r.os_build AND q.token=r.token
		AND q.reader=r.reader AND q.board=r.board AND q.rf_profile=r.rf_profile)
		ORDER BY model, os_build, reader, board, rf_profile, token`)
	if err != nil {
		return nil, fmt.Errorf("compat: query: %w", err)
	}
	defer rows.Close()
	var out []*Run
	for rows.Next() {
		var detail string
		var id int64
		if err := rows.Scan(&detail, &id); err != nil {
			return nil, fmt.Errorf("compat: scan: %w", err)
		}
		var r Run
		if err := json.Unmarshal([]byte(detail), &r); err != nil {
			return nil, fmt.Errorf("compat: run %d: corrupt detail: %w", id, err)
		}
		r.ID = id
		out = append(out, &r)
	}
	return out, rows.Err()
}

// Count returns the number of runs stored.
func (d *DB) Count(ctx context.Context) (int, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM runs`).Scan(&n)
	return n, err
}
