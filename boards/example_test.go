package boards_test

import (
	"fmt"

	"kazasu/boards"
)

// kazasud's reader default on a detected board: the profile's default
// (UART) wiring.
func Example() {
	p, err := boards.Match("Raspberry Pi 4 Model B Rev 1.4\x00")
	if err != nil {
		panic(err)
	}
	w := p.Default()
	fmt.Println(p.Name, w.ReaderURI(), w.GPIONames()["RSTPDN"])
	i2c, _ := p.Wiring(boards.I2C)
	fmt.Print(i2c.ConfigFragment())
	// Output:
	// Raspberry Pi 4 Model B pn532_uart:/dev/ttyAMA0:115200 GPIO17
	// dtparam=i2c_arm=on
	// dtparam=i2c_arm_baudrate=10000
	// gpio=17=op,dh
	// gpio=27=ip,pu
	// gpio=22=op,dl
	// gpio=18=op,dl
}
