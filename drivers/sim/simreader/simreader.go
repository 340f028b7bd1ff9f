// Package simreader is a simulated reader that talks to simulated PICCs
// directly over an [rf.Field], with no reader chip in between. It is
// virtual hardware: the daemon's default configuration and fast end-to-end
// tests use it; nothing in the reader stack imports it.
//
// The reader implements [nfc.Reader] with host-managed ISO-DEP:
//
//   - Type B (ISO/IEC 14443-3 §7): WUPB → ATQB → ATTRIB (FSD 256, no CID by
//     default) → answer, by [iso14443.ActivateB].
//   - Type A (ISO/IEC 14443-3 §6, -4 §5): WUPA → ATQA → anticollision and
//     SELECT per cascade level → SAK → RATS → ATS ([iso14443.ActivateA]).
//   - The [nfc.Card] it returns runs an [isodep.PCD] over the field: frames
//     go out as [rf.Frame]s, silence is nfc.ErrTimeout, and a PICC removed
//     mid-session gives nfc.ErrTargetGone once the PCD's retries are spent.
//
// # Timing model
//
// Nothing sleeps by default, so tests run at CPU speed, but every frame is
// charged with its modelled air time (iso14443b.md §6.1): a Type B frame
// of n bytes (CRC included) takes (10·n + 22) etu at 106 kbit/s, and each
// round trip adds TR0 + TR1 + TR2 = 64/fs + 80/fs + 1792/fc ≈ 302 µs, plus
// the PICC's processing time. Type A frames are charged (9·n + 2) etu
// (8 data bits and a parity bit per byte, start and end of frame) and a
// round trip 1236/fc + 1172/fc of frame delay times. A PCD that stops
// listening (timeout) is charged the whole wait. An answer later than the
// PCD's timeout is lost, and the PICC hears nothing until its processing is
// over — as on air. The total goes to [Options.TimeModel] and
// [Reader.Elapsed]; with [Options.RealTime] the reader also sleeps it.
//
// Collisions: two Type A PICCs are resolved as bit-wise anticollision
// would, by selecting one UID (the first PICC added). Two Type B PICCs
// answering in the same slot garble each other (nfc.ErrTransmission), and
// iso14443.ActivateB falls back to slotted anticollision.
package simreader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"kazasu/drivers/iso14443"
	"kazasu/drivers/isodep"
	"kazasu/drivers/nfc"
	"kazasu/drivers/sim/rf"
)

// Options configure a simulated reader. The zero value is a reader with
// both technologies, FSD 256 and no CID, that never sleeps.
type Options struct {
	// Path is reported by Info (e.g. the URI the reader was opened with).
	Path string
	// Techs lists the technologies the reader supports; empty means B and A.
	Techs []nfc.Tech
	// FSD is the largest frame the reader accepts (bytes); 0 means 256.
	// It is announced as FSDI in ATTRIB and RATS.
	FSD int
	// UseCID makes the reader assign CID (0…14) at activation to PICCs
	// that support it; by default no CID is used.
	UseCID bool
	CID    int
	// Retries overrides the ISO-DEP retry count per block (isodep.Params).
	Retries int
	// Tracer receives activation frames (LayerRF) from the reader and, via
	// the ISO-DEP layer, every block and APDU (VERIFY bodies redacted).
	Tracer nfc.Tracer
	// TimeModel is charged with the modelled duration of every exchange
	// (air time, gaps, PICC processing, waits).
	TimeModel func(d time.Duration)
	// RealTime makes the reader sleep the modelled time as well.
	RealTime bool
}

// Reader is a direct simulated reader over an RF field.
type Reader struct {
	field *rf.Field
	opts  Options
	fsdi  byte

	done chan struct{} // closed by Close: ends real-time waits in flight

	mu      sync.Mutex
	closed  bool
	elapsed time.Duration
	busy    map[rf.PICC]time.Duration // modelled time until which a PICC is processing
	active  *card                     // card of the last successful Poll
}

var _ nfc.Reader = (*Reader)(nil)

