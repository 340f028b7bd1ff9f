package pn532emu

import (
	"bytes"
	"testing"
	"time"

	"kazasu/drivers/nfc"
	"kazasu/drivers/sim/pn532emu/picctest"
)

// TestLibnfcOpenSequence replays what libnfc 1.8.0 sends at nfc_open and
// nfc_initiator_init (pn532.md §5.1, §5.2) and checks the answers.
func TestLibnfcOpenSequence(t *testing.T) {
	h := newHost(t, Options{}, true)
	if got := h.emu.Power(); got != LowVbat {
		t.Fatalf("power at reset = %v, want LowVbat", got)
	}
	// Wake-up bytes and SAMConfiguration back to back, then the check.
	h.write(append([]byte{0x55, 0x55, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, frame(0x14, 0x01)...))
	h.expectACK()
	h.expect(0x15)
	if got := h.emu.Power(); got != Normal {
		t.Fatalf("power after SAMConfiguration = %v, want Normal", got)
	}
	if got := h.cmd(0x00, 0x00, 'l', 'i', 'b', 'n', 'f', 'c'); !bytes.Equal(got, []byte{0x01, 0x00, 0x6C, 0x69, 0x62, 0x6E, 0x66, 0x63}) {
		t.Fatalf("Diagnose 00 = % X", got)
	}
	h.firmware()
	if got := h.cmd(0x12, 0x14); !bytes.Equal(got, []byte{0x13}) {
		t.Fatalf("SetParameters = % X", got)
	}
	if got := h.cmd(0x06, 0x63, 0x02, 0x63, 0x03, 0x63, 0x0D, 0x63, 0x38, 0x63, 0x3D); len(got) != 6 {
		t.Fatalf("batched ReadRegister = % X, want 07 + 5 values (no status byte)", got)
	}
	if got := h.cmd(0x08, 0x63, 0x02, 0x80, 0x63, 0x03, 0x80); !bytes.Equal(got, []byte{0x09}) {
		t.Fatalf("WriteRegister = % X", got)
	}
	if got := h.cmd(0x06, 0x63, 0x03, 0x63, 0x02, 0x63, 0x05); !bytes.Equal(got, []byte{0x07, 0x80, 0x80, 0x00}) {
		t.Fatalf("registers after the write = % X", got)
	}
	for _, c := range [][]byte{{0x32, 0x01, 0x00}, {0x32, 0x01, 0x01}, {0x32, 0x05, 0xFF, 0xFF, 0xFF}} {
		if got := h.cmd(c...); !bytes.Equal(got, []byte{0x33}) {
			t.Fatalf("RFConfiguration % X = % X", c, got)
		}
	}
	// Close: InRelease, field off, PowerDown.
	if got := h.cmd(0x52, 0x00); !bytes.Equal(got, []byte{0x53, 0x00}) {
		t.Fatalf("InRelease = % X", got)
	}
	h.cmd(0x32, 0x01, 0x00)
	if got := h.cmd(0x16, 0xF0); !bytes.Equal(got, []byte{0x17, 0x00}) {
		t.Fatalf("PowerDown = % X", got)
	}
	// Asleep: the wake-up byte is lost, the frame after it is answered.
	h.write(append([]byte{0x55, 0x55, 0, 0, 0}, frame(0x02)...))
	h.expectACK()
	h.expect(0x03, 0x32, 0x01, 0x06, 0x07)
	if got := h.emu.Power(); got != Normal {
		t.Fatalf("power after wake-up = %v", got)
	}
}

func TestPowerDownWakeSources(t *testing.T) {
	h := newHost(t, Options{}, false)
	h.cmd(0x16, 0x20) // SPI only
	// HSU bytes do not wake the chip: this frame is lost...
	h.write(frame(0x02))
	// ...so does this one. The chip cannot be reached over HSU any more;
	// check the state directly.
	h.write(append([]byte{0x55}, frame(0x02)...))
	if got := h.emu.Power(); got != PowerDown {
		t.Fatalf("power = %v after HSU traffic with HSU wake-up disabled", got)
	}
}

func TestErrorFrames(t *testing.T) {
	h := newHost(t, Options{}, false)
	tests := []struct {
		name string
		pd   []byte
	}{
		{"unknown command", []byte{0x03}},
		{"TgInitAsTarget (not emulated)", []byte{0x8C, 0x00}},
		{"ReadRegister odd length", []byte{0x06, 0x63}},
		{"WriteRegister short triple", []byte{0x08, 0x63, 0x02}},
		{"RFConfiguration unknown item", []byte{0x32, 0x07, 0x00}},
		{"RFConfiguration item 05 short", []byte{0x32, 0x05, 0xFF}},
		{"SAMConfiguration mode 5", []byte{0x14, 0x05}},
		{"SetSerialBaudRate 09", []byte{0x10, 0x09}},
		{"InListPassiveTarget MaxTg 3", []byte{0x4A, 0x03, 0x00}},
		{"InListPassiveTarget BrTy 06 (PN533 only)", []byte{0x4A, 0x01, 0x06, 0x00}},
		{"InListPassiveTarget B without AFI", []byte{0x4A, 0x01, 0x03}},
		{"GetFirmwareVersion with data", []byte{0x02, 0x00}},
		{"Diagnose 04", []byte{0x00, 0x04}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := h.cmd(tt.pd...); got != nil {
				t.Fatalf("% X answered % X, want the error frame", tt.pd, got)
			}
			h.firmware()
		})
	}
	// Wrong TFI: acknowledged, then the error frame.
	f := frame(0x02)
	f[5] = 0xD5
	f[len(f)-2] -= 1
	h.write(f)
	h.expectACK()
	if h.readFrame() != nil {
		t.Fatal("a D5 frame from the host was answered")
	}
	h.firmware()
}

