package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"kazasu/daemon/api"
	"kazasu/daemon/audit"
	"kazasu/daemon/pki"
	"kazasu/daemon/quirks"
	"kazasu/daemon/relay"
	"kazasu/drivers/jpki"
	"kazasu/drivers/nfc"
)

// worker owns one reader.
type worker struct {
	e     *Engine
	spec  Reader
	start chan *tx

	mu      sync.Mutex
	state   string // api.ReaderReady, ReaderBusy, ReaderOffline
	errCode string
	cur     *tx
	rd      nfc.Reader
}

func (w *worker) setState(state, code string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cur != nil && state == api.ReaderReady {
		state = api.ReaderBusy
	}
	w.state, w.errCode = state, code
}

// run opens the reader (again after loss, with backoff) and runs the
// transactions the API starts on it.
func (w *worker) run(ctx context.Context) {
	log := w.e.opts.Log.With("reader", w.spec.Name)
	backoff := 200 * time.Millisecond
	idle := time.NewTicker(w.e.opts.IdleCheck)
	defer idle.Stop()
	defer func() {
		if w.rd != nil {
			w.rd.Close()
		}
	}()
	for ctx.Err() == nil {
		if w.rd == nil {
			rd, err := w.spec.Open(ctx)
			if err != nil {
				code := errorCode(err)
				w.setState(api.ReaderOffline, code)
				w.e.opts.Metrics.ReaderError(w.spec.Name, code)
				log.Warn("reader open failed", "err", err, "retry_in", backoff)
				// A transaction started meanwhile (raced with going offline)
				// fails at once.
				select {
				case t := <-w.start:
					w.finish(t, nil, "reader_offline", "", nil, "")
				case <-time.After(backoff):
				case <-ctx.Done():
					return
				}
				backoff = min(2*backoff, 10*time.Second)
				continue
			}
			w.rd = rd
			backoff = 200 * time.Millisecond
			info := rd.Info()
			log.Info("reader open", "driver", info.Driver, "chip", info.Chip, "firmware", info.Firmware)
			w.setState(api.ReaderReady, "")
		}
		select {
		case <-ctx.Done():
			return
		case <-idle.C:
			// While idle, check now and then that the reader still
			// answers, so an unplugged one is reported and re-opened
			// before the next person taps.
			p, ok := w.rd.(pinger)
			if !ok {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			err := p.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				w.e.opts.Metrics.ReaderError(w.spec.Name, errorCode(err))
				log.Warn("idle reader check failed; re-opening", "err", err)
				w.rd.Close()
				w.rd = nil
				w.setState(api.ReaderOffline, errorCode(err))
			}
		case t := <-w.start:
			lost := w.runTx(ctx, t)
			w.mu.Lock()
			if w.cur == t { // finish normally freed it already
				w.cur = nil
			}
			w.mu.Unlock()
			if lost {
				w.e.opts.Metrics.ReaderError(w.spec.Name, "reader_gone")
				log.Warn("reader lost; re-opening")
				w.rd.Close()
				w.rd = nil
				w.setState(api.ReaderOffline, "reader_gone")
				continue
			}
			w.setState(api.ReaderReady, "")
		}
	}
}

// pinger is implemented by readers with a cheap liveness check
// (drivers/reader: GetFirmwareVersion on PN532 chips).
type pinger interface {
	Ping(ctx context.Context) error
}

// hungPolls is how many poll cycles in a row may fail with a reader-level
// timeout (the chip not answering, as opposed to an empty field) before the
// worker resets the reader.
const hungPolls = 3

