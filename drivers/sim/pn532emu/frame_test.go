package pn532emu

import (
	"bytes"
	"testing"
)

func TestEncodeFrame(t *testing.T) {
	tests := []struct {
		name string
		tfi  byte
		pd   []byte
		want []byte
	}{
		{"GetFirmwareVersion (UM example)", tfiHost, []byte{0x02}, []byte{0x00, 0x00, 0xFF, 0x02, 0xFE, 0xD4, 0x02, 0x2A, 0x00}},
		{"its answer from a v1.6 chip", tfiChip, []byte{0x03, 0x32, 0x01, 0x06, 0x07}, []byte{0x00, 0x00, 0xFF, 0x06, 0xFA, 0xD5, 0x03, 0x32, 0x01, 0x06, 0x07, 0xE8, 0x00}},
		{"SAMConfiguration as libnfc sends it", tfiHost, []byte{0x14, 0x01}, []byte{0x00, 0x00, 0xFF, 0x03, 0xFD, 0xD4, 0x14, 0x01, 0x17, 0x00}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeFrame(tt.tfi, tt.pd)
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Fatalf("EncodeFrame = % X, %v; want % X", got, err, tt.want)
			}
		})
	}
	// 254 PD bytes still fit a normal frame; 255 need the extended form.
	for _, n := range []int{254, 255, 264} {
		f, err := EncodeFrame(tfiChip, make([]byte, n))
		if err != nil {
			t.Fatal(err)
		}
		ext := f[3] == 0xFF && f[4] == 0xFF
		if ext != (n > 254) {
			t.Errorf("%d PD bytes: extended=%v", n, ext)
		}
		// libnfc's overheads: 8 bytes for a normal frame, 11 for an extended one.
		if want := n + 8 + map[bool]int{true: 3}[ext]; len(f) != want {
			t.Errorf("%d PD bytes: frame of %d bytes, want %d", n, len(f), want)
		}
	}
	// libnfc's 262-byte APDU example: 00 00 FF FF FF 01 09 F6 D4 40 01 …
	f, _ := EncodeFrame(tfiHost, append([]byte{0x40, 0x01}, make([]byte, 262)...))
	if !bytes.HasPrefix(f, []byte{0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x01, 0x09, 0xF6, 0xD4, 0x40, 0x01}) {
		t.Errorf("extended frame starts % X", f[:11])
	}
	if _, err := EncodeFrame(tfiChip, make([]byte, MaxPD+1)); err == nil {
		t.Error("EncodeFrame accepted 265 PD bytes")
	}
}

func TestParser(t *testing.T) {
	gfv := frame(0x02)
	ext := []byte{0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x00, 0x02, 0xFE, 0xD4, 0x02, 0x2A, 0x00}
	badLCS := []byte{0x00, 0x00, 0xFF, 0x02, 0xFD, 0xD4, 0x02, 0x2A, 0x00}
	badDCS := []byte{0x00, 0x00, 0xFF, 0x02, 0xFE, 0xD4, 0x02, 0x2B, 0x00}
	type ev struct {
		kind hostEventKind
		data []byte
	}
	frameEv := ev{evFrame, []byte{0xD4, 0x02}}
	tests := []struct {
		name string
		in   [][]byte
		want []ev
	}{
		{"normal frame", [][]byte{gfv}, []ev{frameEv}},
		{"extended form of a short frame", [][]byte{ext}, []ev{frameEv}},
		{"ACK", [][]byte{ACKFrame}, []ev{{kind: evACK}}},
		{"NACK", [][]byte{NACKFrame}, []ev{{kind: evNACK}}},
		{"libnfc wake-up back to back", [][]byte{append([]byte{0x55, 0x55, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, gfv...)}, []ev{frameEv}},
		{"stray byte before a frame", [][]byte{append([]byte{0x72}, gfv...)}, []ev{frameEv}},
		{"no preamble or postamble", [][]byte{gfv[1 : len(gfv)-1]}, []ev{frameEv}},
		{"one byte at a time", split(gfv), []ev{frameEv}},
		{"bad LCS, then a good frame", [][]byte{badLCS, gfv}, []ev{{kind: evBadFrame}, frameEv}},
		{"bad DCS, then a good frame", [][]byte{badDCS, gfv}, []ev{{kind: evBadFrame}, frameEv}},
		{"extended length 0", [][]byte{{0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00}, gfv}, []ev{{kind: evBadFrame}, frameEv}},
		{"extended length 266", [][]byte{{0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x01, 0x0A, 0xF5}, gfv}, []ev{{kind: evBadFrame}, frameEv}},
		{"ACK then frame in one write", [][]byte{append(append([]byte(nil), ACKFrame...), gfv...)}, []ev{{kind: evACK}, frameEv}},
		{"junk only", [][]byte{{0x55, 0x12, 0xFF, 0x00}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p parser
			var got []hostEvent
			for _, b := range tt.in {
				got = append(got, p.feed(b)...)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d events %v, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if got[i].kind != tt.want[i].kind || !bytes.Equal(got[i].data, tt.want[i].data) {
					t.Errorf("event %d = %v % X, want %v % X", i, got[i].kind, got[i].data, tt.want[i].kind, tt.want[i].data)
				}
			}
		})
	}
}

func split(b []byte) [][]byte {
	var out [][]byte
	for i := range b {
		out = append(out, b[i:i+1])
	}
	return out
}

func TestParserIdleDropsIncompleteFrame(t *testing.T) {
	var p parser
	// An extended header announcing 264 bytes, then silence.
	if evs := p.feed([]byte{0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x01, 0x08, 0xF7, 0xD4}); len(evs) != 0 {
		t.Fatalf("events before the frame is complete: %v", evs)
	}
	if !p.pending() {
		t.Fatal("pending() = false with a frame in progress")
	}
	evs := p.idle()
	if len(evs) != 1 || evs[0].kind != evBadFrame {
		t.Fatalf("idle() = %v", evs)
	}
	evs = p.feed(frame(0x02))
	if len(evs) != 1 || evs[0].kind != evFrame {
		t.Fatalf("after idle, a good frame gives %v", evs)
	}
}

func TestEnumStrings(t *testing.T) {
	for _, s := range []interface{ String() string }{LowVbat, Normal, PowerDown, PowerState(9), LinkHSU, LinkI2C, LinkSPI, Link(0),
		evFrame, evACK, evNACK, evBadFrame, hostEventKind(0), FaultChecksum, FaultRxChecksum, FaultDrop, FaultACKDelay, FaultNoACK, FaultGone, FaultKind(0)} {
		if s.String() == "" {
			t.Errorf("%#v has an empty String()", s)
		}
	}
}
