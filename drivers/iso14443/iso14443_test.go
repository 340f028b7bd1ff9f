package iso14443

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"kazasu/drivers/nfc"
	"kazasu/drivers/nfc/nfctest"
)

func TestCRC(t *testing.T) {
	// CRC_B vectors from iso14443b.md §1 (WUPB, REQB, HLTB answer, PM3's
	// ATQB, and the Annex B examples); CRC_A from ISO/IEC 14443-3 Annex A
	// (00 00 → A0 1E, 12 34 → 26 CF) and the fixed HLTA and RATS frames.
	tests := []struct {
		b    bool
		in   string
		want string
	}{
		{true, "05 00 08", "39 73"},
		{true, "05 00 00", "71 FF"},
		{true, "00", "78 F0"},
		{true, "50 82 0D E1 74 20 38 19 22 00 21 85", "5E D7"},
		{true, "00 00 00", "CC C6"},
		{true, "0F AA FF", "FC D1"},
		{true, "0A 12 34 56", "2C F6"},
		{false, "00 00", "A0 1E"},
		{false, "12 34", "26 CF"},
		{false, "50 00", "57 CD"},
		{false, "E0 80", "31 73"},
	}
	for _, tt := range tests {
		in := nfctest.Hex(t, tt.in)
		var got []byte
		var body []byte
		var ok bool
		if tt.b {
			got = AppendCRCB(append([]byte(nil), in...))
			body, ok = CheckCRCB(got)
		} else {
			got = AppendCRCA(append([]byte(nil), in...))
			body, ok = CheckCRCA(got)
		}
		if want := nfctest.Hex(t, tt.in+tt.want); !bytes.Equal(got, want) {
			t.Errorf("CRC(B=%v) of %s = % X, want %s", tt.b, tt.in, got[len(in):], tt.want)
		}
		if !ok || !bytes.Equal(body, in) {
			t.Errorf("Check(B=%v) of %s failed", tt.b, tt.in)
		}
		got[len(got)-1] ^= 1
		if tt.b {
			_, ok = CheckCRCB(got)
		} else {
			_, ok = CheckCRCA(got)
		}
		if ok {
			t.Errorf("corrupted CRC of %s accepted", tt.in)
		}
	}
	if _, ok := CheckCRCB([]byte{0x78}); ok {
		t.Error("one-byte frame passed CheckCRCB")
	}
}

func TestTables(t *testing.T) {
	sizes := map[byte]int{0: 16, 1: 24, 2: 32, 3: 40, 4: 48, 5: 64, 6: 96, 7: 128, 8: 256, 9: 512, 0xA: 1024, 0xB: 2048, 0xC: 4096, 0xD: 256, 0xF: 256}
	for code, want := range sizes {
		if got := FrameSize(code); got != want {
			t.Errorf("FrameSize(%X) = %d, want %d", code, got, want)
		}
	}
	for n, want := range map[int]byte{0: 0, 16: 0, 63: 4, 64: 5, 256: 8, 300: 8, 5000: 0xC} {
		if got := FrameSizeCode(n); got != want {
			t.Errorf("FrameSizeCode(%d) = %X, want %X", n, got, want)
		}
	}
	// iso14443b.md §3.2 (ms, rounded as there).
	fwt := []string{"302µs", "604µs", "1.208ms", "2.417ms", "4.833ms", "9.666ms", "19.332ms", "38.664ms", "77.329ms", "154.657ms", "309.314ms", "618.629ms", "1.237258s", "2.474516s", "4.949031s", "4.833ms"}
	for fwi, want := range fwt {
		if got := FWT(byte(fwi)).Round(time.Microsecond).String(); got != want {
			t.Errorf("FWT(%d) = %s, want %s", fwi, got, want)
		}
	}
	if SFGT(0) != 0 || SFGT(15) != 0 || SFGT(1) != FWT(1) {
		t.Errorf("SFGT: 0 → %v, 15 → %v, 1 → %v", SFGT(0), SFGT(15), SFGT(1))
	}
	for d, want := range map[time.Duration]byte{0: 0, 5 * time.Millisecond: 5, 309 * time.Millisecond: 10, time.Minute: 14} {
		if got := FWIFor(d); got != want {
			t.Errorf("FWIFor(%v) = %d, want %d", d, got, want)
		}
	}
	if ETU106.Round(10*time.Nanosecond) != 9440*time.Nanosecond {
		t.Errorf("ETU106 = %v", ETU106)
	}
	if BitRate424.String() != "424 kbit/s" {
		t.Error(BitRate424.String())
	}
}

