package pn532

import (
	"context"
	"fmt"
	"time"

	"kazasu/drivers/nfc"
)

// BrTy is the baud rate and modulation of InListPassiveTarget (UM0701
// §7.3.5). The PN532 does Type B at 106 kbit/s only.
type BrTy byte

// Baud rates and modulation types.
const (
	BrTy106A     BrTy = 0x00 // ISO/IEC 14443 Type A
	BrTy212F     BrTy = 0x01 // FeliCa 212
	BrTy424F     BrTy = 0x02 // FeliCa 424
	BrTy106B     BrTy = 0x03 // ISO/IEC 14443-3 Type B
	BrTy106Jewel BrTy = 0x04 // Innovision Jewel
)

func (b BrTy) String() string {
	switch b {
	case BrTy106A:
		return "106 kbps type A"
	case BrTy212F:
		return "212 kbps FeliCa"
	case BrTy424F:
		return "424 kbps FeliCa"
	case BrTy106B:
		return "106 kbps type B"
	case BrTy106Jewel:
		return "106 kbps Jewel"
	}
	return fmt.Sprintf("BrTy(0x%02X)", byte(b))
}

// PassiveTarget is one entry of InListPassiveTarget's or InAutoPoll's
// TargetData, decoded.
type PassiveTarget struct {
	Tg   byte // the chip's logical number for the target (1 or 2)
	BrTy BrTy
	// Type A: SENS_RES (ATQA), SEL_RES (SAK), NFCID1 (UID) and the ATS with
	// its TL byte (only when the chip ran RATS itself).
	SENSRES []byte
	SELRES  byte
	NFCID1  []byte
	ATS     []byte
	// Type B: the ATQB (0x50 first, 12 bytes) and the answer to the
	// chip's own ATTRIB (FSD 64, CID 1).
	ATQB      []byte
	AttribRes []byte
	// Raw is the whole TargetData entry, Tg included.
	Raw []byte
}

func (t PassiveTarget) String() string {
	switch t.BrTy {
	case BrTy106A:
		return fmt.Sprintf("Tg %d A UID %X ATQA %X SAK %02X ATS %X", t.Tg, t.NFCID1, t.SENSRES, t.SELRES, t.ATS)
	case BrTy106B:
		return fmt.Sprintf("Tg %d B ATQB %X ATTRIB_RES %X", t.Tg, t.ATQB, t.AttribRes)
	}
	return fmt.Sprintf("Tg %d %v [% X]", t.Tg, t.BrTy, t.Raw)
}

// PUPI returns the Type B PUPI (ATQB bytes 1…4), or nil.
func (t PassiveTarget) PUPI() []byte {
	if len(t.ATQB) < 5 {
		return nil
	}
	return t.ATQB[1:5]
}

