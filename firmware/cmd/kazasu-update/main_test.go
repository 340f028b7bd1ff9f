package main

import "testing"

func TestReaderDevice(t *testing.T) {
	for uri, want := range map[string]struct {
		dev  string
		baud int
	}{
		"pn532_uart:/dev/ttyAMA0:115200":   {"/dev/ttyAMA0", 115200},
		"pn532_i2c:/dev/i2c-1":             {"/dev/i2c-1", 0},
		"pn532_spi:/dev/spidev0.0:5000000": {"/dev/spidev0.0", 5000000},
		"junk":                             {"", 0},
	} {
		dev, baud := readerDevice(boardFile{ReaderURI: uri})
		if dev != want.dev || baud != want.baud {
			t.Errorf("%s: %s %d", uri, dev, baud)
		}
	}
}