func TestATQB(t *testing.T) {
	// My Number Card protocol info (pcsc-tools ATRs, iso14443b.md §2.3),
	// PM3's simulated ATQB, and RFU values clamped.
	tests := []struct {
		in    string
		want  string
		notes int
	}{
		{"50 11 22 33 44 00 00 05 E0 B3 81 A1", "PUPI 11223344 app 000005E0 FSC 256 FWT 309.3145ms ISO-DEP rates 106,212,424/106,212,424 same CID", 0},
		{"50 01 02 03 04 00 4B 51 FF B3 81 D1", "PUPI 01020304 app 004B51FF FSC 256 FWT 2.4745156s ISO-DEP rates 106,212,424/106,212,424 same CID", 0},
		{"50 82 0D E1 74 20 38 19 22 00 21 85", "PUPI 820DE174 app 20381922 FSC 32 FWT 77.3286ms ISO-DEP rates 106/106 ADC 1 CID", 0},
		{"50 AA BB CC DD 00 00 00 00 00 80 40", "PUPI AABBCCDD app 00000000 FSC 256 FWT 4.833ms not-ISO-DEP rates 106/106", 0},
		{"50 AA BB CC DD 00 00 00 00 FF D7 F3", "PUPI AABBCCDD app 00000000 FSC 256 FWT 4.833ms ISO-DEP TR2 3 rates 106/106 CID NAD", 3},
		{"50 AA BB CC DD 00 00 00 00 77 C1 83 60", "PUPI AABBCCDD app 00000000 FSC 4096 FWT 77.3286ms ISO-DEP rates 106,212,424,848/106,212,424,848 CID NAD SFGT 19.3322ms", 0},
		{"50 AA BB CC DD 00 00 00 00 00 91 81 F0", "PUPI AABBCCDD app 00000000 FSC 512 FWT 77.3286ms ISO-DEP rates 106/106 CID SFGT 0s", 1},
	}
	for _, tt := range tests {
		in := nfctest.Hex(t, tt.in)
		a, err := ParseATQB(in)
		if err != nil {
			t.Errorf("ParseATQB(%s): %v", tt.in, err)
			continue
		}
		if got := a.String(); got != tt.want {
			t.Errorf("ParseATQB(%s)\n got %s\nwant %s", tt.in, got, tt.want)
		}
		if n := len(a.Notes()); n != tt.notes {
			t.Errorf("ParseATQB(%s).Notes() = %q, want %d notes", tt.in, a.Notes(), tt.notes)
		}
		if !bytes.Equal(a.Bytes(), in) {
			t.Errorf("ATQB round trip % X → % X", in, a.Bytes())
		}
	}
	for code, want := range []string{"132µs", "245µs", "396µs", "699µs"} {
		a := ATQB{ProtocolType: byte(code<<1 | 1)}
		if got := a.MinTR2().Round(time.Microsecond).String(); got != want {
			t.Errorf("MinTR2 code %d = %s, want %s", code, got, want)
		}
	}
	for _, bad := range []string{"", "50", "51 11 22 33 44 00 00 05 E0 B3 81 A1", "50 11 22 33 44 00 00 05 E0 B3 81", "50 11 22 33 44 00 00 05 E0 B3 81 A1 00 00"} {
		if _, err := ParseATQB(nfctest.Hex(t, bad)); !errors.Is(err, ErrFrame) {
			t.Errorf("ParseATQB(%s) error = %v, want ErrFrame", bad, err)
		}
	}
}

