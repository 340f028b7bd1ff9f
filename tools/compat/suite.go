package compat

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"kazasu/daemon/quirks"
	"kazasu/drivers/apdu"
	"kazasu/drivers/jpki"
	"kazasu/drivers/nfc"
	"kazasu/drivers/pn532"
)

// SuiteOptions configure RunSuite.
type SuiteOptions struct {
	// Label is "MODEL / OS BUILD" as the operator types it; the part
	// before " / " is the model, the rest the OS build.
	Label string
	// Trials is the number of taps (default 5).
	Trials int
	// TestPIN enables VERIFY and signing. Only for test tokens: a wrong
	// PIN costs a try, so the suite verifies only while the counter shows
	// at least 2 tries left and stops verifying after the first refusal.
	// The PIN is never logged, stored or put in an error.
	TestPIN []byte
	// Key fields recorded with the run.
	Board, RFProfile, ReaderURI, Software string
	// Modes are the ISO-DEP modes to try: the trials run in Modes[0]
	// (default Auto, as kazasud would), every further mode gets a short
	// comparison (activation, SELECT, token, certificate) of Trials taps.
	Modes []nfc.ISODepMode
	// PollOrder is the poll order (default B then A).
	PollOrder []nfc.Tech
	// Tap places the token in the field and Remove takes it away
	// (simulated re-taps). When nil, Prompt asks the operator and the
	// suite waits for the card (TapTimeout) or its removal.
	Tap, Remove func(ctx context.Context) error
	Prompt      func(msg string)
	// Elapsed, if set, is the time base for step timings (a simulator's
	// modelled time); nil means wall-clock time.
	Elapsed func() time.Duration
	// WTX counts S(WTX) requests; pass the same counter as the reader's
	// Tracer. Nil: WTX not measured.
	WTX *WTXCounter
	// StepTimeout bounds one suite step (default 15 s), TapTimeout the
	// wait for a tap or a removal (default 30 s).
	StepTimeout, TapTimeout time.Duration
	// MaxCommand caps the command sweep's extended Lc (default 65535, the
	// largest there is).
	MaxCommand int
	// Progress, if set, receives one line per trial (no PIN, no IDs).
	Progress func(string)
	// Now stamps the run (default time.Now).
	Now func() time.Time
}

// WTXCounter is an nfc.Tracer that counts the S(WTX) requests targets send
// (RF frames with PCB F2, or FA with a CID). It sees them only where the
// host runs ISO-DEP (host-managed PN532, the direct simulator); in chip
// mode the reader firmware answers them unseen. A frame traced twice in a
// row (the PN532 driver and the host ISO-DEP layer both trace it) counts
// once.
type WTXCounter struct {
	n    atomic.Int64
	last atomic.Pointer[lastFrame]
}

type lastFrame struct {
	out  bool
	data []byte
}

// Trace implements nfc.Tracer.
func (w *WTXCounter) Trace(ev nfc.TraceEvent) {
	if ev.Layer != nfc.LayerRF {
		return
	}
	prev := w.last.Load()
	cur := &lastFrame{out: ev.Out, data: append([]byte(nil), ev.Data...)}
	w.last.Store(cur)
	if ev.Out || len(ev.Data) == 0 || ev.Data[0]&0xF7 != 0xF2 {
		return
	}
	if prev != nil && !prev.out && bytes.Equal(prev.data, ev.Data) {
		return
	}
	w.n.Add(1)
}

// Count returns the S(WTX) requests seen so far.
func (w *WTXCounter) Count() int {
	if w == nil {
		return 0
	}
	return int(w.n.Load())
}

// Error kinds recorded in Run.Errors besides the nfc kinds.
const (
	KindNotJPKI          = "not_jpki"
	KindUnsupportedToken = "unsupported_token"
	KindPINRequired      = "pin_required"
	KindNotArmed         = "not_armed"
	KindPINBlocked       = "pin_blocked"
	KindWrongPIN         = "wrong_pin"
	KindMalformed        = "malformed"
	KindBadSignature     = "bad_signature"
	KindDeadline         = "deadline"
	// KindVerifyWithheld: the suite did not send VERIFY because the PIN
	// had fewer than two tries left.
	KindVerifyWithheld = "verify_withheld"
)

