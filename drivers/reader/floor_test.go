package reader_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"kazasu/drivers/jpki"
	"kazasu/drivers/nfc"
	"kazasu/drivers/reader"
	"kazasu/drivers/sim/pn532emu"
)

// The physical floor of a transaction over a PN532 (iso14443b.md §6.1,
// §6.6, §6.7), computed from the APDUs the transaction really sent:
//
//   - air: per APDU of N command and M response bytes, with frame sizes FSC
//     (card) and FSD (reader) and block overhead h = 3 + CID:
//     k_c = ⌈N/(FSC−h)⌉, k_r = ⌈M/(FSD−h)⌉, R = k_c + k_r − 1,
//     B = N + M + h(k_c + k_r) + (3 + CID)(R − 1),
//     T = etu·(10B + 44R) + R·(TR0 + TR1 + TR2), at 106 kbit/s;
//   - activation: REQB/ATQB and ATTRIB/answer with the 5 ms field guard;
//   - host link: every host frame carries its payload plus framing
//     (10 bytes; 13 for extended frames) and each command its 6-byte ACK:
//     chip-managed ISO-DEP sends one InDataExchange per APDU, host-managed
//     one InCommunicateThru per RF block; UART 10 bits/byte, I2C 9 bits per
//     byte plus address, start/stop and the ready byte per read, SPI 8 bits
//     per byte plus the direction byte per transfer and a status poll.
//
// No card processing, no chip firmware time, no host software: the floor.
const (
	fc    = 13.56e6
	etu   = 128 / fc                      // s, 106 kbit/s
	turn  = (64*16 + 80*16 + 1792) / fc   // TR0+TR1+TR2
	guard = 5e-3                          // field-on guard
	actB  = (10*(5+14+11+3) + 4*22) * etu // REQB, ATQB, ATTRIB, answer frames (CRC incl.)
)

type apduSize struct{ n, m int }

// chunks splits n bytes into blocks of at most size bytes.
func chunks(n, size int) []int {
	var out []int
	for n > size {
		out = append(out, size)
		n -= size
	}
	return append(out, n)
}

// exchange is one APDU's RF round trips: for each, the PCD frame and the
// PICC frame sizes without CRC (PCB + CID + INF).
func exchange(a apduSize, fsc, fsd, cid int) [][2]int {
	h := 3 + cid // PCB + CID + CRC
	pcd, picc := chunks(a.n, fsc-h), chunks(a.m, fsd-h)
	hdr := 1 + cid
	var rt [][2]int
	for i, c := range pcd {
		if i < len(pcd)-1 {
			rt = append(rt, [2]int{hdr + c, hdr}) // chained I-block → R(ACK)
		} else {
			rt = append(rt, [2]int{hdr + c, hdr + picc[0]}) // last I-block → first answer block
		}
	}
	for _, c := range picc[1:] {
		rt = append(rt, [2]int{hdr, hdr + c}) // R(ACK) → next answer block
	}
	return rt
}

// airTime is the time on air of the round trips (iso14443b.md §6.1: 22 etu
// of SOF/EOF per frame, 10 etu per byte incl. 2 CRC bytes, TR0+TR1+TR2 per
// round trip).
func airTime(rts [][2]int) float64 {
	var t float64
	for _, r := range rts {
		t += etu*float64(10*(r[0]+2)+22+10*(r[1]+2)+22) + turn
	}
	return t
}

type link struct {
	name string
	kind string // uart, i2c, spi
	rate float64
}

// hostTime is the host-link time of one PN532 command carrying out payload
// bytes after TFI and command code, answered with in such bytes: frames of
// payload + 9 bytes (preamble, start code, LEN, LCS, TFI, code, DCS,
// postamble; +3 for extended frames) and the 6-byte ACK.
func (l link) hostTime(out, in int) float64 {
	frame := func(p int) int {
		if p+2 > 255 {
			return p + 9 + 3
		}
		return p + 9
	}
	bo, bi, ack := frame(out), frame(in), 6
	switch l.kind {
	case "uart":
		return float64(10*(bo+bi+ack)) / l.rate
	case "i2c":
		// Write: address + frame. Two reads (ACK, response), each with
		// address and the leading ready byte. A start and a stop bit time
		// per transaction.
		bits := 9*(1+bo) + 9*(2+ack) + 9*(2+bi) + 3*2
		return float64(bits) / l.rate
	case "spi":
		// DW + frame; SR + status before each read; DR + ACK; DR + response.
		bytes := (1 + bo) + 2 + (1 + ack) + 2 + (1 + bi)
		return float64(8*bytes) / l.rate
	}
	return 0
}

