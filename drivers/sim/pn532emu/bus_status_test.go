package pn532emu

import (
	"bytes"
	"testing"
)

// TestI2CStatusPollKeepsFrame: a one-byte read is a status poll (Adafruit's
// isready, pn532.md §3); the frame stays for the next, longer read.
func TestI2CStatusPollKeepsFrame(t *testing.T) {
	e := New(Options{})
	b, err := e.I2C()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Tx(I2CAddr, frame(0x02), nil); err != nil { // GetFirmwareVersion
		t.Fatal(err)
	}
	st := make([]byte, 1)
	pollUntil(t, "status", func() bool {
		if err := b.Tx(I2CAddr, nil, st); err != nil {
			t.Fatal(err)
		}
		return st[0] == 0x01
	})
	for i := 0; i < 3; i++ { // polling again changes nothing
		if err := b.Tx(I2CAddr, nil, st); err != nil || st[0] != 0x01 {
			t.Fatalf("status poll %d: % X %v", i, st, err)
		}
	}
	r := make([]byte, 7)
	if err := b.Tx(I2CAddr, nil, r); err != nil {
		t.Fatal(err)
	}
	if r[0] != 0x01 || !bytes.Equal(r[1:], ACKFrame) {
		t.Fatalf("ACK after status polls: % X", r)
	}
}
