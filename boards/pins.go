package boards

import (
	"fmt"
	"strconv"
)

// GPIO is a Broadcom (BCM) GPIO number as the Linux gpiochip and periph.io
// name it (GPIO17), not a physical header position. NoGPIO marks an optional
// signal that is not wired.
type GPIO int

// NoGPIO means "not connected".
const NoGPIO GPIO = -1

// Valid reports whether g is a header GPIO (0-27, the same numbers on every
// supported board, including the Pi 5 where RP1 drives the header).
func (g GPIO) Valid() bool { return g >= 0 && g <= 27 }

// Name is the periph.io / gpiochip line name, "GPIO17"; "" for NoGPIO.
func (g GPIO) Name() string {
	if !g.Valid() {
		return ""
	}
	return "GPIO" + strconv.Itoa(int(g))
}

// HeaderPin is the physical position on the 40-pin header (1-40), 0 if g is
// not on the header.
func (g GPIO) HeaderPin() int {
	if !g.Valid() {
		return 0
	}
	return headerPin[g]
}

// String is "GPIO17 (pin 11)", or "none".
func (g GPIO) String() string {
	if !g.Valid() {
		return "none"
	}
	return fmt.Sprintf("%s (pin %d)", g.Name(), g.HeaderPin())
}

// headerPin maps BCM GPIO 0-27 to the 40-pin header position; identical on
// the Pi 3B+, 4B, 5, Zero 2 W and the CM4 IO board's header.
var headerPin = [28]int{
	0: 27, 1: 28, 2: 3, 3: 5, 4: 7, 5: 29, 6: 31, 7: 26, 8: 24, 9: 21,
	10: 19, 11: 23, 12: 32, 13: 33, 14: 8, 15: 10, 16: 36, 17: 11, 18: 12,
	19: 35, 20: 38, 21: 40, 22: 15, 23: 16, 24: 18, 25: 22, 26: 37, 27: 13,
}

// The bus pins of the header's default peripherals (ALT0 functions; the Pi 5
// routes the same functions to the same pins through RP1).
const (
	I2C1SDA   GPIO = 2  // I2C1 SDA, pin 3
	I2C1SCL   GPIO = 3  // I2C1 SCL, pin 5
	SPI0CE0   GPIO = 8  // SPI0 CE0_N, pin 24
	SPI0MISO  GPIO = 9  // SPI0 MISO, pin 21
	SPI0MOSI  GPIO = 10 // SPI0 MOSI, pin 19
	SPI0SCLK  GPIO = 11 // SPI0 SCLK, pin 23
	UART0TXD  GPIO = 14 // UART0 (PL011) TXD, pin 8
	UART0RXD  GPIO = 15 // UART0 (PL011) RXD, pin 10
	PN532RST  GPIO = 17 // RSTPDN, pin 11: plain output, held high by config.txt
	PN532IRQ  GPIO = 27 // P70_IRQ, pin 13: input, active low
	StatusLED GPIO = 22 // status LED, pin 15: output, active high
	Buzzer    GPIO = 18 // buzzer, pin 12: PWM0-capable output
)

// Hz is a clock frequency in hertz.
type Hz int64

// String is "400kHz", "5MHz", "115200Hz".
func (f Hz) String() string {
	switch {
	case f >= 1_000_000 && f%1_000_000 == 0:
		return strconv.FormatInt(int64(f/1_000_000), 10) + "MHz"
	case f >= 1000 && f%1000 == 0:
		return strconv.FormatInt(int64(f/1000), 10) + "kHz"
	}
	return strconv.FormatInt(int64(f), 10) + "Hz"
}

// Baud is a UART line rate in bits per second.
type Baud int

func (b Baud) String() string { return strconv.Itoa(int(b)) + " baud" }
