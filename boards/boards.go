// Package boards holds the Raspberry Pi boards kazasu runs on as typed
// values: for each board its SoC, device tree blob and Pi firmware family,
// and for each way a PN532 can be wired to it (UART on the PL011, I2C, SPI)
// the Linux device, the bus clock, the control pins (RSTPDN, IRQ, LED,
// buzzer), the config.txt lines that enable it and whether the serial
// console must be off.
//
// The values are data, in the style of periph.io's host/rpi header tables:
// kazasud and the kazasu tool take their reader defaults from
// Wiring.ReaderURI and Wiring.Pins, and the firmware builder writes
// Wiring.ConfigTxt into the boot partition. Detect maps the running board's
// device tree model (/proc/device-tree/model) to its Profile.
//
// boards imports nothing from kazasu: it sits below the reader stack.
package boards

import (
	"fmt"
	"strings"
)

// Bus is the host interface a PN532 is strapped to (its I0/I1 pins).
type Bus int

const (
	UART Bus = iota + 1 // HSU, I0=L I1=L
	I2C                 // I0=H I1=L
	SPI                 // I0=L I1=H
)

func (b Bus) String() string {
	switch b {
	case UART:
		return "uart"
	case I2C:
		return "i2c"
	case SPI:
		return "spi"
	}
	return fmt.Sprintf("Bus(%d)", int(b))
}

// ParseBus is the inverse of Bus.String.
func ParseBus(s string) (Bus, error) {
	for _, b := range []Bus{UART, I2C, SPI} {
		if s == b.String() {
			return b, nil
		}
	}
	return 0, fmt.Errorf("boards: unknown bus %q (want uart, i2c or spi)", s)
}

// FirmwareFamily says which VideoCore boot files a board needs.
type FirmwareFamily int

const (
	// BootcodeFirmware: Pi 3B+ and Zero 2 W, bootcode.bin + start.elf/fixup.dat.
	BootcodeFirmware FirmwareFamily = iota + 1
	// EEPROMFirmware4: Pi 4B and CM4, bootloader in EEPROM + start4.elf/fixup4.dat.
	EEPROMFirmware4
	// EEPROMFirmware5: Pi 5, bootloader in EEPROM, no start*.elf on the card.
	EEPROMFirmware5
)

func (f FirmwareFamily) String() string {
	switch f {
	case BootcodeFirmware:
		return "bootcode"
	case EEPROMFirmware4:
		return "eeprom4"
	case EEPROMFirmware5:
		return "eeprom5"
	}
	return fmt.Sprintf("FirmwareFamily(%d)", int(f))
}

// BootFiles are the firmware files (from github.com/gokrazy/firmware) the boot
// partition must hold for this family, in a fixed order.
func (f FirmwareFamily) BootFiles() []string {
	switch f {
	case BootcodeFirmware:
		return []string{"bootcode.bin", "start.elf", "fixup.dat"}
	case EEPROMFirmware4:
		return []string{"start4.elf", "fixup4.dat"}
	}
	return nil
}

// Profile is one board model.
type Profile struct {
	ID    string // short name used on command lines and in bundles: "pi4"
	Name  string // marketing name: "Raspberry Pi 4 Model B"
	SoC   string // "BCM2711"
	Model string // device tree model prefix, before " Rev x.y"
	DTB   string // device tree blob in kernel.rpi: "bcm2711-rpi-4-b.dtb"
	// AltDTBs are further blobs the firmware may pick for revisions of
	// the board (the Pi 5's D0 stepping).
	AltDTBs []string
	// Firmware is the VideoCore boot file family.
	Firmware FirmwareFamily
	// BluetoothOnPL011: the on-board Bluetooth holds the PL011 (UART0)
	// unless dtoverlay=disable-bt moves it back to GPIO14/15.
	BluetoothOnPL011 bool
	// Wirings are the supported PN532 connections, UART first (the default).
	Wirings []Wiring
}

// String is the ID.
func (p *Profile) String() string { return p.ID }

