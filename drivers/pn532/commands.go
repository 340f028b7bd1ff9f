package pn532

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"kazasu/drivers/nfc"
)

// Command is a PN532 command code (UM0701 §7, table 1). The answer's code is
// the command's plus one.
type Command byte

// Command codes used by this driver.
const (
	CmdDiagnose            Command = 0x00
	CmdGetFirmwareVersion  Command = 0x02
	CmdGetGeneralStatus    Command = 0x04
	CmdReadRegister        Command = 0x06
	CmdWriteRegister       Command = 0x08
	CmdSetSerialBaudRate   Command = 0x10
	CmdSetParameters       Command = 0x12
	CmdSAMConfiguration    Command = 0x14
	CmdPowerDown           Command = 0x16
	CmdRFConfiguration     Command = 0x32
	CmdInDataExchange      Command = 0x40
	CmdInCommunicateThru   Command = 0x42
	CmdInDeselect          Command = 0x44
	CmdInListPassiveTarget Command = 0x4A
	CmdInRelease           Command = 0x52
	CmdInSelect            Command = 0x54
	CmdInAutoPoll          Command = 0x60
)

var cmdNames = map[Command]string{
	CmdDiagnose:            "Diagnose",
	CmdGetFirmwareVersion:  "GetFirmwareVersion",
	CmdGetGeneralStatus:    "GetGeneralStatus",
	CmdReadRegister:        "ReadRegister",
	CmdWriteRegister:       "WriteRegister",
	CmdSetSerialBaudRate:   "SetSerialBaudRate",
	CmdSetParameters:       "SetParameters",
	CmdSAMConfiguration:    "SAMConfiguration",
	CmdPowerDown:           "PowerDown",
	CmdRFConfiguration:     "RFConfiguration",
	CmdInDataExchange:      "InDataExchange",
	CmdInCommunicateThru:   "InCommunicateThru",
	CmdInDeselect:          "InDeselect",
	CmdInListPassiveTarget: "InListPassiveTarget",
	CmdInRelease:           "InRelease",
	CmdInSelect:            "InSelect",
	CmdInAutoPoll:          "InAutoPoll",
}

func (c Command) String() string {
	if n, ok := cmdNames[c]; ok {
		return n
	}
	return fmt.Sprintf("Command(0x%02X)", byte(c))
}

// run is call for methods that take the lock themselves.
func (d *Dev) run(ctx context.Context, f func(ctx context.Context) error) error {
	ctx, end, err := d.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	return f(ctx)
}

func (d *Dev) local(cmd Command, params []byte, maxResp int) request {
	return request{cmd: cmd, params: params, timeout: d.opts.CommandTimeout, maxResp: maxResp}
}

func errShort(cmd Command, got []byte, want string) error {
	return nfc.Errorf("pn532: "+cmd.String(), nfc.ErrProtocol, "answer [% X] is not %s", got, want)
}

// Command sends any command with the full host-link protocol (ACK,
// resends, NACK, abort) and returns the answer's data after the response
// code. timeout bounds the answer (0: Opts.CommandTimeout). It is the
// escape hatch for tools (a pn532-io); the driver does not track what it
// changes (field, targets, registers), so prefer the typed methods.
func (d *Dev) Command(ctx context.Context, cmd Command, params []byte, timeout time.Duration) ([]byte, error) {
	if timeout <= 0 {
		timeout = d.opts.CommandTimeout
	}
	var out []byte
	err := d.run(ctx, func(ctx context.Context) error {
		var err error
		out, err = d.call(ctx, request{cmd: cmd, params: params, timeout: timeout, maxResp: anyLen})
		return err
	})
	return out, err
}

// --- Miscellaneous commands (UM0701 §7.2) -----------------------------------

// DiagnoseTest is NumTst of Diagnose.
type DiagnoseTest byte

// Diagnose tests (UM0701 §7.2.1).
const (
	TestCommunicationLine DiagnoseTest = 0x00
	TestROM               DiagnoseTest = 0x01
	TestRAM               DiagnoseTest = 0x02
	TestPolling           DiagnoseTest = 0x04
	TestEchoBack          DiagnoseTest = 0x05
	TestAttention         DiagnoseTest = 0x06
	TestAntenna           DiagnoseTest = 0x07
)

