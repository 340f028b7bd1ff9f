// Package isodep implements the ISO/IEC 14443-4 half-duplex block
// transmission protocol ("ISO-DEP", T=CL) on both sides of the air
// interface:
//
//   - [PCD] is the reader side. It carries command APDUs over an
//     [nfc.RawTransceiver] (one ISO 14443-3 frame out, one in, CRC handled by
//     the chip): block numbering (§7.5.4 Rules A, B, 6, 7), chaining in both
//     directions by FSC and FSD (§7.5.2), error recovery with R(NAK)/R(ACK)
//     and bounded retries (Rules 4, 5), S(WTX) waiting time extensions (§7.3),
//     the R(NAK) presence check and S(DESELECT) (§8).
//   - [PICC] is the card side, used by the simulated cards and phones of
//     drivers/sim: Rules C, D, E, 2, 3, 9–13, send chaining by the PCD's FSD,
//     S(WTX) when the application is slow, S(DESELECT).
//
// Blocks are decoded by [ParseBlock] into a [Block] (§7.1: PCB, optional
// CID and NAD, INF); CRC_B/CRC_A are the chip's business and never appear
// here.
//
// Section numbers refer to ISO/IEC 14443-4:2008 (JIS X 6322-4:2011); the
// project's notes in shared/docs/iso14443b.md §4 summarise the rules.
//
// # Place in the stack
//
//	apdu → isodep → iso14443 (activation) → chip driver (pn532, sim) → transport
//
// isodep imports only drivers/nfc (contract and error kinds) and
// drivers/iso14443 (frame-size and timing tables).
package isodep
