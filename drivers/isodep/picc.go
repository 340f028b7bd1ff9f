package isodep

import (
	"bytes"
	"sync"
	"time"
)

// Handler is the card application behind a PICC: one complete command APDU
// in, one complete response APDU (data + SW1 SW2) out, and the processing
// time the card spends on it (used for S(WTX) decisions and the timing model;
// nothing sleeps). The handler must not keep apdu; the PICC copies resp.
// It runs inside HandleBlock with the PICC locked, so it must not call the
// PICC's methods.
type Handler func(apdu []byte) (resp []byte, proc time.Duration)

// WTXPolicy decides when a PICC asks for a waiting time extension (Rule 9).
type WTXPolicy struct {
	// Fraction of the current waiting time (FWT, or FWT×WTXM after an
	// extension) the PICC lets pass before it sends S(WTX) instead of the
	// answer. The PICC asks for an extension when its remaining processing
	// exceeds Fraction×wait. 0 means 1: the answer is late exactly when it
	// would exceed the FWT.
	Fraction float64
	// Storm forces this many S(WTX) requests before every response, however
	// short the processing (tests of the PCD's total-WTX bound).
	Storm int
	// Disabled turns S(WTX) off: a slow application answers late, as a
	// broken card would, and the PCD times out.
	Disabled bool
}

// PICCConfig configures the card side of ISO-DEP.
type PICCConfig struct {
	// FSC is the largest frame the PICC accepts (PCB, CID, NAD, INF and the
	// two CRC bytes). Longer blocks are ignored as invalid. 0 means 256.
	FSC int
	// FSD is the largest frame the PCD accepts, learned from ATTRIB
	// (Param2 FSDI) or RATS; the PICC chains its responses to fit it. 0
	// means 256. See also SetFSD.
	FSD int
	// CID is the card identifier assigned at activation, or -1 when the PCD
	// uses none (§7.1.1.2). See also SetCID.
	CID int
	// FWT is the frame waiting time the PICC announced (ATQB or ATS FWI).
	// 0 means FWI 4 (4.83 ms).
	FWT time.Duration
	// WTX is the waiting-time-extension policy.
	WTX WTXPolicy
	// MaxAPDU bounds a command APDU received by chaining; longer chains are
	// dropped (the PICC stops acknowledging). 0 means 65544, the largest
	// case 4E APDU.
	MaxAPDU int
}

// FWI4 is the default frame waiting time, FWI 4 (4096·2^4/fc ≈ 4.833 ms).
const FWI4 = (4096 << 4) * time.Second / 13_560_000

// maxCaseAPDU is the largest ISO 7816-4 command: 4E with 65535 data bytes.
const maxCaseAPDU = 4 + 3 + 65535 + 2

// PICC is the card (listener) side of ISO/IEC 14443-4, used by simulated
// cards and phones. It implements Rules C, D, E, 2, 3 and 9–13 of §7.5.4 and
// the DESELECT exchange of §8. It does no activation (ATQB/ATTRIB, ATS):
// the card model does that with package iso14443 and then feeds the PICC
// every block it receives.
//
// A PICC is safe for concurrent use, though one PCD talks to it at a time.
type PICC struct {
	mu  sync.Mutex
	cfg PICCConfig
	app Handler

	fsd, cid   int
	bn         uint8 // current block number (Rule C: starts at 1)
	last       []byte
	lastI      []byte // last I-block received, for duplicate detection
	rx         []byte // command APDU being received by chaining
	rxDropped  bool   // chain exceeded MaxAPDU
	replyCID   int    // CID presence of the exchange in progress
	tx         []byte // rest of a chained response
	txActive   bool   // response chaining in progress
	pending    *pendingAnswer
	awaitWTX   bool
	deselected bool
}

type pendingAnswer struct {
	resp      []byte
	remaining time.Duration
	wait      time.Duration
	storm     int
}

