package apdu

import "fmt"

// Response is a response APDU: data field and status word.
type Response struct {
	Data []byte
	SW   uint16
}

// ParseResponse splits a response APDU. Data aliases b.
func ParseResponse(b []byte) (Response, error) {
	if len(b) < 2 {
		return Response{}, fmt.Errorf("%w: response of %d bytes, want at least SW1 SW2", ErrMalformed, len(b))
	}
	n := len(b) - 2
	return Response{Data: b[:n:n], SW: uint16(b[n])<<8 | uint16(b[n+1])}, nil
}

// Bytes encodes the response (card side).
func (r Response) Bytes() []byte {
	out := make([]byte, 0, len(r.Data)+2)
	out = append(out, r.Data...)
	return append(out, byte(r.SW>>8), byte(r.SW))
}

// SW1 returns the first status byte.
func (r Response) SW1() byte { return byte(r.SW >> 8) }

// SW2 returns the second status byte.
func (r Response) SW2() byte { return byte(r.SW) }

// OK reports whether the status is 9000.
func (r Response) OK() bool { return r.SW == SWSuccess }

// Err returns nil for 9000 and a *StatusError otherwise.
func (r Response) Err() error {
	if r.OK() {
		return nil
	}
	return &StatusError{SW: r.SW}
}

func (r Response) String() string {
	return fmt.Sprintf("%d bytes SW %04X (%s)", len(r.Data), r.SW, Describe(r.SW))
}
