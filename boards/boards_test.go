package boards

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

func eachWiring(t *testing.T, f func(t *testing.T, p *Profile, w *Wiring)) {
	t.Helper()
	for _, p := range All {
		for i := range p.Wirings {
			w := &p.Wirings[i]
			t.Run(p.ID+"/"+w.Bus.String(), func(t *testing.T) { f(t, p, w) })
		}
	}
}

func TestEveryProfileHasEveryBus(t *testing.T) {
	if len(All) != 5 {
		t.Fatalf("%d profiles, want 5 (Pi 3B+, 4B, 5, Zero 2 W, CM4)", len(All))
	}
	ids := map[string]bool{}
	for _, p := range All {
		if ids[p.ID] {
			t.Errorf("duplicate profile id %q", p.ID)
		}
		ids[p.ID] = true
		for _, b := range []Bus{UART, I2C, SPI} {
			if _, err := p.Wiring(b); err != nil {
				t.Error(err)
			}
		}
		if len(p.Wirings) != 3 {
			t.Errorf("%s: %d wirings, want 3", p.ID, len(p.Wirings))
		}
		if p.Default().Bus != UART {
			t.Errorf("%s: default wiring is %s, want uart", p.ID, p.Default().Bus)
		}
		if q, err := ByID(p.ID); err != nil || q != p {
			t.Errorf("ByID(%q) = %v, %v", p.ID, q, err)
		}
	}
	var ube *UnknownBoardError
	if _, err := ByID("pi2"); !errors.As(err, &ube) {
		t.Errorf("ByID(pi2) error = %v, want *UnknownBoardError", err)
	}
}

func TestNoPinUsedTwice(t *testing.T) {
	eachWiring(t, func(t *testing.T, p *Profile, w *Wiring) {
		seen := map[GPIO]string{}
		for _, np := range w.Pins() {
			if !np.GPIO.Valid() {
				t.Errorf("%s on invalid GPIO %d", np.Signal, np.GPIO)
			}
			if prev, ok := seen[np.GPIO]; ok {
				t.Errorf("%s used twice: %s and %s", np.GPIO, prev, np.Signal)
			}
			seen[np.GPIO] = np.Signal
		}
		if len(w.Pins()) != len(w.BusPins)+4 {
			t.Errorf("Pins() = %v: want bus pins + RSTPDN, IRQ, LED, BUZZER", w.Pins())
		}
	})
}

// The bus pins each bus must use on the 40-pin header.
var wantBusPins = map[Bus]map[string]GPIO{
	UART: {"TXD": 14, "RXD": 15},
	I2C:  {"SDA": 2, "SCL": 3},
	SPI:  {"CE0": 8, "MISO": 9, "MOSI": 10, "SCLK": 11},
}

func TestPinsMatchBus(t *testing.T) {
	eachWiring(t, func(t *testing.T, p *Profile, w *Wiring) {
		want := wantBusPins[w.Bus]
		if len(w.BusPins) != len(want) {
			t.Fatalf("bus pins %v, want %v", w.BusPins, want)
		}
		for _, np := range w.BusPins {
			if g, ok := want[np.Signal]; !ok || g != np.GPIO {
				t.Errorf("%s on %s, want %v", np.Signal, np.GPIO, want)
			}
		}
		// Control pins must not sit on any header bus a technician might
		// enable later (I2C1, SPI0 incl. CE1, UART0).
		reserved := map[GPIO]bool{2: true, 3: true, 7: true, 8: true, 9: true, 10: true, 11: true, 14: true, 15: true}
		for _, g := range []GPIO{w.RSTPDN, w.IRQ, w.LED, w.Buzzer} {
			if reserved[g] {
				t.Errorf("control pin on bus pin %s", g)
			}
		}
	})
}

func TestHeaderPinTable(t *testing.T) {
	seen := map[int]GPIO{}
	for g := GPIO(0); g <= 27; g++ {
		h := g.HeaderPin()
		if h < 1 || h > 40 {
			t.Errorf("%s: header pin %d", g.Name(), h)
		}
		if prev, ok := seen[h]; ok {
			t.Errorf("header pin %d for both %s and %s", h, prev.Name(), g.Name())
		}
		seen[h] = g
	}
	for g, want := range map[GPIO]string{17: "GPIO17 (pin 11)", 14: "GPIO14 (pin 8)", NoGPIO: "none", 28: "none"} {
		if got := g.String(); got != want {
			t.Errorf("GPIO(%d).String() = %q, want %q", int(g), got, want)
		}
	}
}