// NewPICC returns a PICC in its post-activation state (block number 1).
func NewPICC(cfg PICCConfig, app Handler) *PICC {
	if cfg.FSC == 0 {
		cfg.FSC = 256
	}
	if cfg.FSD == 0 {
		cfg.FSD = 256
	}
	if cfg.FWT <= 0 {
		cfg.FWT = FWI4
	}
	if cfg.WTX.Fraction <= 0 || cfg.WTX.Fraction > 1 {
		cfg.WTX.Fraction = 1
	}
	if cfg.MaxAPDU <= 0 {
		cfg.MaxAPDU = maxCaseAPDU
	}
	if cfg.CID > MaxCID || cfg.CID < -1 {
		cfg.CID = -1
	}
	p := &PICC{cfg: cfg, app: app, fsd: clampFS(cfg.FSD), cid: cfg.CID}
	p.resetLocked()
	return p
}

// clampFS keeps a frame size inside 16…4096 bytes (FSCI/FSDI 0…C).
func clampFS(n int) int {
	switch {
	case n < 16:
		return 16
	case n > 4096:
		return 4096
	}
	return n
}

// SetFSD sets the largest frame the PCD accepts, as learned from ATTRIB or
// RATS.
func (p *PICC) SetFSD(fsd int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fsd = clampFS(fsd)
}

// SetCID sets the CID assigned by ATTRIB Param4 or RATS, or -1 for none.
func (p *PICC) SetCID(cid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cid < -1 || cid > MaxCID {
		cid = -1
	}
	p.cid = cid
}

// Reset returns the protocol to its post-activation state: block number 1,
// no chaining, nothing pending, not deselected. Call it on field loss and
// on every new activation (ATTRIB or RATS). FSD and CID keep the values
// last set.
func (p *PICC) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resetLocked()
}

func (p *PICC) resetLocked() {
	p.bn = 1
	p.last, p.lastI = nil, nil
	p.rx, p.rxDropped = nil, false
	p.tx, p.txActive = nil, false
	p.pending, p.awaitWTX = nil, false
	p.deselected = false
	p.replyCID = p.cid
}

// Deselected reports whether the PICC answered S(DESELECT). It then ignores
// every block until Reset.
func (p *PICC) Deselected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.deselected
}

// HandleBlock takes one received block (CRC removed) and returns the block
// to send back, with the processing time elapsed before it leaves the card.
// ok=false means the PICC stays silent: the block was invalid, carried
// another CID or a NAD, broke the protocol state, or the PICC is deselected.
//
// When the application is slow, the answer to the last block of a command
// is S(WTX) (Rule 9); the I-block follows the PCD's S(WTX) response, and
// each returned block carries the share of the application's processing
// time spent before it.
func (p *PICC) HandleBlock(block []byte) (resp []byte, proc time.Duration, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.deselected {
		return nil, 0, false
	}
	if len(block)+2 > p.cfg.FSC {
		return nil, 0, false // longer than FSC: not receivable
	}
	b, err := ParseBlock(block)
	if err != nil || b.NAD >= 0 || b.Kind == KindParameters {
		return nil, 0, false // invalid block, or NAD/S(PARAMETERS) not supported
	}
	if !p.addressed(b.CID) {
		return nil, 0, false
	}
	p.replyCID = b.CID
	switch b.Kind {
	case KindDeselect:
		p.resetLocked()
		p.deselected = true
		return Deselect(b.CID).mustBytes(), 0, true
	case KindWTX:
		return p.onWTXResponse(b)
	case KindI:
		return p.onI(b, block)
	case KindACK, KindNAK:
		return p.onR(b)
	}
	return nil, 0, false
}

// addressed applies §7.1.1.2: a PICC with a CID answers blocks carrying
// it, and blocks without CID too when its CID is 0; a PICC without CID
// answers only blocks without CID.
func (p *PICC) addressed(cid int) bool {
	if p.cid < 0 {
		return cid < 0
	}
	return cid == p.cid || (cid < 0 && p.cid == 0)
}

func (p *PICC) send(b Block) []byte {
	out := b.mustBytes()
	p.last = out
	return append([]byte(nil), out...)
}