func TestReqB(t *testing.T) {
	tests := []struct {
		r    ReqB
		want string
		str  string
	}{
		{ReqB{Slots: 1, WakeUp: true}, "05 00 08", "WUPB AFI 00 N 1"},
		{ReqB{Slots: 1}, "05 00 00", "REQB AFI 00 N 1"},
		{ReqB{AFI: 0x10, Slots: 16, Extended: true}, "05 10 14", "REQB AFI 10 N 16 ext"},
		{ReqB{Slots: 4, WakeUp: true}, "05 00 0A", "WUPB AFI 00 N 4"},
	}
	for _, tt := range tests {
		got := tt.r.Bytes()
		if !bytes.Equal(got, nfctest.Hex(t, tt.want)) {
			t.Errorf("%v.Bytes() = % X, want %s", tt.r, got, tt.want)
		}
		back, err := ParseReqB(got)
		if err != nil || back != tt.r || back.String() != tt.str {
			t.Errorf("ParseReqB(% X) = %v, %v; want %s", got, back, err, tt.str)
		}
	}
	if r, err := ParseReqB(nfctest.Hex(t, "05 00 0F")); err != nil || r.Slots != 1 {
		t.Errorf("RFU N code: %v, %v", r, err)
	}
	for _, bad := range []string{"", "05 00", "06 00 08", "05 00 08 00"} {
		if _, err := ParseReqB(nfctest.Hex(t, bad)); !errors.Is(err, ErrFrame) {
			t.Errorf("ParseReqB(%s): %v", bad, err)
		}
	}
	for n, want := range map[int]string{2: "15", 16: "F5"} {
		b, err := SlotMarker(n)
		if err != nil || !bytes.Equal(b, nfctest.Hex(t, want)) {
			t.Errorf("SlotMarker(%d) = % X, %v", n, b, err)
		}
		if m, err := ParseSlotMarker(b); err != nil || m != n {
			t.Errorf("ParseSlotMarker(% X) = %d, %v", b, m, err)
		}
	}
	if _, err := SlotMarker(1); err == nil {
		t.Error("SlotMarker(1) accepted")
	}
	for _, bad := range []string{"05", "16", "", "15 00"} {
		if _, err := ParseSlotMarker(nfctest.Hex(t, bad)); err == nil {
			t.Errorf("ParseSlotMarker(%s) accepted", bad)
		}
	}
}

func TestAttrib(t *testing.T) {
	a := Attrib{PUPI: [4]byte{1, 2, 3, 4}, FSDI: 8, ProtocolType: 1}
	// nfcpy's ATTRIB: 1D PUPI 00 08 01 00 (FSD 256, no CID).
	if got := a.Bytes(); !bytes.Equal(got, nfctest.Hex(t, "1D 01 02 03 04 00 08 01 00")) {
		t.Errorf("ATTRIB = % X", got)
	}
	b, err := ParseAttrib(nfctest.Hex(t, "1D 01 02 03 04 00 B5 01 03 AA BB"))
	if err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != "ATTRIB PUPI 01020304 FSD 64 424/848 CID 3" || !bytes.Equal(b.INF, nfctest.Hex(t, "AA BB")) {
		t.Errorf("ParseAttrib = %s INF % X", got, b.INF)
	}
	for _, bad := range []string{"1D 01 02 03 04 00 08 01", "1E 01 02 03 04 00 08 01 00", "1D 01 02 03 04 00 08 01 0F"} {
		if _, err := ParseAttrib(nfctest.Hex(t, bad)); !errors.Is(err, ErrFrame) {
			t.Errorf("ParseAttrib(%s): %v", bad, err)
		}
	}
	r, err := ParseAttribResp(nfctest.Hex(t, "31 99"))
	if err != nil || r.MBLI != 3 || r.CID != 1 || r.MBL(256) != 1024 || !bytes.Equal(r.Bytes(), nfctest.Hex(t, "31 99")) {
		t.Errorf("ParseAttribResp = %+v, %v", r, err)
	}
	if r := (AttribResp{}); r.MBL(256) != 0 {
		t.Error("MBLI 0 must give MBL 0")
	}
	if _, err := ParseAttribResp(nil); err == nil {
		t.Error("empty answer to ATTRIB accepted")
	}
	h := HLTB([4]byte{1, 2, 3, 4})
	if p, err := ParseHLTB(h); err != nil || p != [4]byte{1, 2, 3, 4} || !bytes.Equal(h, nfctest.Hex(t, "50 01 02 03 04")) {
		t.Errorf("HLTB round trip: % X %v %v", h, p, err)
	}
	if _, err := ParseHLTB(nfctest.Hex(t, "50 01 02 03")); err == nil {
		t.Error("short HLTB accepted")
	}
}

