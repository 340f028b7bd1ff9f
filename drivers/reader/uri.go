// Package reader opens kazasu readers from a URI and wires the layers below
// into one nfc.Reader: the chip driver, the transport it needs, and — for
// host-managed ISO-DEP — the driver's raw frames with software activation
// (drivers/iso14443) and block protocol (drivers/isodep).
//
// # URIs
//
// libnfc connection strings are accepted as they are, plus kazasu's own:
//
//	pn532_uart:/dev/ttyAMA0[:baud]   PN532 on a UART (tarm/serial). The chip
//	                                 starts at 115200; baud is the rate the
//	                                 driver switches to (default 921600; give
//	                                 115200 for a Pi mini UART).
//	pn532_i2c:/dev/i2c-1             PN532 on I2C (periph.io), address 0x24.
//	pn532_spi:/dev/spidev0.0[:hz]    PN532 on SPI (periph.io), mode 0.
//	libnfc:<connstring>              any libnfc reader (build tag libnfc),
//	                                 e.g. libnfc:pn532_uart:/dev/ttyUSB0;
//	                                 "libnfc:" is libnfc's default device.
//	sim:[card,...][?key=value&...]   simulated reader and cards (below).
//
// # Simulated readers
//
// sim: places the listed simulated tokens (drivers/sim/card kinds such as
// mynumber, android, iphone, iphone-armed, juki, nonjpki, typea, or profile
// names from the compatibility table) in a simulated RF field. Keys:
//
//	via=direct       the direct simulated reader (default; fastest)
//	via=pn532_uart   kazasu's PN532 driver over a pty to the PN532 emulator
//	via=pn532_i2c    kazasu's PN532 driver over the emulator's in-process I2C
//	via=pn532_spi    kazasu's PN532 driver over the emulator's in-process SPI
//	via=libnfc       libnfc's pn532_uart driver over a pty to the emulator
//	baud=N           UART rate for via=pn532_uart, bus clock (Hz) for pn532_i2c
//	                 and pn532_spi
//	seed=S           seed of the simulated tokens (deterministic PUPIs, keys)
//	realtime=1       spend the modelled time for real (air time, host link,
//	                 card processing) instead of a virtual clock
//
// The returned Reader's Sim method gives the field, so tests, the demo and
// the compatibility lab can tap and remove tokens.
package reader

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// URI is a parsed reader URI.
type URI struct {
	Raw    string
	Driver string // pn532_uart, pn532_i2c, pn532_spi, libnfc, sim
	Path   string // device path, libnfc connstring, or sim card list
	Speed  int    // baud (UART) or Hz (SPI); 0 = default
	Query  url.Values
}

// Sim drivers for the via= key.
const (
	ViaDirect    = "direct"
	ViaPN532UART = "pn532_uart"
	ViaPN532I2C  = "pn532_i2c"
	ViaPN532SPI  = "pn532_spi"
	ViaLibnfc    = "libnfc"
)

// ParseURI parses a reader URI (see the package doc).
func ParseURI(s string) (URI, error) {
	u := URI{Raw: s}
	driver, rest, ok := strings.Cut(s, ":")
	if !ok || driver == "" {
		return u, fmt.Errorf("reader: %q: want DRIVER:PATH (pn532_uart:/dev/ttyAMA0, pn532_i2c:/dev/i2c-1, pn532_spi:/dev/spidev0.0, libnfc:CONNSTRING, sim:CARDS)", s)
	}
	u.Driver = driver
	switch driver {
	case "pn532_uart", "pn532_spi":
		path, speed, hasSpeed := strings.Cut(rest, ":")
		if path == "" {
			return u, fmt.Errorf("reader: %q: missing device path", s)
		}
		u.Path = path
		if hasSpeed {
			n, err := strconv.Atoi(speed)
			if err != nil || n <= 0 {
				return u, fmt.Errorf("reader: %q: bad speed %q", s, speed)
			}
			u.Speed = n
		}
	case "pn532_i2c":
		if rest == "" || strings.Contains(rest, ":") {
			return u, fmt.Errorf("reader: %q: want pn532_i2c:/dev/i2c-N", s)
		}
		u.Path = rest
	case "libnfc":
		u.Path = rest // may be empty: libnfc's default device
	case "sim":
		cards, q, _ := strings.Cut(rest, "?")
		u.Path = cards
		v, err := url.ParseQuery(q)
		if err != nil {
			return u, fmt.Errorf("reader: %q: %w", s, err)
		}
		for k := range v {
			switch k {
			case "via", "baud", "seed", "realtime":
			default:
				return u, fmt.Errorf("reader: %q: unknown sim key %q (want via, baud, seed, realtime)", s, k)
			}
		}
		switch v.Get("via") {
		case "", ViaDirect, ViaPN532UART, ViaPN532I2C, ViaPN532SPI, ViaLibnfc:
		default:
			return u, fmt.Errorf("reader: %q: via=%s: want direct, pn532_uart, pn532_i2c, pn532_spi or libnfc", s, v.Get("via"))
		}
		if b := v.Get("baud"); b != "" {
			n, err := strconv.Atoi(b)
			if err != nil || n <= 0 {
				return u, fmt.Errorf("reader: %q: bad baud %q", s, b)
			}
			u.Speed = n
		}
		u.Query = v
	default:
		return u, fmt.Errorf("reader: %q: unknown driver %q (want pn532_uart, pn532_i2c, pn532_spi, libnfc or sim)", s, driver)
	}
	return u, nil
}

// SimCards lists the token names of a sim: URI.
func (u URI) SimCards() []string {
	var out []string
	for _, c := range strings.Split(u.Path, ",") {
		if c = strings.TrimSpace(c); c != "" && c != "none" {
			out = append(out, c)
		}
	}
	return out
}

// Via is the sim reader path ("direct" by default).
func (u URI) Via() string {
	if v := u.Query.Get("via"); v != "" {
		return v
	}
	return ViaDirect
}

// RealTime reports whether a sim: URI asks for real-time modelling.
func (u URI) RealTime() bool {
	v := u.Query.Get("realtime")
	return v == "1" || v == "true"
}

func (u URI) String() string { return u.Raw }