// parseTarget decodes one TargetData entry of type brty from the front of b
// and returns it and the bytes after it.
func parseTarget(brty BrTy, b []byte) (PassiveTarget, []byte, error) {
	c := cursor(b)
	t := PassiveTarget{BrTy: brty}
	var ok bool
	if t.Tg, ok = c.byte(); !ok {
		return t, nil, errTarget(brty, b)
	}
	switch brty {
	case BrTy106A:
		var n byte
		if t.SENSRES, ok = c.bytes(2); !ok {
			return t, nil, errTarget(brty, b)
		}
		if t.SELRES, ok = c.byte(); !ok {
			return t, nil, errTarget(brty, b)
		}
		if n, ok = c.byte(); !ok {
			return t, nil, errTarget(brty, b)
		}
		if t.NFCID1, ok = c.bytes(int(n)); !ok {
			return t, nil, errTarget(brty, b)
		}
		// The ATS (TL first) follows for ISO-DEP cards when the chip ran
		// RATS (SEL_RES bit 6, fAutomaticRATS).
		if t.SELRES&0x20 != 0 && len(c) > 0 {
			tl := int(c[0])
			if tl == 0 {
				return t, nil, errTarget(brty, b)
			}
			if t.ATS, ok = c.bytes(tl); !ok {
				return t, nil, errTarget(brty, b)
			}
		}
	case BrTy106B:
		var n byte
		if t.ATQB, ok = c.bytes(12); !ok || t.ATQB[0] != 0x50 {
			return t, nil, errTarget(brty, b)
		}
		if n, ok = c.byte(); !ok {
			return t, nil, errTarget(brty, b)
		}
		if t.AttribRes, ok = c.bytes(int(n)); !ok {
			return t, nil, errTarget(brty, b)
		}
	case BrTy212F, BrTy424F:
		// POL_RES length (itself included), then the rest of POL_RES.
		if len(c) < 1 || c[0] < 2 {
			return t, nil, errTarget(brty, b)
		}
		if _, ok = c.bytes(int(c[0])); !ok {
			return t, nil, errTarget(brty, b)
		}
	case BrTy106Jewel:
		if _, ok = c.bytes(6); !ok {
			return t, nil, errTarget(brty, b)
		}
	default:
		return t, nil, errTarget(brty, b)
	}
	used := len(b) - len(c)
	t.Raw = append([]byte(nil), b[:used]...)
	return t, []byte(c), nil
}

func errTarget(brty BrTy, b []byte) error {
	return nfc.Errorf("pn532: InListPassiveTarget", nfc.ErrProtocol, "truncated or malformed %v target data [% X]", brty, b)
}

// cursor reads a byte slice front to back with bounds checks.
type cursor []byte

func (c *cursor) byte() (byte, bool) {
	if len(*c) < 1 {
		return 0, false
	}
	b := (*c)[0]
	*c = (*c)[1:]
	return b, true
}

func (c *cursor) bytes(n int) ([]byte, bool) {
	if n < 0 || len(*c) < n {
		return nil, false
	}
	b := append([]byte(nil), (*c)[:n]...)
	*c = (*c)[n:]
	return b, true
}

// fwt returns the frame waiting time for FWI: (256 × 16 / fc) × 2^FWI
// (ISO/IEC 14443-4 §7.2), 302 µs × 2^FWI; FWI 15 is RFU and read as 4.
func fwt(fwi byte) time.Duration {
	if fwi > 14 {
		fwi = 4
	}
	const unit = time.Duration(256 * 16 * int64(time.Second) / 13_560_000) // 302.06 µs
	return unit << fwi
}

// airTime is the time n bytes take on air at 106 kbit/s: 10 etu of 128/fc
// each (ISO/IEC 14443-3 character framing).
func airTime(n int) time.Duration {
	return time.Duration(int64(n) * 10 * 128 * int64(time.Second) / 13_560_000)
}

// pollTimeout bounds an InListPassiveTarget: the chip tries PollRetries+1
// times, each try waiting at most the maximum activation frame waiting time
// (FWI 14 for ATTRIB and RATS, the longest a card may ask for), plus the
// chip's own processing.
func (d *Dev) pollTimeout() time.Duration {
	return time.Duration(d.opts.PollRetries+1)*d.opts.CommandTimeout + fwt(14)
}

// InListPassiveTarget activates up to maxTg (1 or 2) targets of type brty
// (UM0701 §7.3.5). initiatorData is the AFI (and optional polling method) for
// Type B, an optional UID for Type A. Finding nothing is not an error: the
// result is empty. The driver has set MxRtyPassiveActivation finite, so the
// chip answers.
func (d *Dev) InListPassiveTarget(ctx context.Context, maxTg int, brty BrTy, initiatorData []byte) ([]PassiveTarget, error) {
	var out []PassiveTarget
	err := d.run(ctx, func(ctx context.Context) error {
		var err error
		out, err = d.inListPassiveTarget(ctx, maxTg, brty, initiatorData)
		return err
	})
	return out, err
}