// waitForCard polls until a card is found or ctx ends. A reader whose polls
// keep timing out is reset (RSTPDN or power-down/wake and bring-up); one
// that cannot be reset is reported lost (ErrReaderGone), and the worker
// re-opens it.
func (w *worker) waitForCard(ctx context.Context) (nfc.Card, error) {
	o := w.e.opts
	popts := w.spec.Poll
	if o.Quirks != nil && popts.ModeFor == nil {
		// A profile matched by the ATQB/ATS picks the ISO-DEP mode, on
		// readers that can still choose once the target is activated.
		popts.ModeFor = func(t nfc.Target) nfc.ISODepMode {
			if p := o.Quirks.Lookup(t, ""); p != nil {
				return p.Mode()
			}
			return nfc.ISODepAuto
		}
	}
	timeouts := 0
	for {
		c, err := w.rd.Poll(ctx, popts)
		switch {
		case err == nil:
			return c, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, nfc.ErrNoTarget):
			timeouts = 0
		case errors.Is(err, nfc.ErrTimeout):
			timeouts++
			w.e.opts.Metrics.ReaderError(w.spec.Name, "timeout")
			if timeouts >= hungPolls {
				o.Log.Warn("reader not answering; resetting it", "reader", w.spec.Name, "err", err)
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				rerr := w.rd.Reset(rctx)
				cancel()
				if rerr != nil {
					return nil, fmt.Errorf("engine: reset after %d hung polls: %w: %w", timeouts, nfc.ErrReaderGone, rerr)
				}
				timeouts = 0
			}
		default:
			return nil, err
		}
		t := time.NewTimer(o.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// errorCode turns an error into a [a-z0-9_] reason code.
func errorCode(err error) string {
	var ve0 *verdictError
	var ce0 *codeError
	if errors.As(err, &ve0) || errors.As(err, &ce0) {
		return codeOf(err)
	}
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errCancelled):
		return "cancelled"
	case errors.Is(err, nfc.ErrReaderGone):
		return "reader_gone"
	case errors.Is(err, nfc.ErrTargetGone):
		return "card_removed"
	case errors.Is(err, nfc.ErrTimeout):
		return "card_timeout"
	case errors.Is(err, nfc.ErrTransmission):
		return "transmission_error"
	case errors.Is(err, nfc.ErrProtocol):
		return "protocol_error"
	case errors.Is(err, nfc.ErrNotSupported):
		return "not_supported"
	case errors.Is(err, jpki.ErrNotJPKI):
		return "not_jpki"
	case errors.Is(err, jpki.ErrUnsupportedToken):
		return "unsupported_token"
	case errors.Is(err, jpki.ErrPINBlocked):
		return "pin_blocked"
	case errors.Is(err, jpki.ErrMalformed):
		return "token_malformed"
	case errors.Is(err, relay.ErrUnavailable):
		return "service_unavailable"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return codeOf(err)
}

// codeOf maps validation verdicts, code errors and relay refusals.
func codeOf(err error) string {
	var ve *verdictError
	if errors.As(err, &ve) {
		if rs := ve.v.Reasons(); len(rs) > 0 {
			return "cert_" + rs[0].String()
		}
		return "cert_invalid"
	}
	var ce *codeError
	if errors.As(err, &ce) {
		return ce.code
	}
	var re *relay.RefusedError
	if errors.As(err, &re) && relay.ValidCode(re.Code) {
		return "refused_" + re.Code
	}
	return "internal_error"
}

// tokenType maps jpki tokens to API/audit names.
func tokenType(t jpki.Token) string {
	switch t {
	case jpki.TokenCard:
		return relay.TokenCard
	case jpki.TokenAndroid:
		return relay.TokenAndroid
	case jpki.TokenIPhone:
		return relay.TokenIPhone
	}
	return ""
}

// stepTimer times steps for metrics.
type stepTimer struct {
	m     Metrics
	start time.Time
}

func (s *stepTimer) lap(step string) {
	now := time.Now()
	s.m.Step(step, now.Sub(s.start))
	s.start = now
}

// session is the state of one transaction run.
type session struct {
	w       *worker
	t       *tx
	card    nfc.Card
	s       *jpki.Session
	token   string
	cert    []byte
	prof    *quirks.Profile
	timer   stepTimer
	verify  chan *pki.Verdict // background validation of the card's certificate
	verdict *pki.Verdict      // its result, once received
	ticket  string            // the service's ticket once issued
}

// runTx runs t to its end. It reports whether the reader was lost.
func (w *worker) runTx(ctx context.Context, t *tx) (readerLost bool) {
	o := w.e.opts
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	go func() { // cancellation by the kiosk
		select {
		case <-t.ctx.Done():
			stop(context.Cause(t.ctx))
		case <-ctx.Done():
		}
	}()
	ss := &session{w: w, t: t, timer: stepTimer{m: o.Metrics, start: time.Now()}}

	// Wait for a tap.
	tapCtx, cancelTap := context.WithTimeout(ctx, o.Timeouts.Tap)
	card, err := w.waitForCard(tapCtx)
	cancelTap()
	if err != nil {
		code := errorCode(context.Cause(ctx))
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, context.DeadlineExceeded):
			code = "tap_timeout"
		default:
			code = errorCode(err)
		}
		w.finish(t, nil, code, "", nil, "")
		return errors.Is(err, nfc.ErrReaderGone)
	}
	ss.card = card
	o.Metrics.Tap(w.spec.Name)
	ss.timer.lap("tap")
	w.e.audit(audit.Entry{Event: audit.EventTap, TxID: t.id, Reader: w.spec.Name})
	t.publish(func(s *api.TxStatus) { s.State = api.StateReading })

	err = ss.authenticate(ctx)
	code := ""
	if err != nil {
		code = errorCode(err)
		if ctx.Err() != nil && context.Cause(ctx) != nil {
			code = errorCode(context.Cause(ctx))
		}
		if code == "internal_error" {
			o.Log.Error("transaction failed", "tx", t.id, "err", err)
		}
	}
	if ss.s != nil {
		cctx, cancel := context.WithTimeout(context.Background(), o.Timeouts.Card)
		ss.s.Close(cctx) // clear the token's security state
		cancel()
	}
	w.finish(t, card, code, ss.token, ss.cert, ss.ticket)
	return errors.Is(err, nfc.ErrReaderGone)
}