// New returns a reader over field. The field is switched on by Poll, off
// by SetField or Reset.
func New(field *rf.Field, opts Options) *Reader {
	fsd := opts.FSD
	if fsd <= 0 {
		fsd = 256
	}
	if len(opts.Techs) == 0 {
		opts.Techs = []nfc.Tech{nfc.TechB, nfc.TechA}
	}
	return &Reader{
		field: field,
		opts:  opts,
		fsdi:  iso14443.FrameSizeCode(fsd),
		busy:  map[rf.PICC]time.Duration{},
		done:  make(chan struct{}),
	}
}

// Info describes the reader.
func (r *Reader) Info() nfc.Info {
	path := r.opts.Path
	if path == "" {
		path = "sim:"
	}
	return nfc.Info{Driver: "sim", Path: path, Chip: "simulated direct reader", Firmware: "-", Supported: append([]nfc.Tech(nil), r.opts.Techs...)}
}

// Elapsed returns the modelled time spent so far on air and in the PICCs.
func (r *Reader) Elapsed() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.elapsed
}

// guardTime is the wait after switching the field on before the first
// command (iso14443b.md §2.6).
const guardTime = 5 * time.Millisecond

// Poll switches the field on if needed and tries each technology of
// opts.Techs() the reader supports, returning the first ISO-DEP target it
// activates. A Card from an earlier Poll that was not released is released
// (S(DESELECT)) first, so that its PICC answers the wake-up command. ISO-DEP always runs on the host: the returned target says
// nfc.ISODepHost whatever opts.Mode asks for.
func (r *Reader) Poll(ctx context.Context, opts nfc.PollOptions) (nfc.Card, error) {
	const op = "simreader: Poll"
	if err := r.check(op); err != nil {
		return nil, err
	}
	// A new poll cycle ends the previous session: a PICC still in ISO-DEP
	// state would not answer the wake-up command.
	r.mu.Lock()
	prev := r.active
	r.active = nil
	r.mu.Unlock()
	if prev != nil {
		prev.Release(ctx) // best effort; a PICC that left simply does not answer
	}
	if !r.field.On() {
		r.field.SetOn(true)
		if err := r.charge(ctx, guardTime); err != nil {
			return nil, chargeErr(op, err)
		}
	}
	var firstErr error
	for _, tech := range opts.Techs() {
		if !r.supports(tech) {
			continue
		}
		var c nfc.Card
		var err error
		switch tech {
		case nfc.TechB:
			c, err = r.pollB(ctx, opts.AFI)
		case nfc.TechA:
			c, err = r.pollA(ctx)
		default:
			continue
		}
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil || errors.Is(err, nfc.ErrReaderGone) {
			return nil, err
		}
		if !errors.Is(err, nfc.ErrNoTarget) && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, nfc.Errorf(op, nfc.ErrNoTarget, "nothing answered")
}

func (r *Reader) supports(t nfc.Tech) bool {
	for _, s := range r.opts.Techs {
		if s == t {
			return true
		}
	}
	return false
}

func (r *Reader) cid() int {
	if !r.opts.UseCID || r.opts.CID < 0 || r.opts.CID > isodep.MaxCID {
		return -1
	}
	return r.opts.CID
}

func (r *Reader) pollB(ctx context.Context, afi byte) (nfc.Card, error) {
	rt := &air{r: r, tech: nfc.TechB, activation: true}
	t, err := iso14443.ActivateB(ctx, rt, afi, r.fsdi, r.cid())
	if err != nil {
		return nil, err
	}
	return r.newCard(ctx, t, nfc.TechB)
}

func (r *Reader) pollA(ctx context.Context) (nfc.Card, error) {
	const op = "simreader: Poll A"
	rt := &air{r: r, tech: nfc.TechA, activation: true, pickFirst: true}
	resp, err := rt.transceive(ctx, rf.Frame{Tech: nfc.TechA, Data: []byte{iso14443.WUPA}, Bits: iso14443.ShortFrameBits}, iso14443.FWTActivation)
	if err != nil {
		if errors.Is(err, nfc.ErrTimeout) {
			return nil, nfc.Wrap(op, nfc.ErrNoTarget, err)
		}
		return nil, err
	}
	atqa, err := iso14443.ParseATQA(resp)
	if err != nil {
		return nil, nfc.Wrap(op, nfc.ErrProtocol, err)
	}
	var levels [][4]byte
	var sak iso14443.SAK
	for level := 1; ; level++ {
		if level > 3 {
			return nil, nfc.Errorf(op, nfc.ErrProtocol, "SAK still says UID not complete after 3 levels")
		}
		ac, _ := iso14443.AnticollisionCmd(level)
		resp, err := rt.TransceiveRaw(ctx, ac, iso14443.FWTActivation)
		if err != nil {
			return nil, err
		}
		cln, err := iso14443.ParseAnticollisionResp(resp)
		if err != nil {
			return nil, nfc.Wrap(op, nfc.ErrProtocol, err)
		}
		sel, _ := iso14443.SelectCmd(level, cln)
		if resp, err = rt.TransceiveRaw(ctx, sel, iso14443.FWTActivation); err != nil {
			return nil, err
		}
		if len(resp) != 1 {
			return nil, nfc.Errorf(op, nfc.ErrProtocol, "SAK of %d bytes", len(resp))
		}
		levels = append(levels, cln)
		if sak = iso14443.SAK(resp[0]); !sak.Cascade() {
			break
		}
	}
	uid, err := iso14443.UIDFromLevels(levels)
	if err != nil {
		return nil, nfc.Wrap(op, nfc.ErrProtocol, err)
	}
	if !sak.ISODEP() {
		// Not ISO 14443-4 (e.g. a MIFARE Classic): put it to sleep and go on.
		rt.TransceiveRaw(ctx, iso14443.HLTA(), iso14443.FWTActivation)
		return nil, nfc.Errorf(op, nfc.ErrNoTarget, "UID %X: %v", uid, sak)
	}
	t, err := iso14443.ActivateA(ctx, rt, r.fsdi, r.cid())
	if err != nil {
		return nil, err
	}
	t.ID, t.ATQA, t.SAK = uid, atqa[:], byte(sak)
	return r.newCard(ctx, t, nfc.TechA)
}

func (r *Reader) newCard(ctx context.Context, t nfc.Target, tech nfc.Tech) (nfc.Card, error) {
	if err := r.charge(ctx, t.SFGT); err != nil {
		return nil, chargeErr("simreader: Poll", err)
	}
	p := isodep.ParamsFor(t)
	p.Retries = r.opts.Retries
	p.Tracer = r.opts.Tracer
	c := &card{r: r, target: t, pcd: isodep.NewPCD(&air{r: r, tech: tech}, p)}
	r.mu.Lock()
	r.active = c
	r.mu.Unlock()
	return c, nil
}

// probe checks, after Release, whether the released PICC is still in the
// field: it wakes HALTed PICCs (WUPB or WUPA), looks for the target's PUPI
// or first UID level, and sends whoever answered back to HALT (HLTB, or a
// non-anticollision frame for Type A, which returns a woken PICC to HALT).
// Probe frames are not traced.
func (r *Reader) probe(ctx context.Context, t nfc.Target) error {
	const op = "simreader: Present"
	rt := &air{r: r, tech: t.Tech, pickFirst: t.Tech == nfc.TechA}
	gone := func(err error) error { return nfc.Wrap(op, nfc.ErrTargetGone, err) }
	switch t.Tech {
	case nfc.TechB:
		resp, err := rt.TransceiveRaw(ctx, iso14443.ReqB{Slots: 1, WakeUp: true}.Bytes(), iso14443.ATQBTimeout)
		switch {
		case errors.Is(err, nfc.ErrTimeout):
			return gone(err)
		case errors.Is(err, nfc.ErrTransmission):
			return nil // several PICCs answer: the field is not empty, keep waiting
		case err != nil:
			return err
		}
		atqb, err := iso14443.ParseATQB(resp)
		if err != nil {
			return nil
		}
		rt.TransceiveRaw(ctx, iso14443.HLTB(atqb.PUPI), iso14443.FWT(atqb.FWI))
		if !bytes.Equal(atqb.PUPI[:], t.ID) {
			return gone(fmt.Errorf("PUPI %X answers, not %X", atqb.PUPI, t.ID))
		}
		return nil
	case nfc.TechA:
		_, err := rt.transceive(ctx, rf.Frame{Tech: nfc.TechA, Data: []byte{iso14443.WUPA}, Bits: iso14443.ShortFrameBits}, iso14443.FWTActivation)
		if errors.Is(err, nfc.ErrTimeout) {
			return gone(err)
		} else if err != nil {
			return err
		}
		ac, _ := iso14443.AnticollisionCmd(1)
		resp, err := rt.TransceiveRaw(ctx, ac, iso14443.FWTActivation)
		rt.TransceiveRaw(ctx, iso14443.HLTA(), iso14443.FWTActivation)
		if err != nil {
			return nil
		}
		levels, lerr := iso14443.CascadeLevels(t.ID)
		cln, perr := iso14443.ParseAnticollisionResp(resp)
		if lerr == nil && perr == nil && cln != levels[0] {
			return gone(fmt.Errorf("UID CL1 %X answers, not %X", cln, levels[0]))
		}
		return nil
	}
	return nfc.Errorf(op, nfc.ErrNotSupported, "technology %v", t.Tech)
}

// SetField switches the RF field; off resets every PICC in it.
func (r *Reader) SetField(ctx context.Context, on bool) error {
	if err := r.check("simreader: SetField"); err != nil {
		return err
	}
	r.field.SetOn(on)
	if !on {
		r.mu.Lock()
		clear(r.busy)
		r.active = nil // it lost power
		r.mu.Unlock()
	}
	return nil
}

// Reset switches the field off: every PICC loses power and every Card from
// before is invalid.
func (r *Reader) Reset(ctx context.Context) error { return r.SetField(ctx, false) }

// Close makes the reader unusable; Cards from it fail with ErrReaderGone,
// and a real-time wait in flight ends at once. The field is left as it is
// (it belongs to the caller). Close may be called from any goroutine.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		close(r.done)
	}
	return nil
}

