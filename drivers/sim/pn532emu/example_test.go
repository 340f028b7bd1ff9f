package pn532emu_test

import (
	"fmt"
	"time"

	"kazasu/drivers/sim/pn532emu"
	"kazasu/drivers/sim/pn532emu/picctest"
	"kazasu/drivers/sim/rf"
)

// The emulated chip on I2C, driven the way libnfc's pn532_i2c does it:
// write a frame, poll reads until the ready byte is 01.
func Example_i2c() {
	field := &rf.Field{}
	field.Add(&picctest.TypeB{ATQB: picctest.MyNumberATQB})
	chip := pn532emu.New(pn532emu.Options{Field: field})
	bus, err := chip.I2C()
	if err != nil {
		panic(err)
	}
	defer bus.Close()

	exchange := func(pd ...byte) []byte {
		f, _ := pn532emu.EncodeFrame(0xD4, pd)
		if err := bus.Tx(pn532emu.I2CAddr, f, nil); err != nil {
			panic(err)
		}
		var frames [][]byte
		for len(frames) < 2 { // the ACK, then the answer
			r := make([]byte, 1+pn532emu.MaxPD+11)
			if err := bus.Tx(pn532emu.I2CAddr, nil, r); err != nil {
				panic(err)
			}
			if r[0] == 0x01 {
				frames = append(frames, r[1:])
				continue
			}
			time.Sleep(100 * time.Microsecond)
		}
		ans := frames[1]
		return ans[6 : 5+int(ans[3])] // PD after TFI
	}
	fmt.Printf("% X\n", exchange(0x14, 0x01))
	fmt.Printf("% X\n", exchange(0x02))
	fmt.Printf("% X\n", exchange(0x4A, 0x01, 0x03, 0x00))
	// Output:
	// 15
	// 03 32 01 06 07
	// 4B 01 01 50 01 02 03 04 00 00 05 E0 B3 81 A1 01 01
}
