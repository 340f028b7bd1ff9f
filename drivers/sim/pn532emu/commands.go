package pn532emu

import (
	"context"
	"fmt"
)

// Command codes (UM0701-02 §7, pn532.md §4).
const (
	cmdDiagnose              = 0x00
	cmdGetFirmwareVersion    = 0x02
	cmdGetGeneralStatus      = 0x04
	cmdReadRegister          = 0x06
	cmdWriteRegister         = 0x08
	cmdSetSerialBaudRate     = 0x10
	cmdSetParameters         = 0x12
	cmdSAMConfiguration      = 0x14
	cmdPowerDown             = 0x16
	cmdRFConfiguration       = 0x32
	cmdInDataExchange        = 0x40
	cmdInCommunicateThru     = 0x42
	cmdInDeselect            = 0x44
	cmdInListPassiveTarget   = 0x4A
	cmdInRelease             = 0x52
	cmdInSelect              = 0x54
	cmdInAutoPoll            = 0x60
	cmdTgInitAsTarget        = 0x8C // not emulated: error frame
	firmwareIC, firmwareVer  = 0x32, 0x01
	firmwareRev, firmwareSup = 0x06, 0x07 // ISO14443A | ISO14443B | ISO18092
)

// Status codes (low 6 bits of a status byte, pn532.md §4.4).
const (
	stOK              = 0x00
	stTimeout         = 0x01
	stCRC             = 0x02
	stCollision       = 0x06
	stRFBuffer        = 0x09
	stRFProtocol      = 0x0B
	stFormat          = 0x13
	stNotAcceptable   = 0x27
	stCardExchanged   = 0x2A
	stCardDisappeared = 0x2B
	statusMI          = 0x40
)

// CIU register addresses the emulated firmware itself looks at.
const (
	regTxMode     = 0x6302
	regRxMode     = 0x6303
	regBitFraming = 0x633D
	// regTxControl is CIU_TxControl: bits 1..0 (Tx2RFEn, Tx1RFEn) drive the
	// antenna, so they mirror the RF field; reset value 0x80 (InvTx2RFOn,
	// as in the PN512 family documentation; not confirmed on a PN532).
	regTxControl      = 0x6304
	txControlReset    = 0x80
	txControlRFEnable = 0x03

	crcEn       = 0x80 // TxMode/RxMode bit 7: CRC generation / check
	framingMask = 0x03 // TxMode/RxMode bits 1–0: 00 ISO 14443A, 11 ISO 14443B
	framingB    = 0x03
)

// SetParameters flags the emulated firmware acts on (pn532.md §4.1; the
// others — 01 fNADUsed, 04 fAutomaticATR_RES, 20 fISO14443-4_PICC — concern
// NAD, DEP and target mode, which are not emulated).
const (
	paramDIDUsed   = 0x02
	paramAutoRATS  = 0x10
	paramNoPrePost = 0x40
)

type handler func(e *Emulator, ctx context.Context, args []byte) ([]byte, error)

var handlers map[byte]handler

func init() {
	handlers = map[byte]handler{
		cmdDiagnose:            (*Emulator).diagnose,
		cmdGetFirmwareVersion:  (*Emulator).getFirmwareVersion,
		cmdGetGeneralStatus:    (*Emulator).getGeneralStatus,
		cmdReadRegister:        (*Emulator).readRegister,
		cmdWriteRegister:       (*Emulator).writeRegister,
		cmdSetSerialBaudRate:   (*Emulator).setSerialBaudRate,
		cmdSetParameters:       (*Emulator).setParameters,
		cmdSAMConfiguration:    (*Emulator).samConfiguration,
		cmdPowerDown:           (*Emulator).powerDown,
		cmdRFConfiguration:     (*Emulator).rfConfiguration,
		cmdInDataExchange:      (*Emulator).inDataExchange,
		cmdInCommunicateThru:   (*Emulator).inCommunicateThru,
		cmdInDeselect:          (*Emulator).inDeselect,
		cmdInListPassiveTarget: (*Emulator).inListPassiveTarget,
		cmdInRelease:           (*Emulator).inRelease,
		cmdInSelect:            (*Emulator).inSelect,
		cmdInAutoPoll:          (*Emulator).inAutoPoll,
	}
}

