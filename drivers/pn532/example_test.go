package pn532_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"kazasu/drivers/nfc"
	"kazasu/drivers/pn532"
	"kazasu/drivers/serial"
)

func Example() {
	// A PN532 on the Raspberry Pi's PL011 UART, switched to 921600 baud.
	port, err := serial.Open("/dev/ttyAMA0", 115200)
	if err != nil {
		log.Fatal(err)
	}
	opts := pn532.DefaultOpts
	dev, err := pn532.NewUART(port, &opts) // dev owns port now
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	card, err := nfc.WaitForCard(ctx, dev, nfc.PollOptions{Order: []nfc.Tech{nfc.TechB, nfc.TechA}}, 100*time.Millisecond)
	if err != nil {
		log.Fatal(err)
	}
	defer card.Release(ctx)
	fmt.Println(card.Target())
	// SELECT the JPKI user authentication AP.
	rsp, err := card.Transceive(ctx, []byte{0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x00, 0x4F, 0x00, 0x02, 0x00, 0x01})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("SW %X\n", rsp[len(rsp)-2:])
}