func TestBadChecksumNotAcknowledged(t *testing.T) {
	h := newHost(t, Options{}, false)
	bad := frame(0x02)
	bad[len(bad)-2] ^= 0xFF // DCS
	h.write(bad)
	// The next thing on the line must be the ACK of the following good
	// frame, then its answer: the bad frame drew nothing.
	h.firmware()
	badLCS := frame(0x02)
	badLCS[4] ^= 0x01
	h.write(badLCS)
	h.firmware()
}

func TestNACKResendsLastResponse(t *testing.T) {
	h := newHost(t, Options{}, false)
	h.firmware()
	h.write(NACKFrame)
	h.expect(0x03, 0x32, 0x01, 0x06, 0x07)
}

// TestInfiniteRetriesSilentUntilAbort: MxRtyPassiveActivation FF with an
// empty field means no answer at all; the host's ACK aborts it and the
// chip then answers the next command (not the aborted one).
func TestInfiniteRetriesSilentUntilAbort(t *testing.T) {
	h := newHost(t, Options{}, false)
	h.cmd(0x32, 0x05, 0xFF, 0xFF, 0xFF)
	h.write(frame(0x4A, 0x01, 0x03, 0x00))
	h.expectACK()
	h.write(ACKFrame) // abort
	h.firmware()

	// A new command cancels the pending one as well.
	h.write(frame(0x4A, 0x01, 0x00))
	h.expectACK()
	h.firmware()

	// Single-shot listing answers 4B 00.
	h.cmd(0x32, 0x05, 0x00, 0x01, 0x02)
	if got := h.cmd(0x4A, 0x01, 0x03, 0x00); !bytes.Equal(got, []byte{0x4B, 0x00}) {
		t.Fatalf("InListPassiveTarget with nothing in the field = % X", got)
	}
}

func TestSetSerialBaudRate(t *testing.T) {
	var switched []int
	h := newHost(t, Options{OnBaud: func(b int) { switched = append(switched, b) }}, false)
	if got := h.cmd(0x10, 0x07); !bytes.Equal(got, []byte{0x11}) {
		t.Fatalf("SetSerialBaudRate = % X", got)
	}
	if h.emu.Baud() != 115200 {
		t.Fatalf("baud switched before the host's ACK: %d", h.emu.Baud())
	}
	h.write(ACKFrame)
	h.firmware() // serialises: the ACK has been handled
	if h.emu.Baud() != 921600 || len(switched) != 1 || switched[0] != 921600 {
		t.Fatalf("after ACK: baud %d, OnBaud calls %v", h.emu.Baud(), switched)
	}
}