// finish publishes the end of t: done or failed, then remove-card while
// the card is in the field.
func (w *worker) finish(t *tx, card nfc.Card, code, token string, cert []byte, ticket string) {
	o := w.e.opts
	outcome := "done"
	if code != "" {
		outcome = code
	}
	o.Metrics.Transaction(outcome, token)
	en := audit.Entry{TxID: t.id, Reader: w.spec.Name, Token: audit.TokenType(token), Service: t.service}
	if cert != nil {
		en.Cert = audit.CertPrefixOf(cert)
	}
	switch code {
	case "":
		en.Event = audit.EventIssued
	case "cancelled":
		en.Event = audit.EventCancelled
	default:
		en.Event, en.Reason = audit.EventFailed, code
	}
	w.e.audit(en)
	present := card != nil && card.Present(context.Background()) == nil
	release := func() {
		if card != nil {
			rctx, cancel := context.WithTimeout(context.Background(), o.Timeouts.Card)
			card.Release(rctx)
			cancel()
		}
		// The reader is free before the final event goes out, so a kiosk
		// that starts the next transaction on it is not told "busy".
		w.mu.Lock()
		w.cur = nil
		if w.state == api.ReaderBusy {
			w.state = api.ReaderReady
		}
		w.mu.Unlock()
	}
	if !present {
		release()
	}
	if code != "" {
		t.publish(func(s *api.TxStatus) {
			s.State, s.Reason, s.Final = api.StateFailed, code, !present
			s.TriesLeft, s.LastTry = nil, false
		})
	} else {
		t.publish(func(s *api.TxStatus) { s.State, s.Ticket, s.Final = api.StateDone, ticket, !present })
	}
	if present {
		t.publish(func(s *api.TxStatus) { s.State = api.StateRemoveCard })
		rctx, cancel := context.WithTimeout(context.Background(), o.Timeouts.Removal)
		_ = nfc.WaitRemoved(rctx, card, o.PollInterval)
		cancel()
		release()
		t.publish(func(s *api.TxStatus) { s.Final = true })
	}
	t.cancel(nil)
}

// cardCtx bounds one card step.
func (ss *session) cardCtx(ctx context.Context, sign bool) (context.Context, context.CancelFunc) {
	d := ss.w.e.opts.Timeouts.Card
	if ss.prof != nil {
		if sign && ss.prof.SignTimeout > 0 {
			d = max(d, time.Duration(ss.prof.SignTimeout))
		} else if !sign && ss.prof.APDUTimeout > 0 {
			d = max(d, time.Duration(ss.prof.APDUTimeout))
		}
	}
	return context.WithTimeout(ctx, d)
}

