package card

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"kazasu/drivers/iso14443"
	"kazasu/drivers/isodep"
	"kazasu/drivers/nfc"
	"kazasu/drivers/sim/rf"
)

// air sends one frame and returns the answer, or nil for silence.
func air(tok *Token, tech nfc.Tech, data []byte) []byte {
	r, _, ok := tok.Exchange(rf.Frame{Tech: tech, Data: data})
	if !ok {
		return nil
	}
	return r.Data
}

func airA7(tok *Token, cmd byte) []byte {
	r, _, ok := tok.Exchange(rf.Frame{Tech: nfc.TechA, Data: []byte{cmd}, Bits: 7})
	if !ok {
		return nil
	}
	return r.Data
}

func expectAir(t *testing.T, tok *Token, tech nfc.Tech, data, want []byte) {
	t.Helper()
	got := air(tok, tech, data)
	if !bytes.Equal(got, want) {
		t.Fatalf("% X → % X, want % X", data, got, want)
	}
}

func TestTypeBActivation(t *testing.T) {
	tok := newToken(t, KindMyNumber, Options{})
	if air(tok, nfc.TechB, hx("05 00 00")) != nil {
		t.Fatal("answered with the field off")
	}
	tok.FieldOn()
	pupi := tok.ID()
	// ATQB shaped like the real card (jpki.md §1): 00 00 05 E0 / B3 81 A1.
	atqb := append(append([]byte{0x50}, pupi...), hx("00 00 05 E0 B3 81 A1")...)
	expectAir(t, tok, nfc.TechB, hx("05 00 00"), atqb) // REQB
	if tok.State() != StateReady {
		t.Fatalf("state %v after ATQB", tok.State())
	}
	// ATTRIB to another PUPI: silence.
	expectAir(t, tok, nfc.TechB, append(append([]byte{0x1D}, 1, 2, 3, 4), hx("00 08 01 00")...), nil)
	// The PN532 firmware's ATTRIB: FSD 64, CID 1 → MBLI 0 | CID 1.
	expectAir(t, tok, nfc.TechB, append(append([]byte{0x1D}, pupi...), hx("00 05 01 01")...), []byte{0x01})
	if tok.State() != StateActive {
		t.Fatalf("state %v after ATTRIB", tok.State())
	}
	// Type A is ignored by a Type B only token.
	if airA7(tok, 0x52) != nil {
		t.Fatal("a Type B card answered WUPA")
	}
	// HLTB → 00; HALT answers only WUPB.
	expectAir(t, tok, nfc.TechB, append([]byte{0x50}, pupi...), []byte{0x00})
	if tok.State() != StateHalt {
		t.Fatalf("state %v after HLTB", tok.State())
	}
	expectAir(t, tok, nfc.TechB, hx("05 00 00"), nil)
	expectAir(t, tok, nfc.TechB, hx("05 00 08"), atqb) // WUPB
	// AFI: a family the card is not in gets no answer.
	expectAir(t, tok, nfc.TechB, hx("05 10 08"), nil)
	expectAir(t, tok, nfc.TechB, hx("05 00 08"), atqb)
	// HLTB in READY-DECLARED.
	expectAir(t, tok, nfc.TechB, append([]byte{0x50}, pupi...), []byte{0x00})
	tok.FieldOff()
	if tok.State() != StateOff {
		t.Fatal("not off")
	}
}