func TestTypeBListAndExchange(t *testing.T) {
	card := &picctest.TypeB{ATQB: picctest.MyNumberATQB, MBLI: 0}
	h := newHost(t, Options{Field: fieldWith(card)}, false)
	h.cmd(0x32, 0x05, 0x00, 0x01, 0x02)
	got := h.cmd(0x4A, 0x01, 0x03, 0x00)
	want := append(append([]byte{0x4B, 0x01, 0x01}, picctest.MyNumberATQB...), 0x01, 0x01)
	if !bytes.Equal(got, want) {
		t.Fatalf("InListPassiveTarget = % X, want % X", got, want)
	}
	apdu := []byte{0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01}
	got = h.cmd(append([]byte{0x40, 0x01}, apdu...)...)
	if !bytes.Equal(got, append(append([]byte{0x41, 0x00}, apdu...), 0x90, 0x00)) {
		t.Fatalf("InDataExchange = % X", got)
	}
	// The I-block on air carried CID 1 and block number 0.
	var iblock []byte
	for _, f := range card.Log {
		if len(f.Data) > 0 && f.Data[0]&0xE2 == 0x02 {
			iblock = f.Data
			break
		}
	}
	if !bytes.HasPrefix(iblock, []byte{0x0A, 0x01, 0x00, 0xA4}) {
		t.Fatalf("first I-block on air = % X, want 0A 01 …", iblock)
	}
	// Presence check as libnfc does it: 42 BA 01 (R(NAK), block number 0).
	// The card's block number is 0 after one exchange, so Rule 11 makes
	// it send its last block again; any answer means present.
	if got := h.cmd(0x42, 0xBA, 0x01); len(got) < 3 || got[1] != 0x00 || got[2] != 0x0A {
		t.Fatalf("InCommunicateThru R(NAK) = % X", got)
	}
	if got := h.cmd(0x00, 0x06); !bytes.Equal(got, []byte{0x01, 0x00}) {
		t.Fatalf("Diagnose 06 = % X", got)
	}
	if got := h.cmd(0x44, 0x00); !bytes.Equal(got, []byte{0x45, 0x00}) {
		t.Fatalf("InDeselect = % X", got)
	}
	if got := h.cmd(0x40, 0x01, 0x00); !bytes.Equal(got, []byte{0x41, stNotAcceptable}) {
		t.Fatalf("InDataExchange after InDeselect = % X", got)
	}
	if got := h.cmd(0x54, 0x01); !bytes.Equal(got, []byte{0x55, 0x00}) {
		t.Fatalf("InSelect = % X", got)
	}
	if got := h.cmd(0x40, 0x01, 0x00, 0x84, 0x00, 0x00, 0x08); !bytes.Equal(got[:2], []byte{0x41, 0x00}) {
		t.Fatalf("InDataExchange after InSelect = % X", got)
	}
	h.emu.Field().Remove(card)
	if got := h.cmd(0x40, 0x01, 0x00, 0xB0, 0x00, 0x00, 0x04); !bytes.Equal(got, []byte{0x41, stTimeout}) {
		t.Fatalf("InDataExchange to a removed card = % X", got)
	}
	if got := h.cmd(0x42, 0xBA, 0x01); !bytes.Equal(got, []byte{0x43, stTimeout}) {
		t.Fatalf("presence check of a removed card = % X", got)
	}
}

// TestReceiveChaining: a 600-byte answer comes back in 60-byte blocks
// (FSD 64 with CID); the chip returns at most 262 bytes per frame with MI
// in the status and the host continues with 40 01.
func TestReceiveChaining(t *testing.T) {
	big := make([]byte, 600)
	for i := range big {
		big[i] = byte(i)
	}
	app := picctest.AppletFunc(func(apdu []byte) ([]byte, time.Duration) { return append(append([]byte(nil), big...), 0x90, 0x00), 0 })
	card := &picctest.TypeB{ATQB: picctest.MyNumberATQB, Applet: app}
	h := newHost(t, Options{Field: fieldWith(card)}, false)
	h.cmd(0x32, 0x05, 0x00, 0x01, 0x02)
	h.cmd(0x4A, 0x01, 0x03, 0x00)
	var all []byte
	r := h.cmd(0x40, 0x01, 0x00, 0xB0, 0x00, 0x00, 0x00, 0x02, 0x58)
	frames := 1
	for {
		if r[1]&0x80 != 0 {
			t.Fatalf("status bit 7 set: % X", r[:2])
		}
		if r[1]&0x3F != 0 {
			t.Fatalf("status % X", r[1])
		}
		if len(r)-2 > 262 {
			t.Fatalf("%d data bytes in one frame", len(r)-2)
		}
		all = append(all, r[2:]...)
		if r[1]&statusMI == 0 {
			break
		}
		r = h.cmd(0x40, 0x01)
		frames++
	}
	if !bytes.Equal(all, append(big, 0x90, 0x00)) {
		t.Fatalf("reassembled %d bytes, want %d", len(all), len(big)+2)
	}
	if frames < 3 {
		t.Fatalf("602 bytes came in %d frames", frames)
	}
	// Every block on air from the card fits FSD 64 (CRC included).
	h.firmware()
}

