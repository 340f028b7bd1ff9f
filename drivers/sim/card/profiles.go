package card

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"kazasu/drivers/iso14443"
	"kazasu/drivers/isodep"
	"kazasu/drivers/nfc"
)

// Profile is how a token presents itself on air and how it behaves at the
// edges: technology, frame sizes, timing, WTX habits, APDU length support
// and faults. Its Kind gives the card content. The table below has one
// profile per standard kind (named like the kind) and variants for the
// compatibility lab.
//
// The real cards' values come from jpki.md §1 / iso14443b.md §2.3 (ATQB
// application data and protocol info as pcsc-tools lists them). For phones
// nothing public says which technology, frame sizes or FWI they use
// (jpki.md §11); the phone profiles are synthetic, chosen to exercise what a
// terminal must survive, and named by their quirk, never after a real model.
type Profile struct {
	Name string
	Note string // the quirk, and why it is in the lab
	Kind Kind   // content: applet flavour

	// Techs are the technologies the token answers on.
	Techs []nfc.Tech

	// Type B: ATQB = 50 PUPI AppData ProtocolInfo. ProtocolInfo byte 1 is
	// BitRates; byte 2 is FSCI<<4 | 1 (ISO 14443-4); byte 3 is FWI<<4 |
	// ADC<<2 | FO (FO b1 = CID supported). With ExtendedATQB the token
	// answers a 13-byte ATQB (byte 4 = SFGI<<4) when the PCD allows it
	// (REQB/WUPB PARAM b5).
	AppData      [4]byte
	BitRates     byte
	ADC          byte
	AFI          byte // application family; REQB with AFI 00 or this family
	ExtendedATQB bool
	MBLI         byte // answer to ATTRIB: MBLI<<4 | CID

	// Type A: ATQA from UIDSize, SAK 20, ATS = TL T0 TA TB TC Historical.
	UIDSize    int  // 4, 7 or 10 bytes
	TA         byte // ATS TA(1): bit rates (00 = 106 kbit/s only)
	Historical []byte

	// Both.
	FSCI, FWI, SFGI byte
	CID             bool   // supports CID
	RandomID        bool   // fresh random PUPI/UID at every power-up (seeded)
	ID              []byte // fixed PUPI (4) or UID; nil: derived from the seed
	WTX             isodep.WTXPolicy

	ShortOnly bool // extended-length APDUs answered 6700
	ExactEF   bool // certificate EFs exactly as long as the DER (no filler)
	// ResponseChunk > 0: response data longer than this comes in chunks,
	// each announced by 61xx and fetched with GET RESPONSE (T=0 style).
	ResponseChunk int
	// ExactLe: a READ BINARY crossing the end of an EF answers 6Cxx (xx =
	// bytes left) instead of the bytes with 6282.
	ExactLe bool
	Timing  Timing

	// DropAtAPDU > 0: from the Nth APDU of a power-up on, the token is
	// silent until the field is switched off (the phone slid away). Only
	// the first DropTaps power-ups drop; 0 means every one.
	DropAtAPDU int
	DropTaps   int
}