func TestATTRIBParameters(t *testing.T) {
	tok := newToken(t, KindMyNumber, Options{})
	tests := []struct {
		name   string
		params string // Param1..4
		want   []byte
	}{
		{"106 both, FSD 256, no CID", "00 08 01 00", []byte{0x00}},
		{"424 both (B3)", "00 A8 01 00", []byte{0x00}},
		{"212 both", "00 58 01 00", []byte{0x00}},
		{"848 not offered", "00 F8 01 00", nil},
		{"asymmetric 424/212, B3 wants the same rate", "00 98 01 00", nil},
		{"CID 14", "00 08 01 0E", []byte{0x0E}},
		{"CID 15 RFU", "00 08 01 0F", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok.FieldOff()
			tok.FieldOn()
			if air(tok, nfc.TechB, hx("05 00 08")) == nil {
				t.Fatal("no ATQB")
			}
			expectAir(t, tok, nfc.TechB, append(append([]byte{0x1D}, tok.ID()...), hx(tc.params)...), tc.want)
		})
	}
	// A card without CID support refuses a CID.
	nc, err := NewProfile("mynumber-no-cid", Options{Credentials: tok.Credentials()})
	if err != nil {
		t.Fatal(err)
	}
	nc.FieldOn()
	atqb := air(nc, nfc.TechB, hx("05 00 00"))
	if atqb[11]&0x01 != 0 {
		t.Errorf("ATQB % X says CID supported", atqb)
	}
	expectAir(t, nc, nfc.TechB, append(append([]byte{0x1D}, nc.ID()...), hx("00 08 01 01")...), nil)
}

func TestTypeBSlots(t *testing.T) {
	tok := newToken(t, KindMyNumber, Options{})
	answered := map[int]int{}
	for round := range 40 {
		tok.FieldOff()
		tok.FieldOn()
		var got []int
		if air(tok, nfc.TechB, hx("05 00 04")) != nil { // REQB, 16 slots
			got = append(got, 1)
		}
		for n := 2; n <= 16; n++ {
			if a := air(tok, nfc.TechB, []byte{byte(n-1)<<4 | 0x05}); a != nil {
				if len(a) != 12 || a[0] != 0x50 {
					t.Fatalf("slot %d answer % X", n, a)
				}
				got = append(got, n)
			}
		}
		if len(got) != 1 {
			t.Fatalf("round %d: answered in slots %v, want exactly one", round, got)
		}
		answered[got[0]]++
	}
	if len(answered) < 4 {
		t.Errorf("slots used in 40 rounds: %v; the choice is not random", answered)
	}
}