func (d *Dev) inListPassiveTarget(ctx context.Context, maxTg int, brty BrTy, initiatorData []byte) ([]PassiveTarget, error) {
	if maxTg < 1 || maxTg > 2 {
		return nil, nfc.Errorf("pn532: InListPassiveTarget", nfc.ErrNotSupported, "MaxTg %d, the chip takes 1 or 2", maxTg)
	}
	if brty > BrTy106Jewel {
		return nil, nfc.Errorf("pn532: InListPassiveTarget", nfc.ErrNotSupported, "%v on a PN532", brty)
	}
	if err := d.ensureRetries(ctx); err != nil {
		return nil, err
	}
	p := append([]byte{byte(maxTg), byte(brty)}, initiatorData...)
	// Target data is short (a Type B entry is 16 bytes, a Type A one with
	// a typical ATS under 40): size I2C/SPI reads for that; a longer
	// answer still gets through (the read grows and the chip resends).
	b, err := d.call(ctx, request{cmd: CmdInListPassiveTarget, params: p, timeout: d.pollTimeout(), maxResp: 1 + 48*maxTg})
	if err != nil {
		return nil, err
	}
	if len(b) < 1 || int(b[0]) > maxTg {
		return nil, errShort(CmdInListPassiveTarget, b, "NbTg and target data")
	}
	n := int(b[0])
	rest := b[1:]
	out := make([]PassiveTarget, 0, n)
	for i := 0; i < n; i++ {
		var t PassiveTarget
		t, rest, err = parseTarget(brty, rest)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if len(rest) != 0 {
		return nil, errShort(CmdInListPassiveTarget, b, "exactly NbTg targets")
	}
	return out, nil
}

// ensureRetries sets MaxRetries (item 05) to a finite passive activation
// count once per bring-up: the power-on value 0xFF makes InListPassiveTarget
// wait forever for a card.
func (d *Dev) ensureRetries(ctx context.Context) error {
	if d.retriesSet {
		return nil
	}
	// MxRtyATR 2 (DEP, unused here), MxRtyPSL 1 (UM default), passive
	// activation as configured.
	if err := d.rfConfiguration(ctx, RFMaxRetries, []byte{0x02, 0x01, byte(d.opts.PollRetries)}); err != nil {
		return err
	}
	d.retriesSet = true
	return nil
}

// AutoPollType is a target type of InAutoPoll (UM0701 §7.3.13).
type AutoPollType byte

// InAutoPoll target types used for ISO-DEP.
const (
	AutoPollGeneric106A AutoPollType = 0x00
	AutoPoll106B        AutoPollType = 0x03
	AutoPollMifare      AutoPollType = 0x10
	AutoPollISO14443_4A AutoPollType = 0x20
	AutoPollISO14443_4B AutoPollType = 0x23
)

func (t AutoPollType) brty() (BrTy, bool) {
	switch t & 0x7F {
	case 0x00, 0x10, 0x20:
		return BrTy106A, true
	case 0x01, 0x11:
		return BrTy212F, true
	case 0x02, 0x12:
		return BrTy424F, true
	case 0x03, 0x23:
		return BrTy106B, true
	case 0x04:
		return BrTy106Jewel, true
	}
	return 0, false
}

func (t AutoPollType) String() string {
	switch t {
	case AutoPollGeneric106A:
		return "generic 106 A"
	case AutoPoll106B:
		return "106 B"
	case AutoPollMifare:
		return "MIFARE"
	case AutoPollISO14443_4A:
		return "ISO14443-4A"
	case AutoPollISO14443_4B:
		return "ISO14443-4B"
	}
	return fmt.Sprintf("AutoPollType(0x%02X)", byte(t))
}

// AutoPollTarget is one target found by InAutoPoll.
type AutoPollTarget struct {
	Type AutoPollType
	PassiveTarget
}

// InAutoPoll polls pollNr times (1…254) for the given types, period × 150 ms
// apart (UM0701 §7.3.13). pollNr 0xFF (forever) is refused: use a loop
// with a context instead.
func (d *Dev) InAutoPoll(ctx context.Context, pollNr, period byte, types ...AutoPollType) ([]AutoPollTarget, error) {
	if pollNr == 0 || pollNr == 0xFF || period == 0 || period > 0x0F || len(types) == 0 || len(types) > 15 {
		return nil, nfc.Errorf("pn532: InAutoPoll", nfc.ErrNotSupported, "PollNr %d, Period %d, %d types", pollNr, period, len(types))
	}
	var out []AutoPollTarget
	err := d.run(ctx, func(ctx context.Context) error {
		p := []byte{pollNr, period}
		for _, t := range types {
			p = append(p, byte(t))
		}
		// Each round tries every type for one period; add an activation
		// FWT for the target found.
		timeout := time.Duration(pollNr)*time.Duration(len(types))*time.Duration(period)*150*time.Millisecond + fwt(14) + d.opts.CommandTimeout
		b, err := d.call(ctx, request{cmd: CmdInAutoPoll, params: p, timeout: timeout, maxResp: anyLen})
		if err != nil {
			return err
		}
		out, err = parseAutoPoll(b)
		return err
	})
	return out, err
}

func parseAutoPoll(b []byte) ([]AutoPollTarget, error) {
	c := cursor(b)
	n, ok := c.byte()
	if !ok || n > 2 {
		return nil, errShort(CmdInAutoPoll, b, "NbTg and targets")
	}
	var out []AutoPollTarget
	for i := 0; i < int(n); i++ {
		typ, ok1 := c.byte()
		l, ok2 := c.byte()
		data, ok3 := c.bytes(int(l))
		if !ok1 || !ok2 || !ok3 {
			return nil, errShort(CmdInAutoPoll, b, "Type Len TargetData")
		}
		brty, ok := AutoPollType(typ).brty()
		if !ok {
			out = append(out, AutoPollTarget{Type: AutoPollType(typ), PassiveTarget: PassiveTarget{Raw: data}})
			continue
		}
		t, rest, err := parseTarget(brty, data)
		if err != nil {
			return nil, err
		}
		if len(rest) != 0 {
			return nil, errShort(CmdInAutoPoll, b, "TargetData of its stated length")
		}
		out = append(out, AutoPollTarget{Type: AutoPollType(typ), PassiveTarget: t})
	}
	if len(c) != 0 {
		return nil, errShort(CmdInAutoPoll, b, "exactly NbTg targets")
	}
	return out, nil
}

// tgCommand runs InSelect, InDeselect or InRelease and maps the status.
func (d *Dev) tgCommand(ctx context.Context, cmd Command, tg byte) (Status, error) {
	r := d.local(cmd, []byte{tg}, 1)
	r.timeout += fwt(14) // a DESELECT may wait for the card
	b, err := d.call(ctx, r)
	if err != nil {
		return 0, err
	}
	if len(b) != 1 {
		return 0, errShort(cmd, b, "a status")
	}
	return Status(b[0] & statusMask), statusErr(cmd, b[0])
}

// InSelect selects target tg again after InDeselect.
func (d *Dev) InSelect(ctx context.Context, tg byte) error {
	return d.run(ctx, func(ctx context.Context) error {
		_, err := d.tgCommand(ctx, CmdInSelect, tg)
		return err
	})
}

// InDeselect deselects target tg (0: all) but keeps its data, so InSelect
// can resume it. For an ISO-DEP card the chip sends S(DESELECT). Host-managed
// ISO-DEP starts here: after it the card is in HALT and answers WUPB.
func (d *Dev) InDeselect(ctx context.Context, tg byte) error {
	return d.run(ctx, func(ctx context.Context) error {
		_, err := d.tgCommand(ctx, CmdInDeselect, tg)
		if err == nil && d.active != nil && (tg == 0 || tg == d.active.tg) {
			d.active.deselected = true
		}
		return err
	})
}

// InRelease releases target tg (0: all); the chip forgets it.
func (d *Dev) InRelease(ctx context.Context, tg byte) error {
	return d.run(ctx, func(ctx context.Context) error {
		_, err := d.inRelease(ctx, tg)
		return err
	})
}

func (d *Dev) inRelease(ctx context.Context, tg byte) (Status, error) {
	s, err := d.tgCommand(ctx, CmdInRelease, tg)
	if tg == 0 {
		d.stale = false
	}
	if d.active != nil && (tg == 0 || tg == d.active.tg) {
		d.active.released = true
		d.active = nil
	}
	return s, err
}

// maxDataOut is the most DataOut bytes in one InDataExchange frame: 264 PD
// bytes minus the command code and Tg (UM0701 §7.3.8; libnfc agrees).
const maxDataOut = 262

// maxChainFrames bounds the continuation frames of one chained answer: a
// 64 KiB answer in the chip's smallest plausible pieces (16 bytes, the
// smallest ISO-DEP frame size) needs 4096.
const maxChainFrames = maxChained/16 + 1

// maxChained bounds what a chained answer may add up to (an extended APDU
// response, 65536 + SW1 SW2), so a chip or card that never clears MI cannot
// make the driver allocate without end.
const maxChained = 65538

// InDataExchange sends data to target tg through the chip's ISO-DEP (or
// MIFARE/FeliCa) engine and returns the answer. Data longer than 262 bytes is
// sent in several frames with Tg's MI bit (0x40) set on all but the last;
// an answer with MI set in its status is collected with further
// InDataExchange frames carrying only Tg. timeout bounds each frame's answer.
func (d *Dev) InDataExchange(ctx context.Context, tg byte, data []byte, timeout time.Duration) ([]byte, error) {
	var out []byte
	err := d.run(ctx, func(ctx context.Context) error {
		var err error
		out, err = d.inDataExchange(ctx, tg, data, nil, anyLen, timeout)
		return err
	})
	return out, err
}

// inDataExchange is InDataExchange; traced is data as it may be traced
// (nil: data itself); want is the most data bytes the first answer can
// carry (anyLen if unknown), which sizes I2C and SPI reads.
func (d *Dev) inDataExchange(ctx context.Context, tg byte, data, traced []byte, want int, timeout time.Duration) ([]byte, error) {
	if tg == 0 || tg&0xC0 != 0 {
		return nil, nfc.Errorf("pn532: InDataExchange", nfc.ErrNotSupported, "Tg 0x%02X", tg)
	}
	// Host → card: DataOut in chunks of at most 262 bytes.
	off := 0
	var b []byte
	for {
		end := min(off+maxDataOut, len(data))
		more := end < len(data)
		t := tg
		if more {
			t |= statusMI
		}
		// A chunk with MI set is answered by a bare status.
		resp := 1
		if !more {
			resp = anyLen
			if want >= 0 && want < maxDataOut {
				resp = 1 + want
			}
		}
		r := request{cmd: CmdInDataExchange, params: append([]byte{t}, data[off:end]...), timeout: timeout, maxResp: resp}
		if traced != nil {
			r.traced = append([]byte{t}, traced[off:end]...)
		}
		var err error
		b, err = d.call(ctx, r)
		if err != nil {
			return nil, err
		}
		if len(b) < 1 {
			return nil, errShort(CmdInDataExchange, b, "a status")
		}
		if err := statusErr(CmdInDataExchange, b[0]); err != nil {
			return nil, d.targetErr(err)
		}
		if b[0]&statusNAD != 0 {
			return nil, nfc.Errorf("pn532: InDataExchange", nfc.ErrProtocol, "status 0x%02X has NAD set", b[0])
		}
		if !more {
			break
		}
		if len(b) > 1 || b[0]&statusMI != 0 {
			return nil, nfc.Errorf("pn532: InDataExchange", nfc.ErrProtocol, "answer [% X] to a chained frame before the chain ended", b)
		}
		off = end
	}
	// Card → host: collect while MI is set. A chain must make progress and
	// end: a chip (or card) that keeps MI set with nothing or next to
	// nothing new is a protocol error, not a reason to loop for minutes.
	out := append([]byte(nil), b[1:]...)
	for frames := 0; b[0]&statusMI != 0; frames++ {
		if len(b) == 1 || frames >= maxChainFrames {
			return nil, nfc.Errorf("pn532: InDataExchange", nfc.ErrProtocol, "chained answer makes no progress (%d frames, %d bytes)", frames+1, len(out))
		}
		var err error
		b, err = d.call(ctx, request{cmd: CmdInDataExchange, params: []byte{tg}, timeout: timeout, maxResp: anyLen})
		if err != nil {
			return nil, err
		}
		if len(b) < 1 {
			return nil, errShort(CmdInDataExchange, b, "a status")
		}
		if err := statusErr(CmdInDataExchange, b[0]); err != nil {
			return nil, d.targetErr(err)
		}
		if len(out)+len(b)-1 > maxChained {
			return nil, nfc.Errorf("pn532: InDataExchange", nfc.ErrProtocol, "chained answer longer than %d bytes", maxChained)
		}
		out = append(out, b[1:]...)
	}
	return out, nil
}

// targetErr forgets the active target when the chip says it is gone.
func (d *Dev) targetErr(err error) error {
	if d.active != nil && nfc.Kind(err) == nfc.ErrTargetGone {
		d.lost()
	}
	return err
}

// lost forgets the active target (it left the field, or the field went
// off); the chip may still list it until the next InRelease, which the next
// Poll sends.
func (d *Dev) lost() {
	if d.active != nil {
		d.active.released = true
		d.active = nil
		d.stale = true
	}
}

// InCommunicateThru sends one raw frame to the current target and returns its
// answer (UM0701 §7.3.9). CRC and parity follow the CIU TxMode/RxMode bits,
// and the chip waits for the answer as long as RFConfiguration item 02's
// retry timeout says; this method leaves both alone (see TransceiveRaw).
func (d *Dev) InCommunicateThru(ctx context.Context, data []byte, timeout time.Duration) ([]byte, error) {
	var out []byte
	err := d.run(ctx, func(ctx context.Context) error {
		var err error
		out, err = d.inCommunicateThru(ctx, data, nil, anyLen, timeout)
		return err
	})
	return out, err
}

// inCommunicateThru is InCommunicateThru; want is the longest answer
// expected (anyLen if unknown), which sizes I2C and SPI reads.
func (d *Dev) inCommunicateThru(ctx context.Context, data, traced []byte, want int, timeout time.Duration) ([]byte, error) {
	if len(data) == 0 || len(data) > maxDataOut+1 {
		return nil, nfc.Errorf("pn532: InCommunicateThru", nfc.ErrNotSupported, "%d bytes, 1…263 allowed", len(data))
	}
	resp := anyLen
	if want >= 0 && want < maxDataOut {
		resp = 1 + want
	}
	r := request{cmd: CmdInCommunicateThru, params: data, timeout: timeout, traced: traced, maxResp: resp}
	b, err := d.call(ctx, r)
	if err != nil {
		return nil, err
	}
	if len(b) < 1 {
		return nil, errShort(CmdInCommunicateThru, b, "a status")
	}
	if err := statusErr(CmdInCommunicateThru, b[0]); err != nil {
		return nil, err
	}
	return b[1:], nil
}

// TransceiveRaw implements nfc.RawTransceiver with InCommunicateThru for
// host-managed ISO-DEP and activation: it makes sure the CIU adds and checks
// the CRC (TxMode/RxMode bit 7) and that the chip waits at least timeout for
// the answer (RFConfiguration item 02, 100 µs × 2^(n−1), at most 3.28 s), and
// traces the frames at nfc.LayerRF with PINs redacted.
func (d *Dev) TransceiveRaw(ctx context.Context, frame []byte, timeout time.Duration) ([]byte, error) {
	return d.TransceiveRawSized(ctx, frame, timeout, anyLen)
}

// TransceiveRawSized is TransceiveRaw with the longest answer expected
// (CRC excluded), which sizes I2C and SPI reads: one read of the right
// length instead of a short one and a re-read.
func (d *Dev) TransceiveRawSized(ctx context.Context, frame []byte, timeout time.Duration, max int) ([]byte, error) {
	if max < 0 {
		max = anyLen
	}
	var out []byte
	err := d.run(ctx, func(ctx context.Context) error {
		var err error
		out, err = d.transceiveRaw(ctx, frame, max, timeout)
		return err
	})
	return out, err
}

func (d *Dev) transceiveRaw(ctx context.Context, frame []byte, want int, timeout time.Duration) ([]byte, error) {
	if len(frame) == 0 || len(frame) > maxDataOut+1 {
		return nil, nfc.Errorf("pn532: TransceiveRaw", nfc.ErrNotSupported, "%d bytes, 1…263 allowed", len(frame))
	}
	if err := d.ensureCRC(ctx); err != nil {
		return nil, err
	}
	code := TimeoutCode(timeout)
	if d.rfTimeout != code {
		// RFU, ATR_RES timeout (0B, UM default), retry timeout.
		if err := d.rfConfiguration(ctx, RFTimings, []byte{0x00, 0x0B, code}); err != nil {
			return nil, err
		}
	}
	red := redactRF(frame)
	d.emit(nfc.LayerRF, true, red)
	var traced []byte
	if &red[0] != &frame[0] {
		traced = red
	}
	host := TimeoutOf(code) + airTime(len(frame)+maxDataOut+4)
	if timeout > TimeoutOf(code) {
		host = timeout + airTime(len(frame)+maxDataOut+4)
	}
	out, err := d.inCommunicateThru(ctx, frame, traced, want, host+d.opts.CommandTimeout)
	if err != nil {
		return nil, err
	}
	d.emit(nfc.LayerRF, false, out)
	return out, nil
}

// ensureCRC turns on CRC generation and checking in the CIU if it is off,
// with one batched ReadRegister and, if needed, one WriteRegister.
func (d *Dev) ensureCRC(ctx context.Context) error {
	if d.crcOn {
		return nil
	}
	v, err := d.readRegister(ctx, RegCIUTxMode, RegCIURxMode)
	if err != nil {
		return err
	}
	var w []Reg
	if v[0]&0x80 == 0 {
		w = append(w, Reg{RegCIUTxMode, v[0] | 0x80})
	}
	if v[1]&0x80 == 0 {
		w = append(w, Reg{RegCIURxMode, v[1] | 0x80})
	}
	if len(w) > 0 {
		if err := d.writeRegister(ctx, w...); err != nil {
			return err
		}
	}
	d.crcOn = true
	return nil
}

// redactRF returns frame with the INF of an ISO-DEP I-block that carries a
// VERIFY or CHANGE REFERENCE DATA APDU redacted (nfc.RedactVerify); other
// frames are returned as they are (not copied).
func redactRF(frame []byte) []byte {
	if len(frame) < 2 || frame[0]&0xE2 != 0x02 { // not an I-block
		return frame
	}
	h := 1
	if frame[0]&0x08 != 0 { // CID follows
		h++
	}
	if frame[0]&0x04 != 0 { // NAD follows
		h++
	}
	if len(frame) <= h {
		return frame
	}
	inf := nfc.RedactVerify(frame[h:])
	if len(inf) == 0 || &inf[0] == &frame[h] {
		return frame
	}
	return append(append([]byte(nil), frame[:h]...), inf...)
}