func (r *Reader) check(op string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nfc.Errorf(op, nfc.ErrReaderGone, "reader closed")
	}
	return nil
}

// charge adds d to the modelled time and, in real time, sleeps it.
func (r *Reader) charge(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	r.mu.Lock()
	r.elapsed += d
	r.mu.Unlock()
	if r.opts.TimeModel != nil {
		r.opts.TimeModel(d)
	}
	if !r.opts.RealTime {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-r.done:
		return errClosed
	case <-t.C:
		return nil
	}
}

var errClosed = errors.New("simreader: reader closed")

// chargeErr maps an interrupted wait: Close gives ErrReaderGone, a
// context ErrTimeout.
func chargeErr(op string, err error) error {
	if errors.Is(err, errClosed) {
		return nfc.Wrap(op, nfc.ErrReaderGone, err)
	}
	return nfc.Wrap(op, nfc.ErrTimeout, err)
}

// Air timing (package doc).
const (
	fc          = 13_560_000
	etu         = iso14443.ETU106
	gapB        = 64*16*time.Second/fc + 80*16*time.Second/fc + 1792*time.Second/fc // TR0 + TR1 + TR2
	gapA        = (1236 + 1172) * time.Second / fc                                  // FDT PCD→PICC + PICC→PCD
	crcLen      = 2
	shortFrameA = 9 * etu // 7 bits + start and end
)