func TestExtendedATQB(t *testing.T) {
	tok, err := NewProfile("mynumber-sfgi", Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok.FieldOn()
	if a := air(tok, nfc.TechB, hx("05 00 08")); len(a) != 12 {
		t.Errorf("PCD without extended ATQB support got % X", a)
	}
	a := air(tok, nfc.TechB, hx("05 00 18"))
	if len(a) != 13 || a[12] != 0x80 {
		t.Errorf("extended ATQB % X, want 13 bytes ending 80 (SFGI 8)", a)
	}
}

func TestPUPIPerPowerUp(t *testing.T) {
	creds := newToken(t, KindMyNumber, Options{}).Credentials()
	taps := func(profile, seed string) [][]byte {
		tok, err := NewProfile(profile, Options{Seed: seed, Credentials: creds})
		if err != nil {
			t.Fatal(err)
		}
		var ids [][]byte
		for range 3 {
			tok.FieldOn()
			ids = append(ids, tok.ID())
			tok.FieldOff()
		}
		return ids
	}
	fixed := taps("mynumber", "s1")
	if !bytes.Equal(fixed[0], fixed[1]) || !bytes.Equal(fixed[1], fixed[2]) {
		t.Errorf("fixed PUPI changed: % X", fixed)
	}
	r1, r2, r3 := taps("mynumber-random-pupi", "s1"), taps("mynumber-random-pupi", "s1"), taps("mynumber-random-pupi", "s2")
	if bytes.Equal(r1[0], r1[1]) || bytes.Equal(r1[1], r1[2]) {
		t.Errorf("random PUPI repeated: % X", r1)
	}
	for i := range r1 {
		if !bytes.Equal(r1[i], r2[i]) {
			t.Errorf("same seed, tap %d: % X vs % X", i, r1[i], r2[i])
		}
	}
	if bytes.Equal(r1[0], r3[0]) {
		t.Error("different seeds gave the same PUPI")
	}
	o := Options{Credentials: creds}
	if err := o.Set("id", "11223344"); err != nil {
		t.Fatal(err)
	}
	tok := newToken(t, KindMyNumber, o)
	tok.FieldOn()
	if !bytes.Equal(tok.ID(), hx("11223344")) {
		t.Errorf("id option: PUPI % X", tok.ID())
	}
}

func TestTypeAActivation(t *testing.T) {
	tok := newToken(t, KindAndroid, Options{})
	tok.FieldOn()
	uid := tok.ID()
	if len(uid) != 4 || uid[0] != 0x08 {
		t.Fatalf("phone UID % X, want 4 random bytes starting 08", uid)
	}
	if air(tok, nfc.TechB, hx("05 00 08")) != nil {
		t.Fatal("a Type A phone answered WUPB")
	}
	if got := airA7(tok, 0x26); !bytes.Equal(got, hx("04 00")) { // REQA → ATQA 0004
		t.Fatalf("ATQA % X", got)
	}
	bcc := uid[0] ^ uid[1] ^ uid[2] ^ uid[3]
	cl := append(append([]byte(nil), uid...), bcc)
	expectAir(t, tok, nfc.TechA, hx("93 20"), cl)
	expectAir(t, tok, nfc.TechA, append([]byte{0x93, 0x30}, uid[0]), cl[1:]) // one byte known
	expectAir(t, tok, nfc.TechA, append(hx("93 70"), cl...), []byte{0x20})   // SAK: ISO 14443-4
	if tok.State() != StateActive {
		t.Fatalf("state %v after SELECT", tok.State())
	}
	// RATS FSDI 8, CID 0 → ATS TL 05, T0 78 (FSCI 8), TA 00, TB 80 (FWI 8), TC 02 (CID).
	expectAir(t, tok, nfc.TechA, hx("E0 80"), hx("05 78 00 80 02"))
	if tok.State() != StateProtocol {
		t.Fatalf("state %v after RATS", tok.State())
	}
	// An I-block without CID (CID 0 assigned): SELECT the JPKI AP.
	expectAir(t, tok, nfc.TechA, append([]byte{0x02}, hx(selJPKI)...), hx("02 90 00"))
	// S(DESELECT) → echo, then HALT: only WUPA wakes it.
	expectAir(t, tok, nfc.TechA, []byte{0xC2}, []byte{0xC2})
	if tok.State() != StateHalt {
		t.Fatalf("state %v after DESELECT", tok.State())
	}
	if airA7(tok, 0x26) != nil {
		t.Fatal("halted PICC answered REQA")
	}
	if got := airA7(tok, 0x52); !bytes.Equal(got, hx("04 00")) {
		t.Fatalf("WUPA in HALT: % X", got)
	}
	// An unexpected frame in READY falls back to HALT (woken from HALT).
	expectAir(t, tok, nfc.TechA, hx("E0 80"), nil)
	if tok.State() != StateHalt {
		t.Fatalf("state %v after an unexpected frame", tok.State())
	}
	// HLTA from ACTIVE.
	airA7(tok, 0x52)
	air(tok, nfc.TechA, append(hx("93 70"), cl...))
	expectAir(t, tok, nfc.TechA, hx("50 00"), nil)
	if tok.State() != StateHalt {
		t.Fatalf("state %v after HLTA", tok.State())
	}
	// A new tap gives a new UID.
	tok.FieldOff()
	tok.FieldOn()
	if bytes.Equal(tok.ID(), uid) {
		t.Error("phone UID repeated on the next tap")
	}
}

func TestTypeACascade(t *testing.T) {
	tok := newToken(t, KindTypeA, Options{})
	tok.FieldOn()
	uid := tok.ID() // 04 52 61 7A 31 6B 80
	if got := airA7(tok, 0x52); !bytes.Equal(got, hx("44 00")) {
		t.Fatalf("ATQA % X, want 44 00 (double-size UID)", got)
	}
	cl1 := []byte{0x88, uid[0], uid[1], uid[2], 0x88 ^ uid[0] ^ uid[1] ^ uid[2]}
	cl2 := []byte{uid[3], uid[4], uid[5], uid[6], uid[3] ^ uid[4] ^ uid[5] ^ uid[6]}
	expectAir(t, tok, nfc.TechA, hx("93 20"), cl1)
	expectAir(t, tok, nfc.TechA, append(hx("93 70"), cl1...), []byte{0x04}) // cascade bit
	expectAir(t, tok, nfc.TechA, hx("95 20"), cl2)
	expectAir(t, tok, nfc.TechA, append(hx("95 70"), cl2...), []byte{0x20})
	expectAir(t, tok, nfc.TechA, hx("E0 50"), hx("08 78 00 70 02 80 31 C0"))
	// SELECT of the JPKI AP → 6A82 (not a JPKI card).
	expectAir(t, tok, nfc.TechA, append([]byte{0x02}, hx(selJPKI)...), hx("02 6A 82"))
}

// link is an nfc.RawTransceiver from isodep's PCD to a token, recording
// the blocks. An answer later than the PCD's timeout is a timeout.
type link struct {
	tok     *Token
	tech    nfc.Tech
	sent    [][]byte
	recv    [][]byte
	elapsed time.Duration
}

func (l *link) TransceiveRaw(_ context.Context, frame []byte, timeout time.Duration) ([]byte, error) {
	l.sent = append(l.sent, append([]byte(nil), frame...))
	r, proc, ok := l.tok.Exchange(rf.Frame{Tech: l.tech, Data: frame})
	if !ok {
		l.elapsed += timeout
		return nil, nfc.Errorf("link", nfc.ErrTimeout, "silence")
	}
	if proc > timeout {
		l.elapsed += timeout
		return nil, nfc.Errorf("link", nfc.ErrTimeout, "answer after %v", proc)
	}
	l.elapsed += proc
	l.recv = append(l.recv, r.Data)
	return r.Data, nil
}

// count returns how many received blocks satisfy f.
func (l *link) count(f func(b []byte) bool) int {
	n := 0
	for _, b := range l.recv {
		if len(b) > 0 && f(b) {
			n++
		}
	}
	return n
}

func isWTX(b []byte) bool     { return b[0]&0xF7 == 0xF2 }
func isChained(b []byte) bool { return b[0]&0xE2 == 0x02 && b[0]&0x10 != 0 }

// activate brings a token to ISO-DEP with FSD 256 and no CID and returns a
// PCD over it.
func activate(t *testing.T, tok *Token) (*isodep.PCD, *link) {
	t.Helper()
	tok.FieldOn()
	p := tok.Profile()
	fsc, fwt := iso14443.FrameSize(p.FSCI), iso14443.FWT(p.FWI)
	var tech nfc.Tech
	if p.Techs[0] == nfc.TechB {
		tech = nfc.TechB
		if air(tok, tech, hx("05 00 08")) == nil {
			t.Fatal("no ATQB")
		}
		if air(tok, tech, append(append([]byte{0x1D}, tok.ID()[:4]...), hx("00 08 01 00")...)) == nil {
			t.Fatal("no answer to ATTRIB")
		}
	} else {
		tech = nfc.TechA
		if airA7(tok, 0x52) == nil {
			t.Fatal("no ATQA")
		}
		for level := 0; tok.State() == StateReady; level++ {
			cl := air(tok, tech, []byte{selCodes[level], 0x20})
			if air(tok, tech, append([]byte{selCodes[level], 0x70}, cl...)) == nil {
				t.Fatal("no SAK")
			}
		}
		if air(tok, tech, hx("E0 80")) == nil {
			t.Fatal("no ATS")
		}
	}
	l := &link{tok: tok, tech: tech}
	return isodep.NewPCD(l, isodep.Params{FSC: fsc, FSD: 256, FWT: fwt, CID: -1}), l
}

func transceive(t *testing.T, pcd *isodep.PCD, apdu []byte) ([]byte, SW) {
	t.Helper()
	resp, err := pcd.Transceive(context.Background(), apdu)
	if err != nil {
		t.Fatalf("% X: %v", apdu[:min(len(apdu), 8)], err)
	}
	if len(resp) < 2 {
		t.Fatalf("response % X too short", resp)
	}
	n := len(resp) - 2
	return resp[:n], SW(resp[n])<<8 | SW(resp[n+1])
}

func TestISODEPChainedCertificateRead(t *testing.T) {
	tok := newToken(t, KindMyNumber, Options{})
	pcd, l := activate(t, tok)
	transceive(t, pcd, hx(selJPKI))
	transceive(t, pcd, hx(selAuth))
	l.recv = nil
	data, sw := transceive(t, pcd, hx("00 B0 00 00 00 07 6C")) // extended Le 1900
	if sw != SWOK || len(data) != 1900 {
		t.Fatalf("%v, %d bytes", sw, len(data))
	}
	if !bytes.Equal(data[:len(tok.Credentials().AuthCert)], tok.Credentials().AuthCert) {
		t.Fatal("certificate corrupted by chaining")
	}
	// 1902 bytes at FSD 256 without CID: 253 per block → 8 blocks, 7 chained.
	if n := l.count(isChained); n != 7 || len(l.recv) != 8 {
		t.Errorf("%d blocks, %d chained; want 8 and 7 (iso14443b.md §5.4)", len(l.recv), n)
	}
}

func TestISODEPWTXDuringSigning(t *testing.T) {
	tests := []struct {
		kind    Kind
		profile string
		minWTX  int
		maxWTX  int
	}{
		{KindMyNumber, "mynumber", 0, 0},             // 301 ms < FWT 309 ms at FWI 10
		{KindMyNumber, "mynumber-slow-sign", 1, 1},   // 1.5 s at 309 ms: one S(WTX), WTXM 4
		{KindMyNumber, "mynumber-d1", 0, 0},          // FWI 13
		{KindAndroid, "android", 1, 1},               // FWI 8 (77 ms): one S(WTX) with WTXM 4
		{KindAndroid, "android-fwi4", 2, 100},        // 4.8 ms, WTX at half of it
		{KindAndroid, "android-wtx-storm", 3, 3},     // storm of 3 before the answer
		{KindIPhoneArmed, "iphone-armed-slow", 1, 1}, // 700 ms at 77 ms
	}
	for _, tc := range tests {
		t.Run(tc.profile, func(t *testing.T) {
			tok := newToken(t, tc.kind, Options{Profile: tc.profile})
			pcd, l := activate(t, tok)
			transceive(t, pcd, hx(selJPKI))
			if tc.kind != KindIPhoneArmed {
				pin := "00 20 00 98 04 31 32 33 34"
				if tc.kind == KindAndroid {
					pin = "00 20 00 98 04 35 36 37 38"
				}
				if _, sw := transceive(t, pcd, hx(pin)); sw != SWOK {
					t.Fatalf("VERIFY: %v", sw)
				}
			}
			hash, di := digestInfo("challenge")
			l.recv, l.elapsed = nil, 0
			sig, sw := transceive(t, pcd, signAPDU(0, 0x97, di))
			if sw != SWOK {
				t.Fatalf("sign: %v", sw)
			}
			if err := rsaVerify(tok, hash, sig); err != nil {
				t.Fatal(err)
			}
			n := l.count(isWTX)
			if n < tc.minWTX || n > tc.maxWTX {
				t.Errorf("%d S(WTX), want %d…%d", n, tc.minWTX, tc.maxWTX)
			}
			want := tok.Profile().Timing.APDU + tok.Profile().Timing.Sign
			if l.elapsed != want {
				t.Errorf("processing time on air %v, want %v", l.elapsed, want)
			}
		})
	}
}

func rsaVerify(tok *Token, hash, sig []byte) error {
	_, di := digestInfo("")
	_ = di
	em := rsaPublic(&tok.Credentials().AuthKey.PublicKey, sig)
	if !bytes.HasSuffix(em, hash) {
		return errors.New("signature does not cover the hash")
	}
	return nil
}

func TestISODEPNoWTXTimesOut(t *testing.T) {
	tok := newToken(t, KindAndroid, Options{Profile: "android-no-wtx"})
	pcd, l := activate(t, tok)
	transceive(t, pcd, hx(selJPKI))
	transceive(t, pcd, hx("00 20 00 98 04 35 36 37 38"))
	_, di := digestInfo("challenge")
	// A PCD without recovery gives up on the late answer.
	strict := isodep.NewPCD(l, isodep.Params{FSC: 256, FWT: iso14443.FWT(8), CID: -1, Retries: -1})
	_, err := strict.Transceive(context.Background(), signAPDU(0, 0x97, di))
	if !errors.Is(err, nfc.ErrTimeout) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if n := l.count(isWTX); n != 0 {
		t.Errorf("%d S(WTX) from a token with WTX disabled", n)
	}
}

func TestISODEPCommandChaining(t *testing.T) {
	tok := newToken(t, KindAndroid, Options{Profile: "android-fsc32"})
	pcd, l := activate(t, tok)
	transceive(t, pcd, hx(selJPKI))
	transceive(t, pcd, hx("00 20 00 98 04 35 36 37 38"))
	l.sent = nil
	hash, di := digestInfo("chained")
	sig, sw := transceive(t, pcd, signAPDU(0, 0x97, di))
	if sw != SWOK || rsaVerify(tok, hash, sig) != nil {
		t.Fatalf("sign over 32-byte frames: %v", sw)
	}
	for _, b := range l.sent {
		if len(b)+2 > 32 {
			t.Fatalf("PCD sent a %d-byte frame to FSC 32", len(b)+2)
		}
	}
	if len(l.sent) < 3 {
		t.Errorf("57-byte APDU in %d blocks at FSC 32", len(l.sent))
	}
}

func TestRFDrop(t *testing.T) {
	tok := newToken(t, KindAndroid, Options{Profile: "android-dropper"}) // drops at APDU 6 of tap 1
	pcd, _ := activate(t, tok)
	for i := 1; i <= 5; i++ {
		transceive(t, pcd, hx(selJPKI))
	}
	if _, err := pcd.Transceive(context.Background(), hx(selJPKI)); err == nil {
		t.Fatal("6th APDU answered")
	}
	if tok.State() != StateDropped {
		t.Fatalf("state %v", tok.State())
	}
	if air(tok, nfc.TechA, []byte{0x52}) != nil || airA7(tok, 0x52) != nil {
		t.Fatal("a dropped token answered")
	}
	tok.FieldOff()
	pcd, _ = activate(t, tok) // second tap
	for i := 1; i <= 10; i++ {
		if _, sw := transceive(t, pcd, hx(selJPKI)); sw != SWOK {
			t.Fatalf("tap 2 APDU %d: %v", i, sw)
		}
	}
	if tok.Taps() != 2 {
		t.Errorf("Taps = %d", tok.Taps())
	}
}

// TestConcurrentControls drives a token through a field while a scenario
// goroutine taps it in and out and turns its knobs (run with -race).
func TestConcurrentControls(t *testing.T) {
	tok := newToken(t, KindIPhone, Options{})
	var field rf.Field
	field.SetOn(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			switch i % 4 {
			case 0:
				field.Add(tok)
			case 1:
				tok.Arm()
				_ = tok.SetTries(AuthPIN, 2)
			case 2:
				_, _ = tok.Tries(AuthPIN)
				_, _, _ = tok.State(), tok.ID(), tok.Armed()
			case 3:
				field.Remove(tok)
			}
		}
	}()
	for i := range 400 {
		switch i % 3 {
		case 0:
			field.Exchange(rf.Frame{Tech: nfc.TechA, Data: []byte{0x52}, Bits: 7})
		case 1:
			field.Exchange(rf.Frame{Tech: nfc.TechA, Data: hx("93 20")})
		case 2:
			tok.Applet().Process(hx(selJPKI))
		}
	}
	<-done
}