// recorder collects APDU sizes from the trace.
type recorder struct {
	mu    sync.Mutex
	apdus []apduSize
	open  int
}

func (r *recorder) Trace(ev nfc.TraceEvent) {
	if ev.Layer != nfc.LayerAPDU {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ev.Out {
		r.open = len(ev.Data)
		return
	}
	r.apdus = append(r.apdus, apduSize{r.open, len(ev.Data)})
}

// floor computes the floor of the recorded APDUs for a mode and link.
func floor(apdus []apduSize, mode nfc.ISODepMode, l link) float64 {
	a, h := floorParts(apdus, mode, l)
	return a + h
}

// floorParts splits the floor into air (with activation) and host link.
func floorParts(apdus []apduSize, mode nfc.ISODepMode, l link) (airT, hostT float64) {
	fsc, fsd, cid := 256, 64, 1 // chip-managed: the PN532's own ATTRIB (FSD 64, CID 1)
	if mode == nfc.ISODepHost {
		fsd, cid = 256, 0
	}
	// Activation and InListPassiveTarget (MaxTg BrTy AFI → NbTg Tg ATQB
	// ATTRIB_RES).
	airT = guard + actB + 2*turn
	hostT = l.hostTime(3, 16)
	for _, a := range apdus {
		rts := exchange(a, fsc, fsd, cid)
		airT += airTime(rts)
		if mode == nfc.ISODepChip {
			hostT += l.hostTime(1+a.n, 1+a.m) // 40 Tg APDU → 41 status data
			continue
		}
		for _, r := range rts {
			hostT += l.hostTime(r[0], 1+r[1]) // 42 block → 43 status block
		}
	}
	return airT, hostT
}

// BenchmarkTransactionVsFloor runs the JPKI user-authentication transaction
// on the emulator's timing model, per link and ISO-DEP mode, and reports
// the modelled time (card processing excluded) divided by the floor.
//
//	go test -run '^$' -bench TransactionVsFloor -benchtime 1x ./drivers/reader
func BenchmarkTransactionVsFloor(b *testing.B) {
	links := []struct {
		l   link
		uri string
	}{
		{link{"UART 115200", "uart", 115200}, "sim:mynumber?via=pn532_uart&baud=115200"},
		{link{"UART 921600", "uart", 921600}, "sim:mynumber?via=pn532_uart&baud=921600"},
		{link{"I2C 400 kHz", "i2c", 400e3}, "sim:mynumber?via=pn532_i2c&baud=400000"},
		{link{"SPI 5 MHz", "spi", 5e6}, "sim:mynumber?via=pn532_spi&baud=5000000"},
	}
	for _, lk := range links {
		for _, mode := range []nfc.ISODepMode{nfc.ISODepChip, nfc.ISODepHost} {
			b.Run(fmt.Sprintf("%s/%s", lk.l.name, mode), func(b *testing.B) {
				var ratio, modelled, fl float64
				for i := 0; i < b.N; i++ {
					rec := &recorder{}
					ctx := context.Background()
					r, err := reader.Open(ctx, lk.uri, reader.Options{Tracer: rec})
					if err != nil {
						b.Fatal(err)
					}
					emu := r.Sim().Emulator
					emu.Meter().Reset()
					c, err := r.Poll(ctx, nfc.PollOptions{Mode: mode})
					if err != nil {
						b.Fatal(err)
					}
					s, err := jpki.Open(ctx, c, jpki.Options{})
					if err != nil {
						b.Fatal(err)
					}
					if _, err := s.ReadAuthCert(ctx); err != nil {
						b.Fatal(err)
					}
					if _, err := s.VerifyAuthPIN(ctx, []byte("1234"), false); err != nil {
						b.Fatal(err)
					}
					if _, err := s.SignAuth(ctx, jpki.DigestInfoSHA256([]byte("c"))); err != nil {
						b.Fatal(err)
					}
					m := emu.Meter()
					modelled = (m.Total() - m.Get(pn532emu.CatCard) - m.Get(pn532emu.CatPoll)).Seconds()
					fl = floor(rec.apdus, mode, lk.l)
					ratio = modelled / fl
					fa, fh := floorParts(rec.apdus, mode, lk.l)
					b.Logf("%s: meter %v; %d APDUs; floor air %.1f ms, host link %.1f ms", r.URI(), m, len(rec.apdus), fa*1e3, fh*1e3)
					r.Close()
				}
				b.ReportMetric(modelled*1e3, "model-ms")
				b.ReportMetric(fl*1e3, "floor-ms")
				b.ReportMetric(ratio, "x-floor")
			})
		}
	}
}
