package picctest

import (
	"bytes"
	"testing"

	"kazasu/drivers/nfc"
	"kazasu/drivers/sim/rf"
)

func ex(t *testing.T, p rf.PICC, tech nfc.Tech, bits int, d ...byte) []byte {
	t.Helper()
	r, _, ok := p.Exchange(rf.Frame{Tech: tech, Data: d, Bits: bits})
	if !ok {
		return nil
	}
	return r.Data
}

func TestTypeBRules(t *testing.T) {
	c := &TypeB{ATQB: MyNumberATQB}
	c.FieldOn()
	steps := []struct {
		name string
		in   []byte
		want []byte
	}{
		{"REQB", []byte{0x05, 0x00, 0x00}, MyNumberATQB},
		{"ATTRIB, CID 1", []byte{0x1D, 1, 2, 3, 4, 0x00, 0x05, 0x01, 0x01}, []byte{0x01}},
		{"REQB while ACTIVE: silence", []byte{0x05, 0x00, 0x00}, nil},
		{"I(0) with CID", []byte{0x0A, 0x01, 0xCA, 0xFE}, []byte{0x0A, 0x01, 0xCA, 0xFE, 0x90, 0x00}},
		{"R(NAK) same block number: Rule 11", []byte{0xBA, 0x01}, []byte{0x0A, 0x01, 0xCA, 0xFE, 0x90, 0x00}},
		{"R(NAK) other block number: Rule 12", []byte{0xBB, 0x01}, []byte{0xAA, 0x01}},
		{"wrong CID: silence", []byte{0x0B, 0x02, 0x00}, nil},
		{"S(DESELECT)", []byte{0xCA, 0x01}, []byte{0xCA, 0x01}},
		{"REQB while HALT: silence", []byte{0x05, 0x00, 0x00}, nil},
		{"WUPB wakes it", []byte{0x05, 0x00, 0x08}, MyNumberATQB},
	}
	for _, s := range steps {
		if got := ex(t, c, nfc.TechB, 0, s.in...); !bytes.Equal(got, s.want) {
			t.Fatalf("%s: % X, want % X", s.name, got, s.want)
		}
	}
}

func TestTypeACascade(t *testing.T) {
	c := &TypeA{ATQA: [2]byte{0x44, 0x00}, UID: []byte{1, 2, 3, 4, 5, 6, 7}, SAK: 0x20, ATS: []byte{0x02, 0x00}}
	c.FieldOn()
	if got := ex(t, c, nfc.TechA, 7, 0x26); !bytes.Equal(got, []byte{0x44, 0x00}) {
		t.Fatalf("REQA: % X", got)
	}
	cl1 := ex(t, c, nfc.TechA, 0, 0x93, 0x20)
	if !bytes.Equal(cl1, []byte{0x88, 1, 2, 3, 0x88 ^ 1 ^ 2 ^ 3}) {
		t.Fatalf("CL1: % X", cl1)
	}
	if got := ex(t, c, nfc.TechA, 0, append([]byte{0x93, 0x70}, cl1...)...); !bytes.Equal(got, []byte{0x04}) {
		t.Fatalf("SAK 1: % X", got)
	}
	cl2 := ex(t, c, nfc.TechA, 0, 0x95, 0x20)
	if !bytes.Equal(cl2, []byte{4, 5, 6, 7, 4 ^ 5 ^ 6 ^ 7}) {
		t.Fatalf("CL2: % X", cl2)
	}
	if got := ex(t, c, nfc.TechA, 0, append([]byte{0x95, 0x70}, cl2...)...); !bytes.Equal(got, []byte{0x20}) {
		t.Fatalf("SAK 2: % X", got)
	}
	if got := ex(t, c, nfc.TechA, 0, 0xE0, 0x50); !bytes.Equal(got, []byte{0x02, 0x00}) {
		t.Fatalf("ATS: % X", got)
	}
	if got := ex(t, c, nfc.TechA, 0, 0x02, 0xAB); !bytes.Equal(got, []byte{0x02, 0xAB, 0x90, 0x00}) {
		t.Fatalf("I(0): % X", got)
	}
}
