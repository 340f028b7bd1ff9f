package pn532

import (
	"context"
	"errors"
	"fmt"
	"time"

	"periph.io/x/conn/v3/gpio"

	"kazasu/drivers/nfc"
)

// initialize runs the whole bring-up under the command lock.
func (d *Dev) initialize(ctx context.Context) error {
	return d.run(ctx, func(ctx context.Context) error {
		if d.opts.Reset != nil {
			// A known state whatever the last user left: power-on rate,
			// no targets, LowVbat.
			if err := d.hardReset(ctx); err != nil {
				return err
			}
		}
		if err := d.commonBringUp(ctx); err != nil {
			return err
		}
		if d.bringUp != nil {
			return d.bringUp(ctx)
		}
		return nil
	})
}

// commonBringUp is what every link does: SAMConfiguration (normal mode; it
// also ends LowVbat, AN10609 §1), GetFirmwareVersion, SetParameters
// (automatic ATR_RES and RATS, as libnfc).
func (d *Dev) commonBringUp(ctx context.Context) error {
	d.asleep = true
	d.retriesSet = false
	d.rfTimeout = 0
	d.crcOn = false
	d.active = nil
	d.stale = false
	if err := d.samConfiguration(ctx, SAMNormal, 0, d.opts.IRQ != nil); err != nil {
		return err
	}
	fw, err := d.getFirmwareVersion(ctx)
	if err != nil {
		return err
	}
	if fw.IC != 0x32 {
		return nfc.Errorf("pn532: GetFirmwareVersion", nfc.ErrNotSupported, "IC 0x%02X is not a PN532", fw.IC)
	}
	d.cmu.Lock()
	d.fw = fw
	d.cmu.Unlock()
	_, err = d.call(ctx, d.local(CmdSetParameters, []byte{ParamAutomaticATRRes | ParamAutomaticRATS}, 0))
	return err
}

// closeAfterFailedInit releases the link after a failed constructor.
func (d *Dev) closeAfterFailedInit() {
	d.cmu.Lock()
	d.closed = true
	d.kill()
	d.cmu.Unlock()
	_ = d.link.close()
}

// hardReset pulses RSTPDN: low for 1 ms (the data sheet asks for 20 ns), then
// high and 2 ms for the chip to start (data sheet fig. 48; Adafruit's
// timing). The HSU rate is back at 115200 afterwards.
func (d *Dev) hardReset(ctx context.Context) error {
	if err := d.opts.Reset.Out(gpio.Low); err != nil {
		return fmt.Errorf("pn532: RSTPDN low: %w", err)
	}
	if err := d.clk.Sleep(ctx, time.Millisecond); err != nil {
		return err
	}
	if err := d.opts.Reset.Out(gpio.High); err != nil {
		return fmt.Errorf("pn532: RSTPDN high: %w", err)
	}
	if err := d.clk.Sleep(ctx, 2*time.Millisecond); err != nil {
		return err
	}
	if u, ok := d.link.(*uartLink); ok {
		if err := u.port.SetBaud(uartDefaultBaud); err != nil {
			return err
		}
		d.setBaud(uartDefaultBaud)
	}
	d.asleep = true
	return nil
}

// Reset implements nfc.Reader: a hardware reset through RSTPDN when it is
// wired, otherwise PowerDown and wake-up; then the whole bring-up again.
// Cards from before are invalid.
func (d *Dev) Reset(ctx context.Context) error {
	return d.run(ctx, func(ctx context.Context) error {
		if d.active != nil {
			d.active.released = true
			d.active = nil
		}
		if d.opts.Reset != nil {
			if err := d.hardReset(ctx); err != nil {
				return err
			}
		} else {
			// Drop whatever is pending, then power down; the next command
			// wakes the chip. A chip that does not answer PowerDown gets the
			// wake-up and bring-up anyway.
			_ = d.link.drain()
			if _, err := d.powerDown(ctx, WakeHSU|WakeSPI|WakeI2C, false); err != nil && errors.Is(err, nfc.ErrReaderGone) {
				return err
			}
			d.asleep = true
		}
		if err := d.commonBringUp(ctx); err != nil {
			return err
		}
		if d.bringUp != nil {
			return d.bringUp(ctx)
		}
		return nil
	})
}

