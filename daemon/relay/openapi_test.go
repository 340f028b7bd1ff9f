package relay_test

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"kazasu/daemon/relay"
)

// TestOpenAPIDocumentsTheTypes keeps openapi.yaml and the Go types in step:
// every path and every JSON field of every wire type must appear in it.
func TestOpenAPIDocumentsTheTypes(t *testing.T) {
	b, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	if strings.Contains(doc, "\t") {
		t.Fatal("openapi.yaml contains tabs (invalid YAML indentation)")
	}
	for _, p := range []string{"/v1/challenges:", "/v1/submissions:", "/v1/receipts:", "/v1/audit-records:", "/v1/status/{issuer}/{serial}:"} {
		if !strings.Contains(doc, "\n  "+p) {
			t.Errorf("path %s not documented", p)
		}
	}
	for _, v := range []any{relay.ChallengeRequest{}, relay.Challenge{}, relay.Submission{}, relay.ServiceRequest{}, relay.Issued{},
		relay.Document{}, relay.Receipt{}, relay.ReceiptAck{}, relay.AuditUpload{}, relay.AuditAck{}, relay.CertStatus{}, relay.ErrorDetail{}} {
		rt := reflect.TypeOf(v)
		if !strings.Contains(doc, "\n    "+rt.Name()+":") && rt.Name() != "ErrorDetail" {
			t.Errorf("schema %s not documented", rt.Name())
		}
		for i := range rt.NumField() {
			name := strings.Split(rt.Field(i).Tag.Get("json"), ",")[0]
			if !strings.Contains(doc, " "+name+":") {
				t.Errorf("%s.%s (%q) not documented", rt.Name(), rt.Field(i).Name, name)
			}
		}
	}
}