// diagnose: NumTst 00 communication line (echo), 01 ROM, 02 RAM,
// 06 attention request / ISO 14443-4 presence check, 07 antenna.
func (e *Emulator) diagnose(ctx context.Context, a []byte) ([]byte, error) {
	if len(a) < 1 {
		return nil, errSyntax
	}
	switch a[0] {
	case 0x00: // communication line test: NumTst and the data, echoed
		if len(a) > 1+262 {
			return nil, errSyntax
		}
		return append([]byte(nil), a...), nil
	case 0x01, 0x02: // ROM / RAM self-test: 00 = OK
		if len(a) != 1 {
			return nil, errSyntax
		}
		return []byte{0x00}, nil
	case 0x06: // presence check of the current ISO-DEP target
		if len(a) != 1 {
			return nil, errSyntax
		}
		return []byte{e.presenceCheck(ctx)}, nil
	case 0x07: // antenna self-test; a[1] is the threshold/mode byte
		if len(a) != 2 {
			return nil, errSyntax
		}
		return []byte{0x00}, nil
	}
	return nil, errSyntax
}

func (e *Emulator) getFirmwareVersion(_ context.Context, a []byte) ([]byte, error) {
	if len(a) != 0 {
		return nil, errSyntax
	}
	return []byte{firmwareIC, firmwareVer, firmwareRev, firmwareSup}, nil
}

// getGeneralStatus: Err Field NbTg {Tg BrRx BrTx Type}×NbTg SAMstatus.
// Type is 00 for ISO 14443-3 A/B and MIFARE targets (UM "modulation type";
// LOW confidence for -4 targets, which are reported the same way here).
func (e *Emulator) getGeneralStatus(_ context.Context, a []byte) ([]byte, error) {
	if len(a) != 0 {
		return nil, errSyntax
	}
	var active []*target
	for _, t := range e.targets {
		if t.active {
			active = append(active, t)
		}
	}
	out := []byte{e.lastErr, 0x00, byte(len(active))}
	for _, t := range active {
		out = append(out, t.tg, 0x00, 0x00, 0x00)
	}
	return append(out, 0x00), nil
}

// readRegister answers one value per 2-byte address. No status byte on a
// PN532 (the PN533 adds one).
func (e *Emulator) readRegister(_ context.Context, a []byte) ([]byte, error) {
	if len(a) == 0 || len(a)%2 != 0 {
		return nil, errSyntax
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]byte, 0, len(a)/2)
	for i := 0; i < len(a); i += 2 {
		addr := uint16(a[i])<<8 | uint16(a[i+1])
		v := e.regs[addr]
		if addr == regTxControl {
			v = e.txControl()
		}
		out = append(out, v)
	}
	return out, nil
}

// txControl is CIU_TxControl with the antenna bits reflecting the field.
func (e *Emulator) txControl() byte {
	v, ok := e.regs[regTxControl]
	if !ok {
		v = txControlReset
	}
	v &^= txControlRFEnable
	if e.rfOn {
		v |= txControlRFEnable
	}
	return v
}

// writeRegister stores {AdrH AdrL Val} triples.
func (e *Emulator) writeRegister(ctx context.Context, a []byte) ([]byte, error) {
	if len(a) == 0 || len(a)%3 != 0 {
		return nil, errSyntax
	}
	e.mu.Lock()
	field := -1
	for i := 0; i < len(a); i += 3 {
		addr := uint16(a[i])<<8 | uint16(a[i+1])
		e.regs[addr] = a[i+2]
		if addr == regTxControl { // the antenna drivers switch the field
			field = int(a[i+2] & txControlRFEnable)
		}
	}
	e.mu.Unlock()
	if field >= 0 {
		e.setField(ctx, field != 0)
	}
	return nil, nil
}

// BaudRates maps SetSerialBaudRate's BR byte to bit/s.
var BaudRates = [...]int{9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1288000}

// setSerialBaudRate answers at the old rate; the switch happens when the
// host's ACK arrives (pn532.md §2). A command frame instead of that ACK
// leaves the rate unchanged (the procedure was not completed).
func (e *Emulator) setSerialBaudRate(_ context.Context, a []byte) ([]byte, error) {
	if len(a) != 1 || int(a[0]) >= len(BaudRates) {
		return nil, errSyntax
	}
	e.mu.Lock()
	e.newBaud = BaudRates[a[0]]
	e.mu.Unlock()
	return nil, nil
}

