package iso14443_test

import (
	"fmt"

	"kazasu/drivers/iso14443"
)

// Decoding the ATQB of a My Number Card (protocol info B3 81 A1).
func Example() {
	atqb, err := iso14443.ParseATQB([]byte{0x50, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x05, 0xE0, 0xB3, 0x81, 0xA1})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(atqb)
	attrib := iso14443.Attrib{PUPI: atqb.PUPI, FSDI: iso14443.DefaultFSDI, ProtocolType: atqb.ProtocolType}
	fmt.Printf("% X\n", iso14443.AppendCRCB(attrib.Bytes()))
	// Output:
	// PUPI 11223344 app 000005E0 FSC 256 FWT 309.3145ms ISO-DEP rates 106,212,424/106,212,424 same CID
	// 1D 11 22 33 44 00 08 01 00 DB 35
}

func ExampleCascadeLevels() {
	levels, _ := iso14443.CascadeLevels([]byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66})
	for i, cln := range levels {
		sel, _ := iso14443.SelectCmd(i+1, cln)
		fmt.Printf("% X\n", sel)
	}
	// Output:
	// 93 70 88 04 11 22 BF
	// 95 70 33 44 55 66 44
}