func frameTime(tech nfc.Tech, f rf.Frame) time.Duration {
	if tech == nfc.TechA {
		if f.Bits != 0 {
			return shortFrameA
		}
		return time.Duration(9*(len(f.Data)+crcLen)+2) * etu
	}
	return time.Duration(10*(len(f.Data)+crcLen)+22) * etu
}

// air is an nfc.RawTransceiver over the field for one technology.
type air struct {
	r    *Reader
	tech nfc.Tech
	// activation frames are traced here; ISO-DEP blocks by the PCD, which
	// redacts PINs.
	activation bool
	// pickFirst resolves a Type A collision by taking the first answer.
	pickFirst bool
}

func (a *air) TransceiveRaw(ctx context.Context, frame []byte, timeout time.Duration) ([]byte, error) {
	return a.transceive(ctx, rf.Frame{Tech: a.tech, Data: frame}, timeout)
}

func (a *air) transceive(ctx context.Context, f rf.Frame, timeout time.Duration) ([]byte, error) {
	const op = "simreader: air"
	r := a.r
	if err := r.check(op); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, chargeErr(op, err)
	}
	if a.activation {
		a.trace(true, f.Data)
	}
	f.Data = append([]byte(nil), f.Data...)
	tx := frameTime(a.tech, f)

	r.mu.Lock()
	arrival := r.elapsed + tx
	r.mu.Unlock()
	var answers []rf.Answer
	if r.field.On() {
		for _, p := range r.field.PICCs() {
			if !hasTech(p.Techs(), a.tech) {
				continue
			}
			r.mu.Lock()
			busy := r.busy[p] > arrival
			r.mu.Unlock()
			if busy {
				continue // still processing a late answer: deaf
			}
			if resp, proc, ok := p.Exchange(f); ok {
				answers = append(answers, rf.Answer{PICC: p, Frame: resp, Proc: proc})
			}
		}
	}
	var heard *rf.Answer
	late := false
	for i := range answers {
		ans := &answers[i]
		if ans.Proc > timeout {
			// The PCD stopped listening; the PICC stays deaf until done.
			late = true
			r.mu.Lock()
			r.busy[ans.PICC] = arrival + ans.Proc
			r.mu.Unlock()
			continue
		}
		if heard != nil && !a.pickFirst {
			if err := r.charge(ctx, tx+timeout); err != nil {
				return nil, chargeErr(op, err)
			}
			return nil, nfc.Errorf(op, nfc.ErrTransmission, "collision: %d PICCs answered", len(answers))
		}
		if heard == nil {
			heard = ans
		}
	}
	if heard == nil {
		if err := r.charge(ctx, tx+timeout); err != nil {
			return nil, chargeErr(op, err)
		}
		why := "no answer"
		if late {
			why = "answer later than the timeout"
		}
		return nil, nfc.Errorf(op, nfc.ErrTimeout, "%s within %v", why, timeout)
	}
	gap := gapB
	if a.tech == nfc.TechA {
		gap = gapA
	}
	if err := r.charge(ctx, tx+heard.Proc+gap+frameTime(a.tech, heard.Frame)); err != nil {
		return nil, chargeErr(op, err)
	}
	out := append([]byte(nil), heard.Frame.Data...)
	if a.activation {
		a.trace(false, out)
	}
	return out, nil
}