// ErrorKind names the kind of a suite failure: an nfc kind ("timeout",
// "target_gone", ...), a JPKI refusal ("not_jpki", "not_armed", ...), a
// status word ("sw_6A82") or "other".
func ErrorKind(err error) string {
	var wrong *jpki.WrongPINError
	var se *apdu.StatusError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errBadSignature):
		return KindBadSignature
	case errors.Is(err, errVerifyWithheld):
		return KindVerifyWithheld
	case errors.As(err, &wrong):
		return KindWrongPIN
	case errors.Is(err, jpki.ErrNotJPKI):
		return KindNotJPKI
	case errors.Is(err, jpki.ErrUnsupportedToken):
		return KindUnsupportedToken
	case errors.Is(err, jpki.ErrNotArmed):
		return KindNotArmed
	case errors.Is(err, jpki.ErrPINRequired):
		return KindPINRequired
	case errors.Is(err, jpki.ErrPINBlocked):
		return KindPINBlocked
	case errors.Is(err, jpki.ErrMalformed):
		return KindMalformed
	}
	if k := nfc.Kind(err); k != nil {
		return strings.ReplaceAll(k.Error(), " ", "_")
	}
	if errors.As(err, &se) {
		return fmt.Sprintf("sw_%04X", se.SW)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return KindDeadline
	}
	return "other"
}

var (
	errBadSignature   = errors.New("compat: signature does not verify with the token's certificate")
	errVerifyWithheld = errors.New("VERIFY not attempted")
)

// splitLabel splits "MODEL / OS BUILD".
func splitLabel(label string) (model, build string) {
	model, build, _ = strings.Cut(label, " / ")
	return strings.TrimSpace(model), strings.TrimSpace(build)
}

// stepAcc accumulates one step over the trials.
type stepAcc struct {
	ok, failed, notReached, skipped int
	durs                            []time.Duration
	errs                            []string
}

// suite is one RunSuite in progress.
type suite struct {
	r     nfc.Reader
	o     SuiteOptions
	run   *Run
	steps map[string]*stepAcc
	ids   map[string]bool

	pinRefused bool // a VERIFY was refused: never VERIFY again in this run
	sweepPhase int  // 0 responses, 1 commands, 2 done
	sigWTX     int
}

func (su *suite) clock() time.Duration {
	if su.o.Elapsed != nil {
		return su.o.Elapsed()
	}
	return time.Duration(time.Now().UnixNano())
}

func (su *suite) acc(name string) *stepAcc {
	a := su.steps[name]
	if a == nil {
		a = &stepAcc{}
		su.steps[name] = a
	}
	return a
}

func (su *suite) countErr(err error) {
	k := ErrorKind(err)
	if k == "" {
		return
	}
	if su.run.Errors == nil {
		su.run.Errors = map[string]int{}
	}
	su.run.Errors[k]++
}

func (su *suite) record(name string, d time.Duration, err error) {
	a := su.acc(name)
	if err == nil {
		a.ok++
		a.durs = append(a.durs, d)
		return
	}
	a.failed++
	su.countErr(err)
	msg := err.Error()
	if len(a.errs) < 3 && !slices.Contains(a.errs, msg) {
		a.errs = append(a.errs, msg)
	}
}

// trial runs the steps of one tap in order: after a failure the later
// steps count as not reached, so the last step's success rate is the share
// of taps on which the whole transaction worked.
type trial struct {
	su      *suite
	failed  bool
	lastErr error
	t0      time.Duration // start of the measured part of the step
}

// mark restarts the measurement of the current step (see activate).
func (t *trial) mark() { t.t0 = t.su.clock() }

func (t *trial) step(ctx context.Context, name string, f func(ctx context.Context) error) bool {
	su := t.su
	if t.failed {
		su.acc(name).notReached++
		return false
	}
	limit := su.o.StepTimeout
	if name == StepActivate || name == StepRetap {
		limit += 2 * su.o.TapTimeout // a person taps and removes
	}
	sctx, cancel := context.WithTimeout(ctx, limit)
	t.mark()
	err := f(sctx)
	d := su.clock() - t.t0
	cancel()
	su.record(name, d, err)
	if err != nil {
		t.failed, t.lastErr = true, err
	}
	return err == nil
}

func (t *trial) skip(name string) { t.su.acc(name).skipped++ }

