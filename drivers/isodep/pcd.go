package isodep

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"kazasu/drivers/iso14443"
	"kazasu/drivers/nfc"
)

// Defaults of Params.
const (
	// DefaultRetries is the number of recovery attempts per block (Rules
	// 4–6) before the PCD gives up, as NXP's reader library does.
	DefaultRetries = 2
	// DefaultMaxWTX bounds the S(WTX) requests honoured in one exchange
	// (the NFC Forum's total-WTX limit is 20; kazasu allows more because a
	// JPKI signature at FWI 10 may legitimately need several).
	DefaultMaxWTX = 64
	// DefaultMaxResponse bounds a response APDU reassembled from chained
	// blocks: 65536 data bytes plus SW1 SW2.
	DefaultMaxResponse = 65538
	// FWTDeselect is the wait for the answer to S(DESELECT): 71680/fc ≈
	// 5.29 ms (ISO/IEC 14443-4 §8.1, NXP and ST use the same value).
	FWTDeselect = 71680 * time.Second / 13_560_000
)

// Params configures a PCD from the activation (see ParamsFor).
type Params struct {
	// FSC is the largest frame the PICC accepts (bytes, CRC included).
	// 0 means 32, the ISO default when the PICC said nothing. A caller whose
	// chip sends shorter frames (PN532: 264 bytes of data) lowers it.
	FSC int
	// FSD is the largest frame the PCD (reader chip) accepts. 0 means 256.
	// The PICC chains to fit it; a longer frame counts as an invalid block.
	FSD int
	// FWT is the frame waiting time from ATQB/ATS. 0 means FWI 4.
	FWT time.Duration
	// Margin is added to every wait for the PICC. 0 means
	// iso14443.DeltaFWT (≈3.6 ms); negative means none.
	Margin time.Duration
	// CID is the card identifier to send in every block, or -1 for none.
	// Note that the zero value means CID 0.
	CID int
	// Retries is the number of recovery attempts per block (R(NAK),
	// R(ACK) or retransmission). 0 means DefaultRetries; negative, none.
	Retries int
	// MaxWTX bounds S(WTX) requests per exchange. 0 means DefaultMaxWTX.
	MaxWTX int
	// MaxResponse bounds a reassembled response. 0 means
	// DefaultMaxResponse.
	MaxResponse int
	// Tracer, if set, receives every RF block and APDU. VERIFY and CHANGE
	// REFERENCE DATA bodies are redacted in both (nfc.RedactVerify).
	Tracer nfc.Tracer
}

// ParamsFor returns the parameters of an activated target.
func ParamsFor(t nfc.Target) Params {
	return Params{FSC: t.FSC, FSD: t.FSD, FWT: t.FWT, CID: t.CID}
}

func (p Params) withDefaults() Params {
	if p.FSC <= 0 {
		p.FSC = 32
	}
	p.FSC = clampFS(p.FSC)
	if p.FSD <= 0 {
		p.FSD = 256
	}
	p.FSD = clampFS(p.FSD)
	if p.FWT <= 0 {
		p.FWT = FWI4
	}
	p.FWT = min(p.FWT, FWTMax)
	if p.Margin == 0 {
		p.Margin = iso14443.DeltaFWT
	} else if p.Margin < 0 {
		p.Margin = 0
	}
	if p.CID < -1 || p.CID > MaxCID {
		p.CID = -1
	}
	if p.Retries == 0 {
		p.Retries = DefaultRetries
	} else if p.Retries < 0 {
		p.Retries = 0
	}
	if p.MaxWTX <= 0 {
		p.MaxWTX = DefaultMaxWTX
	}
	if p.MaxResponse <= 0 {
		p.MaxResponse = DefaultMaxResponse
	}
	return p
}

// PCD is the reader side of ISO-DEP over a raw frame transceiver. It is
// safe for concurrent use; exchanges are serialised.
type PCD struct {
	mu         sync.Mutex
	rt         nfc.RawTransceiver
	p          Params
	bn         uint8 // Rule A: starts at 0
	deselected bool
}

// NewPCD returns a PCD for a freshly activated PICC (block number 0).
func NewPCD(rt nfc.RawTransceiver, p Params) *PCD {
	return &PCD{rt: rt, p: p.withDefaults()}
}

// Params returns the parameters in use, defaults applied.
func (c *PCD) Params() Params { return c.p }

