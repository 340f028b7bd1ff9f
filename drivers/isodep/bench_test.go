package isodep

import (
	"context"
	"testing"
	"time"
)

// BenchmarkTransceive measures the host cost of the block protocol on both
// sides (no air time): one READ BINARY of 256 bytes at FSD 256 (two
// blocks), and one 64 KiB extended response at FSD 256 (260 blocks).
func BenchmarkTransceive(b *testing.B) {
	for _, bc := range []struct {
		name string
		cmd  []byte
		resp int
	}{
		{"ReadBinary256", []byte{0x00, 0xB0, 0x00, 0x00, 0x00}, 256},
		{"Extended64K", []byte{0x00, 0xB0, 0x00, 0x00, 0x00, 0x00, 0x00}, 65536},
	} {
		b.Run(bc.name, func(b *testing.B) {
			body := append(pattern(bc.resp), 0x90, 0x00)
			picc := NewPICC(PICCConfig{CID: -1}, func([]byte) ([]byte, time.Duration) { return body, 0 })
			pcd := NewPCD(&link{picc: picc}, Params{FSC: 256, FSD: 256, CID: -1})
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := pcd.Transceive(context.Background(), bc.cmd); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseBlock(b *testing.B) {
	frame := append([]byte{0x12}, pattern(253)...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseBlock(frame); err != nil {
			b.Fatal(err)
		}
	}
}
