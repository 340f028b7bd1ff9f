package main

import (
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kazasu/daemon/config"
	"kazasu/tools/selftest"
)

func TestSelftestSimulatedTerminal(t *testing.T) {
	selftestHooks.adjust = func(c *selftest.Config) {
		c.Synced = func() (bool, error) { return true, nil }
		c.GPIO = nil // whatever this machine has: the report must say skipped
	}
	defer func() { selftestHooks.adjust = nil }()
	dir := t.TempDir()
	code, out, errs := run(t, "selftest", "--board", "pi4", "--reader", "sim:mynumber?via=pn532_uart", "--data-dir", dir, "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	var rep selftest.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	st := map[string]selftest.Status{}
	for _, c := range rep.Checks {
		st[c.Name] = c.Status
	}
	want := map[string]selftest.Status{"board": "pass", "reader": "pass", "chip firmware": "pass", "communication line": "pass",
		"rf field": "pass", "poll": "pass", "led": "skip", "buzzer": "skip", "clock": "pass", "data partition": "pass", "issuance service": "skip"}
	for n, s := range want {
		if st[n] != s {
			t.Errorf("%s: %s, want %s", n, st[n], s)
		}
	}
	if !rep.OK || rep.Board != "pi4" {
		t.Fatalf("report %+v", rep)
	}

	// Human report, a reader that is not there: exit 1 and a FAIL line.
	code, out, errs = run(t, "selftest", "--board", "pi4", "--reader", "pn532_uart:"+dir+"/ttyNONE", "--data-dir", dir)
	if code != 1 || !strings.Contains(errs, "checks failed: reader") {
		t.Fatalf("no reader: exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "  FAIL  reader              no reader answered on pn532_uart:") || !strings.Contains(out, "  SKIP  led                 skipped: no GPIO") || !strings.HasSuffix(out, "result: FAIL (3 passed, 1 failed, 0 warnings, 7 skipped)\n") {
		t.Fatalf("human report:\n%s", out)
	}
	if code, _, _ := run(t, "selftest", "extra"); code != 2 {
		t.Fatalf("usage: exit %d", code)
	}
}

func TestRelayTLSFromConfig(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Relay.ClientCert, cfg.Relay.ClientKey = "", ""
	if _, err := relayTLS(cfg); err == nil || !strings.Contains(err.Error(), "relay ca") {
		t.Fatalf("missing CA file: %v", err)
	}
	os.MkdirAll(filepath.Join(cfg.DataDir, "tls"), 0o700)
	os.WriteFile(cfg.Path(cfg.Relay.CA), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	tc, err := relayTLS(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", strings.TrimPrefix(srv.URL, "https://"), &tls.Config{RootCAs: tc.RootCAs, ServerName: "example.com"})
	if err != nil {
		t.Fatalf("the CA from the config does not verify the service: %v", err)
	}
	c.Close()
	cfg.Relay.ClientCert, cfg.Relay.ClientKey = "tls/client.pem", "tls/client-key.pem"
	if _, err := relayTLS(cfg); err == nil || !strings.Contains(err.Error(), "relay client certificate") {
		t.Fatalf("missing client key: %v", err)
	}
}