// failure classes of one round trip, for the final error kind.
type failure uint8

const (
	failNone failure = iota
	failTimeout
	failTransmission
	failBlock
)

// exchange is the state of one Transceive call.
type exchange struct {
	c        *PCD
	op       string
	heard    bool
	last     failure
	lastErr  error
	retries  int
	wtx      int
	deadline time.Time
	expect   int // longest answer expected to the frame in flight (0: unknown)
}

// Transceive sends one command APDU and returns the response APDU (data and
// SW1 SW2). It chains the command by FSC and the response by FSD, recovers
// lost or corrupted blocks with R(NAK)/R(ACK) (Rules 4–7, at most Retries
// times per block), answers S(WTX) requests with the same WTXM and waits
// FWT×WTXM for the next block (at most MaxWTX times), and honours ctx.
//
// Errors wrap nfc kinds: ErrTargetGone when the PICC answered nothing at
// all in the exchange, ErrTimeout when it stopped answering or ctx
// expired (the ctx error is wrapped too), ErrTransmission when corrupted
// frames outlasted the retries, ErrProtocol for blocks that break the
// protocol, and the transceiver's kind (e.g. ErrReaderGone) otherwise.
func (c *PCD) Transceive(ctx context.Context, apdu []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	x := &exchange{c: c, op: "isodep: Transceive"}
	if c.deselected {
		return nil, nfc.Errorf(x.op, nfc.ErrTargetGone, "PICC deselected")
	}
	if len(apdu) == 0 {
		return nil, nfc.Errorf(x.op, nfc.ErrProtocol, "empty APDU")
	}
	c.traceAPDU(true, apdu)
	resp, err := x.run(ctx, apdu)
	if err != nil {
		return nil, err
	}
	c.traceAPDU(false, resp)
	return resp, nil
}

