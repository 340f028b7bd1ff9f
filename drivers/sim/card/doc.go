// Package card simulates the tokens a JPKI kiosk meets: My Number Cards,
// Android and iPhone phones carrying スマホ用電子証明書, the old 住基カード,
// cards without JPKI, and any of them with compatibility-lab quirks. It is
// virtual hardware (drivers/sim): a [Token] is an [rf.PICC] that a simulated
// reader (pn532emu, simreader) drives through an [rf.Field], and nothing in
// the production stack imports it.
//
// # Layers
//
//	Token (rf.PICC)     ISO/IEC 14443-3 activation, Type B §7 and Type A §6:
//	                    REQB/WUPB (N slots, slot-MARKER), ATQB, ATTRIB, HLTB;
//	                    REQA/WUPA, ATQA, anticollision/SELECT per cascade
//	                    level, SAK, RATS, ATS, PPS, HLTA. HALT answers only
//	                    WUPA/WUPB.
//	isodep.PICC         ISO/IEC 14443-4 blocks (drivers/isodep): I/R/S
//	                    blocks, chaining by FSC/FSD, CID, S(WTX), DESELECT.
//	Applet (rf.Applet)  ISO/IEC 7816-4 content: ISD, JPKI AP, text AP.
//
// Activation frames are encoded here rather than with drivers/iso14443's
// codecs, so that a codec bug on the terminal side shows up as a failed
// test instead of being mirrored by the simulator. ISO-DEP is the one
// shared piece (the team's PICC implementation of drivers/isodep).
//
// # Content (shared/docs/jpki.md, section numbers below)
//
// At power-on the GlobalPlatform ISD A0 00 00 01 51 00 00 is selected (§1).
// The JPKI AP D3 92 F0 00 26 01 00 00 00 01 (§2, §3) holds EF 0001 (sign
// certificate, needs the sign password 001B), 0002 (sign CA), 0006 (160-byte
// CK_TOKEN_INFO, space-padded label), 0008 (8F 8F 00), 000A (auth
// certificate), 000B (auth CA), key 0017 with PIN 0018 (4 digits, 3 tries)
// and key 001A with password 001B (6–16 of A–Z/0–9, 5 tries). Certificate
// EFs are larger than their DER (FF filler to ≥ 2 KiB) unless the profile
// says ExactEF. The card's text AP D3 92 10 00 31 00 01 01 04 08 (§4) holds
// EF 0001 (FF 10 0C + 12 digits + FF FF) and EF 0002 (FF20 { DF21 offset
// table, DF22 name, DF23 address, DF24 YYYYMMDD, DF25 sex }) behind PIN
// 0011 (4 digits, 3 tries, own counter). 照合番号A/B, the 券面AP, the 共通AP,
// GET DATA and EF 0003–0007 are not modelled (6A82 / 6D00).
//
// Commands (§5.1, §5.4): SELECT by DF name (P1 04; full name or a prefix of
// ≥ 5 bytes) and EF (P1 02), P2 00/0C, no FCI; "select MF" as the card does
// it (6A86 at power-on, 9000 without effect later, 3F00 → 6A82). READ BINARY
// with a 15-bit offset or 80|SFI + 8-bit offset, short or extended Le; past
// the end 6B00, a read crossing it returns the rest with 6282. VERIFY with
// P2 80 (PIN of the current EF) or 80|SFI: no data = counter query 63Cx;
// wrong value 63C2, 63C1, 63C0 (the exhausting attempt), then 6984 to every
// VERIFY including the query; a value of the wrong length is 6700 and costs
// nothing; a correct one resets the counter. CHANGE REFERENCE DATA 00 24 01
// after VERIFY. COMPUTE DIGITAL SIGNATURE 80 2A 00 80 (key of the current
// EF) or 80 2A 00 97/9A: PKCS#1 v1.5 type-1 padding of exactly the 1…245
// bytes given (a DigestInfo), 6982 without VERIFY; P1 01…05 are the other
// modes of §5.2. GET CHALLENGE. 80 FC 00 00 → 6700 on cards and Android.
// Logical channels and MANAGE CHANNEL → 6881; SM class bits → 6882 on SELECT, 69FC otherwise;
// CLA chaining → 6884; wrong P1-P2 6A86, unknown INS 6D00, interindustry
// INS under CLA 80 (or 2A/FC under CLA 00) 6E00, bad length 6700, not found
// 6A82. The security state is cleared on power loss (FieldOff, Reset) and
// when another application (the ISD included) is selected; re-selecting the
// current one, S(DESELECT) and HLTB keep it (the chip stays powered). Retry
// counters and an iPhone's armed state persist.
//
// # Phones (§8, §11): what is modelled and why
//
// Android (JPKIAPGPSETOKEN): the same JPKI AP; EF 000A answers 6982 until
// the auth PIN is verified (§8.1: jpki/myna added the PIN prompt for this
// token; the exact SW is not public, 6982 is the ISO answer). No text AP
// (6A82). CA EFs present and free, PIN counters as on the card (unknown on
// real phones). Default PINs differ from the card's ("5678", "XYZ789"). It
// presents as Type A: Android guarantees card emulation only on NFC-A.
//
// iPhone (JPKIAPIOSTOKEN): at a kiosk the user double-clicks the side
// button and passes Face ID before the tap, and no PIN is typed (§8.2).
// Nothing public says how the applet answers before or after that, so this
// model chooses:
//
//   - Not armed: SELECT of the JPKI AP succeeds and EF 0006 (label) and
//     0008 are readable, so a terminal can recognise an iPhone and tell the
//     user to arm it. Every certificate EF, both keys and the VERIFY counter
//     query answer 6982 — distinct from "not JPKI" (SELECT → 6A82) and from
//     a PIN problem (63Cx / 6984).
//   - Armed (Arm, or kind iphone-armed): the user-authentication identity is
//     unlocked as if its PIN were verified: 000A and 000B readable, key 0017
//     signs without VERIFY, the VERIFY query answers 9000 ("already verified
//     in this session", a card answer listed in §5.1). The signature
//     identity (0001, 0002, 001A) stays 6982: コンビニ交付 uses only the auth
//     certificate, and Apple's API ties signing to the password in the app.
//   - VERIFY with data answers 6985 armed or not and counts nothing: the
//     PIN is not how an iPhone is unlocked at a reader. CHANGE REFERENCE
//     DATA: 6985.
//   - 80 FC 00 00 (last command indicator, §8.2) answers 9000 and ends the
//     armed session (security state cleared); leaving the field does not
//     end it (the phone stays armed, as it does for a re-tap).
//   - Type A like Android (unknown, §11).
//
// # Radio side
//
// A [Profile] sets technology, ATQB bytes (application data, bit rates,
// FSCI, FWI, ADC, FO; optional extended ATQB with SFGI), ATQA/UID size,
// ATS (FSCI, TA, FWI/SFGI, TC with CID, historical bytes), CID support, a
// fixed or per-power-up random PUPI/UID (seeded, 4-byte random UIDs start
// with 08), the WTX policy of drivers/isodep (fraction of FWT, storms,
// disabled), short-only APDUs, two response quirks (61xx + GET RESPONSE
// in chunks; 6Cxx to a READ BINARY past the end), processing times, and an
// RF drop fault
// (silent from the Nth APDU of the first DropTaps power-ups). Processing
// time is reported (rf.PICC proc), never slept; RSA-2048 signing takes
// 300 ms by default, which at the card's FWI 10 (309 ms) or a phone's FWI 8
// means S(WTX). [Profiles] lists the compatibility-lab table.
//
// The PICC has no clock: it cannot be "still busy" when the PCD gives up on
// a late answer, so a PCD that times out and sends R(NAK) gets the finished
// answer retransmitted (Rule 11). Timing faults are therefore the reader
// model's business (it charges proc against FWT); the token only reports.
//
// # Credentials
//
// By default a token carries credentials issued by drivers/sim/testpki
// (hierarchy seed [DefaultPKISeed], or Options.PKISeed): generation 3 for
// cards and phones, each kind its own holder and keys; the Juki card an
// expired generation-1 pair. The text AP data matches the holder in the
// sign certificate. Keys are generated once per process and cached.
//
// # Safety
//
// The package logs nothing. PIN values are [Secret]s that format as
// "[secret]", errors never contain them, and nothing is persisted.
package card
