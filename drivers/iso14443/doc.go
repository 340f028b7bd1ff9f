// Package iso14443 is the activation layer of kazasu: the ISO/IEC 14443-3
// frames that bring a Type A or Type B PICC from power-up to the point where
// ISO-DEP (ISO/IEC 14443-4, package isodep) takes over, and the tables both
// sides share.
//
// Type B (ISO/IEC 14443-3 §7): REQB/WUPB and slot-MARKER ([ReqB],
// [SlotMarker]), ATQB ([ATQB]: PUPI, application data, protocol info with
// bit rates, FSCI, Protocol_Type, TR2, FWI, ADC, FO and the extended-ATQB
// SFGI), ATTRIB and its answer ([Attrib], [AttribResp]), HLTB ([HLTB]).
//
// Type A (ISO/IEC 14443-3 §6): REQA/WUPA short frames, ATQA, the
// anticollision/SELECT cascade for 4-, 7- and 10-byte UIDs ([CascadeLevels],
// [SelectCmd]), SAK; and from ISO/IEC 14443-4 §5 the RATS ([RATS]) and ATS
// ([ATS]: TL, T0, TA1, TB1, TC1, historical bytes).
//
// Shared tables: CRC_A and CRC_B (ISO/IEC 14443-3 Annex A/B, [CRCA],
// [CRCB]), FSCI/FSDI→frame size ([FrameSize]), FWI→FWT ([FWT]), SFGI→SFGT
// ([SFGT]). Every builder is the inverse of a parser, so the PCD side
// (readers) and the PICC side (simulated cards) use the same code.
//
// Decoders are defensive as deployed readers are: RFU codes are clamped to
// safe values (FSCI D–F → 256 bytes, FWI 15 → 4, SFGI 15 → 0, bit-rate byte
// with b4 set → 106 kbit/s only) and each leniency is reported by Notes().
// Lengths are checked before every read; no input makes them panic.
//
// [ActivateB] and [ActivateA] run the PCD side of activation over an
// [nfc.RawTransceiver] and fill an [nfc.Target].
//
// # Place in the stack
//
//	apdu → isodep → iso14443 → chip driver (pn532, sim) → transport
//
// iso14443 imports only drivers/nfc. References: ISO/IEC 14443-3:2018 and
// -4:2018 (JIS X 6322-3/-4); the project's notes in shared/docs/iso14443b.md
// §1–§3 carry the values with their sources.
package iso14443