func (t DiagnoseTest) String() string {
	switch t {
	case TestCommunicationLine:
		return "communication line"
	case TestROM:
		return "ROM"
	case TestRAM:
		return "RAM"
	case TestPolling:
		return "polling"
	case TestEchoBack:
		return "echo back"
	case TestAttention:
		return "attention request"
	case TestAntenna:
		return "antenna"
	}
	return fmt.Sprintf("DiagnoseTest(0x%02X)", byte(t))
}

// Diagnose runs a self-test and returns the chip's raw result.
func (d *Dev) Diagnose(ctx context.Context, test DiagnoseTest, params []byte) ([]byte, error) {
	var out []byte
	err := d.run(ctx, func(ctx context.Context) error {
		var err error
		out, err = d.diagnose(ctx, test, params)
		return err
	})
	return out, err
}

func (d *Dev) diagnose(ctx context.Context, test DiagnoseTest, params []byte) ([]byte, error) {
	r := d.local(CmdDiagnose, append([]byte{byte(test)}, params...), anyLen)
	if test == TestROM || test == TestRAM || test == TestAntenna {
		r.timeout += time.Second // self-tests take their time
	}
	return d.call(ctx, r)
}

// CommunicationLineTest is Diagnose 00: the chip must echo data exactly
// (at most 262 bytes). It proves that the host link works both ways.
func (d *Dev) CommunicationLineTest(ctx context.Context, data []byte) error {
	return d.run(ctx, func(ctx context.Context) error { return d.commLineTest(ctx, data) })
}

func (d *Dev) commLineTest(ctx context.Context, data []byte) error {
	if len(data) > 262 {
		return nfc.Errorf("pn532: Diagnose", nfc.ErrNotSupported, "%d bytes to echo, at most 262", len(data))
	}
	got, err := d.diagnose(ctx, TestCommunicationLine, data)
	if err != nil {
		return err
	}
	want := append([]byte{byte(TestCommunicationLine)}, data...)
	if !bytes.Equal(got, want) {
		return nfc.Errorf("pn532: Diagnose", nfc.ErrTransmission, "communication line test echoed [% X], want [% X]", got, want)
	}
	return nil
}

// GetFirmwareVersion asks the chip what it is (UM0701 §7.2.2).
func (d *Dev) GetFirmwareVersion(ctx context.Context) (Firmware, error) {
	var fw Firmware
	err := d.run(ctx, func(ctx context.Context) error {
		var err error
		fw, err = d.getFirmwareVersion(ctx)
		return err
	})
	return fw, err
}

func (d *Dev) getFirmwareVersion(ctx context.Context) (Firmware, error) {
	b, err := d.call(ctx, d.local(CmdGetFirmwareVersion, nil, 4))
	if err != nil {
		return Firmware{}, err
	}
	if len(b) != 4 {
		return Firmware{}, errShort(CmdGetFirmwareVersion, b, "IC Ver Rev Support")
	}
	return Firmware{IC: b[0], Ver: b[1], Rev: b[2], Support: b[3]}, nil
}

// GeneralStatus is the answer to GetGeneralStatus (UM0701 §7.2.3).
type GeneralStatus struct {
	Err       Status // last error
	Field     bool   // an external RF field is present
	Targets   []TargetStatus
	SAMStatus byte
}

// TargetStatus is one target in GeneralStatus.
type TargetStatus struct {
	Tg, BrRx, BrTx, Type byte
}

// GetGeneralStatus reads the chip's state.
func (d *Dev) GetGeneralStatus(ctx context.Context) (GeneralStatus, error) {
	var gs GeneralStatus
	err := d.run(ctx, func(ctx context.Context) error {
		b, err := d.call(ctx, d.local(CmdGetGeneralStatus, nil, 12))
		if err != nil {
			return err
		}
		gs, err = parseGeneralStatus(b)
		return err
	})
	return gs, err
}

