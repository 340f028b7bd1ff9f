package api

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestOpenAPIDocumentsTheAPI keeps openapi.yaml in step with the code:
// paths, JSON fields, states and error codes.
func TestOpenAPIDocumentsTheAPI(t *testing.T) {
	b, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	if strings.Contains(doc, "\t") {
		t.Fatal("tabs in openapi.yaml")
	}
	for _, p := range []string{"/v1/readers", "/v1/transactions", "/v1/transactions/{id}", "/v1/transactions/{id}/pin",
		"/v1/transactions/{id}/confirm-last-try", "/v1/transactions/{id}/cancel", "/v1/transactions/{id}/events", "/v1/events"} {
		if !strings.Contains(doc, "\n  "+p+":") {
			t.Errorf("path %s not documented", p)
		}
	}
	for _, v := range []any{ReaderStatus{}, TxStatus{}, Event{}, StartRequest{}} {
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			name := strings.Split(rt.Field(i).Tag.Get("json"), ",")[0]
			if !strings.Contains(doc, " "+name+":") {
				t.Errorf("%s.%s not documented", rt.Name(), name)
			}
		}
	}
	for _, s := range []State{StateWaitingForTap, StateArmYourPhone, StateReading, StatePINRequired, StateVerifying, StateRelaying, StateDone, StateFailed, StateRemoveCard} {
		if !strings.Contains(doc, string(s)) {
			t.Errorf("state %s not documented", s)
		}
	}
	src, _ := os.ReadFile("server.go")
	for _, m := range regexp.MustCompile(`(?:writeError\(w, [^,]+, |, \d{3}, )"([a-z_]+)"`).FindAllStringSubmatch(string(src), -1) {
		if !strings.Contains(doc, m[1]) {
			t.Errorf("error code %s not documented", m[1])
		}
	}
}