// RunSuite runs the compatibility suite on whatever is tapped on r and
// returns the run. Failures are counted by kind and never end the run;
// only a cancelled ctx or an unusable configuration does.
func RunSuite(ctx context.Context, r nfc.Reader, o SuiteOptions) (*Run, error) {
	if o.Label == "" {
		return nil, errors.New("compat: a label (\"MODEL / OS BUILD\") is required")
	}
	if o.Trials <= 0 {
		o.Trials = 5
	}
	if o.Trials > 1000 {
		return nil, fmt.Errorf("compat: %d trials: at most 1000", o.Trials)
	}
	if len(o.Modes) == 0 {
		o.Modes = []nfc.ISODepMode{nfc.ISODepAuto}
	}
	if o.StepTimeout <= 0 {
		o.StepTimeout = 15 * time.Second
	}
	if o.TapTimeout <= 0 {
		o.TapTimeout = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxCommand <= 0 || o.MaxCommand > apdu.MaxExtendedNc {
		o.MaxCommand = apdu.MaxExtendedNc
	}
	if o.RFProfile == "" {
		o.RFProfile = "default"
	}
	if o.TestPIN != nil && !jpki.ValidPIN(o.TestPIN) {
		return nil, errors.New("compat: the test PIN must be 4 digits")
	}
	info := r.Info()
	model, build := splitLabel(o.Label)
	run := &Run{
		Key:            Key{Model: model, OSBuild: build, Reader: info.Driver, Board: o.Board, RFProfile: o.RFProfile},
		Label:          o.Label,
		Started:        o.Now().UTC(),
		Software:       o.Software,
		ReaderURI:      o.ReaderURI,
		ReaderModel:    strings.TrimSpace(info.Chip),
		ReaderFirmware: info.Firmware,
		Trials:         o.Trials,
		TimeBase:       "wall",
	}
	if o.Elapsed != nil {
		run.TimeBase = "modelled"
	}
	su := &suite{r: r, o: o, run: run, steps: map[string]*stepAcc{}, ids: map[string]bool{}}
	wtx0 := o.WTX.Count()
	for i := 0; i < o.Trials; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		su.trial(ctx, i, o.Modes[0])
	}
	run.WTXSeen = o.WTX.Count() - wtx0
	run.WTXObserved = o.WTX != nil && run.ISODepMode != "chip" && run.ISODepMode != ""
	run.SignWTX = su.sigWTX
	run.RandomID = len(su.ids) > 1
	run.IDsSeen = len(su.ids)
	for _, m := range o.Modes[1:] {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		run.Modes = append(run.Modes, su.compareMode(ctx, m))
	}
	if len(run.Modes) > 0 {
		// The primary mode's own numbers, for Derive's comparison.
		prim := ModeStat{Mode: run.ISODepMode, Trials: o.Trials}
		cert := su.acc(StepCert)
		if cert.ok+cert.failed+cert.notReached > 0 {
			prim.OK = cert.ok
			prim.CertP50us = pct(cert.durs, 50).Microseconds()
		} else { // no certificate without a PIN (Android): the token step
			tok := su.acc(StepToken)
			prim.OK = tok.ok
		}
		run.Modes = append([]ModeStat{prim}, run.Modes...)
	}
	for _, name := range StepOrder {
		a, ok := su.steps[name]
		if !ok {
			continue
		}
		run.Steps = append(run.Steps, Step{
			Name: name, OK: a.ok, Trials: a.ok + a.failed + a.notReached,
			NotReached: a.notReached, Skipped: a.skipped,
			P50us: pct(a.durs, 50).Microseconds(), P95us: pct(a.durs, 95).Microseconds(),
			Errors: a.errs,
		})
	}
	ra := su.steps[StepRetap]
	run.RetapOK = ra != nil && ra.ok > 0 && ra.failed == 0
	return run, nil
}

func (su *suite) say(msg string) {
	if su.o.Prompt != nil {
		su.o.Prompt(msg)
	}
}

func (su *suite) tap(ctx context.Context) error {
	if su.o.Tap != nil {
		return su.o.Tap(ctx)
	}
	su.say("tap the phone or card on the reader")
	return nil
}

func (su *suite) remove(ctx context.Context) error {
	if su.o.Remove != nil {
		return su.o.Remove(ctx)
	}
	su.say("take the phone or card away")
	return nil
}