func parseGeneralStatus(b []byte) (GeneralStatus, error) {
	if len(b) < 3 {
		return GeneralStatus{}, errShort(CmdGetGeneralStatus, b, "Err Field NbTg … SAM")
	}
	gs := GeneralStatus{Err: Status(b[0] & statusMask), Field: b[1] != 0}
	n := int(b[2])
	if n > 2 || len(b) < 3+4*n {
		return GeneralStatus{}, errShort(CmdGetGeneralStatus, b, fmt.Sprintf("status with %d targets", n))
	}
	for i := 0; i < n; i++ {
		t := b[3+4*i:]
		gs.Targets = append(gs.Targets, TargetStatus{Tg: t[0], BrRx: t[1], BrTx: t[2], Type: t[3]})
	}
	if len(b) > 3+4*n {
		gs.SAMStatus = b[3+4*n]
	}
	return gs, nil
}

// Reg is one register and its value, for ReadRegister and WriteRegister.
// CIU registers are 0x6301…0x633E, SFRs 0xFFxx (UM0701 §7.2.4).
type Reg struct {
	Addr uint16
	Val  byte
}

// CIU registers the driver uses (PN532 data sheet §8.6.23).
const (
	RegCIUTxMode = 0x6302
	RegCIURxMode = 0x6303
)

// ReadRegister reads several registers in one frame (at most 131).
func (d *Dev) ReadRegister(ctx context.Context, addrs ...uint16) ([]byte, error) {
	var out []byte
	err := d.run(ctx, func(ctx context.Context) error {
		var err error
		out, err = d.readRegister(ctx, addrs...)
		return err
	})
	return out, err
}

func (d *Dev) readRegister(ctx context.Context, addrs ...uint16) ([]byte, error) {
	if len(addrs) == 0 || 2*len(addrs) > MaxExtendedData-2 {
		return nil, nfc.Errorf("pn532: ReadRegister", nfc.ErrNotSupported, "%d registers", len(addrs))
	}
	p := make([]byte, 0, 2*len(addrs))
	for _, a := range addrs {
		p = append(p, byte(a>>8), byte(a))
	}
	b, err := d.call(ctx, d.local(CmdReadRegister, p, len(addrs)))
	if err != nil {
		return nil, err
	}
	if len(b) != len(addrs) {
		return nil, errShort(CmdReadRegister, b, fmt.Sprintf("%d register values", len(addrs)))
	}
	return b, nil
}

// WriteRegister writes several registers in one frame (at most 87).
func (d *Dev) WriteRegister(ctx context.Context, regs ...Reg) error {
	return d.run(ctx, func(ctx context.Context) error { return d.writeRegister(ctx, regs...) })
}

func (d *Dev) writeRegister(ctx context.Context, regs ...Reg) error {
	if len(regs) == 0 || 3*len(regs) > MaxExtendedData-2 {
		return nfc.Errorf("pn532: WriteRegister", nfc.ErrNotSupported, "%d registers", len(regs))
	}
	p := make([]byte, 0, 3*len(regs))
	for _, r := range regs {
		p = append(p, byte(r.Addr>>8), byte(r.Addr), r.Val)
	}
	_, err := d.call(ctx, d.local(CmdWriteRegister, p, 0))
	return err
}

// SetParameters flags (UM0701 §7.2.9). They cannot be read back.
const (
	ParamNADUsed           = 0x01
	ParamDIDUsed           = 0x02
	ParamAutomaticATRRes   = 0x04
	ParamAutomaticRATS     = 0x10
	ParamISO14443_4PICC    = 0x20
	ParamRemovePrePostAmbl = 0x40
)

// SetParameters sets the chip's flags.
func (d *Dev) SetParameters(ctx context.Context, flags byte) error {
	return d.run(ctx, func(ctx context.Context) error {
		_, err := d.call(ctx, d.local(CmdSetParameters, []byte{flags}, 0))
		return err
	})
}

// SAMMode is the Mode of SAMConfiguration (UM0701 §7.2.10).
type SAMMode byte

// SAM modes.
const (
	SAMNormal      SAMMode = 0x01
	SAMVirtualCard SAMMode = 0x02
	SAMWiredCard   SAMMode = 0x03
	SAMDualCard    SAMMode = 0x04
)