func (a *air) trace(out bool, data []byte) {
	if t := a.r.opts.Tracer; t != nil {
		t.Trace(nfc.TraceEvent{Time: time.Now(), Layer: nfc.LayerRF, Out: out, Data: data})
	}
}

func hasTech(ts []nfc.Tech, t nfc.Tech) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

// card is an activated target on the simulated reader.
type card struct {
	r      *Reader
	target nfc.Target
	pcd    *isodep.PCD

	mu       sync.Mutex
	released bool
}

var (
	_ nfc.Card   = (*card)(nil)
	_ nfc.Limits = (*card)(nil)
)

func (c *card) Target() nfc.Target {
	t := c.target
	t.ID = append([]byte(nil), t.ID...)
	return t
}

func (c *card) Transceive(ctx context.Context, apdu []byte) ([]byte, error) {
	return c.pcd.Transceive(ctx, apdu)
}

// Present checks presence with R(NAK) during the session (isodep), and
// after Release by waking the HALTed PICC and halting it again, so that
// nfc.WaitRemoved works before and after Release.
func (c *card) Present(ctx context.Context) error {
	c.mu.Lock()
	released := c.released
	c.mu.Unlock()
	if released {
		return c.r.probe(ctx, c.target)
	}
	return c.pcd.Present(ctx)
}

// Release deselects the PICC (S(DESELECT)); it then waits in HALT for the
// next Poll's wake-up command.
func (c *card) Release(ctx context.Context) error {
	c.mu.Lock()
	c.released = true
	c.mu.Unlock()
	return c.pcd.Deselect(ctx)
}

// MaxAPDU: host ISO-DEP chains without limit, so the bounds are those of
// ISO/IEC 7816-4 extended APDUs.
func (c *card) MaxAPDU() (command, response int) { return 4 + 3 + 65535 + 2, isodep.DefaultMaxResponse }

func (c *card) String() string { return fmt.Sprintf("simreader card %v", c.target) }