// activate polls until a target answers (TapTimeout).
//
// mark, if not nil, is called before every poll cycle, so that a step's
// time covers the cycle that activated the target and not the person's
// reaction time.
func (su *suite) activate(ctx context.Context, mode nfc.ISODepMode, mark func()) (nfc.Card, error) {
	wait := su.o.TapTimeout
	if su.o.Tap != nil {
		wait = min(wait, 2*time.Second) // simulated: the token is already there
	}
	pctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	opts := nfc.PollOptions{Order: su.o.PollOrder, Mode: mode}
	for {
		if mark != nil {
			mark()
		}
		c, err := su.r.Poll(pctx, opts)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, nfc.ErrNoTarget) && !errors.Is(err, nfc.ErrTimeout) {
			return nil, err
		}
		select {
		case <-pctx.Done():
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("compat: nothing activated within %v: %w", wait, nfc.ErrNoTarget)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitGone confirms that c left the field (its presence check fails).
func (su *suite) waitGone(ctx context.Context, c nfc.Card) error {
	wctx, cancel := context.WithTimeout(ctx, su.o.TapTimeout)
	defer cancel()
	if err := nfc.WaitRemoved(wctx, c, 50*time.Millisecond); err != nil {
		return fmt.Errorf("compat: removal not detected: %w", nfc.Wrap("compat: presence check", nfc.ErrTimeout, err))
	}
	return nil
}

// trial runs one tap: activation, the JPKI steps, the APDU sweep (until it
// has run once completely), then removal and re-tap.
func (su *suite) trial(ctx context.Context, i int, mode nfc.ISODepMode) {
	t := &trial{su: su}
	var c nfc.Card
	if err := su.tap(ctx); err != nil {
		su.record(StepActivate, 0, fmt.Errorf("compat: tap: %w", err))
		t.failed = true
	} else {
		t.step(ctx, StepActivate, func(ctx context.Context) error {
			var err error
			c, err = su.activate(ctx, mode, t.mark)
			return err
		})
	}
	var sess *jpki.Session
	if c != nil {
		su.noteTarget(c.Target())
		if su.run.RFSettings == "" {
			su.run.RFSettings = su.rfSettings(ctx)
		}
		sess = su.jpkiSteps(ctx, t, c)
		// The sweep needs a working session: not after a transport
		// failure (a refusal such as "not armed" leaves it usable).
		if su.sweepPhase < 2 && sess != nil && nfc.Kind(t.lastErr) == nil {
			sctx, cancel := context.WithTimeout(ctx, 4*su.o.StepTimeout)
			su.sweep(sctx, c)
			cancel()
		}
		if sess != nil {
			cctx, cancel := context.WithTimeout(ctx, su.o.StepTimeout)
			sess.Close(cctx) // clears the token's security state; errors show in the next trial
			cancel()
		}
	} else {
		for _, n := range []string{StepSelect, StepToken, StepCert, StepPINStatus, StepVerify, StepSign} {
			t.step(ctx, n, nil) // not reached
		}
	}
	// Removal and re-tap: the target must be seen to leave and must
	// activate and answer SELECT again.
	rt := &trial{su: su, failed: c == nil}
	rt.step(ctx, StepRetap, func(ctx context.Context) error {
		if err := su.remove(ctx); err != nil {
			return fmt.Errorf("compat: remove: %w", err)
		}
		if err := su.waitGone(ctx, c); err != nil {
			return err
		}
		c.Release(ctx)
		if err := su.tap(ctx); err != nil {
			return fmt.Errorf("compat: tap: %w", err)
		}
		c2, err := su.activate(ctx, mode, rt.mark) // timed: the re-activation and SELECT
		if err != nil {
			return err
		}
		defer c2.Release(ctx)
		_, err = apdu.Transmit(ctx, c2, apdu.Command{INS: 0xA4, P1: 0x04, P2: 0x0C, Data: jpki.AID})
		var se *apdu.StatusError
		if errors.As(err, &se) {
			err = nil // any status word: the target answers again after the re-tap
		}
		return err
	})
	if c != nil {
		c.Release(ctx)
	}
	if err := su.remove(ctx); err != nil {
		su.countErr(err)
	}
	if su.o.Progress != nil {
		state := "ok"
		if t.failed {
			state = "failed"
		}
		su.o.Progress(fmt.Sprintf("trial %d/%d: %s", i+1, su.o.Trials, state))
	}
}

// ciuRegs are the PN532 CIU registers that make up its RF settings:
// framing, antenna drivers, receiver threshold and gain, and the driver
// conductances (PN532 data sheet §8.6.23; pn532.md, RFConfiguration).
var ciuRegs = []struct {
	name string
	addr uint16
}{
	{"TxMode", 0x6302}, {"RxMode", 0x6303}, {"TxControl", 0x6304}, {"RxThreshold", 0x6308},
	{"RFCfg", 0x6316}, {"GsNOn", 0x6317}, {"CWGsP", 0x6318}, {"ModGsP", 0x6319},
}

// rfSettings reads the RF settings of a PN532 reader as they are with a
// target activated (the firmware loads the analog settings of the
// technology it polled): "" for other readers.
func (su *suite) rfSettings(ctx context.Context) string {
	pr, ok := su.r.(interface{ PN532() *pn532.Dev })
	if !ok || pr.PN532() == nil {
		return ""
	}
	addrs := make([]uint16, len(ciuRegs))
	for i, r := range ciuRegs {
		addrs[i] = r.addr
	}
	rctx, cancel := context.WithTimeout(ctx, su.o.StepTimeout)
	defer cancel()
	vals, err := pr.PN532().ReadRegister(rctx, addrs...)
	if err != nil || len(vals) != len(addrs) {
		return fmt.Sprintf("unreadable (%s)", ErrorKind(err))
	}
	var b strings.Builder
	b.WriteString("CIU")
	for i, r := range ciuRegs {
		fmt.Fprintf(&b, " %s %02X", r.name, vals[i])
	}
	return b.String()
}

// noteTarget records what the activation showed (every reader path gives
// the ATS with its TL byte, so features compare across readers).
func (su *suite) noteTarget(t nfc.Target) {
	r := su.run
	r.Tech = t.Tech.String()
	r.Features = quirks.Features(t)
	r.ATQB = strings.ToUpper(hex.EncodeToString(t.ATQB))
	r.ATS = strings.ToUpper(hex.EncodeToString(t.ATS))
	r.FSC, r.FSD = t.FSC, t.FSD
	r.FWTus = t.FWT.Microseconds()
	r.SFGTus = t.SFGT.Microseconds()
	r.CIDInUse = t.CID
	r.CIDSupported = cidSupported(t)
	r.BitRates = bitRates(t)
	r.ISODepMode = t.Mode.String()
	su.ids[hex.EncodeToString(t.ID)] = true
}

// cidSupported reads the CID capability: ATQB protocol info FO b1 (Type B),
// ATS TC(1) b2 (Type A).
func cidSupported(t nfc.Target) bool {
	switch t.Tech {
	case nfc.TechB:
		return len(t.ATQB) >= 12 && t.ATQB[11]&0x01 != 0
	case nfc.TechA:
		if len(t.ATS) < 2 {
			return false
		}
		t0, i := t.ATS[1], 2
		if t0&0x10 != 0 {
			i++
		}
		if t0&0x20 != 0 {
			i++
		}
		return t0&0x40 != 0 && len(t.ATS) > i && t.ATS[i]&0x02 != 0
	}
	return false
}

// bitRates describes the bit rate in use and what the target offers
// (ATQB protocol info byte 1, ATS TA(1); ISO/IEC 14443-3 §7.9.3.1).
func bitRates(t nfc.Target) string {
	var caps byte
	have := false
	switch t.Tech {
	case nfc.TechB:
		if len(t.ATQB) >= 10 {
			caps, have = t.ATQB[9], true
		}
	case nfc.TechA:
		if len(t.ATS) >= 3 && t.ATS[1]&0x10 != 0 {
			caps, have = t.ATS[2], true
		}
	}
	s := fmt.Sprintf("%d/%d", t.BitRatePCD, t.BitRatePICC)
	if !have || caps&0x77 == 0 {
		return s + " (offers 106 only)"
	}
	var up, down []string
	for i, r := range []string{"212", "424", "848"} {
		if caps&(1<<i) != 0 {
			up = append(up, r)
		}
		if caps&(0x10<<i) != 0 {
			down = append(down, r)
		}
	}
	return fmt.Sprintf("%s (offers PCD→PICC %s, PICC→PCD %s)", s, orNone(up), orNone(down))
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "106"
	}
	return "106," + strings.Join(s, ",")
}

// jpkiSteps runs SELECT, token, certificate, PIN status and (with a test
// PIN) VERIFY and signing, in the order the kiosk runs them for the token.
// It returns the session (nil when the token was not identified).
func (su *suite) jpkiSteps(ctx context.Context, t *trial, c nfc.Card) *jpki.Session {
	t.step(ctx, StepSelect, func(ctx context.Context) error {
		_, err := apdu.Transmit(ctx, c, apdu.Command{INS: 0xA4, P1: 0x04, P2: 0x0C, Data: jpki.AID})
		var se *apdu.StatusError
		if errors.As(err, &se) && (se.SW == 0x6A82 || se.SW == 0x6A86 || se.SW == 0x6D00 || se.SW == 0x6E00) {
			return fmt.Errorf("%w (SELECT answered %04X)", jpki.ErrNotJPKI, se.SW)
		}
		return err
	})
	var s *jpki.Session
	// The terminal's identify step: SELECT again and read EF 0006.
	t.step(ctx, StepToken, func(ctx context.Context) error {
		var err error
		s, err = jpki.Open(ctx, c, jpki.Options{})
		if err == nil {
			su.run.Key.Token = s.Label()
		} else if errors.Is(err, jpki.ErrUnsupportedToken) && su.run.Key.Token == "" {
			su.run.Key.Token = tokenLabel(ctx, c) // the refused token's label, for the matrix
		}
		return err
	})
	if s == nil {
		for _, n := range []string{StepCert, StepPINStatus, StepVerify, StepSign} {
			t.step(ctx, n, nil)
		}
		return nil
	}
	var cert []byte
	readCert := func() {
		t.step(ctx, StepCert, func(ctx context.Context) error {
			var err error
			cert, err = s.ReadAuthCert(ctx)
			return err
		})
	}
	verified := false
	pinSteps := func() {
		var st jpki.PINStatus
		t.step(ctx, StepPINStatus, func(ctx context.Context) error {
			var err error
			st, err = s.AuthPINStatus(ctx)
			return err
		})
		switch {
		case !s.NeedsPIN():
			t.skip(StepVerify) // iPhone: armed with Face ID, no PIN at the reader
			verified = st.Verified
		case st.Verified:
			t.skip(StepVerify)
			verified = true
		case su.o.TestPIN == nil || su.pinRefused:
			t.skip(StepVerify)
		case t.failed:
			t.step(ctx, StepVerify, nil)
		case st.Blocked || (!st.Unlimited && st.Retries < 2):
			// Never risk the last tries of a PIN, test token or not.
			t.step(ctx, StepVerify, func(context.Context) error {
				return fmt.Errorf("compat: %w with %s", errVerifyWithheld, st)
			})
		default:
			t.step(ctx, StepVerify, func(ctx context.Context) error {
				_, err := s.VerifyAuthPIN(ctx, su.o.TestPIN, false)
				var wrong *jpki.WrongPINError
				if errors.As(err, &wrong) {
					su.pinRefused = true
				}
				if err == nil {
					verified = true
				}
				return err
			})
		}
	}
	switch s.Token() {
	case jpki.TokenAndroid: // the certificate only after VERIFY (jpki.md §8.1)
		pinSteps()
		if verified || t.failed {
			readCert()
		} else {
			t.skip(StepCert)
		}
	default:
		readCert()
		pinSteps()
	}
	switch {
	case su.o.TestPIN == nil:
		t.skip(StepSign)
	case !verified && !t.failed:
		t.skip(StepSign)
	default:
		t.step(ctx, StepSign, func(ctx context.Context) error {
			msg := []byte("kazasu compat " + su.run.Label)
			w0 := su.o.WTX.Count()
			sig, err := s.SignAuth(ctx, jpki.DigestInfoSHA256(msg))
			su.sigWTX = max(su.sigWTX, su.o.WTX.Count()-w0)
			if err != nil {
				return err
			}
			return checkSignature(cert, msg, sig)
		})
	}
	return s
}

// tokenLabel reads the label of EF 0006 of the selected JPKI AP, "" if it
// cannot.
func tokenLabel(ctx context.Context, c nfc.Card) string {
	if _, err := apdu.Transmit(ctx, c, apdu.Command{INS: 0xA4, P1: 0x02, P2: 0x0C, Data: []byte{0x00, 0x06}}); err != nil {
		return ""
	}
	resp, err := apdu.Transmit(ctx, c, apdu.Command{INS: 0xB0, Ne: 32})
	if err != nil {
		return ""
	}
	_, label := jpki.ParseTokenLabel(resp.Data)
	for _, r := range label {
		if r < 0x20 || r > 0x7E {
			return "" // not a printable label
		}
	}
	return label
}

// checkSignature verifies an RSA PKCS#1 v1.5 SHA-256 signature with the
// certificate read in the same trial (when it was read).
func checkSignature(der, msg, sig []byte) error {
	if der == nil {
		return nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("compat: certificate: %w: %w", jpki.ErrMalformed, err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("compat: certificate key is %T, not RSA: %w", cert.PublicKey, jpki.ErrMalformed)
	}
	h := sha256.Sum256(msg)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig); err != nil {
		return fmt.Errorf("%w: %w", errBadSignature, err)
	}
	return nil
}

// compareMode measures activation, SELECT, the token and the certificate
// in another ISO-DEP mode.
func (su *suite) compareMode(ctx context.Context, mode nfc.ISODepMode) ModeStat {
	ms := ModeStat{Mode: mode.String(), Trials: su.o.Trials}
	var certs []time.Duration
	for range su.o.Trials {
		if err := su.tap(ctx); err != nil {
			ms.addErr(err)
			continue
		}
		err := func() error {
			sctx, cancel := context.WithTimeout(ctx, 2*su.o.StepTimeout+su.o.TapTimeout)
			defer cancel()
			c, err := su.activate(sctx, mode, nil)
			if err != nil {
				return err
			}
			defer c.Release(sctx)
			s, err := jpki.Open(sctx, c, jpki.Options{})
			if err != nil {
				return err
			}
			defer s.Close(sctx)
			if s.Token() == jpki.TokenAndroid {
				return nil // the certificate needs the PIN: the token read is the comparison
			}
			t0 := su.clock()
			_, err = s.ReadAuthCert(sctx)
			if err == nil {
				certs = append(certs, su.clock()-t0)
			}
			return err
		}()
		if err != nil {
			ms.addErr(err)
		} else {
			ms.OK++
		}
		if err := su.remove(ctx); err != nil {
			ms.addErr(err)
		}
	}
	ms.CertP50us = pct(certs, 50).Microseconds()
	return ms
}

func (m *ModeStat) addErr(err error) {
	if m.Errors == nil {
		m.Errors = map[string]int{}
	}
	m.Errors[ErrorKind(err)]++
}

// pct returns the p-th percentile (nearest rank) of ds, 0 for none.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (p*len(s) + 99) / 100
	return s[max(0, min(len(s), i)-1)]
}