func TestReaderURI(t *testing.T) {
	want := map[string]string{
		"pi3bplus/uart": "pn532_uart:/dev/ttyAMA0:115200",
		"pi3bplus/i2c":  "pn532_i2c:/dev/i2c-1",
		"pi3bplus/spi":  "pn532_spi:/dev/spidev0.0:5000000",
		"pi4/uart":      "pn532_uart:/dev/ttyAMA0:115200",
		"pi4/i2c":       "pn532_i2c:/dev/i2c-1",
		"pi4/spi":       "pn532_spi:/dev/spidev0.0:5000000",
		"pi5/uart":      "pn532_uart:/dev/ttyAMA0:115200",
		"pi5/i2c":       "pn532_i2c:/dev/i2c-1",
		"pi5/spi":       "pn532_spi:/dev/spidev0.0:1000000",
		"pi02w/uart":    "pn532_uart:/dev/ttyAMA0:115200",
		"pi02w/i2c":     "pn532_i2c:/dev/i2c-1",
		"pi02w/spi":     "pn532_spi:/dev/spidev0.0:5000000",
		"cm4/uart":      "pn532_uart:/dev/ttyAMA0:115200",
		"cm4/i2c":       "pn532_i2c:/dev/i2c-1",
		"cm4/spi":       "pn532_spi:/dev/spidev0.0:5000000",
	}
	n := 0
	eachWiring(t, func(t *testing.T, p *Profile, w *Wiring) {
		n++
		if got := w.ReaderURI(); got != want[p.ID+"/"+w.Bus.String()] {
			t.Errorf("ReaderURI() = %q, want %q", got, want[p.ID+"/"+w.Bus.String()])
		}
		names := w.GPIONames()
		if names["RSTPDN"] != "GPIO17" || names["IRQ"] != "GPIO27" || names["LED"] != "GPIO22" || names["BUZZER"] != "GPIO18" || len(names) != 4 {
			t.Errorf("GPIONames() = %v", names)
		}
	})
	if n != len(want) {
		t.Errorf("%d wirings, want %d", n, len(want))
	}
}

var gpioLine = regexp.MustCompile(`^gpio=(\d+)=(op,dh|op,dl|ip,pu|ip,pd)$`)

func TestConfigTxt(t *testing.T) {
	eachWiring(t, func(t *testing.T, p *Profile, w *Wiring) {
		has := func(line string) bool {
			for _, l := range w.ConfigTxt {
				if l == line {
					return true
				}
			}
			return false
		}
		if w.SerialConsoleOff != (w.Bus == UART) {
			t.Errorf("SerialConsoleOff = %v on %s", w.SerialConsoleOff, w.Bus)
		}
		switch w.Bus {
		case UART:
			if p.BluetoothOnPL011 != has("dtoverlay=disable-bt") {
				t.Errorf("Bluetooth on PL011 = %v but disable-bt present = %v", p.BluetoothOnPL011, has("dtoverlay=disable-bt"))
			}
			if !has("enable_uart=1") && !has("dtparam=uart0=on") {
				t.Error("UART wiring does not enable the UART")
			}
			if w.Baud != 115200 {
				t.Errorf("baud %v", w.Baud)
			}
		case I2C:
			if !has("dtparam=i2c_arm=on") || !has("dtparam=i2c_arm_baudrate="+strconv.FormatInt(int64(w.Clock), 10)) {
				t.Errorf("I2C lines missing or clock mismatch in %q", w.ConfigTxt)
			}
			if w.I2CAddr != 0x24 {
				t.Errorf("I2C address %#x", w.I2CAddr)
			}
			if w.Clock <= 0 || w.Clock > 400_000 {
				t.Errorf("I2C clock %v out of the PN532's range", w.Clock)
			}
		case SPI:
			if !has("dtparam=spi=on") {
				t.Error("SPI not enabled")
			}
			if w.Clock <= 0 || w.Clock > 5_000_000 {
				t.Errorf("SPI clock %v out of the PN532's range", w.Clock)
			}
		}
		// Every wired control pin has exactly one gpio= line, and the
		// lines name only control pins.
		ctl := map[GPIO]string{w.RSTPDN: "op,dh", w.IRQ: "ip,pu", w.LED: "op,dl", w.Buzzer: "op,dl"}
		got := map[GPIO]string{}
		for _, l := range w.ConfigTxt {
			if !strings.HasPrefix(l, "gpio=") {
				continue
			}
			m := gpioLine.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("malformed %q", l)
				continue
			}
			n, _ := strconv.Atoi(m[1])
			if _, dup := got[GPIO(n)]; dup {
				t.Errorf("GPIO%d set twice", n)
			}
			got[GPIO(n)] = m[2]
		}
		if fmt.Sprint(got) != fmt.Sprint(ctl) {
			t.Errorf("gpio= lines %v, want %v", got, ctl)
		}
		if !strings.HasSuffix(w.ConfigFragment(), "\n") || strings.Count(w.ConfigFragment(), "\n") != len(w.ConfigTxt) {
			t.Errorf("ConfigFragment() = %q", w.ConfigFragment())
		}
	})
}

