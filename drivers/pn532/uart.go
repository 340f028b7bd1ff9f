package pn532

import (
	"context"
	"errors"
	"fmt"
	"time"

	"kazasu/drivers/nfc"
	"kazasu/drivers/serial"
)

// uartDefaultBaud is the HSU rate after power-on or reset (UM0701 §6.2.3).
const uartDefaultBaud = 115200

// hsuWakeUp is sent before the first command and after PowerDown: 0x55
// wakes the HSU, the zeros are the "large preamble" the chip needs while it
// starts its oscillator (UM0701 §6.2.3; libnfc sends the same 16 bytes).
var hsuWakeUp = []byte{0x55, 0x55, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// uartLink is the HSU host interface over a serial.Port.
type uartLink struct {
	port serial.Port
	clk  clock
	buf  []byte
}

// NewUART returns a PN532 on an HSU (UART) link and brings it up: wake-up,
// SAMConfiguration (which leaves LowVbat), GetFirmwareVersion,
// SetParameters, then the rate switch to opts.Baud when both the chip and
// the port can do it (falling back to 115200). port should be at 115200,
// the chip's power-on rate; if the chip stays silent there, NewUART tries
// opts.Baud, where a previous user that did not Close may have left it.
// With opts.Reset wired the chip is reset first and starts at 115200.
//
// The Dev owns port from now on: Close closes it.
func NewUART(port serial.Port, opts *Opts) (*Dev, error) {
	return NewUARTContext(context.Background(), port, opts)
}

// NewUARTContext is NewUART with a context bounding the bring-up.
func NewUARTContext(ctx context.Context, port serial.Port, opts *Opts) (*Dev, error) {
	if port == nil {
		return nil, errors.New("pn532: NewUART: nil port")
	}
	o := opts.withDefaults()
	if _, ok := BaudCode(o.Baud); !ok {
		return nil, fmt.Errorf("pn532: NewUART: %d baud is not an HSU rate", o.Baud)
	}
	l := &uartLink{port: port, clk: o.clock}
	d := newDev(l, o)
	d.setBaud(port.Baud())
	d.bringUp = func(ctx context.Context) error { return d.uartBringUp(ctx, l) }
	err := d.initialize(ctx)
	if err != nil && o.Reset == nil && errors.Is(err, nfc.ErrTimeout) && ctx.Err() == nil &&
		port.Baud() != o.Baud && serial.ValidBaud(o.Baud) {
		// Silence at this rate: a previous user (a daemon that crashed
		// before Close) may have left the chip at o.Baud, which it keeps
		// until reset. Try there.
		if serr := port.SetBaud(o.Baud); serr == nil {
			d.setBaud(o.Baud)
			err = d.initialize(ctx)
		}
	}
	if err != nil {
		d.closeAfterFailedInit()
		return nil, err
	}
	return d, nil
}

func (u *uartLink) String() string { return fmt.Sprint(u.port) }
func (u *uartLink) driver() string { return "pn532_uart" }

func (u *uartLink) send(ctx context.Context, frame []byte) error {
	_, err := u.port.Write(frame)
	return err
}

func (u *uartLink) drain() error {
	u.buf = u.buf[:0]
	return u.port.Flush()
}

func (u *uartLink) wake(ctx context.Context) error {
	_, err := u.port.Write(hsuWakeUp)
	return err
}

func (u *uartLink) wireTime(n int) time.Duration { return serial.ByteTime(u.port.Baud(), n) }

func (u *uartLink) close() error { return u.port.Close() }

func (u *uartLink) wakeBit() byte { return WakeHSU }

func (u *uartLink) recv(ctx context.Context, timeout time.Duration, max int) (Frame, error) {
	deadline := u.clk.Now().Add(timeout)
	rb := make([]byte, 300)
	cr, canCancel := u.port.(serial.ContextReader)
	for {
		f, used, err := DecodeFrame(u.buf)
		u.buf = append(u.buf[:0], u.buf[used:]...)
		if err != ErrIncomplete {
			return f, err
		}
		if len(u.buf) > 2*MaxFrameLen {
			// Cannot happen with a well-formed length; keep memory bounded
			// against noise that looks like the start of a long frame.
			u.buf = u.buf[:0]
		}
		remaining := deadline.Sub(u.clk.Now())
		if remaining <= 0 {
			return Frame{}, errLinkTimeout
		}
		if err := u.port.SetReadTimeout(remaining); err != nil {
			return Frame{}, err
		}
		var n int
		if canCancel {
			n, err = cr.ReadContext(ctx, rb)
		} else {
			if err := ctx.Err(); err != nil {
				return Frame{}, err
			}
			n, err = u.port.Read(rb)
		}
		u.buf = append(u.buf, rb[:n]...)
		if err != nil {
			if ctx.Err() != nil {
				return Frame{}, ctx.Err()
			}
			if errors.Is(err, serial.ErrTimeout) {
				return Frame{}, errLinkTimeout
			}
			return Frame{}, err
		}
	}
}

// uartBringUp is the HSU bring-up after the common part: the rate switch.
func (d *Dev) uartBringUp(ctx context.Context, u *uartLink) error {
	d.setBaud(u.port.Baud())
	want := d.opts.Baud
	if want == d.baud {
		return nil
	}
	if !serial.ValidBaud(want) {
		return nil // the port cannot do it (1288000): stay
	}
	code, _ := BaudCode(want)
	r := d.local(CmdSetSerialBaudRate, []byte{code}, 0)
	r.hostACK = true
	if _, err := d.call(ctx, r); err != nil {
		if errors.Is(err, nfc.ErrReaderGone) {
			return err
		}
		// No answer, or a refusal: the chip switches only on the host's ACK
		// of its answer, so it is still at the old rate.
		return nil
	}
	err := d.finishSwitch(ctx, u, want)
	if err == nil {
		return nil
	}
	if errors.Is(err, nfc.ErrReaderGone) {
		return err
	}
	// Fallback: the chip may or may not have switched. Talk at the default
	// rate; if the chip is stuck at the new one, only a reset helps.
	if u.port.Baud() != uartDefaultBaud {
		if serr := u.port.SetBaud(uartDefaultBaud); serr != nil {
			return serr
		}
	}
	d.setBaud(uartDefaultBaud)
	if cerr := d.commLineTest(ctx, []byte("kazasu")); cerr == nil {
		return nil
	}
	if d.opts.Reset != nil {
		if rerr := d.hardReset(ctx); rerr != nil {
			return rerr
		}
		return d.commonBringUp(ctx)
	}
	return fmt.Errorf("pn532: switching to %d baud failed (%w) and the chip no longer answers at %d", want, err, uartDefaultBaud)
}

// switchBaud changes the HSU rate of chip and port (UM0701 §7.2.8): the
// command is ACKed and answered at the old rate, the host ACKs the answer,
// then both sides switch. A communication-line test at the new rate proves
// it worked.
func (d *Dev) switchBaud(ctx context.Context, u *uartLink, baud int) error {
	code, ok := BaudCode(baud)
	if !ok {
		return nfc.Errorf("pn532: SetSerialBaudRate", nfc.ErrNotSupported, "%d baud", baud)
	}
	r := d.local(CmdSetSerialBaudRate, []byte{code}, 0)
	r.hostACK = true
	if _, err := d.call(ctx, r); err != nil {
		return err
	}
	return d.finishSwitch(ctx, u, baud)
}

// finishSwitch is the host side of a rate change the chip has accepted.
func (d *Dev) finishSwitch(ctx context.Context, u *uartLink, baud int) error {
	if err := u.port.SetBaud(baud); err != nil {
		return err
	}
	d.setBaud(baud)
	// nfcpy waits 1 ms for the chip to change its rate.
	if err := d.clk.Sleep(ctx, time.Millisecond); err != nil {
		return err
	}
	return d.commLineTest(ctx, []byte("kazasu"))
}

// SetSerialBaudRate changes the HSU rate of the chip and the port. UART only.
func (d *Dev) SetSerialBaudRate(ctx context.Context, baud int) error {
	u, ok := d.link.(*uartLink)
	if !ok {
		return nfc.Errorf("pn532: SetSerialBaudRate", nfc.ErrNotSupported, "not an HSU link")
	}
	return d.run(ctx, func(ctx context.Context) error { return d.switchBaud(ctx, u, baud) })
}

// Baud returns the current HSU rate (0 on I2C and SPI).
func (d *Dev) Baud() int {
	d.cmu.Lock()
	defer d.cmu.Unlock()
	return d.baud
}