func (m SAMMode) String() string {
	switch m {
	case SAMNormal:
		return "normal"
	case SAMVirtualCard:
		return "virtual card"
	case SAMWiredCard:
		return "wired card"
	case SAMDualCard:
		return "dual card"
	}
	return fmt.Sprintf("SAMMode(0x%02X)", byte(m))
}

// SAMConfiguration sets the SAM mode; it also takes a C106 out of LowVbat.
// timeout is in 50 ms units (virtual-card mode only); irq says whether the
// chip drives P70_IRQ.
func (d *Dev) SAMConfiguration(ctx context.Context, mode SAMMode, timeout byte, irq bool) error {
	return d.run(ctx, func(ctx context.Context) error { return d.samConfiguration(ctx, mode, timeout, irq) })
}

func (d *Dev) samConfiguration(ctx context.Context, mode SAMMode, timeout byte, irq bool) error {
	var i byte
	if irq {
		i = 1
	}
	_, err := d.call(ctx, d.local(CmdSAMConfiguration, []byte{byte(mode), timeout, i}, 0))
	return err
}

// WakeUpEnable bits of PowerDown (UM0701 §7.2.11).
const (
	WakeINT0  = 0x01
	WakeINT1  = 0x02
	WakeRFLvl = 0x08
	WakeHSU   = 0x10
	WakeSPI   = 0x20
	WakeGPIO  = 0x40
	WakeI2C   = 0x80
)

// PowerDown puts the chip into power-down; the next command wakes it first
// (HSU preamble, I2C address match or SPI select, as the link requires).
// wakeUpEnable must include the bit of the link in use, or nothing could
// wake the chip again but a reset.
func (d *Dev) PowerDown(ctx context.Context, wakeUpEnable byte, generateIRQ bool) error {
	if wakeUpEnable&d.link.wakeBit() == 0 {
		return nfc.Errorf("pn532: PowerDown", nfc.ErrNotSupported, "WakeUpEnable 0x%02X lacks this link's bit 0x%02X", wakeUpEnable, d.link.wakeBit())
	}
	return d.run(ctx, func(ctx context.Context) error {
		_, err := d.powerDown(ctx, wakeUpEnable, generateIRQ)
		return err
	})
}

func (d *Dev) powerDown(ctx context.Context, wake byte, irq bool) (Status, error) {
	p := []byte{wake}
	if irq {
		p = append(p, 1)
	}
	b, err := d.call(ctx, d.local(CmdPowerDown, p, 1))
	if err != nil {
		return 0, err
	}
	if len(b) != 1 {
		return 0, errShort(CmdPowerDown, b, "a status")
	}
	if err := statusErr(CmdPowerDown, b[0]); err != nil {
		return Status(b[0] & statusMask), err
	}
	d.asleep = true
	d.lost()
	d.crcOn = false
	return StatusOK, nil
}

// --- RFConfiguration (UM0701 §7.3.1) ----------------------------------------

// RFItem is a CfgItem of RFConfiguration.
type RFItem byte

// RFConfiguration items.
const (
	RFField          RFItem = 0x01 // 1 byte: bit 0 field on, bit 1 AutoRFCA
	RFTimings        RFItem = 0x02 // RFU, ATR_RES timeout, retry timeout
	RFMaxRtyCOM      RFItem = 0x04 // 1 byte
	RFMaxRetries     RFItem = 0x05 // MxRtyATR, MxRtyPSL, MxRtyPassiveActivation
	RFAnalog106A     RFItem = 0x0A // 11 bytes
	RFAnalog212424   RFItem = 0x0B // 8 bytes
	RFAnalogTypeB    RFItem = 0x0C // 3 bytes: GsNOn, ModGsP, RxThreshold
	RFAnalog212424_4 RFItem = 0x0D // 9 bytes
)