// authenticate runs the JPKI flow up to the relay's answer.
func (ss *session) authenticate(ctx context.Context) error {
	o := ss.w.e.opts
	t := ss.t
	target := ss.card.Target()
	ss.prof = o.Quirks.Lookup(target, "")
	open := func() error {
		jo := jpki.Options{}
		if ss.prof != nil {
			jo.ReadChunk = ss.prof.ReadChunk
			jo.Extended = ss.prof.ExtendedAPDU != nil && *ss.prof.ExtendedAPDU
		}
		cctx, cancel := ss.cardCtx(ctx, false)
		defer cancel()
		s, err := jpki.Open(cctx, ss.card, jo)
		if err != nil {
			return err
		}
		ss.s = s
		ss.token = tokenType(s.Token())
		if p := o.Quirks.Lookup(target, s.Label()); p != nil && p != ss.prof {
			// A profile for this token: its read sizes apply from here on
			// (the certificate has not been read yet).
			ss.prof = p
			s.Tune(p.ReadChunk, p.ExtendedAPDU != nil && *p.ExtendedAPDU)
		}
		return nil
	}
	if err := open(); err != nil {
		return err
	}
	t.publish(func(s *api.TxStatus) { s.TokenType = ss.token })
	ss.timer.lap("identify")

	// Start fetching the challenge now: it is ready when the PIN is.
	chReq := relay.ChallengeRequest{TerminalID: o.TerminalID, TransactionID: t.id, Service: t.service}
	type chResult struct {
		ch  *relay.Challenge
		err error
	}
	chDone := make(chan chResult, 1)
	go func() {
		rctx, cancel := context.WithTimeout(ctx, o.Timeouts.Relay)
		defer cancel()
		ch, err := o.Relay.Challenge(rctx, chReq)
		chDone <- chResult{ch, err}
	}()

	switch ss.s.Token() {
	case jpki.TokenIPhone:
		if err := ss.readCertIPhone(ctx); err != nil {
			return err
		}
	case jpki.TokenAndroid:
		if err := ss.pin(ctx); err != nil {
			return err
		}
		if err := ss.readCert(ctx); err != nil {
			return err
		}
	default:
		if err := ss.readCert(ctx); err != nil {
			return err
		}
		if err := ss.pin(ctx); err != nil {
			return err
		}
	}
	t.publish(func(s *api.TxStatus) { s.State, s.TriesLeft, s.LastTry = api.StateVerifying, nil, false })
	if ss.verdict == nil {
		ss.verdict = <-ss.verify
	}
	if v := ss.verdict; !v.Valid {
		return &verdictError{v}
	}
	w := ss.w
	w.e.audit(audit.Entry{Event: audit.EventCertValid, TxID: t.id, Reader: w.spec.Name, Token: audit.TokenType(ss.token), Cert: audit.CertPrefixOf(ss.cert)})

	// The challenge.
	var ch *relay.Challenge
	select {
	case r := <-chDone:
		if r.err != nil {
			return r.err
		}
		ch = r.ch
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	if !ch.ExpiresAt.IsZero() && o.Now().After(ch.ExpiresAt.Add(-2*time.Second)) {
		// Expired while the person typed: ask again (same transaction).
		rctx, cancel := context.WithTimeout(ctx, o.Timeouts.Relay)
		var err error
		ch, err = o.Relay.Challenge(rctx, chReq)
		cancel()
		if err != nil {
			return err
		}
	}
	msg := relay.Message(&chReq, ch)
	sctx, cancel := ss.cardCtx(ctx, true)
	sig, err := ss.s.SignAuth(sctx, jpki.DigestInfoSHA256(msg))
	cancel()
	if err != nil {
		return err
	}
	ss.timer.lap("sign")
	// Check the signature locally before anything leaves the terminal.
	v := o.Validator.Validate(ctx, pki.Request{Cert: ss.cert, Expect: pki.KindAuth, Challenge: msg, Signature: sig})
	if !v.Valid {
		return &verdictError{v}
	}
	ss.timer.lap("check")

	t.publish(func(s *api.TxStatus) { s.State = api.StateRelaying })
	sub := relay.Submission{
		ChallengeID: ch.ChallengeID, TerminalID: o.TerminalID, TransactionID: t.id, Service: t.service,
		TokenType: ss.token, AuthCert: ss.cert, Signature: sig, Request: relay.ServiceRequest{Copies: 1},
	}
	if o.Journal != nil {
		if err := o.Journal.Begin(ctx, sub); err != nil {
			return fmt.Errorf("engine: journal: %w", err)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, o.Timeouts.Relay)
	issued, err := o.Relay.Submit(rctx, t.id, sub)
	cancel()
	if err != nil {
		var re *relay.RefusedError
		errors.As(err, &re)
		if o.Journal != nil && re != nil {
			// Refused: nothing was issued, nothing to finish later.
			o.Journal.End(t.id)
		}
		// Otherwise (service unreachable, timeout) the journal keeps the
		// submission: it may have been issued, and recovery finds out.
		if re != nil {
			w.e.audit(audit.Entry{Event: audit.EventRefused, TxID: t.id, Reader: w.spec.Name, Token: audit.TokenType(ss.token), Reason: errorCode(err)})
		}
		return err
	}
	ss.timer.lap("relay")
	w.e.audit(audit.Entry{Event: audit.EventRelayed, TxID: t.id, Reader: w.spec.Name, Token: audit.TokenType(ss.token)})
	outcome := relay.OutcomePrinted
	if o.Document != nil {
		if err := o.Document(issued.Ticket, issued.Document); err != nil {
			o.Log.Error("document hand-over failed", "tx", t.id, "ticket", issued.Ticket, "err", err)
			outcome = relay.OutcomePrintFailed
		}
	}
	if o.Receipt != nil {
		rc := relay.Receipt{Ticket: issued.Ticket, TerminalID: o.TerminalID, TransactionID: t.id, Outcome: outcome, Pages: 1, CompletedAt: o.Now().UTC()}
		if err := o.Receipt(context.Background(), rc); err != nil {
			o.Log.Error("receipt not queued", "tx", t.id, "ticket", issued.Ticket, "err", err)
		} else if o.Journal != nil {
			o.Journal.End(t.id)
		}
	} else if o.Journal != nil {
		o.Journal.End(t.id)
	}
	ss.ticket = issued.Ticket
	return nil
}

// verdictError carries a failed validation's reason code.
type verdictError struct{ v *pki.Verdict }

func (e *verdictError) Error() string {
	if err := e.v.Err(); err != nil {
		return err.Error()
	}
	return "certificate invalid"
}

// readCert reads the auth certificate and starts its validation in the
// background.
func (ss *session) readCert(ctx context.Context) error {
	cctx, cancel := ss.cardCtx(ctx, false)
	cert, err := ss.s.ReadAuthCert(cctx)
	cancel()
	if err != nil {
		return err
	}
	ss.cert = cert
	ss.timer.lap("cert")
	w := ss.w
	w.e.audit(audit.Entry{Event: audit.EventCertRead, TxID: ss.t.id, Reader: w.spec.Name, Token: audit.TokenType(ss.token), Cert: audit.CertPrefixOf(cert)})
	ss.verify = make(chan *pki.Verdict, 1)
	go func() {
		ss.verify <- w.e.opts.Validator.Validate(ctx, pki.Request{Cert: cert, Expect: pki.KindAuth})
	}()
	return nil
}

// readCertIPhone reads the certificate of an iPhone, asking the person to
// arm it (Face ID) and tap again when it is not armed.
func (ss *session) readCertIPhone(ctx context.Context) error {
	o := ss.w.e.opts
	deadline := time.Now().Add(o.Timeouts.Tap)
	for {
		err := ss.readCert(ctx)
		if err == nil || !errors.Is(err, jpki.ErrNotArmed) {
			return err
		}
		ss.t.publish(func(s *api.TxStatus) { s.State = api.StateArmYourPhone })
		// Wait for the armed phone: release, pause, poll again.
		rctx, cancel := context.WithTimeout(context.Background(), o.Timeouts.Card)
		ss.card.Release(rctx)
		cancel()
		for {
			if time.Now().After(deadline) {
				return fmt.Errorf("iPhone not armed: %w", context.DeadlineExceeded)
			}
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-time.After(4 * o.PollInterval):
			}
			pctx, cancel := context.WithTimeout(ctx, time.Until(deadline))
			card, err := ss.w.waitForCard(pctx)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return context.Cause(ctx)
				}
				return err
			}
			ss.card = card
			cctx, cancel := ss.cardCtx(ctx, false)
			s, err := jpki.Open(cctx, card, jpki.Options{})
			cancel()
			if err != nil {
				return err
			}
			ss.s = s
			if s.Token() != jpki.TokenIPhone {
				return fmt.Errorf("%w: a different token was tapped", jpki.ErrUnsupportedToken)
			}
			ss.t.publish(func(s *api.TxStatus) { s.State = api.StateReading })
			break
		}
	}
}

