package isodep_test

import (
	"context"
	"fmt"
	"time"

	"kazasu/drivers/isodep"
)

// loop connects a PCD to a PICC in memory.
type loop struct{ picc *isodep.PICC }

func (l loop) TransceiveRaw(_ context.Context, frame []byte, _ time.Duration) ([]byte, error) {
	resp, _, _ := l.picc.HandleBlock(frame)
	return resp, nil
}

// A PCD and a PICC with small frames: the command and the response are
// both chained.
func Example() {
	picc := isodep.NewPICC(isodep.PICCConfig{FSC: 16, FSD: 16, CID: -1}, func(apdu []byte) ([]byte, time.Duration) {
		return append(make([]byte, 20), 0x90, 0x00), 0
	})
	pcd := isodep.NewPCD(loop{picc}, isodep.Params{FSC: 16, FSD: 16, CID: -1})
	resp, err := pcd.Transceive(context.Background(), []byte{0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01})
	fmt.Println(len(resp), err)
	for _, b := range [][]byte{{0x12, 0x00}, {0xA2}, {0xF2, 0x05}} {
		blk, _ := isodep.ParseBlock(b)
		fmt.Println(blk)
	}
	// Output:
	// 22 <nil>
	// I(0,chain) [00]
	// R(ACK)(0)
	// S(WTX) 5
}