func TestMatch(t *testing.T) {
	for model, want := range map[string]string{
		"Raspberry Pi 3 Model B Plus Rev 1.3\x00":    "pi3bplus",
		"Raspberry Pi 4 Model B Rev 1.4\x00":         "pi4",
		"Raspberry Pi 4 Model B Rev 1.5":             "pi4",
		"Raspberry Pi 5 Model B Rev 1.0\x00":         "pi5",
		"Raspberry Pi Zero 2 W Rev 1.0\x00":          "pi02w",
		"Raspberry Pi Compute Module 4 Rev 1.0\x00":  "cm4",
		"Raspberry Pi Compute Module 4 Rev 1.1\n":    "cm4",
		"Raspberry Pi 3 Model B Rev 1.2\x00":         "",
		"Raspberry Pi Compute Module 4S Rev 1.0\x00": "",
		"Raspberry Pi 400 Rev 1.0\x00":               "",
		"Raspberry Pi 4 Model BX":                    "",
		"QEMU":                                       "",
		"":                                           "",
	} {
		p, err := Match(model)
		switch {
		case want == "" && err == nil:
			t.Errorf("Match(%q) = %s, want error", model, p.ID)
		case want == "" && !strings.Contains(err.Error(), "unsupported device tree model"):
			t.Errorf("Match(%q) error %q is not clear", model, err)
		case want != "" && (err != nil || p.ID != want):
			t.Errorf("Match(%q) = %v, %v; want %s", model, p, err, want)
		}
	}
}

func TestDetect(t *testing.T) {
	fsys := fstest.MapFS{"proc/device-tree/model": {Data: []byte("Raspberry Pi Zero 2 W Rev 1.0\x00")}}
	if p, err := Detect(fsys); err != nil || p != Zero2W {
		t.Fatalf("Detect = %v, %v", p, err)
	}
	if _, err := Detect(fstest.MapFS{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Detect on empty fs: %v, want ErrNotExist", err)
	}
	bad := fstest.MapFS{"proc/device-tree/model": {Data: []byte("Raspberry Pi 4 Model B\x00Rev")}}
	if _, err := Detect(bad); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("embedded NUL: %v", err)
	}
}

func TestStrings(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{Hz(10_000).String(), "10kHz"}, {Hz(5_000_000).String(), "5MHz"}, {Hz(1500).String(), "1500Hz"},
		{Baud(115200).String(), "115200 baud"}, {UART.String(), "uart"}, {Bus(9).String(), "Bus(9)"},
		{EEPROMFirmware4.String(), "eeprom4"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	for _, b := range []Bus{UART, I2C, SPI} {
		if got, err := ParseBus(b.String()); err != nil || got != b {
			t.Errorf("ParseBus(%s) = %v, %v", b, got, err)
		}
	}
	if _, err := ParseBus("usb"); err == nil {
		t.Error("ParseBus(usb) accepted")
	}
}

func FuzzMatch(f *testing.F) {
	for _, p := range All {
		f.Add(p.Model + " Rev 1.0\x00")
	}
	f.Add("Raspberry Pi")
	f.Fuzz(func(t *testing.T, model string) {
		p, err := Match(model)
		if err == nil && !strings.HasPrefix(model, p.Model) {
			t.Fatalf("Match(%q) = %s", model, p.ID)
		}
	})
}