// Info implements nfc.Reader.
func (d *Dev) Info() nfc.Info {
	fw := d.Firmware()
	info := nfc.Info{
		Driver:   d.link.driver(),
		Path:     d.link.String(),
		Chip:     "PN532",
		Firmware: fmt.Sprintf("%d.%d", fw.Ver, fw.Rev),
	}
	if fw.Support&0x01 != 0 {
		info.Supported = append(info.Supported, nfc.TechA)
	}
	if fw.Support&0x02 != 0 {
		info.Supported = append(info.Supported, nfc.TechB)
	}
	return info
}

// Poll implements nfc.Reader: one InListPassiveTarget per technology in
// opts.Techs() (Type B at 106 kbit/s with opts.AFI, Type A), each bounded by
// the finite MxRtyPassiveActivation of Opts.PollRetries. The card returned is
// chip-managed: the chip ran ATTRIB (FSD 64, CID 1) or RATS itself and runs
// ISO-DEP inside InDataExchange. Host-managed ISO-DEP is built one layer up
// (drivers/reader) from InDeselect, TransceiveRaw and the ATQB in the Card's
// Target; asking Poll for it gives nfc.ErrNotSupported.
func (d *Dev) Poll(ctx context.Context, opts nfc.PollOptions) (nfc.Card, error) {
	c, err := d.PollCard(ctx, opts)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// PollCard is Poll returning the concrete *Card.
func (d *Dev) PollCard(ctx context.Context, opts nfc.PollOptions) (*Card, error) {
	const op = "pn532: Poll"
	if opts.Mode == nfc.ISODepHost {
		return nil, nfc.Errorf(op, nfc.ErrNotSupported, "host-managed ISO-DEP is composed by drivers/reader from InDeselect and TransceiveRaw")
	}
	var card *Card
	err := d.run(ctx, func(ctx context.Context) error {
		if d.active != nil || d.stale {
			// Start from an empty target list. A card that left the field
			// does not answer the DESELECT: that is fine.
			if _, err := d.inRelease(ctx, 0); err != nil && nfc.Kind(err) == nfc.ErrReaderGone {
				return err
			}
		}
		for _, tech := range opts.Techs() {
			var err error
			switch tech {
			case nfc.TechB:
				if d.fw.Support&0x02 == 0 {
					continue // "Some PN532 doesn't support type B!" (libnfc)
				}
				card, err = d.pollB(ctx, opts.AFI)
			case nfc.TechA:
				card, err = d.pollA(ctx)
			default:
				err = nfc.Errorf(op, nfc.ErrNotSupported, "technology %v", tech)
			}
			if err != nil {
				return err
			}
			if card != nil {
				d.active = card
				d.crcOn = false
				return nil
			}
		}
		return nfc.Errorf(op, nfc.ErrNoTarget, "nothing in the field (%v)", opts.Techs())
	})
	return card, err
}

// pollB lists one Type B target and keeps it if it speaks ISO 14443-4.
func (d *Dev) pollB(ctx context.Context, afi byte) (*Card, error) {
	ts, err := d.inListPassiveTarget(ctx, 1, BrTy106B, []byte{afi})
	if err != nil || len(ts) == 0 {
		return nil, err
	}
	t := ts[0]
	atqb := t.ATQB
	// ATQB: 50 PUPI(4) AppData(4) BitRate MaxFrame/ProtType FWI/ADC/FO.
	if atqb[10]&0x09 != 0x01 { // protocol type: -4 compliant, b4 zero
		_, err := d.inRelease(ctx, t.Tg)
		return nil, err
	}
	fsci := atqb[10] >> 4
	fwi := atqb[11] >> 4
	tg := nfc.Target{
		Tech:        nfc.TechB,
		ID:          t.PUPI(),
		ATQB:        atqb,
		AttribRes:   t.AttribRes,
		FSC:         fsFromIndex(fsci),
		FSD:         64, // the firmware's own ATTRIB
		FWT:         fwt(fwi),
		CID:         1, // the PN532 addresses its Type B target as CID 1
		BitRatePCD:  106,
		BitRatePICC: 106,
		Mode:        nfc.ISODepChip,
	}
	return &Card{d: d, tg: t.Tg, target: tg, raw: t, fwi: fwi}, nil
}

// pollA lists one Type A target and keeps it if it is ISO-DEP (SAK bit 6)
// and the chip got its ATS.
func (d *Dev) pollA(ctx context.Context) (*Card, error) {
	ts, err := d.inListPassiveTarget(ctx, 1, BrTy106A, nil)
	if err != nil || len(ts) == 0 {
		return nil, err
	}
	t := ts[0]
	if t.SELRES&0x20 == 0 || len(t.ATS) < 1 {
		_, err := d.inRelease(ctx, t.Tg)
		return nil, err
	}
	// ATS: TL T0 [TA1] [TB1] [TC1] historical bytes.
	fsci, fwi, sfgi := byte(2), byte(4), byte(0) // ISO/IEC 14443-4 defaults
	if len(t.ATS) >= 2 {
		t0 := t.ATS[1]
		fsci = t0 & 0x0F
		i := 2
		if t0&0x10 != 0 {
			i++
		}
		if t0&0x20 != 0 && i < len(t.ATS) {
			fwi, sfgi = t.ATS[i]>>4, t.ATS[i]&0x0F
		}
	}
	tg := nfc.Target{
		Tech:        nfc.TechA,
		ID:          t.NFCID1,
		ATQA:        t.SENSRES,
		SAK:         t.SELRES,
		ATS:         t.ATS,
		FSC:         fsFromIndex(fsci),
		FSD:         64,
		FWT:         fwt(fwi),
		SFGT:        sfgt(sfgi),
		CID:         0,
		BitRatePCD:  106,
		BitRatePICC: 106,
		Mode:        nfc.ISODepChip,
	}
	return &Card{d: d, tg: t.Tg, target: tg, raw: t, fwi: fwi}, nil
}

// fsFromIndex maps FSCI/FSDI to bytes (ISO/IEC 14443-4 table; RFU values
// above 8 are read as 256, as the 2016 amendment's first RFU step demands
// no more than the reader offers).
func fsFromIndex(i byte) int {
	tab := []int{16, 24, 32, 40, 48, 64, 96, 128, 256}
	if int(i) < len(tab) {
		return tab[i]
	}
	return 256
}

// sfgt is the start-up frame guard time for SFGI (0 and 15: none).
func sfgt(sfgi byte) time.Duration {
	if sfgi == 0 || sfgi > 14 {
		return 0
	}
	return fwt(sfgi)
}

// Card is a target activated by the chip (chip-managed ISO-DEP). It
// implements nfc.Card with InDataExchange.
type Card struct {
	d        *Dev
	tg       byte
	target   nfc.Target
	raw      PassiveTarget
	fwi      byte
	released bool // guarded by d.mu
	// deselected: InDeselect was sent (host-managed takeover); guarded by d.mu
	deselected bool
}

var (
	_ nfc.Card   = (*Card)(nil)
	_ nfc.Limits = (*Card)(nil)
)

// Target implements nfc.Card.
func (c *Card) Target() nfc.Target { return c.target }

// Tg is the chip's logical number of the target, for InDeselect and friends.
func (c *Card) Tg() byte { return c.tg }

// PassiveTarget is the target data as the chip reported it.
func (c *Card) PassiveTarget() PassiveTarget { return c.raw }

func (c *Card) String() string { return c.target.String() }

// MaxAPDU implements nfc.Limits: the driver chains in both directions, so
// only the extended-length APDU bounds apply.
func (c *Card) MaxAPDU() (command, response int) { return 65535 + 9, maxChained }

// exchangeTimeout bounds one InDataExchange frame of n bytes out: every
// block of the chip's ISO-DEP (FSD 64, so at most 60 INF bytes per block, in
// both directions) may take the card's FWT plus its air time, and the card
// gets CardTimeout of processing on top (the chip grants S(WTX) itself).
func (c *Card) exchangeTimeout(n int) time.Duration {
	blocks := (n+59)/60 + (maxDataOut+59)/60
	per := fwt(c.fwi) + airTime(64+4)
	return time.Duration(blocks)*per + c.d.opts.CardTimeout
}

// Transceive implements nfc.Card: one APDU through InDataExchange, chained
// to and from the chip beyond 262 bytes. APDUs are traced at nfc.LayerAPDU,
// VERIFY bodies redacted in every trace.
func (c *Card) Transceive(ctx context.Context, apdu []byte) ([]byte, error) {
	const op = "pn532: Transceive"
	if len(apdu) < 4 {
		return nil, nfc.Errorf(op, nfc.ErrProtocol, "APDU of %d bytes", len(apdu))
	}
	var out []byte
	err := c.d.run(ctx, func(ctx context.Context) error {
		if err := c.usable(op); err != nil {
			return err
		}
		red := nfc.RedactVerify(apdu)
		var traced []byte
		if &red[0] != &apdu[0] {
			traced = red
		}
		c.d.emit(nfc.LayerAPDU, true, red)
		var err error
		// The answer holds at most Ne data bytes and SW1 SW2; I2C and SPI
		// size their reads by it (a longer answer still gets through).
		want := anyLen
		if ne, ok := nfc.APDUNe(apdu); ok {
			want = ne + 2
		}
		out, err = c.d.inDataExchange(ctx, c.tg, apdu, traced, want, c.exchangeTimeout(len(apdu)))
		if err != nil {
			return err
		}
		c.d.emit(nfc.LayerAPDU, false, out)
		if len(out) < 2 {
			return nfc.Errorf(op, nfc.ErrProtocol, "response [% X] has no status word", out)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *Card) usable(op string) error {
	if c.released || c.d.active != c {
		return nfc.Errorf(op, nfc.ErrTargetGone, "card was released")
	}
	if c.deselected {
		return nfc.Errorf(op, nfc.ErrNotSupported, "card was handed over to host-managed ISO-DEP")
	}
	return nil
}

// Present implements nfc.Card with the presence check libnfc uses on a
// PN532: an R(NAK) through InCommunicateThru (CID 1 for Type B, where the
// chip activated the card with CID 1). Any answer means present; the
// chip's timeout status means gone. Two tries, each waiting the card's FWT.
func (c *Card) Present(ctx context.Context) error {
	const op = "pn532: Present"
	return c.d.run(ctx, func(ctx context.Context) error {
		if err := c.usable(op); err != nil {
			return err
		}
		rnak := []byte{0xB2} // R(NAK), block 0, no CID
		if c.target.Tech == nfc.TechB {
			rnak = []byte{0xBA, 0x01} // R(NAK), block 0, CID 1
		}
		var err error
		for try := 0; try < 2; try++ {
			var b []byte
			// The answer is an R(ACK), or the card's last block again (at
			// most FSD bytes).
			b, err = c.d.transceiveRaw(ctx, rnak, c.target.FSD, fwt(c.fwi)+airTime(8))
			if err == nil && len(b) > 0 {
				return nil
			}
			if err != nil && nfc.Kind(err) != nfc.ErrTimeout && nfc.Kind(err) != nfc.ErrTransmission {
				return err
			}
		}
		c.released = true
		if c.d.active == c {
			c.d.lost()
		}
		return nfc.Wrap(op, nfc.ErrTargetGone, err)
	})
}

// Release implements nfc.Card with InRelease (the chip sends S(DESELECT)
// and forgets the target). A card that does not answer the DESELECT (it
// left the field, or host-managed ISO-DEP deselected it already) is
// released all the same: only host-link errors are returned.
func (c *Card) Release(ctx context.Context) error {
	return c.d.run(ctx, func(ctx context.Context) error {
		if c.released || c.d.active != c {
			return nil
		}
		_, err := c.d.inRelease(ctx, c.tg)
		var se *StatusError
		if errors.As(err, &se) {
			return nil
		}
		return err
	})
}