func (i RFItem) String() string {
	switch i {
	case RFField:
		return "RF field"
	case RFTimings:
		return "various timings"
	case RFMaxRtyCOM:
		return "MaxRtyCOM"
	case RFMaxRetries:
		return "MaxRetries"
	case RFAnalog106A:
		return "analog 106 A"
	case RFAnalog212424:
		return "analog 212/424"
	case RFAnalogTypeB:
		return "analog type B"
	case RFAnalog212424_4:
		return "analog 212/424/848 ISO14443-4"
	}
	return fmt.Sprintf("RFItem(0x%02X)", byte(i))
}

// RFConfiguration sets one configuration item.
func (d *Dev) RFConfiguration(ctx context.Context, item RFItem, data []byte) error {
	return d.run(ctx, func(ctx context.Context) error { return d.rfConfiguration(ctx, item, data) })
}

func (d *Dev) rfConfiguration(ctx context.Context, item RFItem, data []byte) error {
	_, err := d.call(ctx, d.local(CmdRFConfiguration, append([]byte{byte(item)}, data...), 0))
	if err != nil {
		return err
	}
	switch item {
	case RFField:
		if len(data) > 0 && data[0]&1 == 0 {
			// Field off resets every card; the chip's list is emptied by
			// the InRelease the next Poll sends.
			d.lost()
			d.crcOn = false
		}
	case RFTimings:
		if len(data) == 3 {
			d.rfTimeout = data[2]
		}
	}
	return nil
}

// SetField implements nfc.Reader: RF field on or off (item 01).
func (d *Dev) SetField(ctx context.Context, on bool) error {
	var b byte
	if on {
		b = 1
	}
	return d.RFConfiguration(ctx, RFField, []byte{b})
}

// SetMaxRetries sets RFConfiguration item 05: retries of ATR_REQ and PSL
// (DEP), and of passive activation (InListPassiveTarget). 0xFF means for
// ever, 0x00 one try. Poll sets passive activation to Opts.PollRetries
// itself; a later call here overrides it until the next Reset.
func (d *Dev) SetMaxRetries(ctx context.Context, atr, psl, passive byte) error {
	return d.run(ctx, func(ctx context.Context) error {
		if err := d.rfConfiguration(ctx, RFMaxRetries, []byte{atr, psl, passive}); err != nil {
			return err
		}
		d.retriesSet = true
		return nil
	})
}

// SetTimings sets RFConfiguration item 02: the ATR_RES timeout and the
// retry timeout InCommunicateThru waits for an answer (see TimeoutCode).
func (d *Dev) SetTimings(ctx context.Context, atrRes, retry byte) error {
	return d.RFConfiguration(ctx, RFTimings, []byte{0x00, atrRes, retry})
}

// SetAnalogTypeB sets RFConfiguration item 0C, the Type B analog settings
// CIU_GsNOn, CIU_ModGsP and CIU_RxThreshold (the rest comes from item 0A).
// The UM default is FF 17 85; nfcpy uses FF 04 85, a deeper modulation that
// some boards need to see Type B cards at all.
func (d *Dev) SetAnalogTypeB(ctx context.Context, gsNOn, modGsP, rxThreshold byte) error {
	return d.RFConfiguration(ctx, RFAnalogTypeB, []byte{gsNOn, modGsP, rxThreshold})
}

// TimeoutCode returns the smallest RFConfiguration timeout code (item 02)
// whose time, 100 µs × 2^(n−1), is at least t; 0x10 (3.28 s) at most.
func TimeoutCode(t time.Duration) byte {
	for n := byte(1); n < 0x10; n++ {
		if TimeoutOf(n) >= t {
			return n
		}
	}
	return 0x10
}

// TimeoutOf returns the time of an RFConfiguration timeout code.
func TimeoutOf(code byte) time.Duration {
	if code == 0 {
		return 0
	}
	if code > 0x10 {
		code = 0x10
	}
	return 100 * time.Microsecond << (code - 1)
}

// --- SetSerialBaudRate (UM0701 §7.2.8) ---------------------------------------

var hsuRates = []int{9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1288000}

// BaudCode returns the SetSerialBaudRate code of an HSU rate.
func BaudCode(baud int) (byte, bool) {
	for i, r := range hsuRates {
		if r == baud {
			return byte(i), true
		}
	}
	return 0, false
}