func TestTypeA(t *testing.T) {
	for _, tt := range []struct {
		atqa string
		size int
	}{{"04 00", 4}, {"44 00", 7}, {"84 00", 10}, {"C4 00", 0}} {
		a, err := ParseATQA(nfctest.Hex(t, tt.atqa))
		if err != nil || a.UIDSize() != tt.size || !a.Anticollision() {
			t.Errorf("ATQA %s: %v size %d, %v", tt.atqa, a, a.UIDSize(), err)
		}
	}
	if _, err := ParseATQA(nfctest.Hex(t, "04")); err == nil {
		t.Error("1-byte ATQA accepted")
	}
	// UID cascade (ISO/IEC 14443-3 §6.5.4): SELECT frames per level.
	tests := []struct {
		uid  string
		sels []string
	}{
		{"01 02 03 04", []string{"93 70 01 02 03 04 04"}},
		{"04 11 22 33 44 55 66", []string{"93 70 88 04 11 22 BF", "95 70 33 44 55 66 44"}},
		{"04 11 22 33 44 55 66 77 88 99", []string{"93 70 88 04 11 22 BF", "95 70 88 33 44 55 AA", "97 70 66 77 88 99 00"}},
	}
	for _, tt := range tests {
		levels, err := CascadeLevels(nfctest.Hex(t, tt.uid))
		if err != nil || len(levels) != len(tt.sels) {
			t.Fatalf("CascadeLevels(%s) = %v, %v", tt.uid, levels, err)
		}
		for i, cln := range levels {
			sel, err := SelectCmd(i+1, cln)
			if err != nil || !bytes.Equal(sel, nfctest.Hex(t, tt.sels[i])) {
				t.Errorf("SelectCmd(%d) = % X, want %s", i+1, sel, tt.sels[i])
			}
			level, isSel, back, err := ParseSelectFrame(sel)
			if err != nil || level != i+1 || !isSel || back != cln {
				t.Errorf("ParseSelectFrame(% X) = %d %v %X %v", sel, level, isSel, back, err)
			}
			ac, _ := AnticollisionCmd(i + 1)
			if level, isSel, _, err := ParseSelectFrame(ac); err != nil || level != i+1 || isSel {
				t.Errorf("ParseSelectFrame(% X) = %d %v %v", ac, level, isSel, err)
			}
			got, err := ParseAnticollisionResp(AnticollisionResp(cln))
			if err != nil || got != cln {
				t.Errorf("anticollision answer round trip: %X %v", got, err)
			}
		}
		uid, err := UIDFromLevels(levels)
		if err != nil || !bytes.Equal(uid, nfctest.Hex(t, tt.uid)) {
			t.Errorf("UIDFromLevels = % X, %v", uid, err)
		}
	}
	for _, bad := range []string{"01 02 03", "88 02 03 04"} {
		if _, err := CascadeLevels(nfctest.Hex(t, bad)); err == nil {
			t.Errorf("CascadeLevels(%s) accepted", bad)
		}
	}
	if _, err := UIDFromLevels([][4]byte{{1, 2, 3, 4}, {5, 6, 7, 8}}); err == nil {
		t.Error("level without cascade tag accepted")
	}
	if _, err := ParseAnticollisionResp(nfctest.Hex(t, "01 02 03 04 05")); !errors.Is(err, ErrFrame) {
		t.Error("bad BCC accepted")
	}
	for _, bad := range []string{"93", "92 20", "93 21", "93 70 01 02 03 04"} {
		if _, _, _, err := ParseSelectFrame(nfctest.Hex(t, bad)); err == nil {
			t.Errorf("ParseSelectFrame(%s) accepted", bad)
		}
	}
	if _, err := SelectCmd(4, [4]byte{}); err == nil {
		t.Error("cascade level 4 accepted")
	}
	for s, want := range map[SAK]string{0x04: "SAK 04 (UID not complete)", 0x20: "SAK 20 (ISO-DEP)", 0x08: "SAK 08 (not ISO-DEP)", 0x28: "SAK 28 (ISO-DEP)"} {
		if s.String() != want {
			t.Errorf("%02X: %s", byte(s), s)
		}
	}
	if !bytes.Equal(HLTA(), nfctest.Hex(t, "50 00")) {
		t.Error("HLTA")
	}
}