// TestDeselectKeepsSecurityState: S(DESELECT) halts the PICC but the card
// keeps power, so a VERIFY survives re-activation (jpki.md §1: it is
// cleared by leaving the field or selecting another application).
func TestDeselectKeepsSecurityState(t *testing.T) {
	tok := newToken(t, KindMyNumber, Options{})
	tok.FieldOn()
	pupi := tok.ID()
	air(tok, nfc.TechB, hx("05 00 08"))
	expectAir(t, tok, nfc.TechB, append(append([]byte{0x1D}, pupi...), hx("00 08 01 01")...), []byte{0x01})
	// I-blocks with CID 1 (PCB 0A), block numbers alternating.
	expectAir(t, tok, nfc.TechB, append([]byte{0x0A, 0x01}, hx(selJPKI)...), hx("0A 01 90 00"))
	expectAir(t, tok, nfc.TechB, append([]byte{0x0B, 0x01}, hx("00 20 00 98 04 31 32 33 34")...), hx("0B 01 90 00"))
	// Presence check: R(NAK) with the other block number → R(ACK).
	expectAir(t, tok, nfc.TechB, hx("BA 01"), hx("AB 01"))
	expectAir(t, tok, nfc.TechB, hx("CA 01"), hx("CA 01")) // S(DESELECT) echoed with CID
	if tok.State() != StateHalt {
		t.Fatalf("state %v after DESELECT", tok.State())
	}
	expectAir(t, tok, nfc.TechB, hx("0A 01 00 A4 04 0C"), nil) // deselected: silent
	air(tok, nfc.TechB, hx("05 00 08"))
	air(tok, nfc.TechB, append(append([]byte{0x1D}, pupi...), hx("00 08 01 00")...))
	_, di := digestInfo("after deselect")
	// 258 response bytes at FSD 256: a chained I-block (12), R(ACK) 1, the rest (03).
	first := air(tok, nfc.TechB, append([]byte{0x02}, signAPDU(0, 0x97, di)...))
	if len(first) != 256-2 || first[0] != 0x12 {
		t.Fatalf("first block % X…", first[:min(len(first), 4)])
	}
	rest := air(tok, nfc.TechB, hx("A3"))
	if len(rest) != 1+258-253 || rest[0] != 0x03 || !bytes.Equal(rest[len(rest)-2:], hx("90 00")) {
		t.Fatalf("sign after re-activation: last block % X", rest)
	}
}