// Sweep sizes. Responses are bounded by the largest EF the token lets the
// suite read (a certificate, about 2 KiB); commands go up to the largest
// extended Lc.
var (
	shortLes = []int{1, 64, 128, 192, 255, 256}
	shortLcs = []int{1, 64, 128, 200, 255}
)

// sweep measures the APDU sizes the path carries, in two phases: READ
// BINARY answers (short and extended Le, and the raw answer forms: 61xx
// chunks, 6Cxx at the end of an exact-size EF), then command lengths with
// GET DATA carrying a data field (read-only; any status word proves the
// APDU arrived; 6700 to an extended one means extended lengths are
// refused). A transport failure ends a phase (its limit is recorded) and
// leaves the session unusable, so the next phase waits for the next tap.
// Errors of the sweep are counted as "sweep_KIND", apart from the steps'.
func (su *suite) sweep(ctx context.Context, c nfc.Card) {
	tx := func(cmd apdu.Command) (apdu.Response, error) {
		resp, err := apdu.Transmit(ctx, c, cmd)
		var se *apdu.StatusError
		if errors.As(err, &se) {
			err = nil
		}
		return resp, err
	}
	raw := func(cmd apdu.Command) (apdu.Response, error) {
		b, err := cmd.Bytes()
		if err != nil {
			return apdu.Response{}, err
		}
		out, err := c.Transceive(ctx, b)
		if err != nil {
			return apdu.Response{}, err
		}
		return apdu.ParseResponse(out)
	}
	for su.sweepPhase < 2 {
		var broken bool
		if su.sweepPhase == 0 {
			broken = su.sweepResponses(tx, raw)
		} else {
			broken = su.sweepCommands(tx)
		}
		su.sweepPhase++
		if broken {
			return
		}
	}
}

