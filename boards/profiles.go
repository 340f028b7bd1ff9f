package boards

// The profiles. Facts: shared/docs/pn532.md §3 (I2C clock stretching on
// BCM283x/2711, SPI speeds, RSTPDN/IRQ) and §7 (Pi UART: Bluetooth holds the
// PL011 on boards with wireless, serial console must be off); kernel.rpi's
// DTB names; Raspberry Pi config.txt documentation (disable-bt, uart0 on the
// Pi 5, gpio= boot states).

var (
	// Pi3BPlus is the Raspberry Pi 3 Model B+.
	Pi3BPlus = &Profile{
		ID: "pi3bplus", Name: "Raspberry Pi 3 Model B+", SoC: "BCM2837B0",
		Model: "Raspberry Pi 3 Model B Plus", DTB: "bcm2710-rpi-3-b-plus.dtb",
		Firmware: BootcodeFirmware, BluetoothOnPL011: true,
		Wirings: legacyWirings(),
	}
	// Pi4B is the Raspberry Pi 4 Model B.
	Pi4B = &Profile{
		ID: "pi4", Name: "Raspberry Pi 4 Model B", SoC: "BCM2711",
		Model: "Raspberry Pi 4 Model B", DTB: "bcm2711-rpi-4-b.dtb",
		Firmware: EEPROMFirmware4, BluetoothOnPL011: true,
		Wirings: legacyWirings(),
	}
	// Pi5 is the Raspberry Pi 5 (header GPIOs on RP1). Its Bluetooth has
	// its own UART and its debug console is ttyAMA10, so the header UART0
	// is free once enabled; its I2C controller handles clock stretching.
	Pi5 = &Profile{
		ID: "pi5", Name: "Raspberry Pi 5", SoC: "BCM2712",
		Model: "Raspberry Pi 5 Model B", DTB: "bcm2712-rpi-5-b.dtb", AltDTBs: []string{"bcm2712d0-rpi-5-b.dtb"},
		Firmware: EEPROMFirmware5, BluetoothOnPL011: false,
		Wirings: []Wiring{
			uartWiring("dtparam=uart0=on"),
			i2cWiring(100_000),
			// An Elechouse module needed a slow clock on a Pi 5 (pn532pi #17);
			// 1 MHz is libnfc's default.
			spiWiring(1_000_000),
		},
	}
	// Zero2W is the Raspberry Pi Zero 2 W.
	Zero2W = &Profile{
		ID: "pi02w", Name: "Raspberry Pi Zero 2 W", SoC: "RP3A0 (BCM2710A1)",
		Model: "Raspberry Pi Zero 2 W", DTB: "bcm2710-rpi-zero-2-w.dtb",
		Firmware: BootcodeFirmware, BluetoothOnPL011: true,
		Wirings: legacyWirings(),
	}
	// CM4 is the Compute Module 4 on a carrier exposing the standard
	// 40-pin header (CM4 IO board). Wireless variants put Bluetooth on the
	// PL011, so disable-bt is always applied.
	CM4 = &Profile{
		ID: "cm4", Name: "Raspberry Pi Compute Module 4", SoC: "BCM2711",
		Model: "Raspberry Pi Compute Module 4", DTB: "bcm2711-rpi-cm4.dtb",
		Firmware: EEPROMFirmware4, BluetoothOnPL011: true,
		Wirings: legacyWirings(),
	}
)

// All lists every profile, in a fixed order.
var All = []*Profile{Pi3BPlus, Pi4B, Pi5, Zero2W, CM4}

// ByID returns the profile with the given ID.
func ByID(id string) (*Profile, error) {
	for _, p := range All {
		if p.ID == id {
			return p, nil
		}
	}
	return nil, &UnknownBoardError{What: "board id", Value: id}
}

// legacyWirings are the wirings of the BCM2837/2710/2711 boards.
func legacyWirings() []Wiring {
	return []Wiring{
		// disable-bt returns the PL011 to GPIO14/15 as ttyAMA0.
		uartWiring("enable_uart=1", "dtoverlay=disable-bt"),
		// The BCM283x/2711 I2C master mishandles the PN532's clock
		// stretching; a 10 kHz clock is the known workaround.
		i2cWiring(10_000),
		// The PN532's SPI maximum is 5 MHz.
		spiWiring(5_000_000),
	}
}

// controlConfig sets the control pins' state from power-on, before Linux:
// the PN532 out of reset, IRQ pulled up, LED and buzzer off.
var controlConfig = []string{
	"gpio=17=op,dh", // RSTPDN high: PN532 running
	"gpio=27=ip,pu", // IRQ input, pull-up (active low)
	"gpio=22=op,dl", // LED off
	"gpio=18=op,dl", // buzzer off
}

func withControl(w Wiring, lines ...string) Wiring {
	w.ConfigTxt = append(append([]string(nil), lines...), controlConfig...)
	w.RSTPDN, w.IRQ, w.LED, w.Buzzer = PN532RST, PN532IRQ, StatusLED, Buzzer
	return w
}

func uartWiring(lines ...string) Wiring {
	return withControl(Wiring{
		Bus: UART, Device: "/dev/ttyAMA0", Baud: 115200,
		BusPins:          []NamedPin{{"TXD", UART0TXD}, {"RXD", UART0RXD}},
		SerialConsoleOff: true,
	}, lines...)
}

func i2cWiring(clock Hz) Wiring {
	return withControl(Wiring{
		Bus: I2C, Device: "/dev/i2c-1", Clock: clock, I2CAddr: PN532I2CAddr,
		BusPins: []NamedPin{{"SDA", I2C1SDA}, {"SCL", I2C1SCL}},
	}, "dtparam=i2c_arm=on", "dtparam=i2c_arm_baudrate="+itoa(int64(clock)))
}

func spiWiring(clock Hz) Wiring {
	return withControl(Wiring{
		Bus: SPI, Device: "/dev/spidev0.0", Clock: clock,
		BusPins: []NamedPin{{"CE0", SPI0CE0}, {"MISO", SPI0MISO}, {"MOSI", SPI0MOSI}, {"SCLK", SPI0SCLK}},
	}, "dtparam=spi=on")
}
