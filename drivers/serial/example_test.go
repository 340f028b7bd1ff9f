package serial_test

import (
	"errors"
	"fmt"
	"log"
	"time"

	"kazasu/drivers/nfc"
	"kazasu/drivers/serial"
)

func Example() {
	port, err := serial.Open("/dev/ttyAMA0", 115200)
	if err != nil {
		log.Fatal(err)
	}
	defer port.Close()
	if err := port.SetReadTimeout(50 * time.Millisecond); err != nil {
		log.Fatal(err)
	}
	if _, err := port.Write([]byte{0x55, 0x55, 0x00, 0x00}); err != nil {
		log.Fatal(err)
	}
	b := make([]byte, 64)
	n, err := port.Read(b)
	switch {
	case errors.Is(err, serial.ErrTimeout):
		fmt.Println("nothing within 50 ms")
	case errors.Is(err, nfc.ErrReaderGone):
		fmt.Println("adapter unplugged; Reopen when it is back")
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Printf("% X\n", b[:n])
	}
}