func (su *suite) sweepErr(err error) string {
	k := "sweep_" + ErrorKind(err)
	if su.run.Errors == nil {
		su.run.Errors = map[string]int{}
	}
	su.run.Errors[k]++
	return k
}

// sweepCommands runs the command phase; it reports whether the session
// broke.
func (su *suite) sweepCommands(tx func(apdu.Command) (apdu.Response, error)) bool {
	r := su.run
	for _, n := range shortLcs {
		if _, err := tx(apdu.Command{INS: 0xCA, P1: 0x01, P2: 0x00, Data: make([]byte, n)}); err != nil {
			r.CommandLimit = fmt.Sprintf("short Nc %d: %s", n, su.sweepErr(err))
			r.CommandCapped = true
			return true
		}
		r.MaxCommand = 5 + n
	}
	maxNc := su.o.MaxCommand
	for n := 256; n <= maxNc; n *= 2 {
		if n > maxNc/2 {
			n = maxNc
		}
		resp, err := tx(apdu.Command{INS: 0xCA, P1: 0x01, P2: 0x00, Data: make([]byte, n), Form: apdu.FormExtended})
		if err != nil {
			r.CommandLimit = fmt.Sprintf("Nc %d: %s", n, su.sweepErr(err))
			r.CommandCapped = true
			return true
		}
		if resp.SW == 0x6700 {
			r.CommandLimit = fmt.Sprintf("Nc %d: 6700 (extended Lc refused)", n)
			r.CommandCapped = true
			return false
		}
		r.MaxCommand = 7 + n
		if n == maxNc {
			r.CommandLimit = fmt.Sprintf("none up to Nc %d (sweep ceiling)", maxNc)
		}
	}
	return false
}