// TestTransmitChaining: the host sends 300 bytes as two InDataExchange
// frames, the first with Tg bit 6 (MI) set; the chip chains I-blocks of at
// most FSC−4 bytes and the card sees one APDU.
func TestTransmitChaining(t *testing.T) {
	card := &picctest.TypeB{ATQB: []byte{0x50, 1, 2, 3, 4, 0, 0, 0, 0, 0x00, 0x51, 0x41}} // FSC 64, CID
	h := newHost(t, Options{Field: fieldWith(card)}, false)
	h.cmd(0x32, 0x05, 0x00, 0x01, 0x02)
	h.cmd(0x4A, 0x01, 0x03, 0x00)
	data := make([]byte, 300)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if got := h.cmd(append([]byte{0x40, 0x41}, data[:200]...)...); !bytes.Equal(got, []byte{0x41, 0x00}) {
		t.Fatalf("first chunk: % X", got)
	}
	r := h.cmd(append([]byte{0x40, 0x01}, data[200:]...)...)
	var all []byte
	for {
		all = append(all, r[2:]...)
		if r[1]&statusMI == 0 {
			break
		}
		r = h.cmd(0x40, 0x01)
	}
	if len(card.Apdus) != 1 || !bytes.Equal(card.Apdus[0], data) {
		t.Fatalf("card got %d APDUs", len(card.Apdus))
	}
	if !bytes.Equal(all, append(append([]byte(nil), data...), 0x90, 0x00)) {
		t.Fatalf("echo of %d bytes, want %d", len(all), len(data)+2)
	}
	for _, f := range card.Log {
		if len(f.Data)+2 > 64 {
			t.Fatalf("block of %d bytes (with CRC) over FSC 64", len(f.Data)+2)
		}
	}
}

func TestWTXAnswered(t *testing.T) {
	card := &picctest.TypeB{ATQB: picctest.MyNumberATQB, WTX: 5}
	h := newHost(t, Options{Field: fieldWith(card)}, false)
	h.cmd(0x32, 0x05, 0x00, 0x01, 0x02)
	h.cmd(0x4A, 0x01, 0x03, 0x00)
	got := h.cmd(0x40, 0x01, 0x00, 0x84, 0x00, 0x00, 0x08)
	if !bytes.Equal(got, []byte{0x41, 0x00, 0x00, 0x84, 0x00, 0x00, 0x08, 0x90, 0x00}) {
		t.Fatalf("InDataExchange through 5 WTX = % X", got)
	}
	n := 0
	for _, f := range card.Log {
		if len(f.Data) == 3 && f.Data[0] == 0xFA && f.Data[1] == 0x01 && f.Data[2] == 0x01 {
			n++
		}
	}
	if n != 5 {
		t.Fatalf("chip sent %d S(WTX) responses, want 5", n)
	}
}

func TestInCommunicateThru(t *testing.T) {
	card := &picctest.TypeB{ATQB: picctest.MyNumberATQB}
	h := newHost(t, Options{Field: fieldWith(card)}, false)
	h.cmd(0x32, 0x01, 0x01)
	// Type B framing with CRC by the chip: WUPB and ATTRIB by hand.
	h.cmd(0x08, 0x63, 0x02, 0x83, 0x63, 0x03, 0x83)
	got := h.cmd(0x42, 0x05, 0x00, 0x08)
	if !bytes.Equal(got, append([]byte{0x43, 0x00}, picctest.MyNumberATQB...)) {
		t.Fatalf("WUPB = % X", got)
	}
	if got := h.cmd(0x42, 0x1D, 1, 2, 3, 4, 0x00, 0x08, 0x01, 0x00); !bytes.Equal(got, []byte{0x43, 0x00, 0x00}) {
		t.Fatalf("ATTRIB = % X", got)
	}
	// CRC off: the host adds CRC_B and gets it back (I-block 02 + APDU).
	h.cmd(0x08, 0x63, 0x02, 0x03, 0x63, 0x03, 0x03)
	blk := []byte{0x0A, 0x00, 0x00, 0x84, 0x00, 0x00, 0x01}
	c := crc16(nfc.TechB, blk)
	got = h.cmd(append(append([]byte{0x42}, blk...), byte(c), byte(c>>8))...)
	if len(got) < 4 || got[1] != 0 || !crcOK(nfc.TechB, got[2:]) {
		t.Fatalf("raw I-block with CRC = % X", got)
	}
	// A bad CRC draws no answer: timeout from item 02 (default 51.2 ms, modelled).
	if got := h.cmd(0x42, 0x02, 0x00, 0x00); !bytes.Equal(got, []byte{0x43, stTimeout}) {
		t.Fatalf("bad CRC = % X", got)
	}
}

