package simreader_test

import (
	"context"
	"fmt"

	"kazasu/drivers/apdu"
	"kazasu/drivers/nfc"
	"kazasu/drivers/sim/card"
	"kazasu/drivers/sim/rf"
	"kazasu/drivers/sim/simreader"
)

// A simulated My Number Card tapped on the direct simulated reader.
func Example() {
	tok, err := card.New(card.KindMyNumber, card.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	field := &rf.Field{}
	field.Add(tok)
	r := simreader.New(field, simreader.Options{})
	c, err := r.Poll(context.Background(), nfc.PollOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = apdu.Transmit(context.Background(), c, apdu.Command{INS: 0xA4, P1: 0x04, P2: 0x0C, Data: []byte{0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01}})
	fmt.Println(c.Target().Tech, c.Target().FSC, err)
	// Output: B 256 <nil>
}
