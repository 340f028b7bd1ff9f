package card

import (
	"bytes"
	"testing"
)

func TestParseCommand(t *testing.T) {
	long := bytes.Repeat([]byte{0xAB}, 300)
	ext3 := append(hx("00 D6 00 00 00 01 2C"), long...)
	ext4 := append(append(hx("00 D6 00 00 00 01 2C"), long...), 0x01, 0x00)
	tests := []struct {
		name     string
		apdu     []byte
		wantErr  bool
		data     int
		ne       int
		hasLe    bool
		extended bool
	}{
		{"case 1", hx("00 A4 00 00"), false, 0, 0, false, false},
		{"case 2S Le 20", hx("00 B0 00 00 20"), false, 0, 0x20, true, false},
		{"case 2S Le 00 = 256", hx("00 B0 00 00 00"), false, 0, 256, true, false},
		{"case 3S", hx(selJPKI), false, 10, 0, false, false},
		{"case 4S sign", append(append(hx("80 2A 00 80 33"), make([]byte, 51)...), 0x00), false, 51, 256, true, false},
		{"case 2E 076C", hx("00 B0 00 00 00 07 6C"), false, 0, 1900, true, true},
		{"case 2E 0000 = 65536", hx("00 B0 00 00 00 00 00"), false, 0, 65536, true, true},
		{"case 3E", ext3, false, 300, 0, false, true},
		{"case 4E", ext4, false, 300, 256, true, true},
		{"short header", hx("00 A4 04"), true, 0, 0, false, false},
		{"Lc too long", hx("00 A4 04 0C 05 01 02"), true, 0, 0, false, false},
		{"Lc too short", hx("00 A4 04 0C 01 01 02 03"), true, 0, 0, false, false},
		{"lone 00 00", hx("00 A4 04 0C 00 00"), true, 0, 0, false, false},
		{"extended Lc 0", hx("00 A4 04 0C 00 00 00 01"), true, 0, 0, false, false},
		{"extended Lc mismatch", hx("00 A4 04 0C 00 00 05 01 02"), true, 0, 0, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseCommand(tc.apdu)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if len(c.Data) != tc.data || c.Ne != tc.ne || c.HasLe != tc.hasLe || c.Extended != tc.extended {
				t.Errorf("got data %d Ne %d HasLe %v ext %v", len(c.Data), c.Ne, c.HasLe, c.Extended)
			}
		})
	}
}

func TestDecodeCLA(t *testing.T) {
	tests := []struct {
		cla  byte
		want claInfo
	}{
		{0x00, claInfo{valid: true}},
		{0x01, claInfo{valid: true, channel: 1}},
		{0x03, claInfo{valid: true, channel: 3}},
		{0x08, claInfo{valid: true, sm: true}},
		{0x0C, claInfo{valid: true, sm: true}},
		{0x10, claInfo{valid: true, chaining: true}},
		{0x40, claInfo{valid: true, channel: 4}},
		{0x4F, claInfo{valid: true, channel: 19}},
		{0x60, claInfo{valid: true, channel: 4, sm: true}},
		{0x80, claInfo{valid: true, proprietary: true}},
		{0x8C, claInfo{valid: true, proprietary: true, sm: true}},
		{0xA0, claInfo{}},
		{0xFF, claInfo{}},
	}
	for _, tc := range tests {
		if got := decodeCLA(tc.cla); got != tc.want {
			t.Errorf("decodeCLA(%02X) = %+v, want %+v", tc.cla, got, tc.want)
		}
	}
}

func TestSWString(t *testing.T) {
	tests := []struct {
		sw   SW
		want string
	}{
		{SWOK, "9000 (OK)"},
		{Retries(2), "63C2 (verification failed, 2 tries left)"},
		{SWRefDataBlocked, "6984 (reference data blocked)"},
		{SW(0x6F00), "6F00"},
		{SW(0x6100), "6100 (256 more bytes)"},
		{SW(0x6180), "6180 (128 more bytes)"},
		{SW(0x6C0A), "6C0A (wrong Le, 10 bytes available)"},
	}
	for _, tc := range tests {
		if got := tc.sw.String(); got != tc.want {
			t.Errorf("%04X.String() = %q, want %q", uint16(tc.sw), got, tc.want)
		}
	}
	if Retries(20) != 0x63CF || Retries(-1) != 0x63C0 {
		t.Error("Retries does not clamp to 0…15")
	}
}