// Wiring returns the profile's wiring for bus b.
func (p *Profile) Wiring(b Bus) (*Wiring, error) {
	for i := range p.Wirings {
		if p.Wirings[i].Bus == b {
			return &p.Wirings[i], nil
		}
	}
	return nil, fmt.Errorf("boards: %s has no %s wiring", p.ID, b)
}

// Default is the recommended wiring (the first one): UART, which avoids the
// BCM283x/2711 I2C clock-stretching bug and the PN532's SPI quirks.
func (p *Profile) Default() *Wiring { return &p.Wirings[0] }

// Wiring is one way a PN532 is connected to a board.
type Wiring struct {
	Bus Bus
	// Device is the Linux device node: /dev/ttyAMA0, /dev/i2c-1, /dev/spidev0.0.
	Device string
	// Baud is the UART line rate (UART only).
	Baud Baud
	// Clock is the bus clock (I2C and SPI only).
	Clock Hz
	// I2CAddr is the 7-bit I2C address (I2C only; 0x24 for a PN532).
	I2CAddr uint8
	// BusPins are the data pins the bus itself occupies, by signal name.
	BusPins []NamedPin
	// Control pins; NoGPIO when not wired.
	RSTPDN, IRQ, LED, Buzzer GPIO
	// ConfigTxt are the config.txt lines that enable the bus and set the
	// pins' boot state, in order.
	ConfigTxt []string
	// SerialConsoleOff: the kernel console must not be on the header UART
	// (no console=serial0/ttyAMA0 on the command line) because the PN532
	// owns it.
	SerialConsoleOff bool
}

// NamedPin is a signal and the GPIO carrying it.
type NamedPin struct {
	Signal string // "SDA", "TXD", "CE0", "RSTPDN", ...
	GPIO   GPIO
}

// PN532 I2C address (7-bit).
const PN532I2CAddr = 0x24

// ReaderURI is the reader address kazasud opens for this wiring:
// "pn532_uart:/dev/ttyAMA0:115200", "pn532_i2c:/dev/i2c-1",
// "pn532_spi:/dev/spidev0.0:5000000" (libnfc connstring syntax).
func (w *Wiring) ReaderURI() string {
	switch w.Bus {
	case UART:
		return fmt.Sprintf("pn532_uart:%s:%d", w.Device, int(w.Baud))
	case I2C:
		return "pn532_i2c:" + w.Device
	case SPI:
		return fmt.Sprintf("pn532_spi:%s:%d", w.Device, int64(w.Clock))
	}
	return ""
}

// Pins returns every GPIO the wiring uses, bus pins first, then the wired
// control pins (RSTPDN, IRQ, LED, BUZZER) by signal name.
func (w *Wiring) Pins() []NamedPin {
	out := append([]NamedPin(nil), w.BusPins...)
	for _, c := range []NamedPin{{"RSTPDN", w.RSTPDN}, {"IRQ", w.IRQ}, {"LED", w.LED}, {"BUZZER", w.Buzzer}} {
		if c.GPIO.Valid() {
			out = append(out, c)
		}
	}
	return out
}

// GPIONames maps the control signals to gpiochip line names ("RSTPDN" →
// "GPIO17"), for kazasud's reset/IRQ/LED/buzzer handling. Unwired signals
// are absent.
func (w *Wiring) GPIONames() map[string]string {
	m := map[string]string{}
	for _, c := range []NamedPin{{"RSTPDN", w.RSTPDN}, {"IRQ", w.IRQ}, {"LED", w.LED}, {"BUZZER", w.Buzzer}} {
		if c.GPIO.Valid() {
			m[c.Signal] = c.GPIO.Name()
		}
	}
	return m
}

// ConfigFragment is ConfigTxt joined with newlines, with a trailing newline.
func (w *Wiring) ConfigFragment() string {
	if len(w.ConfigTxt) == 0 {
		return ""
	}
	return strings.Join(w.ConfigTxt, "\n") + "\n"
}
