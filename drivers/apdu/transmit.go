package apdu

import (
	"context"
	"errors"
	"fmt"
	"io"

	"kazasu/drivers/nfc"
)

// InsGetResponse is GET RESPONSE (ISO/IEC 7816-4 §11.3.1).
const InsGetResponse = 0xC0

// MaxGetResponse bounds the GET RESPONSE round trips Transmit makes for one
// command: enough for a 65536-byte answer in 256-byte pieces.
const MaxGetResponse = 256

// Transmit sends cmd over card and returns the response.
//
//   - 61xx: the data continues; Transmit sends GET RESPONSE (Le = xx) until
//     the status is something else, at most MaxGetResponse times, and
//     returns the concatenated data with the last status.
//   - 6Cxx: wrong Le; Transmit re-issues the command once with Ne = xx.
//
// The error is nil only for status 9000. Any other status gives the
// Response together with a *StatusError (errors.As, or errors.Is against
// the kinds). Transport failures wrap the nfc kinds of the card.
func Transmit(ctx context.Context, card nfc.Card, cmd Command) (Response, error) {
	resp, err := exchange(ctx, card, cmd)
	if err != nil {
		return Response{}, err
	}
	if resp.SW1() == 0x6C {
		cmd.Ne = shortLe(resp.SW2())
		if resp, err = exchange(ctx, card, cmd); err != nil {
			return Response{}, err
		}
	}
	if resp.SW1() == 0x61 {
		data := append([]byte(nil), resp.Data...)
		for i := 0; resp.SW1() == 0x61; i++ {
			if i == MaxGetResponse {
				return Response{}, fmt.Errorf("apdu: Transmit: %w: more than %d GET RESPONSE", nfc.ErrProtocol, MaxGetResponse)
			}
			gr := Command{CLA: cmd.CLA & 0x03, INS: InsGetResponse, Ne: shortLe(resp.SW2())}
			if cmd.CLA&0x80 != 0 {
				gr.CLA = 0x00 // proprietary class: GET RESPONSE is interindustry
			}
			if resp, err = exchange(ctx, card, gr); err != nil {
				return Response{}, err
			}
			data = append(data, resp.Data...)
		}
		resp.Data = data
	}
	return resp, resp.Err()
}

func exchange(ctx context.Context, card nfc.Card, cmd Command) (Response, error) {
	raw, err := cmd.Bytes()
	if err != nil {
		return Response{}, err
	}
	out, err := card.Transceive(ctx, raw)
	if err != nil {
		return Response{}, fmt.Errorf("apdu: Transmit %02X: %w", cmd.INS, err)
	}
	resp, err := ParseResponse(out)
	if err != nil {
		return Response{}, fmt.Errorf("apdu: Transmit %02X: %w: %w", cmd.INS, nfc.ErrProtocol, err)
	}
	return resp, nil
}

// InsReadBinary is READ BINARY with an offset in P1-P2 (§11.2.3).
const InsReadBinary = 0xB0

// MaxOffset is the largest offset READ BINARY (B0) can address in P1-P2
// (15 bits; P1 b8 selects the SFI form).
const MaxOffset = 0x7FFF

// ReadBinary reads length bytes of the current EF from offset, in chunks of
// at most chunk bytes: 0 means 256 (a short Le of 00); FSD − 5 avoids
// chaining each answer; above 256 the command uses an extended Le, so one
// chunk of the whole length reads a certificate in one APDU where the card
// and reader support extended lengths (iso14443b.md §5.4). It stops early at the end of the file (6282,
// 6B00 after the first chunk, or a short chunk) and then returns the bytes
// read with an error wrapping io.ErrUnexpectedEOF. The offset of every chunk
// must fit in 15 bits.
func ReadBinary(ctx context.Context, card nfc.Card, offset, length, chunk int) ([]byte, error) {
	if chunk <= 0 {
		chunk = MaxShortNe
	}
	chunk = min(chunk, MaxExtendedNe)
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("apdu: ReadBinary: offset %d, length %d", offset, length)
	}
	out := make([]byte, 0, length)
	for len(out) < length {
		off := offset + len(out)
		if off > MaxOffset {
			return out, fmt.Errorf("apdu: ReadBinary: offset %d beyond the 15-bit range", off)
		}
		n := min(chunk, length-len(out))
		resp, err := Transmit(ctx, card, Command{INS: InsReadBinary, P1: byte(off >> 8), P2: byte(off), Ne: n})
		out = append(out, resp.Data...)
		var se *StatusError
		switch {
		case err == nil && len(resp.Data) > n:
			return out, fmt.Errorf("apdu: ReadBinary: %w: %d bytes for Le %d", nfc.ErrProtocol, len(resp.Data), n)
		case err == nil && len(resp.Data) < n:
			return out, fmt.Errorf("apdu: ReadBinary at %d: %w", off, io.ErrUnexpectedEOF)
		case errors.As(err, &se) && (se.SW == SWEndOfFile || se.SW == SWWrongParams && len(out) > 0):
			return out, fmt.Errorf("apdu: ReadBinary at %d: %w (%w)", off, io.ErrUnexpectedEOF, err)
		case err != nil:
			return out, fmt.Errorf("apdu: ReadBinary at %d: %w", off, err)
		}
	}
	return out, nil
}

// ReadBinarySFI reads n bytes (1…256) at offset 0…255 of the EF with short
// identifier sfi (1…30), selecting it implicitly: READ BINARY with P1 =
// 80|SFI (§11.2.3; jpki.md §5.1).
func ReadBinarySFI(ctx context.Context, card nfc.Card, sfi byte, offset, n int) ([]byte, error) {
	if sfi < 1 || sfi > 30 || offset < 0 || offset > 255 || n < 1 || n > MaxShortNe {
		return nil, fmt.Errorf("apdu: ReadBinarySFI: SFI %d, offset %d, n %d out of range", sfi, offset, n)
	}
	resp, err := Transmit(ctx, card, Command{INS: InsReadBinary, P1: 0x80 | sfi, P2: byte(offset), Ne: n})
	if err != nil {
		return resp.Data, fmt.Errorf("apdu: ReadBinarySFI %d: %w", sfi, err)
	}
	return resp.Data, nil
}
