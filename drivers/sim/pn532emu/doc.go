// Package pn532emu is virtual hardware: an NXP PN532 (firmware v1.6,
// PN532/C106) as seen from its host, byte for byte, driving the simulated
// RF field of package rf. It is the project's ground truth for PN532
// behaviour: everything here follows the published facts collected in
// docs/pn532.md (UM0701-02 as quoted by its sources, and what Debian's
// libnfc 1.8.0 sends and accepts), never what a particular driver would
// like.
//
// # Host interfaces
//
// One chip core sits behind three host interfaces (only one at a time):
//
//   - HSU: [Emulator.ServeStream] on any byte stream, and
//     [Emulator.ServePTY] on a pseudo-terminal made by [OpenPTY] (which can
//     symlink a path such as /tmp/ttyUSB9 to /dev/pts/N), for libnfc's
//     pn532_uart driver and serial drivers.
//   - I2C: [Emulator.I2C] returns a periph.io i2c.Bus with the chip at
//     0x24; every read starts with the ready byte (00 busy, 01 ready).
//   - SPI: [Emulator.SPI] returns a periph.io spi.Port; mode 0, the first
//     byte of each transaction is DW 01, SR 02 or DR 03, bytes travel LSB
//     first (a correct host reverses the bits of every byte).
//
// # Frames (UM §6.2, pn532.md §1)
//
// Normal and extended information frames (PD ≤ 264 in both directions),
// ACK (received: aborts the running command; sent: "frame received"), NACK
// (the last response is sent again) and the application error frame
// 00 00 FF 01 FF 7F 81 00. Junk before a start code is skipped, which
// covers HSU wake-up bytes (55 55 00 …). A new command frame cancels the
// running command: its answer is never sent, so a late answer cannot be
// taken for the next command's (pn532.md §9).
//
// My reading of the manual for bad frames, where pn532.md has no direct
// fact: a frame whose LCS or DCS is wrong, or whose extended length is 0 or
// above 265, is damaged in transit and is not acknowledged at all (the host
// sees its ACK timeout; NACK exists only host → PN532). A frame that
// arrives intact but is not a valid command — TFI other than D4, no command
// code, an unknown command, or parameters of the wrong length or range — is
// acknowledged and answered with the error frame. An incomplete frame is
// given up after Options.RxTimeout of line silence.
//
// # Power
//
// The chip starts in LowVbat and asleep: the first byte on the HSU wakes it
// and is lost (that is what the 55 bytes are for); libnfc's SAMConfiguration
// follows back to back and is accepted. After PowerDown the chip sleeps once
// its answer is out and wakes only on a source enabled in WakeUpEnable (HSU
// b4, SPI b5, I2C b7).
//
// # Commands
//
// Diagnose (00 echo, 01 ROM, 02 RAM, 06 presence check, 07 antenna),
// GetFirmwareVersion (32 01 06 07), GetGeneralStatus, ReadRegister and
// WriteRegister (batched; a register file that remembers writes; no status
// byte), SetParameters, SetSerialBaudRate (answered at the old rate; the
// switch happens on the host's ACK), SAMConfiguration, PowerDown,
// RFConfiguration (01 field, 02 timings, 04 MaxRtyCOM, 05 MaxRetries with
// the real semantics — MxRtyPassiveActivation FF with nothing in the field
// means silence until the host aborts — and the analog items, stored),
// InListPassiveTarget (106 kbps Type A and Type B; for an ISO 14443-4 Type B
// PICC the firmware's own ATTRIB with CID 1 and FSD 64), InAutoPoll,
// InSelect, InDeselect (S(DESELECT) to -4 targets), InRelease,
// InDataExchange (the firmware's PCD-side ISO-DEP: see isodep.go) and
// InCommunicateThru (raw frames under the CIU CRC and framing bits; timeout
// from RFConfiguration item 02). Anything else gets the error frame. Status
// bytes never have bit 7 (NAD) set: libnfc aborts the process on it.
//
// # Readings where pn532.md is silent
//
// Each is a choice, made so that libnfc 1.8.0 and ISO/IEC 14443 both hold:
//
//   - Polling uses WUPB / WUPA (not REQB / REQA), so a target halted by
//     InDeselect is found again (§11.2 is open); a new InListPassiveTarget
//     or InAutoPoll first deselects the targets of the previous poll that
//     are still active (libnfc's listing loop leaves its last target active,
//     and a real card ignores WUP while ACTIVE).
//   - ATTRIB is sent only to a PICC announcing ISO 14443-4 (ATQB protocol
//     type b1 = 1, b4 = 0); Param2 is 05 (FSD 64, 106 kbit/s both ways),
//     Param3 echoes the protocol type's b3–b1, Param4 is the CID — 1 for
//     the first target, 2 for a second one (MaxTg 2) — when the ATQB says
//     the PICC supports CID, else 0 (and blocks then carry none).
//     The TargetData's ATTRIB_RES is the PICC's answer as received.
//   - Type A: SENS_RES is reported MSB first (the air order reversed, as
//     libnfc prints ATQA 00 04); RATS is E0 50 (FSD 64, CID 0); a CID is used
//     only with SetParameters fDIDUsed and an ATS that allows it.
//   - The frame waiting time is enforced: a PICC whose reported processing
//     outlasts FWT (or FWT × WTXM after an S(WTX)) plus ΔFWT has answered too
//     late; the chip recovers per Rule 4 and the PICC, still busy for the
//     rest of its processing, answers the R(NAK) with its block (Rule 11).
//   - InDataExchange returns with MI as soon as another 64-byte block might
//     not fit in 262 bytes of DataIn; ISO-DEP recovery is 2 attempts
//     (R(NAK) / retransmission) before status 01; S(WTX) is answered with
//     the same WTXM, up to 1000 per block.
//   - Diagnose 06 sends R(NAK) to the current ISO-DEP target: 00 if it
//     answers, 01 if silent, 27 with no such target.
//   - fRemovePrePostAmble takes effect from the SetParameters answer that
//     sets it; the ACK keeps its six bytes. PowerDown switches the RF off.
//   - After an activation the CIU TxMode/RxMode registers hold the
//     technology's framing with CRC on, as the firmware leaves them (so
//     libnfc's presence check 42 BA 01 goes out as a Type B frame).
//
// # Timing
//
// Every step is given a modelled duration (see timing.go and package
// vclock): host link (UART 10 bits per byte at the current baud; I2C 9 bits
// per byte plus address, start and stop; SPI 8 bits per byte plus the
// direction byte), air time per iso14443b.md §6.1 ((10·n+22) etu per Type B
// frame, TR0+TR1+TR2 per round trip), chip firmware per command
// (Timing.Firmware) and each PICC's reported processing time. The durations
// are spent on Options.Clock (a virtual clock by default: nothing waits)
// and summed in [Emulator.Meter].
package pn532emu
