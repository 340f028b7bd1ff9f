package jpki

import (
	"context"
	"fmt"
	"unicode/utf8"

	"kazasu/drivers/apdu"
)

// Basic4 is the 基本4情報 of the text AP's EF 0002 (jpki.md §4.2): name,
// address, date of birth and sex, for facility form prefill. It is personal
// data: callers must not log, persist or audit it.
type Basic4 struct {
	Name        string // 氏名 (family and given name separated by U+3000)
	Address     string // 住所
	DateOfBirth string // YYYYMMDD (Gregorian)
	Sex         string // one digit: 1 male, 2 female, 9 (or 3) not stated
}

// maxBasic4 bounds EF 0002: the object is a few hundred bytes.
const maxBasic4 = 1024

// ReadBasic4 reads the basic 4 information from the text AP (opt-in; cards
// only). It verifies the text AP's own 4-digit PIN (EF 0011) under the same
// rules as VerifyAuthPIN. Selecting the text AP clears the JPKI AP's
// security state, so call it before or after the authentication, not in the
// middle of it.
func (s *Session) ReadBasic4(ctx context.Context, textPIN []byte, confirmLastTry bool) (*Basic4, PINStatus, error) {
	if s.token != TokenCard {
		return nil, PINStatus{}, fmt.Errorf("%w: only My Number Cards carry the text AP", ErrUnsupportedToken)
	}
	if !ValidPIN(textPIN) {
		return nil, PINStatus{}, ErrBadPINFormat
	}
	if err := s.selectAP(ctx, TextAID); err != nil {
		return nil, PINStatus{}, err
	}
	st, err := s.verify(ctx, EFTextPIN, textPIN, confirmLastTry)
	if err != nil {
		return nil, st, err
	}
	// The outer object FF 20 with a 1- or 2-byte length comes first: read
	// its header, then the rest.
	hdr, err := s.readEF(ctx, EFTextBasic4, 0, 4)
	if err != nil {
		return nil, st, err
	}
	if len(hdr) < 3 || hdr[0] != 0xFF || hdr[1] != 0x20 {
		return nil, st, fmt.Errorf("%w: EF 0002 does not start with FF 20", ErrMalformed)
	}
	total := 0
	switch {
	case hdr[2] < 0x80:
		total = 3 + int(hdr[2])
	case hdr[2] == 0x81 && len(hdr) >= 4:
		total = 4 + int(hdr[3])
	case hdr[2] == 0x82 && len(hdr) >= 4:
		more, err := s.readBinary(ctx, 4, 1)
		if err != nil || len(more) != 1 {
			return nil, st, fmt.Errorf("%w: EF 0002 length", ErrMalformed)
		}
		total = 5 + (int(hdr[3])<<8 | int(more[0]))
	default:
		return nil, st, fmt.Errorf("%w: EF 0002 length form %02X", ErrMalformed, hdr[2])
	}
	if total > maxBasic4 {
		return nil, st, fmt.Errorf("%w: EF 0002 object of %d bytes", ErrMalformed, total)
	}
	buf := make([]byte, 0, total)
	for len(buf) < total {
		b, err := s.readBinary(ctx, len(buf), min(s.opts.ReadChunk, total-len(buf)))
		if err != nil {
			return nil, st, err
		}
		if len(b) == 0 {
			return nil, st, fmt.Errorf("%w: EF 0002 ended early", ErrMalformed)
		}
		buf = append(buf, b...)
	}
	b4, err := ParseBasic4(buf[:total])
	return b4, st, err
}

// ParseBasic4 decodes the EF 0002 object FF20 { DF21 offsets, DF22 name,
// DF23 address, DF24 date of birth, DF25 sex }.
func ParseBasic4(b []byte) (*Basic4, error) {
	outer, ok, err := apdu.FindTLV(b, 0xFF20)
	if err != nil || !ok {
		return nil, fmt.Errorf("%w: no FF20 object in EF 0002 (%v)", ErrMalformed, err)
	}
	objs, err := apdu.ParseTLVs(outer)
	if err != nil {
		return nil, fmt.Errorf("%w: EF 0002: %w", ErrMalformed, err)
	}
	var out Basic4
	seen := 0
	for _, o := range objs {
		var dst *string
		switch o.Tag {
		case 0xDF22:
			dst = &out.Name
		case 0xDF23:
			dst = &out.Address
		case 0xDF24:
			dst = &out.DateOfBirth
		case 0xDF25:
			dst = &out.Sex
		default:
			continue // DF21 offsets and anything newer
		}
		if !utf8.Valid(o.Value) {
			return nil, fmt.Errorf("%w: EF 0002 tag %X is not UTF-8", ErrMalformed, o.Tag)
		}
		*dst = string(o.Value)
		seen++
	}
	if seen != 4 {
		return nil, fmt.Errorf("%w: EF 0002 holds %d of the 4 items", ErrMalformed, seen)
	}
	if len(out.DateOfBirth) != 8 || len(out.Sex) != 1 {
		return nil, fmt.Errorf("%w: EF 0002 date of birth or sex malformed", ErrMalformed)
	}
	for _, c := range out.DateOfBirth + out.Sex {
		if c < '0' || c > '9' {
			return nil, fmt.Errorf("%w: EF 0002 date of birth or sex not digits", ErrMalformed)
		}
	}
	return &out, nil
}