func TestCRCVectors(t *testing.T) {
	// iso14443b.md §1: 05 00 08 → 39 73; 05 00 00 → 71 FF; 00 → 78 F0.
	for _, tt := range []struct {
		in   []byte
		want [2]byte
	}{{[]byte{0x05, 0x00, 0x08}, [2]byte{0x39, 0x73}}, {[]byte{0x05, 0x00, 0x00}, [2]byte{0x71, 0xFF}}, {[]byte{0x00}, [2]byte{0x78, 0xF0}}} {
		c := crc16(nfc.TechB, tt.in)
		if [2]byte{byte(c), byte(c >> 8)} != tt.want {
			t.Errorf("CRC_B(% X) = %04X", tt.in, c)
		}
	}
	// CRC_A of 00 00 is A0 1E (ISO/IEC 14443-3 Annex B).
	if c := crc16(nfc.TechA, []byte{0x00, 0x00}); c != 0x1EA0 {
		t.Errorf("CRC_A(00 00) = %04X, want 1EA0", c)
	}
}

func TestAutoPoll(t *testing.T) {
	card := &picctest.TypeB{ATQB: picctest.MyNumberATQB}
	h := newHost(t, Options{Field: fieldWith(card)}, false)
	got := h.cmd(0x60, 0x14, 0x02, 0x20, 0x10, 0x03, 0x11, 0x12, 0x04)
	want := append(append([]byte{0x61, 0x01, 0x03, 0x0F, 0x01}, picctest.MyNumberATQB...), 0x01, 0x01)
	if !bytes.Equal(got, want) {
		t.Fatalf("InAutoPoll = % X, want % X", got, want)
	}
	h.emu.Field().Clear()
	if got := h.cmd(0x60, 0x02, 0x01, 0x23); !bytes.Equal(got, []byte{0x61, 0x00}) {
		t.Fatalf("InAutoPoll, empty field = % X", got)
	}
	if h.emu.Meter().Get(CatPoll) < 300*time.Millisecond {
		t.Fatalf("2 polls × 150 ms not accounted: %v", h.emu.Meter())
	}
}

func TestInCommunicateThruRetriesAndCollisions(t *testing.T) {
	a := &picctest.TypeB{ATQB: picctest.MyNumberATQB}
	b := &picctest.TypeB{ATQB: []byte{0x50, 9, 9, 9, 9, 0, 0, 0, 0, 0x00, 0x81, 0x41}}
	h := newHost(t, Options{Field: fieldWith(a, b)}, false)
	h.cmd(0x32, 0x01, 0x01)
	h.cmd(0x08, 0x63, 0x02, 0x83, 0x63, 0x03, 0x83)
	if got := h.cmd(0x42, 0x05, 0x00, 0x08); !bytes.Equal(got, []byte{0x43, stCRC}) {
		t.Fatalf("WUPB with two Type B cards = % X, want 43 02", got)
	}
	h.emu.Field().Clear()
	// Nothing answers: 1 + MaxRtyCOM tries, each waiting the item 02 timeout.
	h.cmd(0x32, 0x02, 0x00, 0x0B, 0x08) // 12.8 ms
	h.cmd(0x32, 0x04, 0x03)
	h.emu.Meter().Reset()
	if got := h.cmd(0x42, 0x05, 0x00, 0x08); !bytes.Equal(got, []byte{0x43, stTimeout}) {
		t.Fatalf("WUPB, empty field = % X", got)
	}
	if got := h.emu.Meter().Get(CatPoll); got != 4*12800*time.Microsecond {
		t.Fatalf("waited %v, want 4 × 12.8 ms", got)
	}
	// MaxRtyCOM FF: silent until the host aborts.
	h.cmd(0x32, 0x04, 0xFF)
	h.write(frame(0x42, 0x05, 0x00, 0x08))
	h.expectACK()
	h.write(ACKFrame)
	h.firmware()
}

