package card_test

import (
	"fmt"

	"kazasu/drivers/nfc"
	"kazasu/drivers/sim/card"
	"kazasu/drivers/sim/rf"
)

// A My Number Card tapped on a simulated field, activated by hand and asked
// for its token label.
func Example() {
	tok, err := card.New(card.KindMyNumber, card.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	var field rf.Field
	field.SetOn(true)
	field.Add(tok) // the tap

	atqb := field.Exchange(rf.Frame{Tech: nfc.TechB, Data: []byte{0x05, 0x00, 0x08}})[0].Frame.Data
	fmt.Printf("ATQB protocol info % X\n", atqb[9:12])

	attrib := append([]byte{0x1D}, atqb[1:5]...)
	attrib = append(attrib, 0x00, 0x08, 0x01, 0x00) // FSD 256, no CID
	field.Exchange(rf.Frame{Tech: nfc.TechB, Data: attrib})

	// At APDU level, through the applet.
	a := tok.Applet()
	a.Process([]byte{0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01})
	a.Process([]byte{0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x06})
	resp, _ := a.Process([]byte{0x00, 0xB0, 0x00, 0x00, 0x0F})
	fmt.Printf("%s %X\n", resp[:15], resp[15:])

	resp, _ = a.Process([]byte{0x00, 0x20, 0x00, 0x98}) // auth PIN retry counter
	fmt.Printf("%X\n", resp)
	// Output:
	// ATQB protocol info B3 81 A1
	// JPKIAPICCTOKEN2 9000
	// 63C3
}