// String summarises the radio side, e.g. "android-fsc32 (android): A,
// FSC 32, FWI 8 (77.3ms), CID, random ID".
func (p Profile) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): ", p.Name, p.Kind)
	for i, t := range p.Techs {
		if i > 0 {
			b.WriteByte('+')
		}
		b.WriteString(t.String())
	}
	fmt.Fprintf(&b, ", FSC %d, FWI %d (%v)", iso14443.FrameSize(p.FSCI), p.FWI, iso14443.FWT(p.FWI).Round(100*time.Microsecond))
	if p.CID {
		b.WriteString(", CID")
	}
	if p.RandomID {
		b.WriteString(", random ID")
	}
	for _, q := range []struct {
		on   bool
		text string
	}{
		{p.ExtendedATQB, fmt.Sprintf("SFGI %d", p.SFGI)},
		{p.ShortOnly, "short APDUs only"},
		{p.ExactEF, "exact EFs"},
		{p.ExactLe, "6Cxx"},
		{p.ResponseChunk > 0, fmt.Sprintf("61xx every %d bytes", p.ResponseChunk)},
		{p.WTX.Disabled, "no S(WTX)"},
		{p.WTX.Storm > 0, fmt.Sprintf("S(WTX) storm %d", p.WTX.Storm)},
		{p.WTX.Fraction > 0 && p.WTX.Fraction < 1, fmt.Sprintf("S(WTX) at %.2g FWT", p.WTX.Fraction)},
		{p.DropAtAPDU > 0, fmt.Sprintf("drops at APDU %d", p.DropAtAPDU)},
	} {
		if q.on {
			b.WriteString(", ")
			b.WriteString(q.text)
		}
	}
	fmt.Fprintf(&b, ", sign %v", p.Timing.Sign)
	return b.String()
}

func (p Profile) clone() Profile {
	p.Techs = slices.Clone(p.Techs)
	p.Historical = slices.Clone(p.Historical)
	p.ID = slices.Clone(p.ID)
	return p
}

var (
	techB  = []nfc.Tech{nfc.TechB}
	techA  = []nfc.Tech{nfc.TechA}
	techAB = []nfc.Tech{nfc.TechA, nfc.TechB}
)

func with(p Profile, f func(*Profile)) Profile {
	p = p.clone()
	f(&p)
	return p
}

// Base profiles of the standard kinds.
var (
	cardProfile = Profile{
		Name: "mynumber", Kind: KindMyNumber,
		Note:  "My Number Card as pcsc-tools lists it: ATQB app data 00 00 05 E0, protocol info B3 81 A1 (212/424 both ways, FSC 256, FWI 10 ≈ 309 ms, CID), MBLI 0",
		Techs: techB, AppData: [4]byte{0x00, 0x00, 0x05, 0xE0}, BitRates: 0xB3,
		FSCI: 8, FWI: 10, CID: true, Timing: DefaultTiming,
	}
	androidProfile = Profile{
		Name: "android", Kind: KindAndroid,
		Note:  "Android GP-SE phone: Type A (Android guarantees card emulation only on NFC-A), random 4-byte UID per tap, FSC 256, FWI 8 (NFC Forum listener maximum), CID",
		Techs: techA, UIDSize: 4, RandomID: true,
		FSCI: 8, FWI: 8, CID: true, Timing: DefaultTiming,
	}
	iphoneProfile = Profile{
		Name: "iphone", Kind: KindIPhone,
		Note:  "iPhone Wallet JPKI, not armed: Type A, random 4-byte UID per tap, FSC 256, FWI 8, CID",
		Techs: techA, UIDSize: 4, RandomID: true,
		FSCI: 8, FWI: 8, CID: true, Timing: DefaultTiming,
	}
)

