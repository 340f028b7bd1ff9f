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

// TestTxControlMirrorsField: CIU_TxControl's antenna bits follow the RF
// field (RFConfiguration item 01), and writing them switches it.
func TestTxControlMirrorsField(t *testing.T) {
	e := New(Options{})
	b, err := e.I2C()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	read := func() byte {
		t.Helper()
		return i2cCmd(t, b, 0x06, 0x63, 0x04)[1] // after the answer code 07
	}
	i2cCmd(t, b, 0x14, 0x01) // SAMConfiguration
	if v := read(); v != 0x80 {
		t.Fatalf("TxControl at reset %02X, want 80", v)
	}
	i2cCmd(t, b, 0x32, 0x01, 0x01) // field on
	if v := read(); v != 0x83 || !e.Field().On() {
		t.Fatalf("TxControl with the field on %02X", v)
	}
	i2cCmd(t, b, 0x08, 0x63, 0x04, 0x80) // antennas off by register
	if e.Field().On() || read() != 0x80 {
		t.Fatal("writing TxControl did not switch the field off")
	}
}
