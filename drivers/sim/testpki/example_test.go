package testpki_test

import (
	"fmt"

	"kazasu/drivers/sim/testpki"
)

func Example() {
	h := testpki.New("example")
	id, err := h.Issue(testpki.SamplePerson("EXAMPLE0001"), testpki.IssueOptions{Generation: 3})
	if err != nil {
		panic(err)
	}
	fmt.Println(id.AuthCert.Subject)
	fmt.Println(id.AuthCert.Issuer)
	fmt.Println(id.AuthCert.NotAfter.In(testpki.JST).Format("2006-01-02 15:04:05 MST"))
	// Output:
	// CN=EXAMPLE0001,C=JP
	// OU=JPKI TEST for user authentication+OU=kazasu test hierarchy,O=JPKI-TEST,C=JP
	// 2030-02-17 23:59:59 JST
}