func TestRATSATS(t *testing.T) {
	r := RATS{FSDI: 8, CID: 0}
	if !bytes.Equal(r.Bytes(), nfctest.Hex(t, "E0 80")) || r.FSD() != 256 {
		t.Errorf("RATS = % X", r.Bytes())
	}
	if back, err := ParseRATS(nfctest.Hex(t, "E0 51")); err != nil || back.FSDI != 5 || back.CID != 1 {
		t.Errorf("ParseRATS = %+v, %v", back, err)
	}
	for _, bad := range []string{"E0", "E1 80", "E0 8F"} {
		if _, err := ParseRATS(nfctest.Hex(t, bad)); err == nil {
			t.Errorf("ParseRATS(%s) accepted", bad)
		}
	}
	tests := []struct {
		in    string
		want  string
		notes int
	}{
		// A JCOP-style ATS: FSC 256, TA1 77 (all rates), TB1 81 (FWI 8, SFGI 1), TC1 02.
		{"0C 78 77 81 02 80 73 C0 21 C0 57 59", "FSC 256 FWT 77.3286ms SFGT 604.1µs TA1 77 CID hist 80 73 C0 21 C0 57 59", 0},
		// An Android HCE ATS: FSC 256, FWI 7, CID, no historical bytes.
		{"05 78 80 70 02", "FSC 256 FWT 38.6643ms CID", 0},
		// TL only: defaults (FSC 32, FWI 4, CID supported).
		{"01", "FSC 32 FWT 4.833ms CID", 0},
		{"03 2F FF", "FSC 256 FWT 4.833ms CID", 3},
	}
	for _, tt := range tests {
		a, err := ParseATS(nfctest.Hex(t, tt.in))
		if err != nil {
			t.Errorf("ParseATS(%s): %v", tt.in, err)
			continue
		}
		if got := a.String(); got != tt.want {
			t.Errorf("ParseATS(%s)\n got %s\nwant %s", tt.in, got, tt.want)
		}
		if len(a.Notes()) != tt.notes {
			t.Errorf("ParseATS(%s).Notes() = %q", tt.in, a.Notes())
		}
		if tt.in != "01" && !bytes.Equal(a.Bytes(), nfctest.Hex(t, tt.in)) {
			t.Errorf("ATS round trip %s → % X", tt.in, a.Bytes())
		}
	}
	for _, bad := range []string{"", "02", "03 78 77", "02 80", "05 78 80 70"} {
		if _, err := ParseATS(nfctest.Hex(t, bad)); !errors.Is(err, ErrFrame) {
			t.Errorf("ParseATS(%s) = %v, want ErrFrame", bad, err)
		}
	}
}