func TestRemovePrePostAmble(t *testing.T) {
	h := newHost(t, Options{}, false)
	// The flag takes effect with the SetParameters answer itself.
	h.write(frame(0x12, 0x40))
	h.expectACK()
	if got := h.readN(7); !bytes.Equal(got, []byte{0x00, 0xFF, 0x02, 0xFE, 0xD5, 0x13, 0x18}) {
		t.Fatalf("SetParameters 40 answer = % X", got)
	}
	h.write(frame(0x02))
	h.expectACK()
	want := []byte{0x00, 0xFF, 0x06, 0xFA, 0xD5, 0x03, 0x32, 0x01, 0x06, 0x07, 0xE8}
	if got := h.readN(len(want)); !bytes.Equal(got, want) {
		t.Fatalf("frame without pre/postamble = % X, want % X", got, want)
	}
	if got := h.cmd(0x12, 0x14); !bytes.Equal(got, []byte{0x13}) {
		t.Fatalf("SetParameters 14 = % X", got)
	}
	h.firmware()
}

func TestTypeA(t *testing.T) {
	phone := &picctest.TypeA{ATQA: [2]byte{0x04, 0x00}, UID: []byte{0x08, 0x11, 0x22, 0x33}, SAK: 0x20, ATS: []byte{0x05, 0x78, 0x80, 0x70, 0x02}}
	tag := &picctest.TypeA{ATQA: [2]byte{0x44, 0x00}, UID: []byte{0x04, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9}, SAK: 0x00}
	h := newHost(t, Options{Field: fieldWith(phone)}, false)
	h.cmd(0x12, 0x14) // fAutomaticRATS, as libnfc sets it
	h.cmd(0x32, 0x05, 0x00, 0x01, 0x02)
	got := h.cmd(0x4A, 0x01, 0x00)
	want := []byte{0x4B, 0x01, 0x01, 0x00, 0x04, 0x20, 0x04, 0x08, 0x11, 0x22, 0x33, 0x05, 0x78, 0x80, 0x70, 0x02}
	if !bytes.Equal(got, want) {
		t.Fatalf("InListPassiveTarget A = % X, want % X", got, want)
	}
	if got := h.cmd(0x40, 0x01, 0x00, 0xA4, 0x04, 0x00, 0x00); !bytes.Equal(got, []byte{0x41, 0x00, 0x00, 0xA4, 0x04, 0x00, 0x00, 0x90, 0x00}) {
		t.Fatalf("InDataExchange to a Type A ISO-DEP target = % X", got)
	}
	if len(phone.Apdus) != 1 {
		t.Fatalf("the phone saw %d APDUs", len(phone.Apdus))
	}
	if got := h.cmd(0x04); !bytes.Equal(got, []byte{0x05, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00}) {
		t.Fatalf("GetGeneralStatus = % X", got)
	}
	if got := h.cmd(0x44, 0x01); !bytes.Equal(got, []byte{0x45, 0x00}) {
		t.Fatalf("InDeselect 1 = % X", got)
	}
	if got := h.cmd(0x44, 0x02); !bytes.Equal(got, []byte{0x45, stNotAcceptable}) {
		t.Fatalf("InDeselect of an unknown Tg = % X", got)
	}
	if got := h.cmd(0x54, 0x01); !bytes.Equal(got, []byte{0x55, 0x00}) {
		t.Fatalf("InSelect after InDeselect = % X", got)
	}
	if got := h.cmd(0x52, 0x01); !bytes.Equal(got, []byte{0x53, 0x00}) {
		t.Fatalf("InRelease 1 = % X", got)
	}
	if got := h.cmd(0x40, 0x01, 0x00); !bytes.Equal(got, []byte{0x41, stNotAcceptable}) {
		t.Fatalf("InDataExchange after InRelease = % X", got)
	}
	// A triple-size UID, no ISO-DEP: MIFARE-style raw exchanges.
	h.emu.Field().Clear()
	h.emu.Field().Add(tag)
	got = h.cmd(0x4A, 0x01, 0x00)
	want = []byte{0x4B, 0x01, 0x01, 0x00, 0x44, 0x00, 0x0A, 0x04, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9}
	if !bytes.Equal(got, want) {
		t.Fatalf("InListPassiveTarget, 10-byte UID = % X, want % X", got, want)
	}
	if got := h.cmd(0x40, 0x01, 0x30, 0x04); !bytes.Equal(got, []byte{0x41, stTimeout}) {
		t.Fatalf("READ to a tag that does not answer it = % X", got)
	}
	// A poll restricted to its UID, given with cascade tags, finds it.
	h.cmd(0x44, 0x00)
	if got := h.cmd(0x4A, 0x01, 0x00, 0x88, 0x04, 0xA1, 0xA2, 0x88, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9); len(got) < 2 || got[1] != 1 {
		t.Fatalf("InListPassiveTarget by UID with CTs = % X", got)
	}
	if got := h.cmd(0x4A, 0x01, 0x00, 0x04, 0x01, 0x02, 0x03, 0x05); got != nil {
		t.Fatalf("5-byte UID accepted: % X", got)
	}
	// A poll restricted to another UID finds nothing.
	if got := h.cmd(0x4A, 0x01, 0x00, 0x04, 0x01, 0x02, 0x03); !bytes.Equal(got, []byte{0x4B, 0x00}) {
		t.Fatalf("InListPassiveTarget with another UID = % X", got)
	}
	// InAutoPoll: 20 (ISO 14443-4 A) skips the tag, 10 takes it.
	if got := h.cmd(0x60, 0x01, 0x01, 0x20); !bytes.Equal(got, []byte{0x61, 0x00}) {
		t.Fatalf("InAutoPoll 20 with a non-ISO-DEP tag = % X", got)
	}
	if got := h.cmd(0x60, 0x01, 0x01, 0x20, 0x10); len(got) < 4 || !bytes.Equal(got[:4], []byte{0x61, 0x01, 0x10, 0x0F}) {
		t.Fatalf("InAutoPoll 20 10 = % X", got)
	}
}