func (p *PICC) onI(b Block, block []byte) ([]byte, time.Duration, bool) {
	if p.txActive || p.awaitWTX || p.pending != nil {
		// Rule 2/10: the PCD must not send an I-block while the PICC is
		// chaining or waiting for its S(WTX) response.
		return nil, 0, false
	}
	if b.BN == p.bn && p.last != nil && bytes.Equal(block, p.lastI) {
		// The same I-block again, with our current number: the PCD did not
		// hear our answer and resent its block. Answer again rather than run
		// the command twice (a leniency: ISO/IEC 14443-4 has the PCD send
		// R(NAK) instead, Rule 4).
		return append([]byte(nil), p.last...), 0, true
	}
	p.lastI = append(p.lastI[:0], block...)
	p.bn = b.BN // Rule D (toggle), resynchronised on the PCD's number
	if !p.rxDropped {
		if len(p.rx)+len(b.INF) > p.cfg.MaxAPDU {
			p.rx, p.rxDropped = nil, true
		} else {
			p.rx = append(p.rx, b.INF...)
		}
	}
	if b.Chain {
		if p.rxDropped {
			return nil, 0, false
		}
		return p.send(ACK(p.bn, p.replyCID)), 0, true // Rule 2
	}
	apdu := p.rx
	dropped := p.rxDropped
	p.rx, p.rxDropped = nil, false
	if dropped {
		return nil, 0, false
	}
	var resp []byte
	var d time.Duration
	if p.app != nil {
		resp, d = p.app(apdu)
	}
	if d < 0 {
		d = 0
	}
	p.pending = &pendingAnswer{
		resp:      append([]byte(nil), resp...),
		remaining: d,
		wait:      p.cfg.FWT,
		storm:     p.cfg.WTX.Storm,
	}
	out, share := p.deliver()
	return out, share, true
}

// deliver sends S(WTX) while the application is still busy (Rule 9), and
// the first block of the response once it is done.
func (p *PICC) deliver() ([]byte, time.Duration) {
	a := p.pending
	threshold := time.Duration(p.cfg.WTX.Fraction * float64(a.wait))
	if !p.cfg.WTX.Disabled && (a.storm > 0 || a.remaining > threshold) {
		share := min(a.remaining, threshold)
		a.remaining -= share
		if a.storm > 0 {
			a.storm--
		}
		p.awaitWTX = true
		return p.send(WTX(p.wtxmFor(a.remaining), p.replyCID)), share
	}
	share := a.remaining
	p.pending = nil
	p.tx, p.txActive = a.resp, true
	return p.nextChunk(), share
}

// wtxmFor picks the smallest multiplier whose extended wait covers the
// remaining processing, within 1…59 and FWT×WTXM ≤ FWTMax.
func (p *PICC) wtxmFor(remaining time.Duration) int {
	unit := time.Duration(p.cfg.WTX.Fraction * float64(p.cfg.FWT))
	if unit <= 0 {
		unit = 1
	}
	m := int((remaining + unit - 1) / unit)
	if lim := int(FWTMax / p.cfg.FWT); m > lim {
		m = lim
	}
	return max(MinWTXM, min(m, MaxWTXM))
}

func (p *PICC) onWTXResponse(b Block) ([]byte, time.Duration, bool) {
	m := b.WTXM()
	if !p.awaitWTX || m < MinWTXM || m > MaxWTXM {
		return nil, 0, false // Rule 3: an S(WTX) response needs a request
	}
	p.awaitWTX = false
	p.pending.wait = min(p.cfg.FWT*time.Duration(m), FWTMax)
	out, share := p.deliver()
	return out, share, true
}

// nextChunk sends the next I-block of the response, chained to the PCD's
// FSD (§7.5.2).
func (p *PICC) nextChunk() []byte {
	room := p.fsd - 3
	if p.replyCID >= 0 {
		room--
	}
	n := min(len(p.tx), room)
	chunk := p.tx[:n]
	p.tx = p.tx[n:]
	chain := len(p.tx) > 0
	if !chain {
		p.tx, p.txActive = nil, false
	}
	return p.send(I(p.bn, chain, p.replyCID, chunk))
}

func (p *PICC) onR(b Block) ([]byte, time.Duration, bool) {
	if b.BN == p.bn {
		// Rule 11: the PCD missed our last block; send it again.
		if p.last == nil {
			return nil, 0, false
		}
		return append([]byte(nil), p.last...), 0, true
	}
	if b.Kind == KindNAK {
		// Rule 12: R(NAK) with the other number (presence check). The
		// R(ACK) does not replace the last block kept for Rule 11.
		return ACK(p.bn, p.replyCID).mustBytes(), 0, true
	}
	if p.txActive && !p.awaitWTX {
		// Rules E and 13: acknowledged, toggle and continue chaining.
		p.bn ^= 1
		return p.nextChunk(), 0, true
	}
	return nil, 0, false
}
