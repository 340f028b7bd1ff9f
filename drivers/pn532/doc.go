// Package pn532 drives an NXP PN532 NFC controller (firmware v1.6,
// PN532/C106) as an ISO/IEC 14443 reader, over HSU (UART), I2C or SPI.
//
// References: NXP UM0701-02 "PN532 User Manual" Rev. 02 — §6.2 host
// interfaces and frames (normal, extended, ACK, NACK, error frame; HSU
// wake-up §6.2.3, I2C §6.2.4, SPI §6.2.5), §7.1 error codes, §7.2
// miscellaneous commands (Diagnose, GetFirmwareVersion, GetGeneralStatus,
// Read/WriteRegister, SetSerialBaudRate, SetParameters, SAMConfiguration,
// PowerDown), §7.3 RF and initiator commands (RFConfiguration,
// InListPassiveTarget, InDataExchange, InCommunicateThru, InDeselect,
// InRelease, InSelect, InAutoPoll); NXP AN10609 "PN532 C106 application
// note" (LowVbat start-up). The project notes docs/pn532.md collect what
// these say and what libnfc 1.8.0 does on the wire.
//
// # Place in the stack
//
//	drivers/reader (wiring) → pn532 (chip) → serial.Port | i2c.Bus | spi.Port
//
// One bus-independent core, [Dev], speaks the host-link protocol and the
// chip's commands (one method per command, named as in the manual). Thin
// adapters turn each bus into a frame pipe: [NewUART] (wake-up preamble,
// rate switch), [NewI2C] (ready byte in front of every read), [NewSPI]
// (DW/SR/DR prefixes, bits reversed in software). The constructors bring
// the chip up and return a working *Dev.
//
// A Dev is an nfc.Reader. [Dev.Poll] activates a Type B (106 kbit/s) or
// Type A ISO-DEP target with InListPassiveTarget and returns a chip-managed
// [Card]: the firmware sent ATTRIB itself (FSD 64, CID 1) or RATS, and runs
// ISO-DEP inside InDataExchange; the driver chains APDUs and answers beyond
// one host frame (262 bytes) in both directions. Host-managed ISO-DEP (own
// WUPB/ATTRIB with FSD 256 and no CID, software ISO-DEP) is composed one
// layer up from [Dev.InDeselect], [Dev.TransceiveRaw] (nfc.RawTransceiver
// over InCommunicateThru) and the ATQB in [Card.Target]; this package does
// not import the ISO-DEP layer.
//
// # Robustness
//
// Every command waits for the chip's ACK within Opts.ACKTimeout plus the
// frame's wire time and is sent again (Opts.Retries) when none comes; an
// answer whose checksum fails is asked for again with a NACK; noise, wake-up
// bytes, false start codes and late answers to earlier commands are skipped;
// a command without an answer in time is aborted with a host ACK, so the next
// command starts clean. Timeouts come from the spec: frame waiting times
// from the card's FWI (ISO/IEC 14443-4 §7.2), RFConfiguration's timeout
// codes, wire times from the link rate; the power-on MxRtyPassiveActivation
// of 0xFF (poll forever) is replaced by a finite count before the first poll.
// Chip status codes map to nfc error kinds (01 → ErrTimeout; 02, 03 →
// ErrTransmission; 13, 27 → ErrProtocol; 29, 2A, 2B → ErrTargetGone; …) and
// a vanished transport to nfc.ErrReaderGone. Close and Halt cancel the
// command in flight. A chained answer must make progress; a target that
// left the field is released from the chip's list before the next poll;
// NewUART finds a chip that a crashed user left at the high rate; with
// RSTPDN wired every constructor starts from a hardware reset.
//
// On I2C and SPI every read transaction carries one whole frame, so reads
// are sized by the answer expected (an APDU's Ne, short target data); a
// longer answer is read again at the length its header announced (NACK).
// The frame codec (EncodeFrame, DecodeFrame) and a raw Command method are
// exported for tools.
//
// Tracing: Opts.Tracer sees every host frame (nfc.LayerHost), raw RF frame
// (nfc.LayerRF) and APDU (nfc.LayerAPDU). VERIFY and CHANGE REFERENCE DATA
// bodies are redacted at every layer, in host frames too: a PIN never
// reaches a trace.
//
// # Wiring
//
// Select the host interface with the I0/I1 (SEL0/SEL1) switches: both low
// for HSU, I0 high for I2C, I1 high for SPI.
//
//	PN532           Raspberry Pi (40-pin header)
//	HSU  TXD/RXD    GPIO15 RXD / GPIO14 TXD (P1_10 / P1_8), crossed;
//	                /dev/ttyAMA0 (PL011) with the serial console off.
//	                The mini UART /dev/ttyS0 follows the core clock: set
//	                Opts.Baud to 115200 there.
//	I2C  SDA/SCL    GPIO2 / GPIO3 (P1_3 / P1_5), /dev/i2c-1, address 0x24.
//	                The BCM2835/6/7 I2C master mishandles clock stretching:
//	                lower i2c_arm_baudrate or wire P70_IRQ and H_REQ.
//	SPI  MOSI/MISO  GPIO10 / GPIO9 / GPIO11 (P1_19 / P1_21 / P1_23),
//	     SCK, SS    CE0 GPIO8 (P1_24); mode 0, LSB first on the wire (the
//	                driver reverses bits: the Pi's controller refuses
//	                spi.LSBFirst); 1 MHz by default, at most 5 MHz.
//	P70_IRQ         any GPIO as Opts.IRQ (low while an answer is ready).
//	RSTPDN          any GPIO as Opts.Reset (active low).
//	VCC, GND        3.3 V (or 5 V on boards with a regulator), ground.
package pn532