func (x *exchange) run(ctx context.Context, apdu []byte) ([]byte, error) {
	c := x.c
	room := c.p.FSC - 3
	if c.p.CID >= 0 {
		room--
	}
	redacted := nfc.RedactVerify(apdu)
	chunk := func(i int) (data, red []byte, chain bool) {
		lo := i * room
		hi := min(lo+room, len(apdu))
		return apdu[lo:hi], redacted[lo:hi], hi < len(apdu)
	}
	nChunks := (len(apdu) + room - 1) / room

	// The longest answer expected, for transceivers that size their host
	// reads (I2C, SPI): while the PCD chains, an R(ACK) or S(WTX); then the
	// response's SW1 SW2 and at most Ne bytes, of which rcvd arrived.
	hdr := 1
	if c.p.CID >= 0 {
		hdr++
	}
	ne, neKnown := nfc.APDUNe(apdu)
	expect := func(chaining bool, rcvd int) int {
		if chaining {
			return hdr + 1
		}
		if !neKnown {
			return c.p.FSD - 2
		}
		return min(hdr+max(ne+2-rcvd, 1), c.p.FSD-2)
	}

	// Send phase: chunk i is in flight as the last I-block.
	i := 0
	data, red, chain := chunk(0)
	iblock := I(c.bn, chain, c.p.CID, data).mustBytes()
	iblockRed := I(c.bn, chain, c.p.CID, red).mustBytes()
	frame, traced := iblock, iblockRed
	x.expect = expect(chain, 0)
	wait := c.p.FWT
	receiving := false
	var resp []byte

	for {
		rx, f, err := x.roundTrip(ctx, frame, traced, wait)
		wait = c.p.FWT // an extension lasts for one block only (§7.3)
		if err != nil {
			return nil, err
		}
		var b Block
		if f == failNone {
			b, err = ParseBlock(rx)
			switch {
			case err != nil:
				f, x.lastErr = failBlock, err
			case len(rx)+2 > c.p.FSD:
				f, x.lastErr = failBlock, fmt.Errorf("frame of %d bytes exceeds FSD %d", len(rx)+2, c.p.FSD)
			case b.NAD >= 0 || b.CID != c.p.CID:
				f, x.lastErr = failBlock, fmt.Errorf("block %v with wrong CID or a NAD", b)
			case b.Kind == KindI && b.BN != c.bn:
				// Not the block expected (a stale or repeated one): invalid,
				// so Rule 4/5 asks for the right one again.
				f, x.lastErr = failBlock, fmt.Errorf("I-block with block number %d, want %d", b.BN, c.bn)
			}
		}
		if f != failNone {
			// Rule 4 (R(NAK)) while sending, Rule 5 (R(ACK)) while the PICC
			// chains; the retries bound both.
			if err := x.recover(f); err != nil {
				return nil, err
			}
			if receiving {
				frame = ACK(c.bn, c.p.CID).mustBytes()
			} else {
				frame = NAK(c.bn, c.p.CID).mustBytes()
			}
			traced = frame
			continue
		}
		switch b.Kind {
		case KindWTX:
			m := b.WTXM()
			if m < MinWTXM || m > MaxWTXM {
				return nil, nfc.Errorf(x.op, nfc.ErrProtocol, "S(WTX) with WTXM %d", m)
			}
			if x.wtx++; x.wtx > c.p.MaxWTX {
				return nil, nfc.Errorf(x.op, nfc.ErrTimeout, "more than %d S(WTX) requests", c.p.MaxWTX)
			}
			// Echo the same WTXM; the next block may take FWT×WTXM, capped
			// at FWT max (multiply the FWT, not the FWI).
			frame = WTX(m, c.p.CID).mustBytes()
			traced = frame
			wait = min(c.p.FWT*time.Duration(m), FWTMax)
			continue
		case KindACK:
			if receiving {
				return nil, nfc.Errorf(x.op, nfc.ErrProtocol, "R(ACK) while the PICC chains")
			}
			if b.BN != c.bn {
				// Rule 6: the PICC did not get our I-block; send it again.
				if err := x.recover(failBlock); err != nil {
					return nil, err
				}
				frame, traced = iblock, iblockRed
				continue
			}
			if !chain {
				return nil, nfc.Errorf(x.op, nfc.ErrProtocol, "R(ACK) to an unchained I-block")
			}
			// Rule 7 with Rule B: acknowledged, toggle, next chunk.
			c.bn ^= 1
			x.retries = 0
			i++
			if i >= nChunks {
				return nil, nfc.Errorf(x.op, nfc.ErrProtocol, "R(ACK) after the last block")
			}
			data, red, chain = chunk(i)
			iblock = I(c.bn, chain, c.p.CID, data).mustBytes()
			iblockRed = I(c.bn, chain, c.p.CID, red).mustBytes()
			frame, traced = iblock, iblockRed
			x.expect = expect(chain, 0)
		case KindI:
			if !receiving && chain {
				return nil, nfc.Errorf(x.op, nfc.ErrProtocol, "I-block while the PCD chains (Rule 2)")
			}
			if b.Chain && len(b.INF) == 0 {
				// An empty chained block makes no progress; refusing it keeps
				// the exchange bounded by MaxResponse.
				return nil, nfc.Errorf(x.op, nfc.ErrProtocol, "chained I-block without INF")
			}
			c.bn ^= 1 // Rule B
			x.retries = 0
			if len(resp)+len(b.INF) > c.p.MaxResponse {
				return nil, nfc.Errorf(x.op, nfc.ErrProtocol, "response longer than %d bytes", c.p.MaxResponse)
			}
			resp = append(resp, b.INF...)
			if !b.Chain {
				return resp, nil
			}
			// Rule 2: acknowledge the chained block, with the toggled number.
			receiving = true
			frame = ACK(c.bn, c.p.CID).mustBytes()
			traced = frame
			x.expect = expect(false, len(resp))
		default:
			return nil, nfc.Errorf(x.op, nfc.ErrProtocol, "unexpected %v from PICC", b)
		}
	}
}