func TestActivateB(t *testing.T) {
	myNumber := "50 11 22 33 44 00 00 05 E0 B3 81 A1"
	tests := []struct {
		name  string
		cid   int
		steps []nfctest.Step
		want  string
		kind  error
	}{
		{"My Number Card, FSD 256, no CID", -1, []nfctest.Step{
			{Out: "05 00 08", In: myNumber, Timeout: ATQBTimeout},
			{Out: "1D 11 22 33 44 00 08 01 00", In: "00", Timeout: FWT(10) + DeltaFWT},
		}, "B PUPI 11223344 FSC 256 FSD 256 FWT 309.314ms 106/106 kbps ISO-DEP host", nil},
		{"CID 1 asked and supported", 1, []nfctest.Step{
			{Out: "05 00 08", In: myNumber},
			{Out: "1D 11 22 33 44 00 08 01 01", In: "71"},
		}, "B PUPI 11223344 FSC 256 FSD 256 FWT 309.314ms CID 1 106/106 kbps ISO-DEP host", nil},
		{"CID asked, not supported", 2, []nfctest.Step{
			{Out: "05 00 08", In: "50 11 22 33 44 00 00 00 00 00 71 40"},
			{Out: "1D 11 22 33 44 00 08 01 00", In: "00", Timeout: FWT(4) + DeltaFWT},
		}, "B PUPI 11223344 FSC 128 FSD 256 FWT 4.833ms 106/106 kbps ISO-DEP host", nil},
		{"extended ATQB: activation FWT for the ATTRIB answer", -1, []nfctest.Step{
			{Out: "05 00 08", In: "50 11 22 33 44 00 00 00 00 00 81 A1 10"},
			{Out: "1D 11 22 33 44 00 08 01 00", In: "00", Timeout: FWTActivation + DeltaFWT},
		}, "B PUPI 11223344 FSC 256 FSD 256 FWT 309.314ms 106/106 kbps ISO-DEP host", nil},
		{"no card", -1, []nfctest.Step{{Out: "05 00 08", In: ""}}, "", nfc.ErrNoTarget},
		{"collision → 16 slots, first clean ATQB activated", -1, []nfctest.Step{
			{Out: "05 00 08", In: "!"},
			{Out: "05 00 0C", In: ""},
			{Out: "15", In: "!"},
			{Out: "25", In: myNumber, Timeout: ATQBTimeout},
			{Out: "1D 11 22 33 44 00 08 01 00", In: "00"},
		}, "B PUPI 11223344 FSC 256 FSD 256 FWT 309.314ms 106/106 kbps ISO-DEP host", nil},
		{"collision in every slot", -1, collideAll(), "", nfc.ErrTransmission},
		{"not ISO-DEP", -1, []nfctest.Step{{Out: "05 00 08", In: "50 11 22 33 44 00 00 00 00 00 80 A1"}}, "", nfc.ErrNotSupported},
		{"garbled ATQB", -1, []nfctest.Step{{Out: "05 00 08", In: "50 11 22"}}, "", nfc.ErrProtocol},
		{"ATTRIB unanswered", -1, []nfctest.Step{{Out: "05 00 08", In: myNumber}, {Out: "1D 11 22 33 44 00 08 01 00", In: ""}}, "", nfc.ErrTimeout},
		{"wrong CID echoed", 1, []nfctest.Step{{Out: "05 00 08", In: myNumber}, {Out: "1D 11 22 33 44 00 08 01 01", In: "02"}}, "", nfc.ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &nfctest.Script{T: t, Steps: tt.steps}
			target, err := ActivateB(context.Background(), s, 0, DefaultFSDI, tt.cid)
			s.Done()
			if tt.kind != nil {
				if !errors.Is(err, tt.kind) {
					t.Fatalf("error %v, want kind %v", err, tt.kind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := target.String(); got != tt.want {
				t.Errorf("target\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// collideAll scripts a single-slot collision followed by CollisionRounds
// rounds in which every slot collides.
func collideAll() []nfctest.Step {
	steps := []nfctest.Step{{Out: "05 00 08", In: "!"}}
	for range CollisionRounds {
		steps = append(steps, nfctest.Step{Out: "05 00 0C", In: "!"})
		for n := 2; n <= SlotsOnCollision; n++ {
			m, _ := SlotMarker(n)
			steps = append(steps, nfctest.Step{Out: fmt.Sprintf("%02X", m[0]), In: "!"})
		}
	}
	return steps
}

func TestActivateA(t *testing.T) {
	s := &nfctest.Script{T: t, Steps: []nfctest.Step{{Out: "E0 80", In: "05 78 80 70 02", Timeout: FWTActivation + DeltaFWT}}}
	target, err := ActivateA(context.Background(), s, DefaultFSDI, -1)
	s.Done()
	if err != nil {
		t.Fatal(err)
	}
	target.ID = nfctest.Hex(t, "08 01 02 03")
	if got, want := target.String(), "A UID 08010203 FSC 256 FSD 256 FWT 38.664ms 106/106 kbps ISO-DEP host"; got != want {
		t.Errorf("target\n got %s\nwant %s", got, want)
	}
	s = &nfctest.Script{T: t, Steps: []nfctest.Step{{Out: "E0 81", In: "05 78 80 70 02"}}}
	if target, err = ActivateA(context.Background(), s, DefaultFSDI, 1); err != nil || target.CID != 1 {
		t.Errorf("CID 1: %v %v", target, err)
	}
	s = &nfctest.Script{T: t, Steps: []nfctest.Step{{Out: "E0 81", In: "05 78 80 70 00"}}}
	if target, err = ActivateA(context.Background(), s, DefaultFSDI, 1); err != nil || target.CID != -1 {
		t.Errorf("CID not supported: %v %v", target, err)
	}
	s = &nfctest.Script{T: t, Steps: []nfctest.Step{{Out: "E0 80", In: ""}}}
	if _, err = ActivateA(context.Background(), s, DefaultFSDI, -1); !errors.Is(err, nfc.ErrTimeout) {
		t.Errorf("no ATS: %v", err)
	}
	s = &nfctest.Script{T: t, Steps: []nfctest.Step{{Out: "E0 80", In: "06 78"}}}
	if _, err = ActivateA(context.Background(), s, DefaultFSDI, -1); !errors.Is(err, nfc.ErrProtocol) {
		t.Errorf("bad ATS: %v", err)
	}
}

func FuzzParseATQB(f *testing.F) {
	f.Add(nfctest.Hex(f, "50 11 22 33 44 00 00 05 E0 B3 81 A1"))
	f.Add(nfctest.Hex(f, "50 AA BB CC DD 00 00 00 00 77 C1 83 60"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseATQB(b)
		if err != nil {
			return
		}
		_ = a.String() + fmt.Sprint(a.Notes())
		if a.FSC() < 16 || a.FSC() > 4096 || a.FWT() > 5*time.Second {
			t.Fatalf("out-of-range values from % X: %v", b, a)
		}
		if !bytes.Equal(a.Bytes(), b) {
			t.Fatalf("round trip % X → % X", b, a.Bytes())
		}
	})
}

func FuzzParseATS(f *testing.F) {
	f.Add(nfctest.Hex(f, "0C 78 77 81 02 80 73 C0 21 C0 57 59"))
	f.Add(nfctest.Hex(f, "01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseATS(b)
		if err != nil {
			return
		}
		_ = a.String()
		if len(b) > 1 && !bytes.Equal(a.Bytes(), b) {
			t.Fatalf("round trip % X → % X", b, a.Bytes())
		}
	})
}

// FuzzTypeBFrames covers the PICC-side parsers of PCD commands.
func FuzzTypeBFrames(f *testing.F) {
	for _, s := range []string{"05 00 08", "1D 01 02 03 04 00 08 01 00", "50 01 02 03 04", "15", "E0 80", "93 70 01 02 03 04 04", "93 20", "31 99"} {
		f.Add(nfctest.Hex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := ParseReqB(b); err == nil && !bytes.Equal(r.Bytes()[:2], b[:2]) {
			t.Fatalf("REQB round trip % X", b)
		}
		if a, err := ParseAttrib(b); err == nil {
			if len(a.Bytes()) != len(b) {
				t.Fatalf("ATTRIB round trip % X → % X", b, a.Bytes())
			}
		}
		ParseHLTB(b)
		ParseSlotMarker(b)
		ParseAttribResp(b)
		ParseRATS(b)
		ParseATQA(b)
		ParseSelectFrame(b)
		ParseAnticollisionResp(b)
		if len(b) <= 10 {
			if levels, err := CascadeLevels(b); err == nil {
				if uid, err := UIDFromLevels(levels); err != nil || !bytes.Equal(uid, b) {
					t.Fatalf("UID round trip % X → % X, %v", b, uid, err)
				}
			}
		}
	})
}

func BenchmarkCRCB(b *testing.B) {
	frame := make([]byte, 256)
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		CRCB(frame)
	}
}

func TestStrings(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{RATS{FSDI: 8, CID: 1}.String(), "RATS FSD 256 CID 1"},
		{AttribResp{MBLI: 2, CID: 3}.String(), "answer to ATTRIB MBLI 2 CID 3"},
		{ATQA{0x44, 0x00}.String(), "ATQA 4400 UID 7"},
	} {
		if tt.got != tt.want {
			t.Errorf("%q, want %q", tt.got, tt.want)
		}
	}
}
