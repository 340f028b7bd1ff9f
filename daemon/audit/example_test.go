package audit_test

import (
	"fmt"
	"os"
	"path/filepath"

	"kazasu/daemon/audit"
)

func Example() {
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)
	l, err := audit.Open(dir, audit.Options{Terminal: "kz-1"})
	if err != nil {
		panic(err)
	}
	l.Append(audit.Entry{Event: audit.EventTxStart, TxID: "t1", Reader: "sim0", Service: "juminhyo"})
	l.Append(audit.Entry{Event: audit.EventCertRejected, TxID: "t1", Reason: "revoked", Cert: audit.CertPrefixOf([]byte("DER"))})
	_, err = l.Append(audit.Entry{Event: audit.EventFailed, Reason: "PIN was 1234"}) // free text is refused
	fmt.Println(err)
	head := l.Head()
	l.Close()

	res, err := audit.VerifyFiles([]string{filepath.Join(dir, audit.LiveName)}, &head)
	fmt.Println(res.Records, res.LastSeq, err)
	// Output:
	// audit: invalid entry: reason "PIN was 1234"
	// 3 2 <nil>
}