func TestDiagnose(t *testing.T) {
	h := newHost(t, Options{}, false)
	for _, tt := range []struct{ in, want []byte }{
		{[]byte{0x00, 0x01}, []byte{0x01, 0x00}},
		{[]byte{0x00, 0x02}, []byte{0x01, 0x00}},
		{[]byte{0x00, 0x07, 0x00}, []byte{0x01, 0x00}},
		{[]byte{0x00, 0x06}, []byte{0x01, stNotAcceptable}},
	} {
		if got := h.cmd(tt.in...); !bytes.Equal(got, tt.want) {
			t.Errorf("Diagnose % X = % X, want % X", tt.in[1:], got, tt.want)
		}
	}
	// The longest echo: 262 bytes back in one extended frame.
	long := append([]byte{0x00, 0x00}, bytes.Repeat([]byte{0x5A}, 262)...)
	if got := h.cmd(long...); len(got) != 264 {
		t.Fatalf("262-byte echo answered with %d bytes", len(got))
	}
	// One byte more does not fit a frame (TFI + 265 PD): damaged, no ACK.
	over := []byte{0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x01, 0x0A, 0xF5, 0xD4, 0x00, 0x00}
	over = append(over, bytes.Repeat([]byte{0x5A}, 263)...)
	over = append(over, 0x00, 0x00)
	h.write(over)
	h.firmware()
}

func TestHostFaultMangling(t *testing.T) {
	h := newHost(t, Options{}, false) // frame 1: SAMConfiguration
	n := h.emu.Frames()
	h.emu.Inject(Fault{Kind: FaultDrop, Frame: n + 1, Count: 3})
	h.emu.Inject(Fault{Kind: FaultNoACK, Frame: n + 2})
	h.write(frame(0x02))
	h.expectACK()
	if got := h.readN(10); bytes.Equal(got[5:9], []byte{0xD5, 0x03, 0x32, 0x01}) && got[9] == 0x06 {
		t.Fatalf("answer intact despite the drop fault: % X", got)
	}
	h.write(frame(0x02))
	h.expect(0x03, 0x32, 0x01, 0x06, 0x07) // no ACK first
	if s := (Fault{Kind: FaultDrop, Frame: 3, Count: 2}).String(); s != "drop at host frame 3, 2 bytes" {
		t.Errorf("Fault.String() = %q", s)
	}
}

