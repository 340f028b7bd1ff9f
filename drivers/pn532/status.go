package pn532

import (
	"errors"
	"fmt"

	"kazasu/drivers/nfc"
)

// Status is the error code in the status byte the chip returns for
// InDataExchange, InCommunicateThru, InSelect, InRelease, … (UM0701 §7.1,
// table "Error code list"). Bits 6 (MI) and 7 (NAD) of the status byte are not
// part of it.
type Status byte

// Status codes (UM0701 §7.1).
const (
	StatusOK               Status = 0x00
	StatusTimeout          Status = 0x01 // the target did not answer
	StatusCRC              Status = 0x02
	StatusParity           Status = 0x03
	StatusBitCount         Status = 0x04 // wrong bit count during anticollision
	StatusFraming          Status = 0x05 // MIFARE framing error
	StatusCollision        Status = 0x06 // abnormal bit collision
	StatusBufferSize       Status = 0x07 // communication buffer too small
	StatusRFBuffer         Status = 0x09 // RF buffer overflow
	StatusRFField          Status = 0x0A // RF field not switched on in time
	StatusRFProtocol       Status = 0x0B // RF protocol error
	StatusOverheat         Status = 0x0D // antenna drivers overheated
	StatusInternalBuffer   Status = 0x0E // internal buffer overflow
	StatusInvalidParameter Status = 0x10
	StatusDEPCommand       Status = 0x12 // DEP: unsupported command from initiator
	StatusFormat           Status = 0x13 // bad data format (length, PCB/PFB, NAD/DID)
	StatusAuth             Status = 0x14 // MIFARE authentication error
	StatusUIDCheck         Status = 0x23 // UID check byte wrong
	StatusDEPState         Status = 0x25 // invalid device state
	StatusNotAllowed       Status = 0x26 // operation not allowed in this configuration
	StatusContext          Status = 0x27 // command not acceptable in this context (e.g. unknown Tg)
	StatusReleased         Status = 0x29 // target released by initiator
	StatusCardExchanged    Status = 0x2A // Type B: ID of the card does not match
	StatusCardGone         Status = 0x2B // Type B: the activated card has disappeared
	StatusNFCID3           Status = 0x2C // NFCID3 mismatch (DEP)
	StatusOverCurrent      Status = 0x2D
	StatusNADMissing       Status = 0x2E // NAD missing in DEP frame
	statusMask                    = 0x3F
	statusMI                      = 0x40 // more information follows (chaining)
	statusNAD                     = 0x80 // NAD present
)

var statusNames = map[Status]string{
	StatusOK:               "ok",
	StatusTimeout:          "target timeout",
	StatusCRC:              "CRC error",
	StatusParity:           "parity error",
	StatusBitCount:         "anticollision bit count error",
	StatusFraming:          "framing error",
	StatusCollision:        "bit collision",
	StatusBufferSize:       "buffer too small",
	StatusRFBuffer:         "RF buffer overflow",
	StatusRFField:          "RF field not on in time",
	StatusRFProtocol:       "RF protocol error",
	StatusOverheat:         "antenna overheated",
	StatusInternalBuffer:   "internal buffer overflow",
	StatusInvalidParameter: "invalid parameter",
	StatusDEPCommand:       "unsupported DEP command",
	StatusFormat:           "format error",
	StatusAuth:             "authentication error",
	StatusUIDCheck:         "UID check byte wrong",
	StatusDEPState:         "invalid DEP state",
	StatusNotAllowed:       "operation not allowed",
	StatusContext:          "command not acceptable in context",
	StatusReleased:         "released by initiator",
	StatusCardExchanged:    "Type B card exchanged",
	StatusCardGone:         "Type B card disappeared",
	StatusNFCID3:           "NFCID3 mismatch",
	StatusOverCurrent:      "over-current",
	StatusNADMissing:       "NAD missing",
}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return fmt.Sprintf("%s (0x%02X)", n, byte(s))
	}
	return fmt.Sprintf("status 0x%02X", byte(s))
}

// Kind maps a status to the nfc error kind a caller branches on.
func (s Status) Kind() error {
	switch s {
	case StatusOK:
		return nil
	case StatusTimeout:
		return nfc.ErrTimeout
	case StatusCRC, StatusParity, StatusBitCount, StatusFraming, StatusCollision, StatusRFBuffer, StatusRFProtocol, StatusRFField:
		return nfc.ErrTransmission
	case StatusReleased, StatusCardGone, StatusCardExchanged:
		return nfc.ErrTargetGone
	case StatusInvalidParameter, StatusNotAllowed:
		return nfc.ErrNotSupported
	case StatusOverheat, StatusOverCurrent:
		return nfc.ErrReaderGone
	}
	// 07, 0E (buffers), 12, 13, 14, 23, 25, 27, 2C, 2E and unknown codes.
	return nfc.ErrProtocol
}

// StatusError is a non-zero status from the chip. It unwraps to its nfc kind.
type StatusError struct {
	Cmd    Command
	Status Status
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("pn532: %v: %v", e.Cmd, e.Status)
}

// Unwrap gives errors.Is the nfc kind of the status.
func (e *StatusError) Unwrap() error { return e.Status.Kind() }

// statusErr returns nil for StatusOK, else an *nfc.Error carrying a
// *StatusError, so both errors.Is(err, nfc.ErrTimeout) and
// errors.As(err, **StatusError) work.
func statusErr(cmd Command, b byte) error {
	s := Status(b & statusMask)
	if s == StatusOK {
		return nil
	}
	return &nfc.Error{Op: "pn532: " + cmd.String(), Kind: s.Kind(), Err: &StatusError{Cmd: cmd, Status: s}}
}

// ErrSyntax is wrapped by errors for the chip's application-level error frame
// (the chip did not understand the command's parameters).
var ErrSyntax = errors.New("pn532: chip sent an application-level error frame")
