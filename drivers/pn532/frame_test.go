package pn532

import (
	"bytes"
	"errors"
	"testing"

	"kazasu/drivers/pn532/pn532test"
)

var hx = pn532test.Hex

func TestEncodeFrame(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want []byte
	}{
		// UM0701 §6.2.1.1 / libnfc: GetFirmwareVersion.
		{"GetFirmwareVersion", hx("D402"), hx("0000FF02FED4022A00")},
		// The v1.6 answer.
		{"firmware answer", hx("D50332010607"), hx("0000FF06FAD50332010607E800")},
		// A 255-byte frame is still normal.
		{"255 bytes", bytes.Repeat([]byte{1}, 255), append(append(hx("0000FFFF01"), bytes.Repeat([]byte{1}, 255)...), 0x01, 0x00)},
	} {
		if got, err := EncodeFrame(tc.data); err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: EncodeFrame = % X, want % X", tc.name, got, tc.want)
		}
	}
	// libnfc sends a 262-byte APDU as 00 00 FF FF FF 01 09 F6 D4 40 01 …
	// (pn532.md §1, seen on the wire).
	data := append(hx("D44001"), make([]byte, 262)...)
	got, err := EncodeFrame(data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(got, hx("0000FFFFFF0109F6D44001")) || len(got) != 265+10 {
		t.Errorf("extended frame starts % X (len %d)", got[:11], len(got))
	}
	if !bytes.Equal(got, pn532test.Frame(data...)) {
		t.Error("EncodeFrame and pn532test.Frame disagree")
	}
	for _, n := range []int{0, MaxExtendedData + 1} {
		if _, err := EncodeFrame(make([]byte, n)); err == nil {
			t.Errorf("EncodeFrame(%d bytes) succeeded", n)
		}
	}
}

func TestDecodeFrame(t *testing.T) {
	fw := hx("0000FF06FAD50332010607E800")
	for _, tc := range []struct {
		name     string
		in       []byte
		want     Frame
		wantUsed int
		wantErr  error
	}{
		{"ACK", pn532test.Ack(), Frame{Type: FrameACK}, 5, nil},
		{"NACK", pn532test.Nack(), Frame{Type: FrameNACK}, 5, nil},
		{"error frame", pn532test.Err(), Frame{Type: FrameError}, 7, nil},
		{"info", fw, Frame{Type: FrameInfo, Data: hx("D50332010607")}, 12, nil},
		{"no preamble", fw[1:], Frame{Type: FrameInfo, Data: hx("D50332010607")}, 11, nil},
		{"leading junk and wake bytes", append(hx("72 55 55 00 00 00 13"), fw...), Frame{Type: FrameInfo, Data: hx("D50332010607")}, 19, nil},
		{"long preamble", append(hx("00 00 00 00"), fw...), Frame{Type: FrameInfo, Data: hx("D50332010607")}, 16, nil},
		// 00 FF followed by a bad LCS is noise: resync on the real frame.
		{"false start code", append(hx("00 FF 05 05 00"), fw...), Frame{Type: FrameInfo, Data: hx("D50332010607")}, 17, nil},
		{"extended", pn532test.ExtFrame(0xD5, 0x41, 0x00), Frame{Type: FrameInfo, Data: hx("D54100"), Extended: true}, 12, nil},
		{"bad DCS", pn532test.Corrupt(fw), Frame{}, 12, ErrChecksum},
		{"half a frame", fw[:8], Frame{}, 1, ErrIncomplete},
		{"only junk", hx("55 55 13"), Frame{}, 3, ErrIncomplete},
		{"junk ending in 00", hx("55 55 00"), Frame{}, 2, ErrIncomplete},
		{"empty", nil, Frame{}, 0, ErrIncomplete},
		// Extended length 0 or above 265 is not a frame.
		{"extended too long", append(hx("0000FFFFFF010AF5"), fw...), Frame{Type: FrameInfo, Data: hx("D50332010607")}, 20, nil},
		{"extended zero", append(hx("0000FFFFFF000000"), fw...), Frame{Type: FrameInfo, Data: hx("D50332010607")}, 20, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, used, err := DecodeFrame(tc.in)
			if !errors.Is(err, tc.wantErr) && err != tc.wantErr {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if used != tc.wantUsed {
				t.Errorf("used = %d, want %d", used, tc.wantUsed)
			}
			if f.Type != tc.want.Type || !bytes.Equal(f.Data, tc.want.Data) || f.Extended != tc.want.Extended {
				t.Errorf("frame = %v (ext %v), want %v (ext %v)", f, f.Extended, tc.want, tc.want.Extended)
			}
		})
	}
}

func TestDecodeFrameByteByByte(t *testing.T) {
	// A stream delivered one byte at a time gives the same frames.
	stream := pn532test.Cat(hx("5555000000"), pn532test.Ack(), pn532test.Rsp(0x40, 0x00, 0x90, 0x00), pn532test.Err())
	var buf []byte
	var got []Frame
	for _, b := range stream {
		buf = append(buf, b)
		for {
			f, used, err := DecodeFrame(buf)
			buf = buf[used:]
			if err == ErrIncomplete {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, f)
		}
	}
	if len(got) != 3 || got[0].Type != FrameACK || got[1].Type != FrameInfo || got[2].Type != FrameError {
		t.Fatalf("got %v", got)
	}
	if !bytes.Equal(got[1].Data, hx("D541009000")) {
		t.Fatalf("info = % X", got[1].Data)
	}
}

func TestFrameTypeString(t *testing.T) {
	for ft, want := range map[FrameType]string{FrameInfo: "info", FrameACK: "ACK", FrameNACK: "NACK", FrameError: "error", 9: "FrameType(9)"} {
		if got := ft.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", ft, got, want)
		}
	}
}

// FuzzDecodeFrame: hostile bytes never panic, never make DecodeFrame claim
// more than it was given, and a decoded frame encodes back to itself.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range [][]byte{
		pn532test.Ack(), pn532test.Nack(), pn532test.Err(),
		hx("0000FF06FAD50332010607E800"),
		pn532test.ExtFrame(0xD5, 0x41, 0x00, 0x90, 0x00),
		pn532test.Frame(append([]byte{0xD5, 0x41, 0x00}, make([]byte, 262)...)...),
		hx("5555000000000000FF"), hx("00FFFFFF0110"), hx("00FF00"), {},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		buf := in
		for steps := 0; steps <= len(in)+1; steps++ {
			fr, used, err := DecodeFrame(buf)
			if used < 0 || used > len(buf) {
				t.Fatalf("used %d of %d", used, len(buf))
			}
			if err == nil && fr.Type == FrameInfo {
				if len(fr.Data) == 0 || len(fr.Data) > MaxExtendedData {
					t.Fatalf("frame of %d bytes", len(fr.Data))
				}
				back, _, err := DecodeFrame(mustFrame(fr.Data))
				if err != nil || !bytes.Equal(back.Data, fr.Data) {
					t.Fatalf("re-encoding % X: %v % X", fr.Data, err, back.Data)
				}
			}
			if err == ErrIncomplete || used == 0 {
				return
			}
			buf = buf[used:]
		}
		t.Fatal("decoder did not make progress")
	})
}