func (e *Emulator) setParameters(_ context.Context, a []byte) ([]byte, error) {
	if len(a) != 1 || a[0]&0x88 != 0 { // bits 3 and 7 are RFU, must be 0
		return nil, errSyntax
	}
	e.params = a[0]
	return nil, nil
}

// samConfiguration: Mode [Timeout [IRQ]]. Mode 01 normal brings the chip
// out of LowVbat. Modes 02–04 need a SAM, which this board does not have;
// they are accepted (the chip cannot tell) and change nothing.
func (e *Emulator) samConfiguration(_ context.Context, a []byte) ([]byte, error) {
	if len(a) < 1 || len(a) > 3 || a[0] < 1 || a[0] > 4 {
		return nil, errSyntax
	}
	if len(a) == 3 && a[2] > 1 {
		return nil, errSyntax
	}
	e.samMode = a[0]
	e.mu.Lock()
	if e.power == LowVbat {
		e.power = Normal
	}
	e.mu.Unlock()
	return nil, nil
}

// powerDown: WakeUpEnable [GenerateIRQ] → Status. The chip sleeps once the
// answer is out.
func (e *Emulator) powerDown(ctx context.Context, a []byte) ([]byte, error) {
	if len(a) < 1 || len(a) > 2 || len(a) == 2 && a[1] > 1 {
		return nil, errSyntax
	}
	e.setField(ctx, false)
	e.mu.Lock()
	e.wake = a[0]
	e.downNext = true
	e.mu.Unlock()
	return []byte{stOK}, nil
}

// rfConfiguration: CfgItem + data (pn532.md §4.2).
func (e *Emulator) rfConfiguration(ctx context.Context, a []byte) ([]byte, error) {
	if len(a) < 1 {
		return nil, errSyntax
	}
	item, d := a[0], a[1:]
	want := map[byte]int{0x01: 1, 0x02: 3, 0x04: 1, 0x05: 3, 0x0A: 11, 0x0B: 8, 0x0C: 3, 0x0D: 9}
	n, ok := want[item]
	if !ok || len(d) != n {
		return nil, errSyntax
	}
	switch item {
	case 0x01:
		e.autoRFCA = d[0]&0x02 != 0
		e.setField(ctx, d[0]&0x01 != 0)
	case 0x02:
		copy(e.timings[:], d)
	case 0x04:
		e.maxRtyCOM = d[0]
	case 0x05:
		copy(e.maxRetry[:], d)
	default:
		e.analog[item] = append([]byte(nil), d...)
	}
	return nil, nil
}

// setField switches the RF field; switching it on costs the guard time
// before the first command may be sent.
func (e *Emulator) setField(ctx context.Context, on bool) {
	if on == e.rfOn {
		return
	}
	e.rfOn = on
	e.field.SetOn(on)
	if on {
		_ = e.spend(ctx, CatAir, guardTime)
	}
}

// commandName names a command code for logs.
func commandName(code byte) string {
	names := map[byte]string{
		cmdDiagnose: "Diagnose", cmdGetFirmwareVersion: "GetFirmwareVersion",
		cmdGetGeneralStatus: "GetGeneralStatus", cmdReadRegister: "ReadRegister",
		cmdWriteRegister: "WriteRegister", cmdSetSerialBaudRate: "SetSerialBaudRate",
		cmdSetParameters: "SetParameters", cmdSAMConfiguration: "SAMConfiguration",
		cmdPowerDown: "PowerDown", cmdRFConfiguration: "RFConfiguration",
		cmdInDataExchange: "InDataExchange", cmdInCommunicateThru: "InCommunicateThru",
		cmdInDeselect: "InDeselect", cmdInListPassiveTarget: "InListPassiveTarget",
		cmdInRelease: "InRelease", cmdInSelect: "InSelect", cmdInAutoPoll: "InAutoPoll",
		cmdTgInitAsTarget: "TgInitAsTarget",
	}
	if n, ok := names[code]; ok {
		return n
	}
	return fmt.Sprintf("command %02X", code)
}