// sweepResponses runs the READ BINARY phase in the JPKI AP; it reports
// whether the session broke. ExtendedOK is set only when extended Le
// carried the whole EF, so a derived profile never asks for more.
func (su *suite) sweepResponses(tx, raw func(apdu.Command) (apdu.Response, error)) bool {
	r := su.run
	fail := func(what string, err error) bool {
		r.ResponseLimit = fmt.Sprintf("%s: %s", what, su.sweepErr(err))
		return true
	}
	if resp, err := tx(apdu.Command{INS: 0xA4, P1: 0x04, P2: 0x0C, Data: jpki.AID}); err != nil {
		return fail("SELECT", err)
	} else if resp.SW != 0x9000 {
		r.ResponseLimit = fmt.Sprintf("no JPKI AP (%04X)", resp.SW)
		return false
	}
	// The auth CA certificate is free on cards, Android phones and armed
	// iPhones; otherwise the 160-byte token EF.
	ef, size := jpki.EFAuthCA, 0
	resp, err := tx(apdu.Command{INS: 0xA4, P1: 0x02, P2: 0x0C, Data: []byte{0x00, 0x0B}})
	if err != nil {
		return fail("SELECT EF", err)
	}
	if resp.SW == 0x9000 {
		hdr, err := tx(apdu.Command{INS: 0xB0, Ne: 4})
		if err != nil {
			return fail("READ BINARY header", err)
		}
		if hdr.SW == 0x9000 {
			size, _ = derSize(hdr.Data)
		}
	}
	if size == 0 {
		ef, size = jpki.EFToken, 160
		resp, err := tx(apdu.Command{INS: 0xA4, P1: 0x02, P2: 0x0C, Data: []byte{0x00, 0x06}})
		if err != nil {
			return fail("SELECT EF", err)
		}
		if resp.SW != 0x9000 {
			r.ResponseLimit = fmt.Sprintf("no readable EF (%04X)", resp.SW)
			return false
		}
	}
	r.SweepEF = fmt.Sprintf("%04X (%d bytes)", ef, size)
	// Raw answer forms: a full short read, and a read across the end.
	resp, err = raw(apdu.Command{INS: 0xB0, Ne: min(256, size)})
	if err != nil {
		return fail("raw READ BINARY", err)
	}
	if resp.SW1() == 0x61 {
		r.ResponseChunk = len(resp.Data)
	}
	if ef == jpki.EFAuthCA {
		off := size - 8
		resp, err := raw(apdu.Command{INS: 0xB0, P1: byte(off >> 8), P2: byte(off), Ne: 16})
		if err != nil {
			return fail("raw READ BINARY at the end", err)
		}
		switch {
		case resp.SW1() == 0x6C:
			r.EOFStatus = "6Cxx"
		case resp.SW == 0x6282:
			r.EOFStatus = "6282"
		case resp.SW == 0x9000 && len(resp.Data) == 16:
			r.EOFStatus = "filler"
		default:
			r.EOFStatus = fmt.Sprintf("%04X", resp.SW)
		}
	}
	for _, le := range shortLes {
		if le > size {
			break
		}
		resp, err := tx(apdu.Command{INS: 0xB0, Ne: le})
		if err != nil {
			r.ShortCapped, r.ExtendedCapped = true, true
			return fail(fmt.Sprintf("short Le %d", le), err)
		}
		if resp.SW != 0x9000 || len(resp.Data) != le {
			r.ResponseLimit = fmt.Sprintf("short Le %d: %04X, %d bytes", le, resp.SW, len(resp.Data))
			r.ShortCapped, r.ExtendedCapped = true, true
			return false
		}
		r.MaxShortResponse = le
	}
	les := []int{min(size, 16)}
	for le := 512; le < size; le *= 2 {
		les = append(les, le)
	}
	if size > 256 {
		les = append(les, size)
	}
	for _, le := range les {
		resp, err := tx(apdu.Command{INS: 0xB0, Ne: le, Form: apdu.FormExtended})
		if err != nil {
			r.ExtendedCapped = true
			return fail(fmt.Sprintf("extended Le %d", le), err)
		}
		if resp.SW != 0x9000 || len(resp.Data) != le {
			r.ResponseLimit = fmt.Sprintf("extended Le %d: %04X, %d bytes", le, resp.SW, len(resp.Data))
			r.ExtendedCapped = true
			return false
		}
		r.MaxExtendedResponse = le
	}
	r.ExtendedOK = true
	return false
}

// derSize returns the total length of the DER object starting with hdr.
func derSize(hdr []byte) (int, error) {
	if len(hdr) < 2 || hdr[0] != 0x30 {
		return 0, errors.New("not a DER SEQUENCE")
	}
	l := int(hdr[1])
	if l < 0x80 {
		return 2 + l, nil
	}
	nb := l & 0x7F
	if nb == 0 || nb > 2 || len(hdr) < 2+nb {
		return 0, errors.New("unsupported DER length")
	}
	l = 0
	for _, b := range hdr[2 : 2+nb] {
		l = l<<8 | int(b)
	}
	return 2 + nb + l, nil
}

// FWT converts the run's FWT.
func (r *Run) FWT() time.Duration { return time.Duration(r.FWTus) * time.Microsecond }
