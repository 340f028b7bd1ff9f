package pn532test

import (
	"bytes"
	"testing"
)

func TestBuilders(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want []byte
	}{
		// UM0701 §6.2.1.1 examples (pn532.md §1).
		{"Cmd", Cmd(0x02), Hex("0000FF02FED4022A00")},
		{"Rsp", Rsp(0x02, 0x32, 0x01, 0x06, 0x07), Hex("0000FF06FAD50332010607E800")},
		{"Ack", Ack(), Hex("0000FF00FF00")},
		{"Nack", Nack(), Hex("0000FFFF0000")},
		{"Err", Err(), Hex("0000FF01FF7F8100")},
		{"ExtFrame", ExtFrame(0xD4, 0x02), Hex("0000FFFFFF0002FED4022A00")},
		{"Corrupt", Corrupt(Cmd(0x02)), Hex("0000FF02FED40270 00")},
		{"Rev", Rev(Hex("01 02 03 D4 FF")), Hex("80 40 C0 2B FF")},
		{"Cat", Cat(Hex("01"), nil, Hex("0203")), Hex("010203")},
	} {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s = % X, want % X", tc.name, tc.got, tc.want)
		}
	}
	// A frame over 255 bytes is extended: 00 00 FF FF FF LENM LENL LCS.
	long := Frame(make([]byte, 265)...)
	if !bytes.HasPrefix(long, Hex("0000FFFFFF0109F6")) || len(long) != 265+10 {
		t.Errorf("Frame(265 bytes) starts % X, len %d", long[:8], len(long))
	}
}

func TestBusWrappers(t *testing.T) {
	if r := I2CRead(Ack(), 8); !bytes.Equal(r.R, Hex("01 0000FF00FF00 0000")) || r.Addr != Addr {
		t.Errorf("I2CRead = %+v", r)
	}
	if s := I2CStatus(false); !bytes.Equal(s.R, []byte{0}) {
		t.Errorf("I2CStatus(false) = %+v", s)
	}
	if w := SPIWrite(Ack()); !bytes.Equal(w.W, Rev(Hex("01 0000FF00FF00"))) || len(w.R) != len(w.W) {
		t.Errorf("SPIWrite = %+v", w)
	}
	if s := SPIStatus(true); !bytes.Equal(s.W, Hex("40 00")) || !bytes.Equal(s.R, Hex("00 80")) {
		t.Errorf("SPIStatus = %+v", s)
	}
	if r := SPIRead(Ack(), 7); len(r.W) != 8 || r.W[0] != 0xC0 || !bytes.Equal(Rev(r.R)[1:7], Ack()) {
		t.Errorf("SPIRead = %+v", r)
	}
}