// pin reads the PIN status, asks for the PIN and verifies it, as often as
// the person retypes it after a wrong PIN (never automatically).
func (ss *session) pin(ctx context.Context) error {
	o := ss.w.e.opts
	t := ss.t
	cctx, cancel := ss.cardCtx(ctx, false)
	st, err := ss.s.AuthPINStatus(cctx)
	cancel()
	if err != nil {
		return err
	}
	if st.Blocked {
		return jpki.ErrPINBlocked
	}
	if st.Verified {
		return nil
	}
	ss.timer.lap("pin_status")
	tries := st.Retries
	for {
		t.askPIN(tries, tries == 1)
		pctx, cancel := context.WithTimeoutCause(ctx, o.Timeouts.PIN, errPINTimeout)
		pin, confirmed, err := ss.waitPIN(pctx)
		cancel()
		if err != nil {
			return err
		}
		t.publish(func(s *api.TxStatus) { s.State, s.TriesLeft, s.LastTry = api.StateVerifying, nil, false })
		vctx, vcancel := ss.cardCtx(ctx, false)
		_, err = ss.s.VerifyAuthPIN(vctx, pin, confirmed)
		vcancel()
		clear(pin)
		ss.timer.lap("verify")
		var wrong *jpki.WrongPINError
		switch {
		case err == nil:
			ss.w.e.audit(audit.Entry{Event: audit.EventPINVerified, TxID: t.id, Reader: ss.w.spec.Name, Token: audit.TokenType(ss.token)})
			return nil
		case errors.As(err, &wrong):
			ss.w.e.audit(audit.Entry{Event: audit.EventPINRejected, TxID: t.id, Reader: ss.w.spec.Name, Token: audit.TokenType(ss.token), Reason: fmt.Sprintf("tries_%d", wrong.Retries)})
			if wrong.Retries == 0 {
				return jpki.ErrPINBlocked
			}
			tries = wrong.Retries
		case errors.Is(err, jpki.ErrConfirmationRequired):
			tries = 1
		default:
			return err
		}
	}
}