// profiles is the table; see Profiles.
var profiles = []Profile{
	cardProfile,
	with(cardProfile, func(p *Profile) {
		p.Name, p.AppData = "mynumber-41e0", [4]byte{0x00, 0x00, 0x41, 0xE0}
		p.Note = "My Number Card variant with ATQB app data 00 00 41 E0 (second pcsc-tools ATR): a terminal must not match on ATR/ATQB"
	}),
	with(cardProfile, func(p *Profile) {
		p.Name, p.AppData, p.FWI = "mynumber-d1", [4]byte{0x00, 0x4B, 0x51, 0xFF}, 13
		p.Note = "My Number Card variant 00 4B 51 FF / B3 81 D1: FWI 13 (≈2.5 s), signing needs no S(WTX)"
	}),
	with(cardProfile, func(p *Profile) {
		p.Name, p.Timing.Sign = "mynumber-slow-sign", 1500*time.Millisecond
		p.Note = "card with a 1.5 s RSA signature: several S(WTX) at FWI 10"
	}),
	with(cardProfile, func(p *Profile) {
		p.Name, p.RandomID = "mynumber-random-pupi", true
		p.Note = "card with a fresh random PUPI at every power-up: the PUPI is no identity"
	}),
	with(cardProfile, func(p *Profile) {
		p.Name, p.FSCI = "mynumber-fsc48", 4
		p.Note = "card accepting only 48-byte frames: the 57-byte COMPUTE DIGITAL SIGNATURE needs PCD chaining"
	}),
	with(cardProfile, func(p *Profile) {
		p.Name, p.CID = "mynumber-no-cid", false
		p.Note = "card without CID support (FO 00): the PCD must send blocks without CID"
	}),
	with(cardProfile, func(p *Profile) {
		p.Name, p.ExactEF = "mynumber-exact-ef", true
		p.Note = "certificate EFs exactly as long as the DER: reading past it gives 6282 / 6B00"
	}),
	with(cardProfile, func(p *Profile) {
		p.Name, p.ExtendedATQB, p.SFGI = "mynumber-sfgi", true, 8
		p.Note = "card answering an extended ATQB with SFGI 8 (≈77 ms start-up guard time) when the PCD allows it"
	}),
	with(cardProfile, func(p *Profile) {
		p.Name, p.Kind, p.AppData, p.FWI = "juki", KindJuki, [4]byte{0x00, 0x00, 0x14, 0xE0}, 9
		p.Note = "old 住基カード: ATQB 00 00 14 E0 / B3 81 91 (FWI 9), label JPKIAPICCTOKEN, expired certificates"
	}),
	{
		Name: "nonjpki", Kind: KindNonJPKI,
		Note:  "some other ISO 14443-4 Type B card (a transit or employee card): no JPKI AP",
		Techs: techB, AppData: [4]byte{0x00, 0x00, 0x00, 0x00}, BitRates: 0x00,
		FSCI: 8, FWI: 8, CID: true, Timing: DefaultTiming,
	},
	{
		// Historical bytes: category 80 (compact-TLV), card service data
		// (tag 3, length 1) C0 = selection by full and partial DF name.
		Name: "typea", Kind: KindTypeA,
		Note:  "ISO 14443-4 Type A only card (a payment card) with a 7-byte UID: no JPKI AP, invisible to a B-only poll",
		Techs: techA, UIDSize: 7, ID: []byte{0x04, 0x52, 0x61, 0x7A, 0x31, 0x6B, 0x80},
		FSCI: 8, FWI: 7, CID: true, Historical: []byte{0x80, 0x31, 0xC0}, Timing: DefaultTiming,
	},
	androidProfile,
	with(androidProfile, func(p *Profile) {
		p.Name, p.Techs = "android-typeb", techB
		p.BitRates, p.AppData = 0x00, [4]byte{0x00, 0x00, 0x00, 0x00}
		p.Note = "Android phone that presents its GP-SE on NFC-B (optional on Android)"
	}),
	with(androidProfile, func(p *Profile) {
		p.Name, p.Techs = "android-dual", techAB
		p.Note = "Android phone answering on both A and B: the poll order decides what the terminal sees"
	}),
	with(androidProfile, func(p *Profile) {
		p.Name, p.ShortOnly = "android-short-only", true
		p.Note = "phone without extended-length APDUs: extended READ BINARY gets 6700, the terminal must fall back to short reads"
	}),
	with(androidProfile, func(p *Profile) {
		p.Name, p.FSCI = "android-fsc32", 2
		p.Note = "phone accepting only 32-byte frames: every command longer than 29 bytes is chained"
	}),
	with(androidProfile, func(p *Profile) {
		p.Name, p.WTX.Storm = "android-wtx-storm", 3
		p.Note = "phone sending 3 S(WTX) before every answer, however fast"
	}),
	with(androidProfile, func(p *Profile) {
		p.Name, p.FWI, p.WTX.Fraction = "android-fwi4", 4, 0.5
		p.Note = "phone with FWI 4 (4.8 ms) asking S(WTX) at half the waiting time: dozens of extensions during signing"
	}),
	with(androidProfile, func(p *Profile) {
		p.Name = "android-slow"
		p.Timing = Timing{APDU: 40 * time.Millisecond, Verify: 60 * time.Millisecond, Sign: 900 * time.Millisecond}
		p.Note = "phone with 40 ms per APDU and a 900 ms signature"
	}),
	with(androidProfile, func(p *Profile) {
		p.Name, p.WTX.Disabled, p.Timing.Sign = "android-no-wtx", true, 500*time.Millisecond
		p.Note = "broken phone that never sends S(WTX): the signature answer comes after FWT; a PCD without recovery times out (the simulated PICC has no clock, so an R(NAK) after the timeout gets the answer retransmitted)"
	}),
	with(androidProfile, func(p *Profile) {
		p.Name, p.DropAtAPDU, p.DropTaps = "android-dropper", 6, 1
		p.Note = "phone that slides off the reader at the 6th APDU of the first tap; the second tap works"
	}),
	with(androidProfile, func(p *Profile) {
		p.Name, p.RandomID, p.ID = "android-fixed-uid", false, []byte{0x08, 0x12, 0x34, 0x56}
		p.Note = "phone whose secure element keeps one UID across taps"
	}),
	with(androidProfile, func(p *Profile) {
		p.Name, p.ResponseChunk = "android-get-response", 128
		p.Note = "phone answering at most 128 data bytes at a time with 61xx: certificate reads and the signature need GET RESPONSE"
	}),
	with(androidProfile, func(p *Profile) {
		p.Name, p.ExactLe, p.ExactEF = "android-6cxx", true, true
		p.Note = "phone with exact-size certificate EFs answering 6Cxx to a READ BINARY past the end (resend with Le = xx)"
	}),
	with(androidProfile, func(p *Profile) {
		p.Name, p.CID = "android-no-cid", false
		p.Note = "phone without CID support (ATS TC 00)"
	}),
	iphoneProfile,
	with(iphoneProfile, func(p *Profile) {
		p.Name, p.Kind = "iphone-armed", KindIPhoneArmed
		p.Note = "iPhone armed with Face ID before the tap: signs without VERIFY, accepts 80 FC 00 00"
	}),
	with(iphoneProfile, func(p *Profile) {
		p.Name, p.Kind, p.ShortOnly, p.FSCI = "iphone-armed-short", KindIPhoneArmed, true, 7
		p.Note = "armed iPhone with short APDUs only and 128-byte frames"
	}),
	with(iphoneProfile, func(p *Profile) {
		p.Name, p.Kind, p.Timing.Sign = "iphone-armed-slow", KindIPhoneArmed, 700*time.Millisecond
		p.Note = "armed iPhone taking 700 ms to sign: S(WTX) at FWI 8"
	}),
	with(iphoneProfile, func(p *Profile) {
		p.Name, p.Kind, p.DropAtAPDU = "iphone-armed-dropper", KindIPhoneArmed, 3
		p.Note = "armed iPhone that goes silent at the 3rd APDU of every tap (held too far)"
	}),
}

// Profiles returns a copy of the profile table.
func Profiles() []Profile {
	out := make([]Profile, len(profiles))
	for i, p := range profiles {
		out[i] = p.clone()
	}
	return out
}

// LookupProfile returns the named profile.
func LookupProfile(name string) (Profile, bool) {
	for _, p := range profiles {
		if p.Name == name {
			return p.clone(), true
		}
	}
	return Profile{}, false
}

// DefaultProfile returns the profile of a standard kind.
func DefaultProfile(k Kind) (Profile, bool) {
	return LookupProfile(string(k))
}