// pcscATR builds the ATR a PC/SC contactless reader synthesises for a
// Type B card (PC/SC part 3, jpki.md §1): 3B 88 80 01, application data,
// protocol info (3 bytes), MBLI from the ATTRIB answer, TCK (XOR of T0…).
func pcscATR(atqb, attribRes []byte) []byte {
	atr := append(hx("3B 88 80 01"), atqb[5:12]...)
	atr = append(atr, attribRes[0]>>4)
	tck := byte(0)
	for _, b := range atr[1:] {
		tck ^= b
	}
	return append(atr, tck)
}

func TestATQBMatchesRealCards(t *testing.T) {
	tests := []struct {
		profile string
		atr     string // as listed by pcsc-tools (jpki.md §1)
	}{
		{"mynumber", "3B 88 80 01 00 00 05 E0 B3 81 A1 00 7F"},
		{"mynumber-41e0", "3B 88 80 01 00 00 41 E0 B3 81 A1 00 3B"},
		{"mynumber-d1", "3B 88 80 01 00 4B 51 FF B3 81 D1 00 0F"},
		{"juki", "3B 88 80 01 00 00 14 E0 B3 81 91 00 5E"},
	}
	for _, tc := range tests {
		tok, err := NewProfile(tc.profile, Options{})
		if err != nil {
			t.Fatal(err)
		}
		tok.FieldOn()
		atqb := air(tok, nfc.TechB, hx("05 00 08"))
		res := air(tok, nfc.TechB, append(append([]byte{0x1D}, tok.ID()...), hx("00 08 01 00")...))
		if got := pcscATR(atqb, res); !bytes.Equal(got, hx(tc.atr)) {
			t.Errorf("%s: ATR % X, want %s", tc.profile, got, tc.atr)
		}
	}
}