// TestFrameWaitingTime: a PICC slower than its FWT (without S(WTX)) answers
// too late; the chip recovers with R(NAK) (Rule 4) and the PICC sends its
// answer again (Rule 11). The modelled time includes the whole wait.
func TestFrameWaitingTime(t *testing.T) {
	slow := picctest.AppletFunc(func(apdu []byte) ([]byte, time.Duration) { return []byte{0x90, 0x00}, 400 * time.Millisecond })
	c := &picctest.TypeB{ATQB: picctest.MyNumberATQB, Applet: slow} // FWI 10: 309 ms
	h := newHost(t, Options{Field: fieldWith(c)}, false)
	h.cmd(0x32, 0x05, 0x00, 0x01, 0x02)
	h.cmd(0x4A, 0x01, 0x03, 0x00)
	h.emu.Meter().Reset()
	if got := h.cmd(0x40, 0x01, 0x00, 0x2A, 0x00, 0x00); !bytes.Equal(got, []byte{0x41, 0x00, 0x90, 0x00}) {
		t.Fatalf("InDataExchange to a slow card = % X", got)
	}
	nak := 0
	for _, f := range c.Log {
		if len(f.Data) == 2 && f.Data[0]&0xF6 == 0xB2 {
			nak++
		}
	}
	if nak != 1 {
		t.Fatalf("%d R(NAK) on air, want 1", nak)
	}
	if total := h.emu.Meter().Get(CatAir) + h.emu.Meter().Get(CatCard); total < 400*time.Millisecond {
		t.Fatalf("modelled %v, less than the card's 400 ms", total)
	}
}

// TestTwoTypeBTargets: MaxTg 2 activates both cards (CID 1 and 2), and
// InDataExchange reaches each through its own Tg.
func TestTwoTypeBTargets(t *testing.T) {
	a := &picctest.TypeB{ATQB: picctest.MyNumberATQB}
	b := &picctest.TypeB{ATQB: []byte{0x50, 9, 9, 9, 9, 0, 0, 0, 0, 0x00, 0x81, 0x41}}
	h := newHost(t, Options{Field: fieldWith(a, b)}, false)
	h.cmd(0x32, 0x05, 0x00, 0x01, 0x02)
	got := h.cmd(0x4A, 0x02, 0x03, 0x00)
	if len(got) != 2+2*15 || got[1] != 2 || got[2] != 1 || got[17] != 2 || got[15] != 1 || got[16] != 0x01 || got[31] != 0x02 {
		t.Fatalf("InListPassiveTarget MaxTg 2 = % X", got)
	}
	h.cmd(0x40, 0x01, 0xAA)
	h.cmd(0x40, 0x02, 0xBB)
	if len(a.Apdus) != 1 || a.Apdus[0][0] != 0xAA || len(b.Apdus) != 1 || b.Apdus[0][0] != 0xBB {
		t.Fatalf("APDUs: card 1 %X, card 2 %X", a.Apdus, b.Apdus)
	}
	if got := h.cmd(0x40, 0x03, 0xCC); !bytes.Equal(got, []byte{0x41, stNotAcceptable}) {
		t.Fatalf("InDataExchange to Tg 3 = % X", got)
	}
}

func TestReset(t *testing.T) {
	card := &picctest.TypeB{ATQB: picctest.MyNumberATQB}
	h := newHost(t, Options{Field: fieldWith(card)}, false)
	h.cmd(0x08, 0x63, 0x02, 0x80)
	h.cmd(0x32, 0x05, 0x00, 0x01, 0x02)
	h.cmd(0x4A, 0x01, 0x03, 0x00)
	h.cmd(0x10, 0x06)
	h.write(ACKFrame)
	h.firmware()
	if h.emu.Baud() != 460800 || !h.emu.Field().On() {
		t.Fatalf("before reset: %d baud, field %v", h.emu.Baud(), h.emu.Field().On())
	}
	h.emu.Reset()
	if h.emu.Power() != LowVbat || h.emu.Baud() != 115200 || h.emu.Field().On() || h.emu.Register(0x6302) != 0 {
		t.Fatalf("after reset: %v, %d baud, field %v, TxMode %02X", h.emu.Power(), h.emu.Baud(), h.emu.Field().On(), h.emu.Register(0x6302))
	}
	// Asleep again: the wake-up byte is needed; the target is forgotten.
	h.write(append([]byte{0x55}, frame(0x14, 0x01)...))
	h.expectACK()
	h.expect(0x15)
	if got := h.cmd(0x40, 0x01, 0x00); !bytes.Equal(got, []byte{0x41, stNotAcceptable}) {
		t.Fatalf("InDataExchange after reset = % X", got)
	}
}
