package iso14443

import (
	"context"
	"errors"
	"fmt"
	"time"

	"kazasu/drivers/nfc"
)

// Activation timing (PCD side).
const (
	// ATQBTimeout bounds the wait for an ATQB. The ISO window is TR0max +
	// TR1max + frame ≈ 1 ms at 106 kbit/s; a few ms cover slow chips (NXP
	// uses ~17 ms in NFC-Forum polling mode, Flipper 0.7 ms).
	ATQBTimeout = 5 * time.Millisecond
	// FWTActivation is the activation frame waiting time of ISO/IEC 14443-4
	// (65536/fc ≈ 4.83 ms): the wait for an ATS, and for the answer to
	// ATTRIB after an extended ATQB.
	FWTActivation = 65536 * time.Second / fcHz
	// DeltaFWT is the margin added to an FWT before a PCD gives up
	// (49152/fc ≈ 3.6 ms, as NFC Forum Digital and nfcpy use).
	DeltaFWT = 49152 * time.Second / fcHz
)

// DefaultFSDI is the FSDI kazasu's PCDs announce: 8, FSD 256 bytes.
const DefaultFSDI = 8

// ActivateB runs Type B activation as the PCD (ISO/IEC 14443-3 §7):
// WUPB (one slot, AFI afi) → ATQB → ATTRIB (106 kbit/s both ways, FSDI
// fsdi, CID cid or none when cid < 0 or the PICC does not support CID) →
// answer to ATTRIB. It returns the target description for the ISO-DEP
// layer; Mode is nfc.ISODepHost. ActivateB does not sleep: the caller lets
// Target.SFGT pass before the first ISO-DEP block.
//
// When several PICCs answer the single-slot WUPB at once (a transmission
// error: a wallet with two Type B cards), ActivateB falls back to the
// probabilistic anticollision of §7.4: WUPB with SlotsOnCollision slots
// and slot-MARKERs, up to CollisionRounds times, and activates the first
// PICC heard alone in a slot. The others stay in READY and ignore the
// ATTRIB, which carries another PUPI.
//
// Errors: no ATQB → nfc.ErrNoTarget; a PICC that is not ISO-DEP →
// nfc.ErrNotSupported; malformed answers → nfc.ErrProtocol; no answer to
// ATTRIB → nfc.ErrTimeout. Errors of rt (ErrReaderGone, ErrTransmission on
// a collision, …) pass through with their kind.
func ActivateB(ctx context.Context, rt nfc.RawTransceiver, afi byte, fsdi byte, cid int) (nfc.Target, error) {
	const op = "iso14443: ActivateB"
	if fsdi > MaxFSCI {
		fsdi = DefaultFSDI
	}
	atqb, err := wakeB(ctx, rt, afi)
	if err != nil {
		return nfc.Target{}, err
	}
	if !atqb.ISODEP() {
		return nfc.Target{}, nfc.Errorf(op, nfc.ErrNotSupported, "PICC %X is not ISO/IEC 14443-4 compliant (Protocol_Type %X)", atqb.PUPI, atqb.ProtocolType)
	}
	if cid > 14 || !atqb.CID() {
		cid = -1
	}
	attrib := Attrib{
		PUPI:         atqb.PUPI,
		FSDI:         fsdi,
		ProtocolType: atqb.ProtocolType & 0x07,
	}
	if cid >= 0 {
		attrib.CID = byte(cid)
	}
	wait := atqb.FWT()
	if atqb.Extended {
		// §7.9.4.3: after an extended ATQB the answer to ATTRIB comes
		// within the activation FWT; the ATQB's FWT applies afterwards.
		wait = FWTActivation
	}
	resp, err := rt.TransceiveRaw(ctx, attrib.Bytes(), wait+DeltaFWT)
	if err != nil {
		return nfc.Target{}, passKind(op+": ATTRIB", err)
	}
	ar, err := ParseAttribResp(resp)
	if err != nil {
		return nfc.Target{}, nfc.Wrap(op, nfc.ErrProtocol, err)
	}
	if ar.CID != attrib.CID {
		return nfc.Target{}, nfc.Errorf(op, nfc.ErrProtocol, "answer to ATTRIB has CID %d, want %d", ar.CID, attrib.CID)
	}
	return nfc.Target{
		Tech:        nfc.TechB,
		ID:          append([]byte(nil), atqb.PUPI[:]...),
		ATQB:        append([]byte(nil), atqb.Bytes()...),
		AttribRes:   append([]byte(nil), resp...),
		FSC:         atqb.FSC(),
		FSD:         FrameSize(fsdi),
		FWT:         atqb.FWT(),
		SFGT:        atqb.SFGT(),
		CID:         cid,
		BitRatePCD:  int(BitRate106),
		BitRatePICC: int(BitRate106),
		Mode:        nfc.ISODepHost,
	}, nil
}

