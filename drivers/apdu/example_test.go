package apdu_test

import (
	"errors"
	"fmt"

	"kazasu/drivers/apdu"
)

func Example() {
	cmd := apdu.Command{CLA: 0x00, INS: 0xB0, P1: 0x00, P2: 0x00, Ne: 1900}
	b, _ := cmd.Bytes()
	fmt.Printf("%v: % X\n", cmd.Case(), b)

	resp, _ := apdu.ParseResponse([]byte{0x63, 0xC2})
	var pe *apdu.PINError
	if errors.As(resp.Err(), &pe) {
		fmt.Println("tries left:", pe.Retries)
	}
	fmt.Println(errors.Is((&apdu.StatusError{SW: 0x6984}), apdu.ErrBlocked))
	// Output:
	// 2E: 00 B0 00 00 00 07 6C
	// tries left: 2
	// true
}

func ExampleFindTLV() {
	ef0001 := []byte{0xFF, 0x10, 0x0C, '1', '2', '3', '4', '5', '6', '7', '8', '9', '0', '1', '2', 0xFF, 0xFF}
	v, ok, err := apdu.FindTLV(ef0001, 0xFF10)
	fmt.Println(string(v), ok, err)
	// Output: 123456789012 true <nil>
}