// roundTrip sends one frame and waits up to wait+margin (and no longer than
// ctx allows). A timeout or transmission error is returned as a failure
// class for recovery; other errors end the exchange.
func (x *exchange) roundTrip(ctx context.Context, frame, traced []byte, wait time.Duration) ([]byte, failure, error) {
	c := x.c
	if err := ctx.Err(); err != nil {
		return nil, failNone, &nfc.Error{Op: x.op, Kind: nfc.ErrTimeout, Err: err}
	}
	timeout := wait + c.p.Margin
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
		if timeout <= 0 {
			return nil, failNone, &nfc.Error{Op: x.op, Kind: nfc.ErrTimeout, Err: context.DeadlineExceeded}
		}
	}
	c.trace(nfc.LayerRF, true, traced)
	var rx []byte
	var err error
	if s, ok := c.rt.(nfc.SizedRawTransceiver); ok && x.expect > 0 {
		rx, err = s.TransceiveRawSized(ctx, frame, timeout, x.expect)
	} else {
		rx, err = c.rt.TransceiveRaw(ctx, frame, timeout)
	}
	if err == nil {
		x.heard = true
		c.trace(nfc.LayerRF, false, rx)
		return rx, failNone, nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, failNone, &nfc.Error{Op: x.op, Kind: nfc.ErrTimeout, Err: errors.Join(ctxErr, err)}
	}
	x.lastErr = err
	switch {
	case errors.Is(err, nfc.ErrTimeout):
		return nil, failTimeout, nil
	case errors.Is(err, nfc.ErrTransmission):
		x.heard = true // something answered, garbled
		return nil, failTransmission, nil
	}
	if nfc.Kind(err) == nil {
		return nil, failNone, &nfc.Error{Op: x.op, Kind: nfc.ErrProtocol, Err: err}
	}
	return nil, failNone, &nfc.Error{Op: x.op, Kind: nfc.Kind(err), Err: err}
}

// recover counts one recovery attempt and returns the final error when the
// retries are exhausted.
func (x *exchange) recover(f failure) error {
	x.last = f
	if x.retries >= x.c.p.Retries {
		return x.giveUp()
	}
	x.retries++
	return nil
}

func (x *exchange) giveUp() error {
	kind := nfc.ErrProtocol
	switch {
	case x.last == failTimeout && !x.heard:
		kind = nfc.ErrTargetGone
	case x.last == failTimeout:
		kind = nfc.ErrTimeout
	case x.last == failTransmission:
		kind = nfc.ErrTransmission
	}
	return &nfc.Error{Op: x.op, Kind: kind, Err: fmt.Errorf("no valid block after %d retries: %w", x.c.p.Retries, x.lastErr)}
}

// Present checks that the PICC still answers: it sends R(NAK) with the
// current block number, to which a PICC in the field answers R(ACK) (Rule
// 12; iso14443b.md §4.4). It returns nil when the PICC answers, an error
// wrapping nfc.ErrTargetGone when nothing answered after the retries.
func (c *PCD) Present(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	x := &exchange{c: c, op: "isodep: Present"}
	if c.deselected {
		return nfc.Errorf(x.op, nfc.ErrTargetGone, "PICC deselected")
	}
	nak := NAK(c.bn, c.p.CID).mustBytes()
	for {
		rx, f, err := x.roundTrip(ctx, nak, nak, c.p.FWT)
		if err != nil {
			return err
		}
		if f == failNone {
			b, err := ParseBlock(rx)
			if err == nil && b.CID == c.p.CID {
				// R(ACK) is the expected answer; any valid block (a
				// retransmitted I-block, S(WTX)) also proves presence.
				return nil
			}
			f, x.lastErr = failBlock, fmt.Errorf("invalid block % X", rx)
		}
		if err := x.recover(f); err != nil {
			return err
		}
	}
}

// Deselect sends S(DESELECT) and waits for its echo (§8; Rule 8: retried,
// then given up). Afterwards the PCD refuses further exchanges whatever the
// outcome: the PICC must be activated again.
func (c *PCD) Deselect(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	x := &exchange{c: c, op: "isodep: Deselect"}
	if c.deselected {
		return nil
	}
	c.deselected = true
	req := Deselect(c.p.CID).mustBytes()
	for {
		rx, f, err := x.roundTrip(ctx, req, req, FWTDeselect)
		if err != nil {
			return err
		}
		if f == failNone {
			if bytes.Equal(rx, req) {
				return nil
			}
			f, x.lastErr = failBlock, fmt.Errorf("answer % X to S(DESELECT)", rx)
		}
		if err := x.recover(f); err != nil {
			return err
		}
	}
}

func (c *PCD) trace(layer nfc.Layer, out bool, data []byte) {
	if c.p.Tracer == nil {
		return
	}
	c.p.Tracer.Trace(nfc.TraceEvent{Time: time.Now(), Layer: layer, Out: out, Data: data})
}

func (c *PCD) traceAPDU(out bool, apdu []byte) {
	if out {
		apdu = nfc.RedactVerify(apdu)
	}
	c.trace(nfc.LayerAPDU, out, apdu)
}