func TestProtocolParameters(t *testing.T) {
	tests := []struct {
		profile string
		want    string // ATQB bytes 5… (app data, protocol info) or the ATS
	}{
		{"mynumber-fsc48", "00 00 05 E0 B3 41 A1"},
		{"mynumber-no-cid", "00 00 05 E0 B3 81 A0"},
		{"nonjpki", "00 00 00 00 00 81 81"},
		{"android-typeb", "00 00 00 00 00 81 81"},
		{"android", "05 78 00 80 02"},
		{"android-no-cid", "05 78 00 80 00"},
		{"android-fsc32", "05 72 00 80 02"},
		{"android-fwi4", "05 78 00 40 02"},
		{"iphone", "05 78 00 80 02"},
		{"iphone-armed-short", "05 77 00 80 02"},
		{"typea", "08 78 00 70 02 80 31 C0"},
	}
	for _, tc := range tests {
		tok, err := NewProfile(tc.profile, Options{})
		if err != nil {
			t.Fatal(err)
		}
		tok.FieldOn()
		var got []byte
		if tok.Techs()[0] == nfc.TechB {
			got = air(tok, nfc.TechB, hx("05 00 08"))[5:]
		} else {
			airA7(tok, 0x52)
			for level := 0; tok.State() == StateReady; level++ {
				cl := air(tok, nfc.TechA, []byte{selCodes[level], 0x20})
				air(tok, nfc.TechA, append([]byte{selCodes[level], 0x70}, cl...))
			}
			got = air(tok, nfc.TechA, hx("E0 80"))
		}
		if !bytes.Equal(got, hx(tc.want)) {
			t.Errorf("%s: % X, want %s", tc.profile, got, tc.want)
		}
	}
}

