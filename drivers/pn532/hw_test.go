package pn532_test

// Opt-in tests on real hardware (skipped unless a flag names a reader):
//
//	go test ./drivers/pn532 -run Hardware -pn532.uart=/dev/ttyAMA0 -v
//	go test ./drivers/pn532 -run Hardware -pn532.i2c=1 -v
//	go test ./drivers/pn532 -run Hardware -pn532.spi=/dev/spidev0.0 -v
//
// With -pn532.record the UART session is printed as a serialtest script,
// ready to paste into a transcript test.

import (
	"context"
	"flag"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/host/v3"

	"kazasu/drivers/nfc"
	"kazasu/drivers/pn532"
	"kazasu/drivers/serial"
	"kazasu/drivers/serial/serialtest"
)

var (
	hwUART   = flag.String("pn532.uart", "", "serial device of a PN532 on HSU")
	hwI2C    = flag.String("pn532.i2c", "", "I2C bus of a PN532 (e.g. 1)")
	hwSPI    = flag.String("pn532.spi", "", "SPI port of a PN532 (e.g. /dev/spidev0.0)")
	hwBaud   = flag.Int("pn532.baud", 921600, "HSU rate to switch to")
	hwRecord = flag.Bool("pn532.record", false, "print the UART session as a serialtest script")
	hwWait   = flag.Duration("pn532.wait", 10*time.Second, "how long to wait for a card")
)

func TestHardware(t *testing.T) {
	if *hwUART == "" && *hwI2C == "" && *hwSPI == "" {
		t.Skip("no reader named: -pn532.uart, -pn532.i2c or -pn532.spi")
	}
	var d *pn532.Dev
	var err error
	switch {
	case *hwUART != "":
		tty, err := serial.Open(*hwUART, 115200)
		if err != nil {
			t.Fatal(err)
		}
		var port serial.Port = tty
		if *hwRecord {
			rec := &serialtest.Record{Port: tty}
			port = rec
			defer func() { t.Logf("script:\n%v", rec) }()
		}
		d, err = pn532.NewUART(port, &pn532.Opts{Baud: *hwBaud})
		if err != nil {
			t.Fatal(err)
		}
	case *hwI2C != "":
		if _, err := host.Init(); err != nil {
			t.Fatal(err)
		}
		bus, err := i2creg.Open(*hwI2C)
		if err != nil {
			t.Fatal(err)
		}
		defer bus.Close()
		if d, err = pn532.NewI2C(bus, nil); err != nil {
			t.Fatal(err)
		}
	default:
		if _, err := host.Init(); err != nil {
			t.Fatal(err)
		}
		port, err := spireg.Open(*hwSPI)
		if err != nil {
			t.Fatal(err)
		}
		defer port.Close()
		if d, err = pn532.NewSPI(port, nil); err != nil {
			t.Fatal(err)
		}
	}
	defer d.Close()
	t.Logf("%v: %+v, %v baud", d, d.Info(), d.Baud())
	ctx, cancel := context.WithTimeout(context.Background(), *hwWait)
	defer cancel()
	card, err := nfc.WaitForCard(ctx, d, nfc.PollOptions{}, 100*time.Millisecond)
	if err != nil {
		t.Skipf("no card within %v: %v", *hwWait, err)
	}
	t.Logf("card: %v", card.Target())
	start := time.Now()
	// SELECT the JPKI user authentication AP (a My Number Card answers
	// 90 00; other cards 6A 82).
	rsp, err := card.Transceive(ctx, []byte{0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x00, 0x4F, 0x00, 0x02, 0x00, 0x01})
	t.Logf("SELECT: % X, %v (%v)", rsp, err, time.Since(start))
	if err := card.Present(ctx); err != nil {
		t.Errorf("Present: %v", err)
	}
	if err := card.Release(ctx); err != nil {
		t.Errorf("Release: %v", err)
	}
}