var errPINTimeout = errors.New("pin_timeout")

// waitPIN waits for the PIN while checking that the card stays in the
// field, so a card pulled during PIN entry ends the transaction at once.
func (ss *session) waitPIN(ctx context.Context) ([]byte, bool, error) {
	o := ss.w.e.opts
	type result struct {
		pin       []byte
		confirmed bool
		err       error
	}
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	res := make(chan result, 1)
	go func() {
		pin, c, err := ss.t.takePIN(wctx)
		res <- result{pin, c, err}
	}()
	tick := time.NewTicker(max(o.PollInterval, 250*time.Millisecond))
	defer tick.Stop()
	verify := ss.verify
	if ss.verdict != nil {
		verify = nil
	}
	for {
		select {
		case v := <-verify:
			// The certificate's verdict came in while the person types:
			// an invalid certificate ends the transaction before any PIN
			// is spent on it.
			ss.verdict, verify = v, nil
			if !v.Valid {
				cancel(&verdictError{v})
				r := <-res
				clear(r.pin)
				return nil, false, &verdictError{v}
			}
		case r := <-res:
			if r.err != nil && errors.Is(r.err, errPINTimeout) {
				return nil, false, errPINTimeoutCode
			}
			return r.pin, r.confirmed, r.err
		case <-tick.C:
			if err := ss.card.Present(ctx); err != nil && ctx.Err() == nil {
				cancel(fmt.Errorf("card left during PIN entry: %w", nfc.ErrTargetGone))
				r := <-res
				clear(r.pin)
				return nil, false, fmt.Errorf("card left during PIN entry: %w", nfc.ErrTargetGone)
			}
		}
	}
}

// errPINTimeoutCode is reported as the reason "pin_timeout".
var errPINTimeoutCode = &codeError{"pin_timeout"}

type codeError struct{ code string }

func (e *codeError) Error() string { return e.code }