func TestPPS(t *testing.T) {
	creds := newToken(t, KindAndroid, Options{}).Credentials()
	p, _ := DefaultProfile(KindAndroid)
	p.TA = 0xA2 // same rate both ways; 424 kbit/s offered (DS 4, DR 4)
	tok := newToken(t, KindAndroid, Options{Custom: &p, Credentials: creds})
	toATS := func() {
		t.Helper()
		tok.FieldOff()
		tok.FieldOn()
		airA7(tok, 0x52)
		cl := air(tok, nfc.TechA, hx("93 20"))
		air(tok, nfc.TechA, append(hx("93 70"), cl...))
		if ats := air(tok, nfc.TechA, hx("E0 81")); !bytes.Equal(ats, hx("05 78 A2 80 02")) { // CID 1
			t.Fatalf("ATS % X", ats)
		}
	}
	tests := []struct {
		name string
		pps  string
		want []byte
	}{
		{"424 both ways", "D1 11 0A", hx("D1")},
		{"no PPS1", "D1 01", hx("D1")},
		{"106 both ways", "D1 11 00", hx("D1")},
		{"212 not offered", "D1 11 05", nil},
		{"asymmetric", "D1 11 08", nil},
		{"other CID", "D2 11 0A", nil},
		{"RFU bits", "D1 11 4A", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			toATS()
			expectAir(t, tok, nfc.TechA, hx(tc.pps), tc.want)
		})
	}
	// Only as the first frame after the ATS.
	toATS()
	expectAir(t, tok, nfc.TechA, append([]byte{0x0A, 0x01}, hx(selJPKI)...), hx("0A 01 90 00"))
	expectAir(t, tok, nfc.TechA, hx("D1 11 0A"), nil)
}