// ActivateA runs the ISO/IEC 14443-4 part of Type A activation as the PCD
// for a PICC already selected with a SAK saying ISO-DEP: RATS (FSDI fsdi,
// CID cid, or 0 with no CID in blocks when cid < 0) → ATS. It returns the
// target with the ATS fields filled; the caller adds ID, ATQA and SAK from
// its anticollision loop. Errors as for ActivateB (no ATS → ErrTimeout).
func ActivateA(ctx context.Context, rt nfc.RawTransceiver, fsdi byte, cid int) (nfc.Target, error) {
	const op = "iso14443: ActivateA"
	if fsdi > MaxFSCI {
		fsdi = DefaultFSDI
	}
	if cid > 14 {
		cid = -1
	}
	r := RATS{FSDI: fsdi}
	if cid >= 0 {
		r.CID = byte(cid)
	}
	resp, err := rt.TransceiveRaw(ctx, r.Bytes(), FWTActivation+DeltaFWT)
	if err != nil {
		return nfc.Target{}, passKind(op+": RATS", err)
	}
	ats, err := ParseATS(resp)
	if err != nil {
		return nfc.Target{}, nfc.Wrap(op, nfc.ErrProtocol, err)
	}
	if !ats.CID() {
		cid = -1
	}
	return nfc.Target{
		Tech:        nfc.TechA,
		ATS:         append([]byte(nil), resp...),
		FSC:         ats.FSC(),
		FSD:         FrameSize(fsdi),
		FWT:         ats.FWT(),
		SFGT:        ats.SFGT(),
		CID:         cid,
		BitRatePCD:  int(BitRate106),
		BitRatePICC: int(BitRate106),
		Mode:        nfc.ISODepHost,
	}, nil
}

// passKind keeps the kind of an error from the transceiver (wrapping it
// under op), and gives ErrProtocol to errors without one.
func passKind(op string, err error) error {
	if k := nfc.Kind(err); k != nil {
		return &nfc.Error{Op: op, Kind: k, Err: err}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &nfc.Error{Op: op, Kind: nfc.ErrTimeout, Err: err}
	}
	return &nfc.Error{Op: op, Kind: nfc.ErrProtocol, Err: err}
}

// Type B anticollision after a collision in the single-slot WUPB.
const (
	SlotsOnCollision = 16
	CollisionRounds  = 3
)

// wakeB sends WUPB and returns the ATQB of one PICC, resolving collisions
// with slotted requests.
func wakeB(ctx context.Context, rt nfc.RawTransceiver, afi byte) (ATQB, error) {
	const op = "iso14443: ActivateB"
	resp, err := rt.TransceiveRaw(ctx, ReqB{AFI: afi, Slots: 1, WakeUp: true}.Bytes(), ATQBTimeout)
	switch {
	case err == nil:
		atqb, err := ParseATQB(resp)
		if err != nil {
			return ATQB{}, nfc.Wrap(op, nfc.ErrProtocol, err)
		}
		return atqb, nil
	case errors.Is(err, nfc.ErrTimeout):
		return ATQB{}, &nfc.Error{Op: op, Kind: nfc.ErrNoTarget, Err: err}
	case !errors.Is(err, nfc.ErrTransmission):
		return ATQB{}, passKind(op, err)
	}
	collision := err
	for range CollisionRounds {
		for slot := 1; slot <= SlotsOnCollision; slot++ {
			var frame []byte
			if slot == 1 {
				frame = ReqB{AFI: afi, Slots: SlotsOnCollision, WakeUp: true}.Bytes()
			} else {
				frame, _ = SlotMarker(slot)
			}
			resp, err := rt.TransceiveRaw(ctx, frame, ATQBTimeout)
			switch {
			case err == nil:
				if atqb, perr := ParseATQB(resp); perr == nil {
					return atqb, nil
				}
			case errors.Is(err, nfc.ErrTimeout) && ctx.Err() == nil:
				// empty slot
			case errors.Is(err, nfc.ErrTransmission):
				collision = err // two or more PICCs in this slot
			default:
				return ATQB{}, passKind(op, err)
			}
		}
	}
	return ATQB{}, &nfc.Error{Op: op, Kind: nfc.ErrTransmission, Err: fmt.Errorf("PICCs still collide after %d rounds of %d slots: %w", CollisionRounds, SlotsOnCollision, collision)}
}
